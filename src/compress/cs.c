/* cs.c — Continuous Sparsification (Savarese, Silva, Maire; NeurIPS 2020).
 *
 * A trainable s shaped like each kernel (a segment of the model's flat
 * buffer, declared by plan) gives the soft mask m = c sigmoid(beta s),
 * c = 1 / sigmoid(s0), out = m W; loss += lambda ||m||_1. beta grows by
 * final_temp^(1/(E-1)) after each main-stage epoch; after each non-final
 * round s = min(beta s, s0) and beta = 1. Fine-tuning uses s > 0.
 * Also here: the segment-planning helper shared with dst.c/autosparse.c.
 * The stored L->mask is the hard mask s > 0 at all times (what reports use). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- shared with dst / autosparse ------------------------------------------ */

long sparse_n_thresholds(prune_threshold_type tt, int in, int out) {
    if (tt == THRESH_WEIGHTWISE) return (long)in * out;
    if (tt == THRESH_LAYERWISE) return 1;
    return out;
}

static int name_disabled(const cfg_pruning *p, const char *name) {
    for (int d = 0; d < p->n_disable; d++)
        if (strcmp(p->disable_layers[d], name) == 0) return 1;
    return 0;
}

nl_status sparse_plan(const layer_spec *specs, int n_specs, int in_size, const cfg_pruning *p,
                      const char *suffix, int per_weight, char ***names, long **lens, int *n,
                      nl_error *e) {
    *names = NULL;
    *lens = NULL;
    *n = 0;
    /* Kernel shapes (Dense and Conv, after every shape rule of nn) from a
     * throw-away model of batch 1: the same specs give the same layers. */
    model *tm = model_create(specs, n_specs, in_size, 1, NULL, NULL, 0, e);
    if (!tm) return e && e->code != NL_OK ? e->code : NL_ERR_INVALID;
    int nk = 0;
    for (int l = 0; l < tm->n_layers; l++) nk += layer_has_kernel((int)tm->layers[l].kind);
    char **nm = calloc((size_t)nk + 1, sizeof *nm);
    long *ln = calloc((size_t)nk + 1, sizeof *ln);
    if (!nm || !ln) goto nomem;
    int k2 = 0;
    for (int l = 0; l < tm->n_layers; l++) {
        const layer *L = &tm->layers[l];
        if (!layer_has_kernel((int)L->kind) || name_disabled(p, L->name)) continue;
        int in = layer_kernel_rows(L), out = layer_kernel_cols(L);
        size_t len = strlen(L->name) + strlen(suffix) + 2;
        nm[k2] = malloc(len);
        if (!nm[k2]) goto nomem;
        snprintf(nm[k2], len, "%s/%s", L->name, suffix);
        ln[k2] = per_weight ? (long)in * out : sparse_n_thresholds(p->threshold_type, in, out);
        k2++;
    }
    model_free(tm);
    *names = nm;
    *lens = ln;
    *n = k2;
    return NL_OK;
nomem:
    model_free(tm);
    if (nm)
        for (int k = 0; k < nk; k++) free(nm[k]);
    free(nm);
    free(ln);
    return nl_err(e, NL_ERR_NOMEM, "pruning: out of memory planning the method's parameters");
}

nl_status sparse_find_segments(compress *c, const char *suffix, int per_weight, long *off,
                               nl_error *e) {
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        off[li] = -1;
        if (!L->prunable) continue;
        char name[160];
        snprintf(name, sizeof name, "%s/%s", c->m->layers[L->layer].name, suffix);
        const param_view *v = model_find_view(c->m, name);
        long want = per_weight ? L->n : sparse_n_thresholds(c->p.threshold_type, L->in, L->out);
        if (!v || v->len != want)
            return nl_err(e, NL_ERR_INVALID,
                          "pruning_method %s: the model has no parameter segment '%s' of %ld "
                          "values; create the model with the segments from "
                          "compress_plan_params",
                          prune_method_name(c->p.method), name, want);
        off[li] = v->off;
    }
    return NL_OK;
}

