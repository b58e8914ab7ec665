/* activation.c — activation pruning, CLNP (Golkar, Kagan, Cho 2019).
 *
 * Structured: each unit (conv: output channel, over batch and positions) of
 * a Dense/Conv layer followed by a ReLU/LeakyReLU (through quantizers and
 * batch norm) gets the fraction of its pre-activations > 0 over a window of
 * t_delta main-stage batches, after t_start_collecting_batch idle ones;
 * then the masks are set from scratch (a unit can come back). Threshold
 * rule (PQuant's; target_sparsity 0): kept iff fraction > threshold. Target
 * rule (ours; target_sparsity > 0): least active units first (ties by layer,
 * then unit) until the hard-mask sparsity over ALL kernels reaches the
 * window's target, a cubic ramp (magnitude_schedule) to target_sparsity at
 * the main stage's last window; each layer keeps its most active unit; a
 * target above that maximum is refused when the compressor is created (clnp_init). We count batches and
 * apply a mask at once (PQuant: epochs, at the epoch's end). Never pruned:
 * layers without a ReLU after them (class outputs), biases. Invariant: the
 * mask is 0/1 and constant along a unit's inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- pure math ------------------------------------------------------------ */

void clnp_count(const float *pre, int B, int out, double *active) {
    for (int b = 0; b < B; b++) {
        const float *row = pre + (size_t)b * out;
        for (int o = 0; o < out; o++) active[o] += row[o] > 0.0f;
    }
}

int clnp_mask(const double *active, double samples, int in, int out, double threshold,
              float *mask) {
    int pruned = 0;
    for (int o = 0; o < out; o++) {
        double frac = samples > 0 ? active[o] / samples : 1.0;
        float keep = frac > threshold ? 1.0f : 0.0f;
        pruned += keep == 0.0f;
        for (int i = 0; i < in; i++) mask[(long)i * out + o] = keep;
    }
    return pruned;
}

/* ---- the pruner ------------------------------------------------------------ */

/* One unit in the target rule's ranking. */
typedef struct {
    double frac;  /* active fraction in the window */
    int layer;    /* compress layer index */
    int unit;
} clnp_rank;

typedef struct {
    double **active;  /* (n_layers) -> (out) positive outputs in this window; NULL: not pruned */
    int *obs_layer;   /* (n_layers) the ReLU whose input is this layer's pre-activation, or -1 */
    double *samples;  /* (n_layers) samples in this window */
    long since;       /* batches since the last window ended */
    long collected;   /* batches of the current window */
    int windows;      /* completed windows */
    /* target rule (target > 0) */
    double target;    /* target_sparsity: reached at window n_windows */
    long n_weights;   /* kernel weights of every layer (the reported sparsity's denominator) */
    int n_windows;    /* windows the main stage completes (set-up); 0: unknown, full target */
    int n_units;      /* units of the layers this method prunes */
    clnp_rank *rank;  /* (n_units) scratch */
    int *n_pruned;    /* (n_layers) units pruned in the window being applied */
} clnp_state;

static void clnp_free(compress *c) {
    clnp_state *s = c->state;
    if (!s) return;
    if (s->active)
        for (int l = 0; l < c->n_layers; l++) free(s->active[l]);
    free(s->active);
    free(s->obs_layer);
    free(s->samples);
    free(s->rank);
    free(s->n_pruned);
    free(s);
    c->state = NULL;
}

/* The ReLU (or LeakyReLU) after model layer l through quantizers and
 * batch norm, or -1. */
static int relu_after(const model *m, int l) {
    for (int k = l + 1; k < m->n_layers; k++) {
        int kd = (int)m->layers[k].kind;
        if (kd == LAYER_RELU || kd == LAYER_LEAKY_RELU) return k;
        if (kd != LAYER_QUANT && kd != LAYER_BATCHNORM) return -1;
    }
    return -1;
}

/* A layer whose units this method prunes. */
static int clnp_prunes(const compress *c, const clnp_state *s, int l) {
    return s->active[l] != NULL && c->layers[l].prunable;
}

/* Target rule set-up: sizes, and the refusal of a target above the
 * maximum (every pruned layer down to one unit). */
