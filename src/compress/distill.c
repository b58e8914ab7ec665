/* distill.c — knowledge distillation (Hinton et al.): the student's loss is
 * alpha CE(y, s) + (1 - alpha) T^2 KL(softmax(t/T) || softmax(s/T)), with t
 * the teacher's logits of the same rows: a teacher model run forward on the
 * very batch the student sees (the gathered rows), or precomputed logits
 * indexed by the rows' positions in the training array.
 * It enters training through train_hooks.loss; evaluation keeps plain CE.
 * Deliberately not: loading the teacher (the caller owns files and HDF5).
 * No allocation in the hook. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/quant_internal.h"

struct cd_state {
    model *teacher;          /* or NULL */
    const float *logits;     /* (n, C) precomputed, or NULL */
    long n;
    int C;
    double T, alpha;
    float *tbuf;             /* (max_batch, C) gathered teacher logits */
};

/* Stable log-softmax of row z (C) scaled by 1/T into out; returns nothing. */
static void log_softmax(const float *z, int C, double invT, double *out) {
    double mx = -INFINITY;
    for (int k = 0; k < C; k++)
        if (z[k] * invT > mx) mx = z[k] * invT;
    double s = 0;
    for (int k = 0; k < C; k++) s += exp(z[k] * invT - mx);
    double ls = mx + log(s);
    for (int k = 0; k < C; k++) out[k] = z[k] * invT - ls;
}

float distill_loss(const float *s, const float *t, const int32_t *y, int B, int C, double T,
                   double alpha, float *dlogits, int *correct) {
    enum { CMAX = 256 };
    double ls[CMAX], lsT[CMAX], ltT[CMAX];
    NL_ASSERT(C >= 1 && C <= CMAX);
    double loss = 0, invT = 1.0 / T;
    int hits = 0;
    for (int b = 0; b < B; b++) {
        const float *sb = s + (size_t)b * C, *tb = t + (size_t)b * C;
        log_softmax(sb, C, 1.0, ls);
        log_softmax(sb, C, invT, lsT);
        log_softmax(tb, C, invT, ltT);
        double kl = 0;
        int am = 0;
        for (int k = 0; k < C; k++) {
            double pt = exp(ltT[k]);
            if (pt > 0) kl += pt * (ltT[k] - lsT[k]);
            if (sb[k] > sb[am]) am = k;
        }
        hits += am == y[b];
        loss += alpha * -ls[y[b]] + (1 - alpha) * T * T * kl;
        if (dlogits) {
            for (int k = 0; k < C; k++) {
                double g = alpha * (exp(ls[k]) - (k == y[b])) +
                           (1 - alpha) * T * (exp(lsT[k]) - exp(ltT[k]));
                dlogits[(size_t)b * C + k] = (float)(g / B);
            }
        }
    }
    if (correct) *correct = hits;
    return (float)(loss / B);
}

float cd_hook_loss(void *ctx, model *m, const float *logits, const float *x, const int32_t *y,
                   const uint32_t *rows, int B, float *dlogits, int *correct) {
    compress *c = ctx;
    struct cd_state *d = c->distill;
    const float *t;
    if (d->teacher) {
        t = model_forward(d->teacher, x, B);
    } else {
        for (int b = 0; b < B; b++)
            memcpy(d->tbuf + (size_t)b * d->C, d->logits + (size_t)rows[b] * d->C,
                   (size_t)d->C * sizeof(float));
        t = d->tbuf;
    }
    return distill_loss(logits, t, y, B, m->out_size, d->T, d->alpha, dlogits, correct);
}

void cd_free(compress *c) {
    if (!c->distill) return;
    free(c->distill->tbuf);
    free(c->distill);
    c->distill = NULL;
}

static nl_status check_params(double T, double alpha, nl_error *e) {
    if (!(T > 0) || !(alpha >= 0 && alpha <= 1))
        return nl_err(e, NL_ERR_CONFIG, "distillation: temperature must be > 0 (got %g) and "
                      "alpha in [0, 1] (got %g)", T, alpha);
    return NL_OK;
}

nl_status compress_set_distillation(compress *c, model *teacher, double T, double alpha,
                                    nl_error *e) {
    nl_status st = check_params(T, alpha, e);
    if (st != NL_OK) return st;
    if (teacher->in_size != c->m->in_size || teacher->out_size != c->m->out_size)
        return nl_err(e, NL_ERR_CONFIG, "distillation: the teacher takes %d features and gives %d "
                      "classes, the student %d and %d; use a teacher trained on the same data",
                      teacher->in_size, teacher->out_size, c->m->in_size, c->m->out_size);
    if (teacher->max_batch < c->m->max_batch)
        return nl_err(e, NL_ERR_INVALID, "distillation: the teacher was built for batches of %d "
                      "rows, the student trains with up to %d; load it with max_batch >= %d",
                      teacher->max_batch, c->m->max_batch, c->m->max_batch);
    cd_free(c);
    c->distill = calloc(1, sizeof *c->distill);
    if (!c->distill) return nl_err(e, NL_ERR_NOMEM, "distillation: out of memory");
    c->distill->teacher = teacher;
    c->distill->C = teacher->out_size;
    c->distill->T = T;
    c->distill->alpha = alpha;
    teacher->training = 0;
    return NL_OK;
}

nl_status compress_set_distillation_logits(compress *c, const float *logits, long n, double T,
                                           double alpha, nl_error *e) {
    nl_status st = check_params(T, alpha, e);
    if (st != NL_OK) return st;
    cd_free(c);
    c->distill = calloc(1, sizeof *c->distill);
    if (!c->distill) return nl_err(e, NL_ERR_NOMEM, "distillation: out of memory");
    c->distill->logits = logits;
    c->distill->n = n;
    c->distill->C = c->m->out_size;
    c->distill->T = T;
    c->distill->alpha = alpha;
    c->distill->tbuf = malloc((size_t)c->m->max_batch * c->m->out_size * sizeof(float));
    if (!c->distill->tbuf) {
        cd_free(c);
        return nl_err(e, NL_ERR_NOMEM, "distillation: out of memory");
    }
    return NL_OK;
}