void sparse_reset_thresholds(compress *c, const long *off) {
    for (int li = 0; li < c->n_layers; li++) {
        if (off[li] < 0) continue;
        const cl_layer *L = &c->layers[li];
        float *T = c->m->params + off[li];
        long nT = sparse_n_thresholds(c->p.threshold_type, L->in, L->out);
        for (long k = 0; k < nT; k++) T[k] = (float)c->p.threshold_init;
    }
}

/* ---- pure math ------------------------------------------------------------ */

static float sigmoidf_(float z) {
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

double cs_scale(double s0) { return 1.0 + exp(-s0); }

double cs_beta_factor(double final_temp, int E) {
    return E <= 1 ? final_temp : pow(final_temp, 1.0 / (double)(E - 1));
}

void cs_forward(const float *w, const float *s, long n, double beta, double scale, float *m,
                float *out) {
    float b = (float)beta, c = (float)scale;
    for (long j = 0; j < n; j++) {
        m[j] = c * sigmoidf_(b * s[j]);
        if (out) out[j] = m[j] * w[j];
    }
}

void cs_backward(const float *w, const float *m, long n, double beta, double scale, float *g,
                 float *gs) {
    /* dm/ds = beta c sig (1 - sig) = beta m (1 - m / c). */
    float b = (float)beta, ic = (float)(1.0 / scale);
    for (long j = 0; j < n; j++) {
        float dm = b * m[j] * (1.0f - m[j] * ic);
        gs[j] += g[j] * w[j] * dm;
        g[j] *= m[j];
    }
}

double cs_l1(const float *m, long n, double beta, double scale, double lambda, float *gs) {
    double sum = 0;
    float b = (float)beta, ic = (float)(1.0 / scale), lam = (float)lambda;
    for (long j = 0; j < n; j++) {
        sum += m[j];
        if (gs) gs[j] += lam * b * m[j] * (1.0f - m[j] * ic);
    }
    return lambda * sum;
}

void cs_round_reset(float *s, long n, double beta, double s0) {
    for (long j = 0; j < n; j++) {
        double v = beta * s[j];
        s[j] = (float)(v < s0 ? v : s0);
    }
}

/* ---- the pruner ------------------------------------------------------------ */

typedef struct {
    long *off;      /* (n_layers) s segment in params, -1 if not pruned */
    float **m;      /* (n_layers) soft mask of the last forward */
    double beta, scale;
    int ran;        /* the main stage's forward ran: freeze reads s */
} cs_state;

static void cs_free(compress *c) {
    cs_state *s = c->state;
    if (!s) return;
    if (s->m)
        for (int l = 0; l < c->n_layers; l++) free(s->m[l]);
    free(s->m);
    free(s->off);
    free(s);
    c->state = NULL;
}

static void cs_reset_s(compress *c) {
    cs_state *s = c->state;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        float *sv = c->m->params + s->off[l];
        for (long j = 0; j < c->layers[l].n; j++) sv[j] = (float)c->p.threshold_init;
    }
    s->beta = 1.0;
}

static nl_status cs_init(compress *c, nl_error *e) {
    if (!(c->p.final_temp > 0) || !(c->p.threshold_decay >= 0) || !isfinite(c->p.threshold_init))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_method cs: final_temp must be > 0 (got %g), threshold_decay >= 0 "
                      "(got %g) and threshold_init finite (got %g)",
                      c->p.final_temp, c->p.threshold_decay, c->p.threshold_init);
    cs_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "cs: out of memory");
    c->state = s;
    s->off = calloc((size_t)c->n_layers + 1, sizeof *s->off);
    s->m = calloc((size_t)c->n_layers + 1, sizeof *s->m);
    if (!s->off || !s->m) {
        cs_free(c);
        return nl_err(e, NL_ERR_NOMEM, "cs: out of memory");
    }
    nl_status st = sparse_find_segments(c, "cs_s", 1, s->off, e);
    if (st) {
        cs_free(c);
        return st;
    }
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        s->m[l] = malloc((size_t)c->layers[l].n * sizeof(float));
        if (!s->m[l]) {
            cs_free(c);
            return nl_err(e, NL_ERR_NOMEM, "cs: out of memory for the soft masks");
        }
    }
    s->scale = cs_scale(c->p.threshold_init);
    cs_reset_s(c);
    return NL_OK;
}

