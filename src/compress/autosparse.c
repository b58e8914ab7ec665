/* autosparse.c — AutoSparse (Kundu et al. 2023): learnable soft thresholds.
 *
 * x = |W| - sigmoid(T), out = sign(W) relu(x), with trainable T per output
 * unit, per weight or per layer (threshold_type; a segment of the model's
 * flat buffer declared by plan). Backward: relu'(x) = 1 for x > 0, alpha
 * otherwise (gradient annealing); alpha = alpha0 max(cosine, sigmoid decay)
 * over the main stage's epochs, 0 from alpha_reset_epoch. Hard mask x > 0.
 * At freeze the shrinkage is folded into W (W = sign(W) relu(x)), so the
 * frozen mask W reproduces the trained layer. Our collapse guard: a
 * channel/layer threshold never exceeds its group's largest |W| (set-up and
 * after each step). Both are ours: docs/methods/autosparse.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- pure math ------------------------------------------------------------ */

double autosparse_alpha(double alpha0, int e, int E, int reset_epoch) {
    if (e >= reset_epoch) return 0.0;
    double t = E > 0 ? (double)e / (double)E : 0.0;
    double cosd = (1.0 + cos(M_PI * t)) / 2.0;
    double sigd = 1.0 - 1.0 / (1.0 + exp(-(-6.0 + 12.0 * t)));
    return alpha0 * (cosd > sigd ? cosd : sigd);
}

static long grp(prune_threshold_type tt, long j, int out) {
    return tt == THRESH_CHANNELWISE ? j % out : tt == THRESH_WEIGHTWISE ? j : 0;
}

static float sigmoidf_(float z) {
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

long autosparse_forward(const float *w, int in, int out, const float *T, prune_threshold_type tt,
                        float *sT, float *mask, float *o) {
    long n = (long)in * out, nT = sparse_n_thresholds(tt, in, out), pruned = 0;
    for (long k = 0; k < nT; k++) sT[k] = sigmoidf_(T[k]);
    for (long j = 0; j < n; j++) {
        float x = fabsf(w[j]) - sT[grp(tt, j, out)];
        int keep = x > 0;
        mask[j] = keep ? 1.0f : 0.0f;
        pruned += !keep;
        if (o) o[j] = keep ? (w[j] > 0 ? x : -x) : 0.0f;
    }
    return pruned;
}

void autosparse_backward(const float *w, int in, int out, const float *sT,
                         prune_threshold_type tt, float alpha, float *g, float *gT) {
    long n = (long)in * out;
    for (long j = 0; j < n; j++) {
        long k = grp(tt, j, out);
        float x = fabsf(w[j]) - sT[k];
        float d = x > 0 ? 1.0f : alpha;
        float sg = w[j] > 0 ? 1.0f : w[j] < 0 ? -1.0f : 0.0f;
        float gd = g[j] * d;
        gT[k] -= gd * sg * sT[k] * (1.0f - sT[k]);
        g[j] = gd * sg * sg;
    }
}

void autosparse_clamp(const float *w, int in, int out, float *T, prune_threshold_type tt,
                      float *gmax) {
    if (tt == THRESH_WEIGHTWISE) return;
    long n = (long)in * out, nT = sparse_n_thresholds(tt, in, out);
    for (long k = 0; k < nT; k++) gmax[k] = 0.0f;
    for (long j = 0; j < n; j++) {
        long k = grp(tt, j, out);
        float a = fabsf(w[j]);
        if (a > gmax[k]) gmax[k] = a;
    }
    for (long k = 0; k < nT; k++) {
        double lim = (double)gmax[k] * (1.0 - 1e-4);
        if (lim >= 1.0) continue;     /* sigmoid(T) < 1 <= max |w| always */
        if (lim < 1e-7) lim = 1e-7;
        float tmax = (float)log(lim / (1.0 - lim));
        if (T[k] > tmax) T[k] = tmax;
    }
}

/* ---- the pruner ------------------------------------------------------------ */

typedef struct {
    long *off;      /* (n_layers) threshold segment in params, -1 if not pruned */
    float **sT;     /* (n_layers) sigmoid(T) of the last forward */
    float *gmax;    /* (max thresholds) scratch of the clamp */
    double alpha;   /* this epoch's negative-side slope */
    int ran;
} as_state;

static void as_free(compress *c) {
    as_state *s = c->state;
    if (!s) return;
    if (s->sT)
        for (int l = 0; l < c->n_layers; l++) free(s->sT[l]);
    free(s->sT);
    free(s->gmax);
    free(s->off);
    free(s);
    c->state = NULL;
}

static void as_reset_T(compress *c) {
    as_state *s = c->state;
    sparse_reset_thresholds(c, s->off);
    s->alpha = c->p.alpha;
}

static nl_status as_init(compress *c, nl_error *e) {
    if (!(c->p.alpha >= 0) || !isfinite(c->p.threshold_init))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_method autosparse: alpha must be >= 0 (got %g) and threshold_init "
                      "finite (got %g)",
                      c->p.alpha, c->p.threshold_init);
    /* PQuant's backward_sparsity drops a fixed 50 % of the gradients,
     * whatever the config says; we refuse it rather than copy a hard-coded
     * number (docs/methods/autosparse.md). */
    if (c->p.backward_sparsity)
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_method autosparse: backward_sparsity: true is refused (PQuant prunes "
                      "a hard-coded 50 %% of the gradients there); set it to false");
    as_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "autosparse: out of memory");
    c->state = s;
    s->off = calloc((size_t)c->n_layers + 1, sizeof *s->off);
    s->sT = calloc((size_t)c->n_layers + 1, sizeof *s->sT);
    long maxT = 1;
    for (int l = 0; l < c->n_layers; l++) {
        long nT = sparse_n_thresholds(c->p.threshold_type, c->layers[l].in, c->layers[l].out);
        if (nT > maxT) maxT = nT;
    }
    s->gmax = malloc((size_t)maxT * sizeof *s->gmax);
    if (!s->off || !s->sT || !s->gmax) {
        as_free(c);
        return nl_err(e, NL_ERR_NOMEM, "autosparse: out of memory");
    }
    nl_status st = sparse_find_segments(c, "autosparse_threshold", 0, s->off, e);
    if (st) {
        as_free(c);
        return st;
    }
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        long nT = sparse_n_thresholds(c->p.threshold_type, c->layers[l].in, c->layers[l].out);
        s->sT[l] = malloc((size_t)nT * sizeof(float));
        if (!s->sT[l]) {
            as_free(c);
            return nl_err(e, NL_ERR_NOMEM, "autosparse: out of memory");
        }
    }
    as_reset_T(c);
    return NL_OK;
}