static nl_status clnp_target_init(compress *c, clnp_state *s, nl_error *e) {
    long max_pruned = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const cl_layer *L = &c->layers[l];
        s->n_weights += L->n;
        if (!clnp_prunes(c, s, l)) continue;
        s->n_units += L->out;
        max_pruned += (long)(L->out - 1) * L->in;
    }
    double max_s = s->n_weights > 0 ? (double)max_pruned / (double)s->n_weights : 0;
    if (s->target > max_s + 1e-12) {
        sbuf yes = {0}, no = {0};
        for (int l = 0; l < c->n_layers; l++) {
            const char *name = c->m->layers[c->layers[l].layer].name;
            if (clnp_prunes(c, s, l)) sbuf_printf(&yes, "%s%s", yes.len ? ", " : "", name);
            else sbuf_printf(&no, "%s%s (%ld)", no.len ? ", " : "", name, c->layers[l].n);
        }
        nl_err(e, NL_ERR_CONFIG,
               "pruning_parameters.target_sparsity: %g is out of reach for activation_pruning on "
               "this model: it removes whole units of the layers followed by a ReLU (%s) and "
               "keeps at least one unit in each, so at most %.4f of the %ld kernel weights can "
               "be pruned (not prunable by this method: %s); set target_sparsity <= %.4f, or 0 "
               "for the threshold rule",
               s->target, yes.s ? yes.s : "none", max_s, s->n_weights, no.s ? no.s : "none",
               floor(max_s * 1e4) / 1e4);
        sbuf_free(&yes);
        sbuf_free(&no);
        return NL_ERR_CONFIG;
    }
    s->rank = malloc((size_t)(s->n_units + 1) * sizeof *s->rank);
    s->n_pruned = calloc((size_t)c->n_layers + 1, sizeof *s->n_pruned);
    if (!s->rank || !s->n_pruned) return nl_err(e, NL_ERR_NOMEM, "activation_pruning: out of memory");
    return NL_OK;
}

static nl_status clnp_init(compress *c, nl_error *e) {
    const cfg_pruning *p = &c->p;
    if (!(p->threshold >= 0 && p->threshold <= 1))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.threshold must be in [0, 1] for activation_pruning "
                      "(got %g)",
                      p->threshold);
    if (!(p->target_sparsity >= 0 && p->target_sparsity <= 1))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.target_sparsity must be in [0, 1] for "
                      "activation_pruning (0: no target, the threshold rule; got %g)",
                      p->target_sparsity);
    if (p->t_delta < 1 || p->t_start_collecting_batch < 0)
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters: activation_pruning needs t_delta >= 1 and "
                      "t_start_collecting_batch >= 0 (got %d, %d)",
                      p->t_delta, p->t_start_collecting_batch);
    clnp_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "activation_pruning: out of memory");
    c->state = s;
    s->target = p->target_sparsity;
    int L = c->n_layers;
    s->active = calloc((size_t)L + 1, sizeof *s->active);
    s->obs_layer = calloc((size_t)L + 1, sizeof *s->obs_layer);
    s->samples = calloc((size_t)L + 1, sizeof *s->samples);
    int ok = s->active && s->obs_layer && s->samples;
    for (int l = 0; ok && l < L; l++) {
        cl_layer *cl = &c->layers[l];
        s->obs_layer[l] = -1;
        int k = relu_after(c->m, cl->layer); /* prunable is checked at use */
        if (k < 0 || c->m->layers[k].in_size % cl->out != 0) continue;
        s->obs_layer[l] = k;
        s->active[l] = calloc((size_t)cl->out, sizeof **s->active);
        ok = s->active[l] != NULL;
    }
    if (!ok) {
        clnp_free(c);
        return nl_err(e, NL_ERR_NOMEM, "activation_pruning: out of memory");
    }
    if (s->target > 0) {
        nl_status st = clnp_target_init(c, s, e);
        if (st != NL_OK) {
            clnp_free(c);
            return st;
        }
    }
    return NL_OK;
}

/* Main stage begins: the number of windows it completes (over all rounds),
 * the length of the target ramp. */
static void clnp_setup(compress *c) {
    clnp_state *s = c->state;
    long period = (long)c->p.t_start_collecting_batch + c->p.t_delta;
    long batches = (long)c->t.rounds * c->n_epochs * c->steps_per_epoch;
    s->n_windows = period > 0 && batches > 0 ? (int)(batches / period) : 0;
}

static int collecting(const compress *c, const clnp_state *s) {
    return s->since >= c->p.t_start_collecting_batch;
}

static void clnp_observe(compress *c, int layer, const float *in, int B) {
    clnp_state *s = c->state;
    if (!collecting(c, s)) return;
    for (int l = 0; l < c->n_layers; l++)
        if (s->obs_layer[l] == layer && c->layers[l].prunable) {
            /* (B, positions, channels) = (B positions) rows of out */
            long rows = (long)B * (c->m->layers[layer].in_size / c->layers[l].out);
            clnp_count(in, (int)rows, c->layers[l].out, s->active[l]);
            s->samples[l] += (double)rows;
        }
}

