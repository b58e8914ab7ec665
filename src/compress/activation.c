/* activation.c — activation pruning, CLNP (Golkar, Kagan, Cho 2019).
 *
 * Structured: for every output unit (conv: output channel, counted over
 * batch and positions) of a Dense/Conv layer followed by a ReLU or
 * LeakyReLU (through quantizers and batch norm: the ReLU's input is the
 * pre-activation), the fraction of its pre-activation outputs > 0 over
 * a window of t_delta main-stage training batches; the unit's weights are
 * kept iff that fraction > threshold. Windows repeat: t_start_collecting_batch
 * batches without collection, then t_delta batches of collection, then the
 * new mask (computed from scratch, so a unit can come back), and so on
 * (PQuant counts epochs between windows and applies the mask at the epoch's
 * end; we count batches and apply it at once). Not pruned: layers without a
 * ReLU after them (the class outputs), biases. Invariant: mask is 0/1 and
 * constant along a unit's inputs. */
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

typedef struct {
    double **active;  /* (n_layers) -> (out) positive outputs in this window; NULL: not pruned */
    int *obs_layer;   /* (n_layers) the ReLU whose input is this layer's pre-activation, or -1 */
    double *samples;  /* (n_layers) samples in this window */
    long since;       /* batches since the last window ended */
    long collected;   /* batches of the current window */
    int windows;      /* completed windows */
} clnp_state;

static void clnp_free(compress *c) {
    clnp_state *s = c->state;
    if (!s) return;
    if (s->active)
        for (int l = 0; l < c->n_layers; l++) free(s->active[l]);
    free(s->active);
    free(s->obs_layer);
    free(s->samples);
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

static nl_status clnp_init(compress *c, nl_error *e) {
    const cfg_pruning *p = &c->p;
    if (!(p->threshold >= 0 && p->threshold <= 1))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.threshold must be in [0, 1] for activation_pruning "
                      "(got %g)",
                      p->threshold);
    if (p->t_delta < 1 || p->t_start_collecting_batch < 0)
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters: activation_pruning needs t_delta >= 1 and "
                      "t_start_collecting_batch >= 0 (got %d, %d)",
                      p->t_delta, p->t_start_collecting_batch);
    clnp_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "activation_pruning: out of memory");
    c->state = s;
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
    return NL_OK;
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

static void clnp_post_step(compress *c) {
    clnp_state *s = c->state;
    if (!collecting(c, s)) {
        s->since++;
        return;
    }
    if (++s->collected < c->p.t_delta) return;
    for (int l = 0; l < c->n_layers; l++) {
        cl_layer *L = &c->layers[l];
        if (!s->active[l] || !L->prunable) continue;
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

const prune_ops prune_activation_ops = {
    .name = "activation_pruning",
    .init = clnp_init,
    .free = clnp_free,
    .forward = clnp_fwd,
    .backward = clnp_bwd,
    .post_step = clnp_post_step,
    .observe = clnp_observe,
};