static nl_status cs_plan(const layer_spec *specs, int n_specs, int in_size, const cfg_pruning *p,
                         char ***names, long **lens, int *n, nl_error *e) {
    return sparse_plan(specs, n_specs, in_size, p, "cs_s", 1, names, lens, n, e);
}

/* s = s0, beta = 1 when the main stage starts (pre-training left s alone). */
static void cs_setup(compress *c) { cs_reset_s(c); }

static void cs_fwd(compress *c, int li, const float *w, float *out) {
    cs_state *s = c->state;
    cl_layer *L = &c->layers[li];
    const float *sv = c->m->params + s->off[li];
    s->ran = 1;
    cs_forward(w, sv, L->n, s->beta, s->scale, s->m[li], out);
    for (long j = 0; j < L->n; j++) L->mask[j] = sv[j] > 0 ? 1.0f : 0.0f;
}

static void cs_bwd(compress *c, int li, const float *w, float *g) {
    cs_state *s = c->state;
    cs_backward(w, s->m[li], c->layers[li].n, s->beta, s->scale, g,
                c->m->grads + s->off[li]);
}

static float cs_extra_loss(compress *c) {
    cs_state *s = c->state;
    double sum = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        sum += cs_l1(s->m[l], c->layers[l].n, s->beta, s->scale, c->p.threshold_decay,
                     c->m->grads + s->off[l]);
    }
    return (float)sum;
}

static void cs_epoch_end(compress *c) {
    cs_state *s = c->state;
    s->beta *= cs_beta_factor(c->p.final_temp, c->n_epochs);
}

static void cs_round_end(compress *c, int round) {
    (void)round;
    cs_state *s = c->state;
    for (int l = 0; l < c->n_layers; l++)
        if (s->off[l] >= 0)
            cs_round_reset(c->m->params + s->off[l], c->layers[l].n, s->beta, c->p.threshold_init);
    s->beta = 1.0;
}

/* Hard mask s > 0; if the main stage never ran (stopped during
 * pre-training, no main epochs) nothing was pruned: masks stay 1. */
static void cs_freeze(compress *c) {
    cs_state *s = c->state;
    if (!s->ran) return;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->off[l] < 0) continue;
        const float *sv = c->m->params + s->off[l];
        for (long j = 0; j < c->layers[l].n; j++) c->layers[l].mask[j] = sv[j] > 0 ? 1.0f : 0.0f;
    }
}

double cs_beta(const compress *c) { return ((const cs_state *)c->state)->beta; }

/* Checkpoint: beta and whether the main stage ran (s is in params; the
 * soft masks are recomputed by every forward). */
static void cs_save_state(const compress *c, ckpt_writer *w) {
    const cs_state *s = c->state;
    ckpt_put_f64(w, "cs_beta", s->beta);
    ckpt_put_i64(w, "cs_ran", s->ran);
}

static nl_status cs_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    cs_state *s = c->state;
    int64_t ran;
    nl_status st = ckpt_get_f64(r, "cs_beta", &s->beta, e);
    if (st || (st = ckpt_get_i64(r, "cs_ran", &ran, e))) return st;
    s->ran = (int)ran;
    return NL_OK;
}

const prune_ops prune_cs_ops = {
    .name = "cs",
    .init = cs_init,
    .free = cs_free,
    .setup = cs_setup,
    .epoch_end = cs_epoch_end,
    .round_end = cs_round_end,
    .forward = cs_fwd,
    .backward = cs_bwd,
    .freeze = cs_freeze,
    .plan = cs_plan,
    .extra_loss = cs_extra_loss,
    .save_state = cs_save_state,
    .load_state = cs_load_state,
};
