/* mdmm.c — sparsity as a constraint, by the modified differential method of
 * multipliers (Platt & Barr 1988), as PQuant's MDMM pruner.
 *
 * Main stage: W is used unmasked; per layer the metric
 *   f = (s*^2 - L0^2) * ||W||_1 / N   (N = n for scale_mode mean, 1 for sum)
 * with L0 = mean(|w| <= eps) (coarse, piecewise constant: its gradient
 * flows through ||W||_1 only) or mean(exp(-100 w^2)) (smooth), the
 * infeasibility h = |f - target_value| (Equality), max(0, f - target)
 * (LessThanOrEqual) or max(0, target - f) (GreaterThanOrEqual), and the
 * loss term scale * (lambda h + damping h^2 / 2). After every step lambda
 * rises by constraint_lr * scale * h (gradient ascent, lambda_0 = 1, as
 * PQuant). Fine-tuning: hard mask |W| > eps. Not here: PQuant's
 * StructuredSparsity metric (a count of zero groups, with no gradient) and
 * use_grad (PQuant marks it broken): both are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- pure math ------------------------------------------------------------ */

#define MDMM_SMOOTH_ALPHA 100.0

double mdmm_sparsity_metric(const float *w, long n, double eps, mdmm_l0_mode mode,
                            double s_target, int mean_scale, double *dfdw) {
    if (n < 1) return 0;
    double l0 = 0, l1 = 0;
    for (long j = 0; j < n; j++) {
        double a = fabs((double)w[j]);
        l1 += a;
        l0 += mode == MDMM_L0_SMOOTH ? exp(-MDMM_SMOOTH_ALPHA * a * a) : (double)(a <= eps);
    }
    l0 /= (double)n;
    double norm = mean_scale ? (double)n : 1.0;
    double factor = s_target * s_target - l0 * l0;
    if (dfdw) {
        for (long j = 0; j < n; j++) {
            double x = w[j];
            double sg = x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
            double d = factor * sg;
            if (mode == MDMM_L0_SMOOTH) {
                /* dL0/dw = -2 alpha w exp(-alpha w^2) / n */
                double dl0 = -2.0 * MDMM_SMOOTH_ALPHA * x * exp(-MDMM_SMOOTH_ALPHA * x * x) / n;
                d += -2.0 * l0 * dl0 * l1;
            }
            dfdw[j] = d / norm;
        }
    }
    return factor * l1 / norm;
}

double mdmm_infeasibility(double f, double target, mdmm_constraint type, double *dhdf) {
    double d = f - target, h, g;
    switch (type) {
    case MDMM_LEQ:
        h = d > 0 ? d : 0;
        g = d > 0 ? 1 : 0;
        break;
    case MDMM_GEQ:
        h = d < 0 ? -d : 0;
        g = d < 0 ? -1 : 0;
        break;
    default:
        h = fabs(d);
        g = d > 0 ? 1 : d < 0 ? -1 : 0;
    }
    if (dhdf) *dhdf = g;
    return h;
}

double mdmm_penalty(const float *w, long n, const cfg_pruning *p, double lambda, double *h,
                    double *scratch, float *g) {
    double f = mdmm_sparsity_metric(w, n, p->epsilon, p->l0_mode, p->target_sparsity,
                                    p->scale_mode == MDMM_SCALE_MEAN, g ? scratch : NULL);
    double dhdf;
    double hv = mdmm_infeasibility(f, p->target_value, p->constraint_type, &dhdf);
    if (h) *h = hv;
    if (g) {
        double k = p->scale * (lambda + p->damping * hv) * dhdf;
        for (long j = 0; j < n; j++) g[j] += (float)(k * scratch[j]);
    }
    return p->scale * (lambda * hv + p->damping * hv * hv / 2.0);
}

/* ---- the pruner ------------------------------------------------------------ */

typedef struct {
    double *lambda;   /* (n_layers) multipliers */
    double *h;        /* (n_layers) last infeasibility */
    double *scratch;  /* (max n) df/dw */
} mdmm_state;

static void mdmm_free(compress *c) {
    mdmm_state *s = c->state;
    if (!s) return;
    free(s->lambda); free(s->h); free(s->scratch);
    free(s);
    c->state = NULL;
}

