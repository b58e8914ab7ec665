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
 * Loss: beta * sum_j bits_in * width_j (EBOPs with widths, differentiable
 * through the rounding by STE) + gamma * sum_g (i_g + f_g).
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

nl_status cq_plan(const layer_spec *specs, int n_specs, int in_size, const cfg_quant *q,
                  char ***names, long **lens, int *n, nl_error *e) {
    int size = in_size;
    for (int j = 0; j < n_specs; j++) {
        const layer_spec *s = &specs[j];
        if (s->kind == LAYER_RELU || s->kind == LAYER_QUANT) continue;
        if (s->kind != LAYER_DENSE)
            return nl_err(e, NL_ERR_CONFIG,
                          "use_high_granularity_quantization: layer '%s' is not Dense; HGQ "
                          "supports Dense/ReLU models so far (turn HGQ off for this model)",
                          s->name);
        long nw = (long)size * s->units;
        int het = q->hgq_heterogeneous;
        long gw = het ? (q->granularity == GRAN_PER_CHANNEL ? s->units : nw) : 1;
        long gb = het ? s->units : 1;
        long add[4] = {gw, gw, gb, gb};
        char **nn2 = realloc(*names, (size_t)(*n + 4) * sizeof *nn2);
        if (!nn2) return nl_err(e, NL_ERR_NOMEM, "HGQ plan: out of memory");
        *names = nn2;
        long *ll = realloc(*lens, (size_t)(*n + 4) * sizeof *ll);
        if (!ll) return nl_err(e, NL_ERR_NOMEM, "HGQ plan: out of memory");
        *lens = ll;
        for (int k = 0; k < 4; k++) {
            char buf[96];
            snprintf(buf, sizeof buf, "%.60s/%s", s->name, seg_suffix[k]);
            (*names)[*n] = str_dup(buf);
            if (!(*names)[*n]) return nl_err(e, NL_ERR_NOMEM, "HGQ plan: out of memory");
            (*lens)[*n] = add[k];
            (*n)++;
        }
        size = s->units;
    }
    return NL_OK;
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
        double in_bits = cm_input_bits(c, L);
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
