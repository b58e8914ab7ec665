/* stages.c — compress_train: the stage machine of ALGORITHMS.md.
 *
 * pre-training (P = identity) -> method set-up (PDP budgets) -> rounds x
 * epochs (snapshot at save_weights_epoch of round 0, round hook after each
 * non-final round, rewind never / every-round / post-training-stage) ->
 * masks hard and frozen -> fine-tuning. The method's epoch index restarts
 * in each stage and round; lr_at holds the learning-rate schedules. One
 * epoch_record per epoch to the callback, after c->pos says where the run
 * stands (what a checkpoint saves); a loaded position (c->resume) makes the
 * run continue after it. Deliberately not here: data loading, early-stopping
 * policy beyond fine-tuning patience (the callback decides), the checkpoint
 * format (checkpoint.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

static const char *stage_name(train_stage s) {
    return s == STAGE_PRETRAIN ? "pre-training" : s == STAGE_MAIN ? "main stage" : "fine-tuning";
}

/* Learning rate of an epoch. multistep: over the global epoch. cosine:
 * base during pre-training; over the main stage's epochs (all rounds,
 * period cosine_tmax, default rounds x epochs, held at its end); a fresh
 * anneal over the fine-tuning epochs. */
static double lr_at(const cfg_training *t, train_stage st, int round, int epoch, int ge) {
    double base = t->learning_rate;
    if (t->schedule == LR_COSINE) {
        int e, T;
        if (st == STAGE_PRETRAIN) return base;
        if (st == STAGE_MAIN) {
            e = round * t->epochs + epoch;
            T = t->cosine_tmax > 0 ? t->cosine_tmax : t->rounds * t->epochs;
        } else {
            e = epoch;
            T = t->fine_tuning_epochs;
        }
        if (T < 1) T = 1;
        if (e > T) e = T;
        return base * 0.5 * (1.0 + cos(M_PI * (double)e / (double)T));
    }
    if (t->schedule == LR_MULTISTEP) {
        double lr = base;
        for (int k = 0; k < t->n_milestones; k++)
            if (ge >= t->milestones[k]) lr *= t->gamma;
        return lr;
    }
    return base;
}

typedef struct {
    compress *c;
    model *m;
    optim *o;
    const cfg_training *t;
    const train_data *d;
    rng_t *r;
    epoch_callback cb;
    void *ctx;
    int global_epoch;
    double best_val;
    int since_best;
    int have_snap;
} run_ctx;