static nl_status mdmm_init(compress *c, nl_error *e) {
    const cfg_pruning *p = &c->p;
    if (p->metric_type != MDMM_UNSTRUCTURED)
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.metric_type: StructuredSparsity is not supported by "
                      "nnlo-c's mdmm (PQuant's version counts zero groups and has no "
                      "gradient); use UnstructuredSparsity");
    if (p->use_grad)
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.use_grad: true is not supported (PQuant's own config "
                      "notes it is broken); use false: lambda then rises by constraint_lr * "
                      "scale * h per step");
    if (!(p->epsilon > 0) || !(p->target_sparsity >= 0 && p->target_sparsity <= 1) ||
        !(p->scale >= 0) || !(p->damping >= 0) || !(p->constraint_lr > 0))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters for mdmm: need epsilon > 0 (%g), target_sparsity in "
                      "[0, 1] (%g), scale >= 0 (%g), damping >= 0 (%g), constraint_lr > 0 (%g)",
                      p->epsilon, p->target_sparsity, p->scale, p->damping, p->constraint_lr);
    mdmm_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "mdmm: out of memory");
    c->state = s;
    long maxn = 1;
    for (int l = 0; l < c->n_layers; l++) maxn = c->layers[l].n > maxn ? c->layers[l].n : maxn;
    s->lambda = calloc((size_t)c->n_layers + 1, sizeof *s->lambda);
    s->h = calloc((size_t)c->n_layers + 1, sizeof *s->h);
    s->scratch = malloc((size_t)maxn * sizeof *s->scratch);
    if (!s->lambda || !s->h || !s->scratch) {
        mdmm_free(c);
        return nl_err(e, NL_ERR_NOMEM, "mdmm: out of memory");
    }
    for (int l = 0; l < c->n_layers; l++) s->lambda[l] = 1.0;
    return NL_OK;
}

/* Stored mask = |W| > eps: what fine-tuning will keep (and what is reported). */
static void hard_masks(compress *c) {
    for (int l = 0; l < c->n_layers; l++) {
        cl_layer *L = &c->layers[l];
        if (!L->prunable) continue;
        const float *w = c->m->params + L->w_off;
        for (long j = 0; j < L->n; j++) L->mask[j] = fabsf(w[j]) > c->p.epsilon ? 1.0f : 0.0f;
    }
}

static float mdmm_extra_loss(compress *c) {
    mdmm_state *s = c->state;
    double total = 0;
    for (int l = 0; l < c->n_layers; l++) {
        cl_layer *L = &c->layers[l];
        if (!L->prunable) continue;
        total += mdmm_penalty(c->m->params + L->w_off, L->n, &c->p, s->lambda[l], &s->h[l],
                              s->scratch, c->m->grads + L->w_off);
    }
    return (float)total;
}

/* Gradient ascent on lambda with this step's infeasibility. */
static void mdmm_post_step(compress *c) {
    mdmm_state *s = c->state;
    for (int l = 0; l < c->n_layers; l++)
        if (c->layers[l].prunable) s->lambda[l] += c->p.constraint_lr * c->p.scale * s->h[l];
}

static void mdmm_epoch_end(compress *c) { hard_masks(c); }

static void mdmm_freeze(compress *c) { hard_masks(c); }

/* Checkpoint: the multipliers and the last infeasibilities. */
static void mdmm_save_state(const compress *c, ckpt_writer *w) {
    const mdmm_state *s = c->state;
    ckpt_put(w, "mdmm_lambda", s->lambda, (size_t)c->n_layers * sizeof(double));
    ckpt_put(w, "mdmm_h", s->h, (size_t)c->n_layers * sizeof(double));
}

static nl_status mdmm_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    mdmm_state *s = c->state;
    nl_status st = ckpt_get(r, "mdmm_lambda", s->lambda, (size_t)c->n_layers * sizeof(double), e);
    return st ? st : ckpt_get(r, "mdmm_h", s->h, (size_t)c->n_layers * sizeof(double), e);
}

const prune_ops prune_mdmm_ops = {
    .name = "mdmm",
    .init = mdmm_init,
    .free = mdmm_free,
    .epoch_end = mdmm_epoch_end,
    .post_step = mdmm_post_step,
    .freeze = mdmm_freeze,
    .extra_loss = mdmm_extra_loss,
    .save_state = mdmm_save_state,
    .load_state = mdmm_load_state,
};
