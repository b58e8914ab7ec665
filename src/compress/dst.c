/* dst.c — Dynamic Sparse Training (Liu, Xu, Shi, Cheung, So; ICLR 2020).
 *
 * mask = step(|W| - T), out = mask W, with trainable thresholds T per output
 * unit, per weight or per layer (threshold_type; a segment of the model's
 * flat buffer declared by plan). The step's surrogate gradient
 * (2 - 4|x| for |x| <= 0.4, 0.4 up to |x| <= 1, else 0) reaches W and T;
 * loss += alpha sum exp(-T). A layer whose sparsity reaches max_pruning_pct
 * gets T = 0 (PQuant's reset). Our collapse guard (docs/methods/dst.md):
 * after each step a channel/layer threshold is clamped just below the
 * largest |W| of its group (each output unit keeps its strongest input), a
 * per-weight one to |W| + 1 (the surrogate's reach, so a pruned weight can
 * come back). The stored L->mask is the 0/1 mask of the last forward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- pure math ------------------------------------------------------------ */

float dst_step_grad(float x) {
    float a = fabsf(x);
    if (a <= 0.4f) return 2.0f - 4.0f * a;
    if (a <= 1.0f) return 0.4f;
    return 0.0f;
}

/* Threshold index of kernel entry (i, o), j = i out + o. */
static long grp(prune_threshold_type tt, long j, int out) {
    return tt == THRESH_CHANNELWISE ? j % out : tt == THRESH_WEIGHTWISE ? j : 0;
}

long dst_forward(const float *w, int in, int out, const float *T, prune_threshold_type tt,
                 float *mask, float *o) {
    long n = (long)in * out, pruned = 0;
    for (long j = 0; j < n; j++) {
        float m = fabsf(w[j]) - T[grp(tt, j, out)] > 0 ? 1.0f : 0.0f;
        mask[j] = m;
        pruned += m == 0.0f;
        if (o) o[j] = m * w[j];
    }
    return pruned;
}

void dst_backward(const float *w, int in, int out, const float *T, prune_threshold_type tt,
                  float *g, float *gT) {
    long n = (long)in * out;
    for (long j = 0; j < n; j++) {
        long k = grp(tt, j, out);
        float x = fabsf(w[j]) - T[k];
        float sg = dst_step_grad(x);
        float m = x > 0 ? 1.0f : 0.0f;
        gT[k] -= g[j] * w[j] * sg;
        g[j] = g[j] * m + g[j] * fabsf(w[j]) * sg;
    }
}

double dst_penalty(const float *T, long nT, double alpha, float *gT) {
    double sum = 0;
    for (long k = 0; k < nT; k++) {
        double ex = exp(-(double)T[k]);
        sum += ex;
        if (gT) gT[k] -= (float)(alpha * ex);
    }
    return alpha * sum;
}

void dst_clamp(const float *w, int in, int out, float *T, prune_threshold_type tt,
               float *gmax) {
    long n = (long)in * out, nT = sparse_n_thresholds(tt, in, out);
    if (tt == THRESH_WEIGHTWISE) {
        /* Within the surrogate's reach: x = |w| - T >= -1 (just above). */
        for (long j = 0; j < n; j++) {
            float lim = nextafterf(fabsf(w[j]) + 1.0f, -INFINITY);
            if (T[j] > lim) T[j] = lim;
        }
        return;
    }
    for (long k = 0; k < nT; k++) gmax[k] = 0.0f;
    for (long j = 0; j < n; j++) {
        long k = grp(tt, j, out);
        float a = fabsf(w[j]);
        if (a > gmax[k]) gmax[k] = a;
    }
    /* Just below the largest |w|: step(x) needs x > 0 to keep it. */
    for (long k = 0; k < nT; k++)
        if (T[k] >= gmax[k]) T[k] = nextafterf(gmax[k], -INFINITY);
}

/* ---- the pruner ------------------------------------------------------------ */

typedef struct {
    long *off;      /* (n_layers) threshold segment in params, -1 if not pruned */
    float *gmax;    /* (max thresholds) scratch of the clamp */
    long *resets;   /* (n_layers) times the max_pruning_pct reset fired */
} dst_state;

static void dst_free(compress *c) {
    dst_state *s = c->state;
    if (!s) return;
    free(s->off);
    free(s->gmax);
    free(s->resets);
    free(s);
    c->state = NULL;
}