/* 0: go on; 1: stop (callback or patience); < 0: error in *rc. */
static int run_epoch(run_ctx *x, train_stage st, int round, int epoch, nl_status *rc,
                     nl_error *e) {
    compress *c = x->c;
    double t0 = time_now();
    x->o->lr = (float)lr_at(x->t, st, round, epoch, x->global_epoch);
    c->epoch = epoch;
    if (st == STAGE_MAIN && c->pruning && c->ops && c->ops->epoch_begin) c->ops->epoch_begin(c);
    train_hooks h = compress_hooks(c);
    epoch_stats ts, vs;
    char where[96];
    if (st == STAGE_MAIN)
        snprintf(where, sizeof where, "%s round %d epoch %d (global epoch %d)", stage_name(st),
                 round, epoch, x->global_epoch);
    else
        snprintf(where, sizeof where, "%s epoch %d (global epoch %d)", stage_name(st), epoch,
                 x->global_epoch);
    *rc = nn_train_epoch(x->m, x->o, x->d->x_train, x->d->y_train, x->d->n_train,
                         x->t->batch_size, x->r, &h, &ts, e);
    if (*rc != NL_OK) {
        nl_err_prefix(e, "%s", where);
        return -1;
    }
    if (ts.nonfinite) {
        *rc = nl_err(e, NL_ERR_NUMERIC,
                     "%s: the training loss became NaN/Inf; lower learning_rate, check the "
                     "data for NaN, or widen the quantizers",
                     where);
        return -1;
    }
    if (st == STAGE_MAIN && c->pruning && c->ops && c->ops->epoch_end) c->ops->epoch_end(c);
    double train_seconds = time_now() - t0;
    /* Fresh weff (and stored masks) from the weights after the last step. */
    memset(&vs, 0, sizeof vs);
    if (x->d->n_val > 0) {
        *rc = nn_evaluate(x->m, x->d->x_val, x->d->y_val, x->d->n_val, &h, &vs, NULL, e);
        if (*rc != NL_OK) {
            nl_err_prefix(e, "%s: validation", where);
            return -1;
        }
        if (vs.nonfinite) {
            *rc = nl_err(e, NL_ERR_NUMERIC,
                         "%s: the validation loss is NaN/Inf; lower learning_rate", where);
            return -1;
        }
    } else {
        cm_pre_forward(c);
    }
    epoch_record rec;
    memset(&rec, 0, sizeof rec);
    rec.stage = st;
    rec.round = st == STAGE_MAIN ? round : 0;
    rec.epoch = epoch;
    rec.global_epoch = x->global_epoch;
    rec.lr = x->o->lr;
    rec.train_loss = ts.loss;
    rec.train_accuracy = ts.accuracy;
    rec.val_loss = x->d->n_val > 0 ? vs.loss : NAN;
    rec.val_accuracy = x->d->n_val > 0 ? vs.accuracy : NAN;
    rec.sparsity = cm_hard_sparsity(c);
    cm_epoch_totals(c, &rec); /* ebops, remaining weights, bits */
    rec.seconds = time_now() - t0;
    rec.train_seconds = train_seconds;
    x->global_epoch++;
    /* Patience applies to fine-tuning only: earlier stages follow the
     * pruning schedule, which a stop would cut short. Decided before the
     * callback so that a checkpoint written there holds it. */
    int patience_stop = 0;
    if (st == STAGE_FINETUNE && x->t->early_stopping_patience > 0 && x->d->n_val > 0) {
        if (vs.loss < x->best_val) {
            x->best_val = vs.loss;
            x->since_best = 0;
        } else if (++x->since_best >= x->t->early_stopping_patience) {
            patience_stop = 1;
        }
    }
    c->pos.valid = 1;
    c->pos.stage = st;
    c->pos.round = rec.round;
    c->pos.epoch = epoch;
    c->pos.global_epoch = x->global_epoch;
    c->pos.best_val = x->best_val;
    c->pos.since_best = x->since_best;
    c->pos.stop = patience_stop;
    c->pos.have_snap = x->have_snap;
    if (x->cb) {
        int v = x->cb(x->ctx, &rec);
        if (v == 2) {
            *rc = nl_err(e, NL_ERR_INTERRUPTED, "training interrupted after %s", where);
            return -1;
        }
        if (v == 1) return 1;
    }
    return patience_stop;
}

/* Dense kernels and biases: the ranges a snapshot covers. */
static void copy_dense(const compress *c, float *dst, const float *src) {
    for (int li = 0; li < c->n_layers; li++) {
        const cl_layer *L = &c->layers[li];
        memcpy(dst + L->w_off, src + L->w_off, (size_t)L->n * sizeof(float));
        memcpy(dst + L->b_off, src + L->b_off, (size_t)L->out * sizeof(float));
    }
}

static void freeze_masks(compress *c) {
    if (c->frozen) return;
    if (c->pruning && c->ops && c->ops->freeze) c->ops->freeze(c);
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        for (long j = 0; j < L->n; j++) L->mask[j] = L->mask[j] >= 0.5f ? 1.0f : 0.0f;
    }
    cm_freeze_units(c); /* structured methods: pruned units lose their bias */
    c->frozen = 1;
}

