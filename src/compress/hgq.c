/* hgq.c — High Granularity Quantization (Sun et al. 2024): trainable
 * integer and fractional bits per weight (or per channel, or per tensor),
 * stored as segments of the model's flat buffer so the optimizer, rewinds
 * and checkpoints cover them.
 *
 * Forward: q = Q_(k, round(i), round(f))(x) with the training overflow
 * (WRAP clips); a group with k + i + f <= 0 has no bits and gives 0 (the
 * weight is pruned). Backward: straight-through for x inside the range;
 * dq/df = ln2 (x - q) (surrogate: the error shrinks by 2 per bit);
 * clipped values give dq/di = ln2 q (the bound 2^i moves with i).
 * Loss: beta * sum_j bits_in * positions * width_j (EBOPs with widths,
 * differentiable through the rounding by STE; positions = output pixels of
 * a conv, 1 for Dense) + gamma * sum_g (i_g + f_g). Any kernel layer
 * (Dense, Conv1D, Conv2D) has segments; the others pass through.
 * Deliberately not: trainable data (activation) bits: data formats are
 * static here. No allocation in the hooks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compress/quant_internal.h"

#define LN2 0.69314718055994530942

static const char *const seg_suffix[4] = {"hgq_wf", "hgq_wi", "hgq_bf", "hgq_bi"};

static int iround(float v, int lo, int hi) {
    double r = nearbyint((double)v);
    if (!(r >= lo)) r = lo; /* NaN -> lo */
    if (r > hi) r = hi;
    return (int)r;
}

/* Rounded bits of group g: i in [-16, 16], f with k + i + f <= 24. */
static void group_bits(const compress *c, const cq_tensor *t, long g, int *i, int *f) {
    *i = iround(c->m->params[t->i_off + g], -16, 16);
    *f = iround(c->m->params[t->f_off + g], -24, 24 - t->spec.k - *i);
}

/* Appends one segment name/length pair; the arrays grow by one. */
static nl_status plan_push(char ***names, long **lens, int *n, const char *layer, int k, long len,
                           nl_error *e) {
    char **nn2 = realloc(*names, (size_t)(*n + 1) * sizeof *nn2);
    if (!nn2) return nl_err(e, NL_ERR_NOMEM, "HGQ plan: out of memory");
    *names = nn2;
    long *ll = realloc(*lens, (size_t)(*n + 1) * sizeof *ll);
    if (!ll) return nl_err(e, NL_ERR_NOMEM, "HGQ plan: out of memory");
    *lens = ll;
    char buf[96];
    snprintf(buf, sizeof buf, "%.60s/%s", layer, seg_suffix[k]);
    (*names)[*n] = str_dup(buf);
    if (!(*names)[*n]) return nl_err(e, NL_ERR_NOMEM, "HGQ plan: out of memory");
    (*lens)[*n] = len;
    (*n)++;
    return NL_OK;
}

nl_status cq_plan(const layer_spec *specs, int n_specs, int in_size, const cfg_quant *q,
                  char ***names, long **lens, int *n, nl_error *e) {
    /* Kernel shapes after every shape rule of nn (conv, pooling, flatten,
     * input_shape) from a throw-away model of batch 1, as sparse_plan does:
     * the same specs give the same layers in compress_create. */
    model *tm = model_create(specs, n_specs, in_size, 1, NULL, NULL, 0, e);
    if (!tm) return e && e->code != NL_OK ? e->code : NL_ERR_INVALID;
    nl_status st = NL_OK;
    for (int l = 0; l < tm->n_layers && st == NL_OK; l++) {
        const layer *L = &tm->layers[l];
        if (!layer_has_kernel((int)L->kind)) continue; /* no weights: passes through */
        long rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
        int het = q->hgq_heterogeneous;
        /* groups as cq_init makes them: per weight, per output channel, per tensor */
        long gw = het ? (q->granularity == GRAN_PER_CHANNEL ? cols : rows * cols) : 1;
        long gb = het ? cols : 1;
        long add[4] = {gw, gw, gb, gb};
        for (int k = 0; k < 4 && st == NL_OK; k++)
            st = plan_push(names, lens, n, L->name, k, add[k], e);
    }
    model_free(tm);
    return st;
}