static void dst_reset_T(compress *c) {
    sparse_reset_thresholds(c, ((dst_state *)c->state)->off);
}

static nl_status dst_init(compress *c, nl_error *e) {
    if (!(c->p.alpha >= 0) || !(c->p.max_pruning_pct > 0 && c->p.max_pruning_pct <= 1) ||
        !isfinite(c->p.threshold_init))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_method dst: alpha must be >= 0 (got %g), max_pruning_pct in "
                      "(0, 1] (got %g), threshold_init finite (got %g)",
                      c->p.alpha, c->p.max_pruning_pct, c->p.threshold_init);
    dst_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "dst: out of memory");
    c->state = s;
    long maxT = 1;
    for (int l = 0; l < c->n_layers; l++) {
        long nT = sparse_n_thresholds(c->p.threshold_type, c->layers[l].in, c->layers[l].out);
        if (nT > maxT) maxT = nT;
    }
    s->off = calloc((size_t)c->n_layers + 1, sizeof *s->off);
    s->resets = calloc((size_t)c->n_layers + 1, sizeof *s->resets);
    s->gmax = malloc((size_t)maxT * sizeof *s->gmax);
    if (!s->off || !s->resets || !s->gmax) {
        dst_free(c);
        return nl_err(e, NL_ERR_NOMEM, "dst: out of memory");
    }
    nl_status st = sparse_find_segments(c, "dst_threshold", 0, s->off, e);
    if (st) {
        dst_free(c);
        return st;
    }
    dst_reset_T(c);
    return NL_OK;
}

static nl_status dst_plan(const layer_spec *specs, int n_specs, int in_size,
                          const cfg_pruning *p, char ***names, long **lens, int *n,
                          nl_error *e) {
    return sparse_plan(specs, n_specs, in_size, p, "dst_threshold", 0, names, lens, n, e);
}

static void dst_post_step(compress *c);

static void dst_setup(compress *c) {
    dst_reset_T(c);
    dst_post_step(c);
}

static void dst_fwd(compress *c, int li, const float *w, float *out) {
    dst_state *s = c->state;
    cl_layer *L = &c->layers[li];
    float *T = c->m->params + s->off[li];
    long pruned = dst_forward(w, L->in, L->out, T, c->p.threshold_type, L->mask, out);
    if ((double)pruned / (double)L->n >= c->p.max_pruning_pct) {
        long nT = sparse_n_thresholds(c->p.threshold_type, L->in, L->out);
        for (long k = 0; k < nT; k++) T[k] = 0.0f;
        s->resets[li]++;
        dst_forward(w, L->in, L->out, T, c->p.threshold_type, L->mask, out);
    }
}

static void dst_bwd(compress *c, int li, const float *w, float *g) {
    dst_state *s = c->state;
    cl_layer *L = &c->layers[li];
    dst_backward(w, L->in, L->out, c->m->params + s->off[li], c->p.threshold_type, g,
                 c->m->grads + s->off[li]);
}

static float dst_extra_loss(compress *c) {
    dst_state *s = c->state;
    double sum = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        const cl_layer *L = &c->layers[l];
        long nT = sparse_n_thresholds(c->p.threshold_type, L->in, L->out);
        sum += dst_penalty(c->m->params + s->off[l], nT, c->p.alpha, c->m->grads + s->off[l]);
    }
    return (float)sum;
}

static void dst_post_step(compress *c) {
    dst_state *s = c->state;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        const cl_layer *L = &c->layers[l];
        dst_clamp(c->m->params + L->w_off, L->in, L->out, c->m->params + s->off[l],
                  c->p.threshold_type, s->gmax);
    }
}

/* Checkpoint: the reset counters (the thresholds are in params). */
static void dst_save_state(const compress *c, ckpt_writer *w) {
    const dst_state *s = c->state;
    ckpt_put(w, "dst_resets", s->resets, (size_t)c->n_layers * sizeof(long));
}

static nl_status dst_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    dst_state *s = c->state;
    return ckpt_get(r, "dst_resets", s->resets, (size_t)c->n_layers * sizeof(long), e);
}

const prune_ops prune_dst_ops = {
    .name = "dst",
    .init = dst_init,
    .free = dst_free,
    .setup = dst_setup,
    .forward = dst_fwd,
    .backward = dst_bwd,
    .post_step = dst_post_step,
    .plan = dst_plan,
    .extra_loss = dst_extra_loss,
    .save_state = dst_save_state,
    .load_state = dst_load_state,
};