nl_status compress_train(compress *c, model *m, optim *o, const cfg_training *t,
                         const train_data *d, rng_t *r, epoch_callback cb, void *ctx,
                         nl_error *e) {
    if (m != c->m) return nl_err(e, NL_ERR_INVALID, "compress_train: model is not the one bound");
    if (t->pretraining_epochs < 0 || t->epochs < 0 || t->rounds < 0 || t->fine_tuning_epochs < 0)
        return nl_err(e, NL_ERR_CONFIG,
                      "training_parameters: pretraining_epochs, epochs, rounds and "
                      "fine_tuning_epochs must be >= 0");
    int save = t->save_weights_epoch;
    int can_save = t->rounds > 0 && save >= 0 && save < t->epochs;
    if (t->rewind != REWIND_NEVER && !can_save)
        return nl_err(e, NL_ERR_CONFIG,
                      "training_parameters.rewind: %s needs save_weights_epoch in [0, epochs = "
                      "%d) (got %d): there is no snapshot to rewind to",
                      t->rewind == REWIND_EVERY_ROUND ? "every-round" : "post-training-stage",
                      t->epochs, save);
    /* A loaded checkpoint: continue after its epoch (consumed here). */
    cm_position P = c->resume;
    int resume = P.valid;
    c->resume.valid = 0;
    c->pos.valid = 0;
    c->t = *t;
    if (can_save && !c->snap) {
        c->snap = calloc((size_t)m->n_params + 1, sizeof *c->snap);
        if (!c->snap) return nl_err(e, NL_ERR_NOMEM, "compress_train: out of memory for a snapshot");
    }
    float *snap = can_save ? c->snap : NULL;
    run_ctx x = {.c = c, .m = m, .o = o, .t = t, .d = d, .r = r, .cb = cb, .ctx = ctx,
                 .best_val = INFINITY};
    int batch = t->batch_size > 0 ? t->batch_size : 1;
    c->steps_per_epoch = d->n_train > 0 ? (d->n_train + batch - 1) / batch : 1;
    nl_status rc = NL_OK;
    int stop = 0;
    /* First epoch of each stage to run; everything before was done. */
    int pre0 = 0, rd0 = 0, main0 = 0, fine0 = 0, did_setup = 0;
    if (resume) {
        x.global_epoch = P.global_epoch;
        x.best_val = P.best_val;
        x.since_best = P.since_best;
        x.have_snap = P.have_snap && snap;
        stop = P.stop;
        if (P.stage == STAGE_PRETRAIN) {
            pre0 = P.epoch + 1;
        } else {
            pre0 = t->pretraining_epochs;
            did_setup = 1;
            if (P.stage == STAGE_MAIN) {
                rd0 = P.round;
                main0 = P.epoch + 1;
            } else {
                rd0 = t->rounds;
                fine0 = P.epoch + 1;
            }
        }
    } else {
        c->frozen = 0;
    }

    /* 1. Pre-training: no pruning. */
    if (!stop) {
        c->stage = STAGE_PRETRAIN;
        c->n_epochs = t->pretraining_epochs;
    }
    for (int ep = pre0; ep < t->pretraining_epochs && !stop; ep++) {
        int v = run_epoch(&x, STAGE_PRETRAIN, 0, ep, &rc, e);
        if (v < 0) goto done;
        stop = v;
    }
    /* 2. Method set-up, 3. main stage. */
    if (!stop) {
        c->stage = STAGE_MAIN;
        c->n_epochs = t->epochs;
        if (!did_setup && c->pruning && c->ops && c->ops->setup) c->ops->setup(c);
    }
    for (int rd = rd0; rd < t->rounds && !stop; rd++) {
        int ep0 = rd == rd0 ? main0 : 0;
        if (ep0 == 0) c->step = 0;
        for (int ep = ep0; ep < t->epochs && !stop; ep++) {
            if (rd == 0 && ep == save && snap) {
                copy_dense(c, snap, m->params);
                x.have_snap = 1;
            }
            int v = run_epoch(&x, STAGE_MAIN, rd, ep, &rc, e);
            if (v < 0) goto done;
            stop = v;
        }
        if (stop) break;
        if (rd < t->rounds - 1 && c->pruning && c->ops && c->ops->round_end)
            c->ops->round_end(c, rd);
        int last = rd == t->rounds - 1;
        if (x.have_snap && (t->rewind == REWIND_EVERY_ROUND ||
                            (t->rewind == REWIND_POST_TRAINING && last))) {
            copy_dense(c, m->params, snap);
            optim_reset(o);
        }
    }
    /* 4. Hard, frozen masks; 5. fine-tuning. */
    freeze_masks(c);
    c->stage = STAGE_FINETUNE;
    c->n_epochs = t->fine_tuning_epochs;
    for (int ep = fine0; ep < t->fine_tuning_epochs && !stop; ep++) {
        int v = run_epoch(&x, STAGE_FINETUNE, 0, ep, &rc, e);
        if (v < 0) goto done;
        stop = v;
    }
done:
    /* Whatever happened, weff holds hard-masked effective weights. */
    freeze_masks(c);
    c->stage = STAGE_FINETUNE;
    cm_pre_forward(c);
    free(c->snap);
    c->snap = NULL;
    c->pos.valid = 0;
    return rc;
}