static nl_status as_plan(const layer_spec *specs, int n_specs, int in_size,
                         const cfg_pruning *p, char ***names, long **lens, int *n, nl_error *e) {
    return sparse_plan(specs, n_specs, in_size, p, "autosparse_threshold", 0, names, lens, n, e);
}

static void as_post_step(compress *c) {
    as_state *s = c->state;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        const cl_layer *L = &c->layers[l];
        autosparse_clamp(c->m->params + L->w_off, L->in, L->out, c->m->params + s->off[l],
                         c->p.threshold_type, s->gmax);
    }
}

/* T = threshold_init (clamped by the guard) when the main stage starts. */
static void as_setup(compress *c) {
    as_reset_T(c);
    as_post_step(c);
}

static void as_epoch_begin(compress *c) {
    as_state *s = c->state;
    s->alpha = autosparse_alpha(c->p.alpha, c->epoch, c->n_epochs, c->p.alpha_reset_epoch);
}

static void as_fwd(compress *c, int li, const float *w, float *out) {
    as_state *s = c->state;
    cl_layer *L = &c->layers[li];
    s->ran = 1;
    autosparse_forward(w, L->in, L->out, c->m->params + s->off[li], c->p.threshold_type,
                       s->sT[li], L->mask, out);
}

static void as_bwd(compress *c, int li, const float *w, float *g) {
    as_state *s = c->state;
    cl_layer *L = &c->layers[li];
    autosparse_backward(w, L->in, L->out, s->sT[li], c->p.threshold_type, (float)s->alpha, g,
                        c->m->grads + s->off[li]);
}

/* Folds the shrinkage into W: kept weights become sign(W)(|W| - sigmoid(T)),
 * pruned ones 0, so mask * W equals the trained forward. The mask is that
 * of the last forward (the final W and T). */
static void as_freeze(compress *c) {
    as_state *s = c->state;
    if (!s->ran) return;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        cl_layer *L = &c->layers[l];
        float *w = c->m->params + L->w_off;
        autosparse_forward(w, L->in, L->out, c->m->params + s->off[l], c->p.threshold_type,
                           s->sT[l], L->mask, w);
    }
}

double autosparse_current_alpha(const compress *c) { return ((const as_state *)c->state)->alpha; }

/* Checkpoint: alpha and whether the main stage ran (T is in params;
 * sigmoid(T) is recomputed by every forward). */
static void as_save_state(const compress *c, ckpt_writer *w) {
    const as_state *s = c->state;
    ckpt_put_f64(w, "autosparse_alpha", s->alpha);
    ckpt_put_i64(w, "autosparse_ran", s->ran);
}

static nl_status as_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    as_state *s = c->state;
    int64_t ran;
    nl_status st = ckpt_get_f64(r, "autosparse_alpha", &s->alpha, e);
    if (st || (st = ckpt_get_i64(r, "autosparse_ran", &ran, e))) return st;
    s->ran = (int)ran;
    return NL_OK;
}

const prune_ops prune_autosparse_ops = {
    .name = "autosparse",
    .init = as_init,
    .free = as_free,
    .setup = as_setup,
    .epoch_begin = as_epoch_begin,
    .forward = as_fwd,
    .backward = as_bwd,
    .post_step = as_post_step,
    .freeze = as_freeze,
    .plan = as_plan,
    .save_state = as_save_state,
    .load_state = as_load_state,
};