static int rank_cmp(const void *a, const void *b) {
    const clnp_rank *x = a, *y = b;
    if (x->frac != y->frac) return x->frac < y->frac ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->unit > y->unit) - (x->unit < y->unit);
}

/* Target rule at the end of window k = s->windows + 1: least active units
 * first until the zeros of all masks reach ceil(target_k N). */
static void clnp_target_masks(compress *c, clnp_state *s) {
    double t = magnitude_schedule(0.0, s->target, s->windows + 1, 0, s->n_windows, 3.0);
    long need = (long)ceil(t * (double)s->n_weights - 1e-9);
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (!clnp_prunes(c, s, l)) continue;
        cl_layer *L = &c->layers[l];
        for (long j = 0; j < L->n; j++) L->mask[j] = 1.0f;
        s->n_pruned[l] = 0;
        for (int o = 0; o < L->out; o++) {
            s->rank[n].frac = s->samples[l] > 0 ? s->active[l][o] / s->samples[l] : 1.0;
            s->rank[n].layer = l;
            s->rank[n].unit = o;
            n++;
        }
    }
    qsort(s->rank, (size_t)n, sizeof *s->rank, rank_cmp);
    long pruned = 0;
    for (int r = 0; r < n && pruned < need; r++) {
        int l = s->rank[r].layer, o = s->rank[r].unit;
        cl_layer *L = &c->layers[l];
        if (s->n_pruned[l] == L->out - 1) continue; /* its last unit stays */
        for (int i = 0; i < L->in; i++) L->mask[(long)i * L->out + o] = 0.0f;
        s->n_pruned[l]++;
        pruned += L->in;
    }
}

static void clnp_post_step(compress *c) {
    clnp_state *s = c->state;
    if (!collecting(c, s)) {
        s->since++;
        return;
    }
    if (++s->collected < c->p.t_delta) return;
    if (s->target > 0) clnp_target_masks(c, s);
    for (int l = 0; l < c->n_layers; l++) {
        cl_layer *L = &c->layers[l];
        if (!clnp_prunes(c, s, l)) continue;
        if (s->target <= 0)
            clnp_mask(s->active[l], s->samples[l], L->in, L->out, c->p.threshold, L->mask);
        memset(s->active[l], 0, (size_t)L->out * sizeof(double));
        s->samples[l] = 0;
    }
    s->collected = 0;
    s->since = 0;
    s->windows++;
}

static void clnp_fwd(compress *c, int li, const float *w, float *out) {
    const cl_layer *L = &c->layers[li];
    for (long j = 0; j < L->n; j++) out[j] = L->mask[j] * w[j];
}

static void clnp_bwd(compress *c, int li, const float *w, float *g) {
    (void)w;
    const cl_layer *L = &c->layers[li];
    for (long j = 0; j < L->n; j++) g[j] *= L->mask[j];
}

/* Checkpoint: the open window's counts and samples, the window counters
 * and the ramp's length (the masks are the layers' own). */
static void clnp_save_state(const compress *c, ckpt_writer *w) {
    const clnp_state *s = c->state;
    for (int l = 0; l < c->n_layers; l++)
        ckpt_put(w, "clnp_active", s->active[l],
                 s->active[l] ? (size_t)c->layers[l].out * sizeof(double) : 0);
    ckpt_put(w, "clnp_samples", s->samples, (size_t)c->n_layers * sizeof(double));
    int64_t k[4] = {s->since, s->collected, s->windows, s->n_windows};
    ckpt_put(w, "clnp_counters", k, sizeof k);
}

static nl_status clnp_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    clnp_state *s = c->state;
    nl_status st;
    for (int l = 0; l < c->n_layers; l++)
        if ((st = ckpt_get(r, "clnp_active", s->active[l],
                           s->active[l] ? (size_t)c->layers[l].out * sizeof(double) : 0, e)))
            return st;
    if ((st = ckpt_get(r, "clnp_samples", s->samples, (size_t)c->n_layers * sizeof(double), e)))
        return st;
    int64_t k[4];
    if ((st = ckpt_get(r, "clnp_counters", k, sizeof k, e))) return st;
    s->since = (long)k[0];
    s->collected = (long)k[1];
    s->windows = (int)k[2];
    s->n_windows = (int)k[3];
    return NL_OK;
}

const prune_ops prune_activation_ops = {
    .name = "activation_pruning",
    .init = clnp_init,
    .free = clnp_free,
    .setup = clnp_setup,
    .forward = clnp_fwd,
    .backward = clnp_bwd,
    .post_step = clnp_post_step,
    .observe = clnp_observe,
    .save_state = clnp_save_state,
    .load_state = clnp_load_state,
};