nl_status hgq_init(compress *c, nl_error *e) {
    model *m = c->m;
    for (int li = 0; li < c->n_layers; li++) {
        cq_layer *Q = &c->quant->layers[li];
        cq_tensor *ts[2] = {&Q->w, &Q->b};
        for (int k = 0; k < 4; k++) {
            char buf[96];
            snprintf(buf, sizeof buf, "%.60s/%s", m->layers[c->layers[li].layer].name,
                     seg_suffix[k]);
            const param_view *v = model_find_view(m, buf);
            cq_tensor *t = ts[k / 2];
            if (!v || v->len != t->groups)
                return nl_err(e, NL_ERR_INVALID,
                              "HGQ: the model has no segment '%s' of %ld values; create it with "
                              "the names and lengths of compress_plan_all_params",
                              buf, t->groups);
            float init = (float)(k % 2 == 0 ? t->spec.f : t->spec.i);
            if (k % 2 == 0) t->f_off = v->off;
            else t->i_off = v->off;
            for (long j = 0; j < v->len; j++) m->params[v->off + j] = m->weff[v->off + j] = init;
        }
    }
    return NL_OK;
}

void hgq_forward(compress *c, const cq_tensor *t, const float *x, float *q, unsigned char *inr,
                 fixed_spec *uni) {
    int imax = -1000, fmax = -1000;
    long last = -1;
    int gi = 0, gf = 0;
    for (long j = 0; j < t->n; j++) {
        long g = cq_group(t, j);
        if (g != last) {
            group_bits(c, t, g, &gi, &gf);
            last = g;
        }
        fixed_spec s = t->train;
        s.i = gi;
        s.f = gf;
        if (s.k + gi + gf <= 0) {
            q[j] = 0.0f;
            inr[j] = 2;
            continue;
        }
        fixed_quantize_array(&s, x + j, q + j, inr + j, 1);
        if (q[j] != 0.0f) {
            if (gi > imax) imax = gi;
            if (gf > fmax) fmax = gf;
        }
    }
    *uni = t->spec;
    if (imax > -1000) {
        uni->i = imax;
        uni->f = fmax;
        if (fixed_width(uni) < 1) uni->i = 1 - uni->k - uni->f;
    }
}

void hgq_backward(compress *c, const cq_tensor *t, const float *x, const float *q,
                  const unsigned char *inr, float *g) {
    float *gf = c->m->grads + t->f_off, *gi = c->m->grads + t->i_off;
    for (long j = 0; j < t->n; j++) {
        long k = cq_group(t, j);
        double gq = g[j];
        if (inr[j] == 1) {
            gf[k] += (float)(gq * LN2 * ((double)x[j] - q[j]));
        } else if (inr[j] == 2) {
            float d = (float)(gq * LN2 * (double)x[j]);
            gf[k] += d;
            gi[k] += d;
            g[j] = 0.0f;
        } else {
            gi[k] += (float)(gq * LN2 * (double)q[j]);
            g[j] = 0.0f;
        }
    }
}

float hgq_loss(compress *c) {
    double beta = c->quant->beta, gamma = c->quant->gamma, loss = 0;
    model *m = c->m;
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        cq_layer *Q = &c->quant->layers[li];
        /* a conv weight multiplies once per output position (as the report) */
        double in_bits = cm_input_bits(c, L) * (double)layer_positions(&m->layers[L->layer]);
        cq_tensor *t = &Q->w;
        float *gf = m->grads + t->f_off, *gi = m->grads + t->i_off;
        long last = -1;
        int bi = 0, bf = 0;
        for (long j = 0; j < t->n; j++) {
            long g = cq_group(t, j);
            if (g != last) {
                group_bits(c, t, g, &bi, &bf);
                last = g;
            }
            if (L->prunable && L->mask[j] < 0.5f) continue;
            int w = t->spec.k + bi + bf;
            if (w <= 0) continue;
            loss += beta * in_bits * w;
            gf[g] += (float)(beta * in_bits);
            gi[g] += (float)(beta * in_bits);
        }
        cq_tensor *ts[2] = {&Q->w, &Q->b};
        for (int k = 0; k < 2; k++) {
            t = ts[k];
            for (long g = 0; g < t->groups; g++) {
                group_bits(c, t, g, &bi, &bf);
                loss += gamma * (bi + bf);
                m->grads[t->f_off + g] += (float)gamma;
                m->grads[t->i_off + g] += (float)gamma;
            }
        }
    }
    return (float)loss;
}
