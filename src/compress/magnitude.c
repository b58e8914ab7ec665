/* magnitude.c — iterative global magnitude pruning with the Zhu & Gupta
 * (2017) polynomial sparsity schedule (TF-MOT PolynomialDecay, hls4ml's
 * tutorial pruning).
 *
 * The mask is 0/1 at all times: the round(s N) smallest |W| over all
 * prunable layers are zero, ties broken by layer then index, so the
 * sparsity is exact. Updated once per main-stage epoch (update_frequency 0)
 * or every update_frequency optimizer steps; at each update the pruned
 * weights are set to zero in W as TF-MOT does. The schedule restarts with
 * the epoch index in each round. Straight-through: g *= mask. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

double magnitude_schedule(double s_i, double s_f, long t, long t0, long t1, double power) {
    if (t < t0) return 0.0;
    if (t1 <= t0 || t >= t1) return s_f;
    double frac = 1.0 - (double)(t - t0) / (double)(t1 - t0);
    return s_f + (s_i - s_f) * pow(frac, power);
}

long magnitude_mask(const float *const *w, const long *n, int L, double s, float *const *mask,
                    cm_entry *scratch) {
    long N = cm_sort_abs(w, n, L, scratch);
    long P = lround(s * (double)N);
    if (P > N) P = N;
    if (P < 0) P = 0;
    for (int l = 0; l < L; l++)
        for (long j = 0; j < n[l]; j++) mask[l][j] = 1.0f;
    for (long j = 0; j < P; j++) mask[scratch[j].layer][scratch[j].idx] = 0.0f;
    return P;
}

typedef struct {
    cm_entry *scratch;   /* (N) */
    const float **w;     /* (np) prunable kernels in params */
    long *n;
    float **mask;
    int np;
    double sparsity;     /* current target */
} mag_state;

static void mag_free(compress *c) {
    mag_state *s = c->state;
    if (!s) return;
    free(s->scratch); free(s->w); free(s->n); free(s->mask);
    free(s);
    c->state = NULL;
}

static nl_status mag_init(compress *c, nl_error *e) {
    const cfg_pruning *p = &c->p;
    if (!(p->sparsity >= 0 && p->sparsity <= 1) ||
        !(p->initial_sparsity >= 0 && p->initial_sparsity <= 1))
        return nl_err(e, NL_ERR_CONFIG,
                      "magnitude pruning: sparsity (%g) and initial_sparsity (%g) must be in [0, 1]",
                      p->sparsity, p->initial_sparsity);
    if (p->begin_epoch < 0 || p->update_frequency < 0 || !(p->power > 0))
        return nl_err(e, NL_ERR_CONFIG,
                      "magnitude pruning: begin_epoch (%d) and update_frequency (%d) must be "
                      ">= 0 and power (%g) > 0",
                      p->begin_epoch, p->update_frequency, p->power);
    if (p->end_epoch >= 0 && p->end_epoch < p->begin_epoch)
        return nl_err(e, NL_ERR_CONFIG,
                      "magnitude pruning: end_epoch (%d) is before begin_epoch (%d)",
                      p->end_epoch, p->begin_epoch);
    mag_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "magnitude pruning: out of memory");
    c->state = s;
    int L = c->n_layers;
    long N = 0;
    s->w = calloc((size_t)L + 1, sizeof *s->w);
    s->n = calloc((size_t)L + 1, sizeof *s->n);
    s->mask = calloc((size_t)L + 1, sizeof *s->mask);
    if (!s->w || !s->n || !s->mask) goto nomem;
    for (int l = 0; l < L; l++) {
        if (!c->layers[l].prunable) continue;
        s->w[s->np] = c->m->params + c->layers[l].w_off;
        s->n[s->np] = c->layers[l].n;
        s->mask[s->np++] = c->layers[l].mask;
        N += c->layers[l].n;
    }
    s->scratch = malloc((size_t)(N + 1) * sizeof *s->scratch);
    if (!s->scratch) goto nomem;
    return NL_OK;
nomem:
    mag_free(c);
    return nl_err(e, NL_ERR_NOMEM, "magnitude pruning: out of memory");
}

/* Last main-stage epoch of the schedule. */
static long end_epoch(const compress *c) {
    return c->p.end_epoch >= 0 ? c->p.end_epoch : (long)c->n_epochs - 1;
}

static void mag_update(compress *c, double sparsity) {
    mag_state *s = c->state;
    s->sparsity = sparsity;
    magnitude_mask(s->w, s->n, s->np, sparsity, s->mask, s->scratch);
    for (int l = 0; l < s->np; l++) {
        float *w = (float *)s->w[l];  /* the kernel in params */
        for (long j = 0; j < s->n[l]; j++) w[j] *= s->mask[l][j];
    }
}

static double sched_at(const compress *c, long t, long t0, long t1) {
    return magnitude_schedule(c->p.initial_sparsity, c->p.sparsity, t, t0, t1, c->p.power);
}

static void mag_epoch_begin(compress *c) {
    if (c->p.update_frequency > 0) {
        if (c->epoch == 0) {
            long spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : 1;
            c->step = 0;
            if (c->p.begin_epoch == 0)
                mag_update(c, sched_at(c, 0, 0, end_epoch(c) * spe));
        }
        return;
    }
    if (c->epoch >= c->p.begin_epoch)
        mag_update(c, sched_at(c, c->epoch, c->p.begin_epoch, end_epoch(c)));
}

static void mag_post_step(compress *c) {
    c->step++;
    long freq = c->p.update_frequency;
    if (freq <= 0) return;
    long spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : 1;
    long t0 = (long)c->p.begin_epoch * spe, t1 = end_epoch(c) * spe;
    long t = c->step;
    /* Every freq steps from t0, and at t1 itself so that s_f is reached. */
    if (t < t0 || t > t1 || ((t - t0) % freq != 0 && t != t1)) return;
    mag_update(c, sched_at(c, t, t0, t1));
}

static void mag_fwd(compress *c, int li, const float *w, float *out) {
    const float *mask = c->layers[li].mask;
    for (long j = 0; j < c->layers[li].n; j++) out[j] = mask[j] * w[j];
}

static void mag_bwd(compress *c, int li, const float *w, float *g) {
    (void)w;
    const float *mask = c->layers[li].mask;
    for (long j = 0; j < c->layers[li].n; j++) g[j] *= mask[j];
}

/* Checkpoint: the current target (the masks are the layers' own). */
static void mag_save_state(const compress *c, ckpt_writer *w) {
    ckpt_put_f64(w, "magnitude_sparsity", ((const mag_state *)c->state)->sparsity);
}

static nl_status mag_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    return ckpt_get_f64(r, "magnitude_sparsity", &((mag_state *)c->state)->sparsity, e);
}

const prune_ops prune_magnitude_ops = {
    .name = "magnitude",
    .init = mag_init,
    .free = mag_free,
    .epoch_begin = mag_epoch_begin,
    .forward = mag_fwd,
    .backward = mag_bwd,
    .post_step = mag_post_step,
    .save_state = mag_save_state,
    .load_state = mag_load_state,
};
