/* trial.c — one trial from its YAML text to metrics and files.
 *
 * config -> (cached) data -> model specs -> model + optimizer + compression
 * -> compress_train -> evaluation -> compression report -> FPGA estimate ->
 * model.h5, history.csv, log. Every failure on the way is a FAILED result
 * with a reason; nothing here exits or aborts. Seeds: everything random in
 * a trial derives from the trial's `seed` (init: stream 1, shuffling:
 * stream 2); the data split uses a fixed seed so that all trials of a scan
 * see the same split. Checkpoints: with a trial folder, the state after
 * every epoch goes to <trial folder>/checkpoint.bin (compress_state_save
 * plus the history and log so far); a run that finds a valid one continues
 * after its epoch, one that finds a broken one warns and starts over; the
 * file is removed once the trial is done or failed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "nnlo/fpga.h"
#include "nnlo/hls4ml.h"
#include "nnlo/json.h"
#include "nnlo/modelio.h"
#include "nnlo/worker.h"

#define DATA_SPLIT_SEED 0x5eedULL

const char *trial_status_name(trial_status s) {
    switch (s) {
    case TRIAL_DONE: return "done";
    case TRIAL_FAILED: return "failed";
    case TRIAL_INTERRUPTED: return "interrupted";
    case TRIAL_PRUNED: return "pruned";
    }
    return "unknown";
}

void worker_cache_free(worker_cache *c) {
    if (!c) return;
    if (c->loaded) data_free(&c->data);
    c->loaded = 0;
    c->key[0] = '\0';
}

/* Everything in cfg_data that changes what data_load returns. */
static void data_key(const cfg_data *d, char *key, size_t len) {
    sbuf b = {0};
    const char *const *lists[3] = {(const char *const *)d->train_files, (const char *const *)d->val_files,
                                   (const char *const *)d->test_files};
    int ns[3] = {d->n_train, d->n_val, d->n_test};
    for (int l = 0; l < 3; l++) {
        sbuf_printf(&b, "[%d]", l);
        for (int i = 0; i < ns[l]; i++) sbuf_printf(&b, "%s|", lists[l][i]);
    }
    sbuf_printf(&b, "%s|%s|%d|%.17g|%d|%ld", d->features, d->labels, (int)d->labels_format,
                d->validation_split, d->standardize, d->max_samples);
    snprintf(key, len, "%s", b.s);
    sbuf_free(&b);
}

/* ---- per-epoch bookkeeping -------------------------------------------- */

typedef struct {
    int trial_id;
    trial_progress_fn cb;
    void *cb_ctx;
    sbuf history;           /* history.csv text */
    sbuf layers;            /* layers.csv text */
    sbuf log;               /* the trial's log */
    double train_seconds;   /* training part of the epochs */
    double samples;
    long n_train;
    int epochs;
    /* checkpoints (ckpt_path NULL: none) */
    const char *ckpt_path;
    uint64_t ckpt_key;      /* ckpt_hash of the trial YAML text */
    char origin[2048];      /* this nnlo-c build and the data files (checkpoint_origin) */
    compress *c;
    optim *o;
    rng_t *r;
    int phase;              /* 0; Wanda one-shot: 1 dense training, 2 fine-tuning */
    double t_start;         /* time_now() when this run's training began */
    double wall_before;     /* training wall time of the runs before a resume */
    double best_val;        /* best val_accuracy so far (checkpointed), -inf before any */
    int ckpt_written, ckpt_warned;
    double ckpt_seconds;
    size_t ckpt_bytes;
} run_ctx;

/* What a checkpoint was made with besides the trial YAML: this program
 * (its size and modification time: any rebuild changes them), the thread
 * count (conv models' sums depend on it) and each data file (path, size,
 * modification time). A checkpoint whose origin differs is not trusted: the
 * code, the arithmetic or the data it continued from are not these. */
static void checkpoint_origin(const cfg_data *d, char *out, size_t len) {
    struct stat st;
    size_t n = 0;
    if (stat("/proc/self/exe", &st) == 0)
        n += (size_t)snprintf(out + n, len - n, "program %lld bytes, mtime %lld", (long long)st.st_size,
                              (long long)st.st_mtime);
    else
        n += (size_t)snprintf(out + n, len - n, "program unknown");
    if (n < len) n += (size_t)snprintf(out + n, len - n, "; %d threads", nn_get_threads());
    char *const *lists[3] = {d->train_files, d->val_files, d->test_files};
    const int counts[3] = {d->n_train, d->n_val, d->n_test};
    for (int l = 0; l < 3 && n < len; l++)
        for (int i = 0; i < counts[l] && n < len; i++) {
            long long sz = -1, mt = -1;
            if (stat(lists[l][i], &st) == 0) sz = st.st_size, mt = st.st_mtime;
            n += (size_t)snprintf(out + n, len - n, "; %s %lld bytes, mtime %lld", lists[l][i], sz, mt);
        }
}

/* The trial's part of a checkpoint, then compress_state_save's. A failed
 * write is a warning (once): the trial goes on, and an interruption would
 * resume from an older checkpoint or start over. */
static void write_checkpoint(run_ctx *x) {
    double t0 = time_now();
    ckpt_writer w = {0};
    nl_error e = {0};
    ckpt_put(&w, "origin", x->origin, strlen(x->origin));
    ckpt_put_i64(&w, "trial_phase", x->phase);
    ckpt_put_i64(&w, "trial_epochs", x->epochs);
    ckpt_put_f64(&w, "trial_train_seconds", x->train_seconds);
    ckpt_put_f64(&w, "trial_samples", x->samples);
    ckpt_put_f64(&w, "trial_wall", x->wall_before + (t0 - x->t_start));
    ckpt_put_f64(&w, "trial_best_val", x->best_val);
    ckpt_put(&w, "history", x->history.s, x->history.len);
    ckpt_put(&w, "log", x->log.s, x->log.len);
    nl_status st = compress_state_save(x->c, x->o, x->r, &w, &e);
    if (st == NL_OK) st = ckpt_write_file(x->ckpt_path, x->ckpt_key, &w, &e);
    if (st != NL_OK) {
        if (!x->ckpt_warned)
            log_warn("trial %d: no checkpoint written (%s); if interrupted it resumes from an "
                     "older one or starts over", x->trial_id, e.msg);
        x->ckpt_warned = 1;
    } else {
        x->ckpt_written++;
        x->ckpt_bytes = w.len;
    }
    ckpt_writer_free(&w);
    x->ckpt_seconds += time_now() - t0;
}

static const char *stage_name(train_stage s) {
    return s == STAGE_PRETRAIN ? "pretrain" : s == STAGE_MAIN ? "main" : "finetune";
}

static int on_epoch(void *vctx, const epoch_record *r) {
    run_ctx *x = vctx;
    x->epochs++;
    x->train_seconds += r->train_seconds;
    x->samples += (double)x->n_train;
    sbuf_printf(&x->history, "%d,%s,%d,%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6g,%ld,%d,%.4f,%d,%.4f\n",
                r->global_epoch, stage_name(r->stage), r->round, r->epoch, r->lr, r->train_loss,
                r->train_accuracy, r->val_loss, r->val_accuracy, r->sparsity, r->ebops, r->remaining,
                r->bits_min, r->bits_mean, r->bits_max, r->seconds);
    sbuf_printf(&x->log, "epoch %d (%s round %d epoch %d): loss %.4f acc %.4f val_loss %.4f val_acc %.4f sparsity %.4f\n",
                r->global_epoch, stage_name(r->stage), r->round, r->epoch, r->train_loss,
                r->train_accuracy, r->val_loss, r->val_accuracy, r->sparsity);
    if (isfinite(r->val_accuracy) && r->val_accuracy > x->best_val) x->best_val = r->val_accuracy;
    if (x->ckpt_path) write_checkpoint(x);
    /* Early stopping (training_parameters.early_stopping_patience) is
     * compress_train's; this only reports and relays the master's verdict
     * (search.pruner / trial_timeout), which sees the whole trial so far. */
    epoch_record rr = *r;
    rr.best_val_accuracy = x->best_val;
    rr.trial_seconds = x->wall_before + (time_now() - x->t_start);
    return x->cb ? x->cb(x->cb_ctx, x->trial_id, &rr) : 0;
}

/* ---- FPGA cost of the trained model ---------------------------------- */

/* Per-layer formats and masks of the Dense layers, as the model file and
 * the hls4ml mapping want them. *info is malloc'd (m->n_layers entries). */
static nl_status layer_info(const trial_config *tc, model *m, compress *c, modelio_layer_info **info,
                            nl_error *e) {
    *info = calloc((size_t)m->n_layers, sizeof **info);
    if (!*info) return nl_err(e, NL_ERR_NOMEM, "out of memory");
    for (int l = 0; l < m->n_layers; l++) {
        if (!layer_has_kernel((int)m->layers[l].kind)) continue;
        modelio_layer_info *in = &(*info)[l];
        in->mask = compress_mask(c, l);
        in->quantized = tc->quant.enable_quantization;
        compress_layer_formats(c, l, &in->w, &in->b, &in->in, &in->out);
    }
    return NL_OK;
}

/* The cost of what the export builds: the model with structurally dead
 * units removed (modelio_shrink, exact), mapped as `nnlo-c estimate` and the
 * hls4ml export map it (hls4ml_fpga_layers). */
static nl_status estimate_fpga(const trial_config *tc, model *m, layer_spec *specs, int n_specs,
                               modelio_layer_info *info, fpga_report *rep, nl_error *e) {
    modelio_file full, small;
    memset(&full, 0, sizeof full);
    full.specs = specs;
    full.n_specs = n_specs;
    full.in_size = m->in_size;
    full.out_size = m->out_size;
    full.m = m;
    full.info = info;
    nl_status st = modelio_shrink(&full, 1, &small, NULL, e);
    if (st) return st;
    hls4ml_net hn;
    st = hls4ml_fpga_layers(small.m, small.info, NULL, NULL, NULL, &tc->fpga, &hn, e);
    if (st == NL_OK) {
        st = fpga_estimate_ex(hn.layers, hn.n, &hn.fpga, &hn.opt, rep, e);
        hls4ml_net_free(&hn);
    }
    modelio_free(&small);
    return st;
}

/* layers.csv: per layer with weights, the compression report joined (by
 * layer name) with the FPGA cost; activation layers have FPGA cost only. */
static void layers_csv(sbuf *b, const compress_report *cr, const fpga_report *fr) {
    sbuf_printf(b, "layer,weights,remaining_weights,sparsity,bits_min,bits_mean,bits_max,ebops,"
                   "dsp,lut,ff,bram18,latency_cycles,multipliers\n");
    for (int k = 0; k < fr->n_layers; k++) {
        const fpga_cost *f = &fr->layers[k];
        const compress_layer_report *L = NULL;
        for (int i = 0; i < cr->n; i++)
            if (!strcmp(cr->layers[i].name, f->name)) L = &cr->layers[i];
        if (L)
            sbuf_printf(b, "%s,%ld,%ld,%.6f,%d,%.4f,%d,%.0f,", L->name, L->weights, L->remaining, L->sparsity,
                        L->bits_min, L->bits_mean, L->bits_max, L->ebops);
        else
            sbuf_printf(b, "%s,,,,,,,,", f->name);
        sbuf_printf(b, "%ld,%ld,%ld,%ld,%d,%ld\n", f->dsp, f->lut, f->ff, f->bram18, f->latency_cycles,
                    f->multipliers);
    }
}

/* ---- files -------------------------------------------------------------- */

static nl_status write_files(const char *dir, int id, const char *yaml, model *m,
                             const modelio_layer_info *info, const trial_result *res, run_ctx *x,
                             nl_error *e) {
    char path[4096];
    nl_status st = fs_mkdir_p(dir, e);
    if (st) return st;
    fs_join(path, sizeof path, dir, "history.csv");
    sbuf h = {0};
    sbuf_printf(&h, "global_epoch,stage,round,epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,sparsity,ebops,"
                    "remaining_weights,bits_min,bits_mean,bits_max,seconds\n");
    if (x->history.s) sbuf_append(&h, x->history.s, x->history.len);
    st = fs_write_atomic(path, h.s, h.len, e);
    sbuf_free(&h);
    if (st) return st;
    if (x->layers.s) {
        fs_join(path, sizeof path, dir, "layers.csv");
        if ((st = fs_write_atomic(path, x->layers.s, x->layers.len, e))) return st;
    }
    fs_join(path, sizeof path, dir, "log");
    sbuf_printf(&x->log, "status: %s%s%s\n", trial_status_name(res->status),
                res->reason[0] ? ": " : "", res->reason);
    st = fs_write_atomic(path, x->log.s, x->log.len, e);
    if (st || !m || !info || res->status != TRIAL_DONE) return st;
    const char *names[MET_COUNT];
    for (int k = 0; k < MET_COUNT; k++) names[k] = metric_name((metric_id)k);
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%d", id);
    modelio_meta meta = {yaml, idbuf, MET_COUNT, names, res->metrics};
    fs_join(path, sizeof path, dir, "model.h5");
    return modelio_save(path, m, info, &meta, e);
}

/* Length of the parameter view of layer l at offset off (0 if none). */
static long view_len(const model *m, int l, long off) {
    if (off < 0) return 0;
    for (int v = 0; v < m->n_views; v++)
        if (m->views[v].layer == l && m->views[v].off == off) return m->views[v].len;
    return 0;
}

/* A layer that carries parameters: Dense/Conv (kernel, bias), BatchNorm
 * (gamma, beta, moving statistics). */
static int has_params(const layer *L) { return L->w_off >= 0; }

/* model.init: the parameters of a saved model (kernels and biases,
 * BatchNorm gamma/beta and moving statistics), layer by layer in order,
 * start training instead of random ones. The architectures must match;
 * names may differ (an imported Keras model keeps its own). */
static nl_status init_from_file(model *m, const char *path, nl_error *e) {
    modelio_file f;
    memset(&f, 0, sizeof f);
    nl_status st = modelio_load(path, 1, &f, e);
    if (st) return nl_err_prefix(e, "model.init");
    const model *src = f.m;
    int j = 0;
    for (int l = 0; l < m->n_layers && st == NL_OK; l++) {
        const layer *L = &m->layers[l];
        if (!has_params(L)) continue;
        while (j < src->n_layers && !has_params(&src->layers[j])) j++;
        if (j >= src->n_layers) {
            st = nl_err(e, NL_ERR_CONFIG, "model.init: %s has fewer layers with parameters than this "
                        "model (nothing for layer %s)", path, L->name);
            break;
        }
        const layer *F = &src->layers[j];
        long nw = view_len(m, l, L->w_off), nb = view_len(m, l, L->b_off);
        long fw = view_len(src, j, F->w_off), fb = view_len(src, j, F->b_off);
        if (F->kind != L->kind || nw != fw || nb != fb) {
            st = nl_err(e, NL_ERR_CONFIG, "model.init: layer %s of %s (%s, %ld + %ld parameters) does not "
                        "match layer %s of this model (%s, %ld + %ld parameters)", F->name, path,
                        layer_kind_name((int)F->kind), fw, fb, L->name, layer_kind_name((int)L->kind), nw, nb);
            break;
        }
        memcpy(m->params + L->w_off, src->weff + F->w_off, (size_t)nw * sizeof(float));
        if (nb) memcpy(m->params + L->b_off, src->weff + F->b_off, (size_t)nb * sizeof(float));
        if (L->s_off >= 0 && F->s_off >= 0) /* BatchNorm: moving mean, then variance */
            memcpy(m->state + L->s_off, src->state + F->s_off, 2 * (size_t)L->in_c * sizeof(float));
        j++;
    }
    if (st == NL_OK) {
        while (j < src->n_layers && !has_params(&src->layers[j])) j++;
        if (j < src->n_layers)
            st = nl_err(e, NL_ERR_CONFIG, "model.init: %s has more layers with parameters than this "
                        "model (from layer %s on)", path, src->layers[j].name);
    }
    modelio_free(&f);
    return st;
}

/* Wanda's one-shot post-training mode: train dense (pre-training stage),
 * prune from calibration batches, fine-tune with the frozen masks. */
/* Resumed from a checkpoint of phase 2: phase 1 and the masks are in it. */
static nl_status train_oneshot(compress *c, model *m, optim *o, const trial_config *tc,
                               const train_data *d, rng_t *r, run_ctx *x, int resume_phase,
                               nl_error *e) {
    cfg_training dense = tc->train, fine = tc->train;
    dense.epochs = 0;
    dense.fine_tuning_epochs = 0;
    fine.pretraining_epochs = 0;
    fine.epochs = 0;
    nl_status st = NL_OK;
    if (resume_phase < 2) {
        x->phase = 1;
        if (dense.pretraining_epochs > 0) st = compress_train(c, m, o, &dense, d, r, on_epoch, x, e);
        if (st == NL_OK)
            st = compress_wanda_oneshot(c, d->x_train, d->n_train, tc->prune.calibration_batches, e);
    }
    x->phase = 2;
    if (st == NL_OK) st = compress_train(c, m, o, &fine, d, r, on_epoch, x, e);
    return st;
}

/* Model (initialised as the config says), optimizer and compress object of
 * a trial; the teacher, if any, is bound. On error the caller frees. */
static nl_status build_run(const trial_config *tc, const layer_spec *specs, int n_specs, int n_features,
                           char **extra_names, const long *extra_lens, int n_extra, model *teacher, model **pm,
                           optim *opt, compress **pc, nl_error *e) {
    *pm = model_create(specs, n_specs, n_features, tc->train.batch_size, (const char *const *)extra_names,
                       extra_lens, n_extra, e);
    if (!*pm) return e->code;
    model *m = *pm;
    rng_t r_init;
    rng_seed(&r_init, rng_derive(tc->seed, 1));
    model_init_params_with(m, &r_init, (nn_init)tc->kernel_initializer);
    nl_status st;
    if (tc->model_init[0] && (st = init_from_file(m, tc->model_init, e))) return st;
    memset(opt, 0, sizeof *opt);
    if ((st = optim_init(opt, tc->train.optimizer == OPTIMIZER_SGD ? OPT_SGD : OPT_ADAM, m->n_params, e)))
        return st;
    opt->lr = (float)tc->train.learning_rate;
    opt->momentum = (float)tc->train.momentum;
    opt->weight_decay = (float)tc->train.l2_decay;
    *pc = compress_create(m, &tc->prune, &tc->quant, &tc->train, e);
    if (!*pc) return e->code;
    if (teacher && (st = compress_set_distillation(*pc, teacher, tc->distill.temperature, tc->distill.alpha, e)))
        return st;
    return NL_OK;
}

/* Reads <trial folder>/checkpoint.bin into x (history, log, counters) and
 * the training objects. Returns 1 when the trial continues from it, 0 when
 * there is none or it was ignored (the reason is logged, and in the trial's
 * log); *dirty is set when the objects were partly overwritten (rebuild). */
static int load_checkpoint(run_ctx *x, compress *c, optim *o, rng_t *r, int *phase, int *dirty) {
    unsigned char *buf = NULL;
    ckpt_reader rd;
    nl_error e = {0};
    *dirty = 0;
    *phase = 0;
    if (!fs_exists(x->ckpt_path)) return 0;
    nl_status st = ckpt_read_file(x->ckpt_path, x->ckpt_key, &buf, &rd, &e);
    int64_t ph = 0, ep = 0;
    double ts = 0, sm = 0, wall = 0, best = -INFINITY;
    const void *hist = NULL, *lg = NULL, *org = NULL;
    size_t nh = 0, nlg = 0, norg = 0;
    if (st == NL_OK && (st = ckpt_get_var(&rd, "origin", &org, &norg, &e)) == NL_OK &&
        (norg != strlen(x->origin) || memcmp(org, x->origin, norg) != 0))
        st = nl_err(&e, NL_ERR_DATA, "it was written by another nnlo-c build or for other data files "
                    "(then: %.*s; now: %s)", (int)(norg < 600 ? norg : 600), (const char *)org, x->origin);
    if (st == NL_OK &&
        ((st = ckpt_get_i64(&rd, "trial_phase", &ph, &e)) || (st = ckpt_get_i64(&rd, "trial_epochs", &ep, &e)) ||
         (st = ckpt_get_f64(&rd, "trial_train_seconds", &ts, &e)) ||
         (st = ckpt_get_f64(&rd, "trial_samples", &sm, &e)) || (st = ckpt_get_f64(&rd, "trial_wall", &wall, &e)) ||
         (st = ckpt_get_f64(&rd, "trial_best_val", &best, &e)) ||
         (st = ckpt_get_var(&rd, "history", &hist, &nh, &e)) || (st = ckpt_get_var(&rd, "log", &lg, &nlg, &e))))
        nl_err_prefix(&e, "%s", x->ckpt_path);
    if (st == NL_OK) {
        *dirty = 1;
        if ((st = compress_state_load(c, o, r, &rd, &e))) nl_err_prefix(&e, "%s", x->ckpt_path);
    }
    if (st != NL_OK) {
        log_warn("trial %d: checkpoint ignored, the trial starts over: %s", x->trial_id, e.msg);
        sbuf_printf(&x->log, "checkpoint ignored (%s); the trial starts over from its first epoch\n", e.msg);
        free(buf);
        return 0;
    }
    x->phase = (int)ph;
    *phase = (int)ph;
    x->epochs = (int)ep;
    x->train_seconds = ts;
    x->samples = sm;
    x->wall_before = wall;
    x->best_val = best;
    sbuf_free(&x->history);
    sbuf_free(&x->log);
    if (nh) sbuf_append(&x->history, hist, nh);
    if (nlg) sbuf_append(&x->log, lg, nlg);
    free(buf);
    train_stage stage;
    int round, epoch;
    compress_resume_point(c, &stage, &round, &epoch, NULL);
    char msg[160];
    snprintf(msg, sizeof msg, "trial %d: resuming from its checkpoint after epoch %d (%s round %d epoch %d)",
             x->trial_id, x->epochs - 1, stage_name(stage), round, epoch);
    log_info("%s", msg);
    sbuf_printf(&x->log, "%s\n", msg);
    return 1;
}

/* Removes a checkpoint (and a half-written one); absent is fine. */
static void remove_checkpoint(const char *path) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (remove(path) != 0 && errno != ENOENT) log_warn("could not remove %s: %s", path, strerror(errno));
    remove(tmp);
}

/* ---- the trial -------------------------------------------------------- */

static void set_failed(trial_result *res, trial_status s, const char *why) {
    res->status = s;
    snprintf(res->reason, sizeof res->reason, "%s", why);
}

/* worker_run_trial, and with n_params != NULL worker_check_trial: that
 * stops once everything is built (no training, no files) and reports the
 * model's parameter count. */
static nl_status run_trial(int trial_id, const char *trial_yaml, const char *source, const char *base_dir,
                           const char *trial_dir, worker_cache *cache, trial_progress_fn cb, void *cb_ctx,
                           trial_result *res, long *n_params, nl_error *e) {
    memset(res, 0, sizeof *res);
    res->id = trial_id;
    for (int k = 0; k < MET_COUNT; k++) res->metrics[k] = NAN;
    run_ctx x = {.trial_id = trial_id, .cb = cb, .cb_ctx = cb_ctx, .best_val = -INFINITY};
    trial_config tc;
    memset(&tc, 0, sizeof tc);
    model *m = NULL;
    compress *c = NULL;
    modelio_file teacher;
    memset(&teacher, 0, sizeof teacher);
    optim opt;
    memset(&opt, 0, sizeof opt);
    layer_spec *specs = NULL;
    modelio_layer_info *info = NULL;
    int n_specs = 0, n_extra = 0;
    char **extra_names = NULL;
    long *extra_lens = NULL;
    nl_error te = {0};
    nl_status st;

    if (config_parse_trial(trial_yaml, source, base_dir, &tc, &te) != NL_OK) {
        set_failed(res, TRIAL_FAILED, te.msg);
        goto finish;
    }
    char key[sizeof cache->key];
    data_key(&tc.data, key, sizeof key);
    if (!cache->loaded || strcmp(key, cache->key) != 0) {
        worker_cache_free(cache);
        if (data_load(&tc.data, DATA_SPLIT_SEED, &cache->data, &te) != NL_OK) {
            set_failed(res, TRIAL_FAILED, te.msg);
            goto finish;
        }
        cache->loaded = 1;
        snprintf(cache->key, sizeof cache->key, "%s", key);
    }
    const data_bundle *db = &cache->data;
    x.n_train = db->train.n;
    if (db->train.n == 0 || db->val.n == 0) {
        set_failed(res, TRIAL_FAILED, "the training or validation split is empty");
        goto finish;
    }
    if (compress_model_specs(tc.layers, tc.n_layers, db->n_classes, &tc.quant, &specs, &n_specs, &te) ||
        compress_plan_all_params(specs, n_specs, db->n_features, &tc.prune, &tc.quant, &extra_names, &extra_lens,
                                 &n_extra, &te)) {
        set_failed(res, TRIAL_FAILED, te.msg);
        goto finish;
    }
    /* The teacher must come from the same data files and split (its
     * inputs are standardised with this trial's training statistics). */
    if (tc.distill.teacher[0] && modelio_load(tc.distill.teacher, tc.train.batch_size, &teacher, &te)) {
        set_failed(res, TRIAL_FAILED, te.msg);
        goto finish;
    }
    if (build_run(&tc, specs, n_specs, db->n_features, extra_names, extra_lens, n_extra, teacher.m, &m, &opt, &c,
                  &te)) {
        set_failed(res, TRIAL_FAILED, te.msg);
        goto finish;
    }
    if (n_params) { /* worker_check_trial: everything builds */
        *n_params = m->n_params;
        res->status = TRIAL_DONE;
        trial_dir = NULL;
        goto finish;
    }
    rng_t r_train;
    rng_seed(&r_train, rng_derive(tc.seed, 2));
    char ckpt_path[4200];
    int resume_phase = 0;
    if (trial_dir) {
        nl_error ce = {0};
        fs_join(ckpt_path, sizeof ckpt_path, trial_dir, "checkpoint.bin");
        if (fs_mkdir_p(trial_dir, &ce) == NL_OK) {
            x.ckpt_path = ckpt_path;
            x.ckpt_key = ckpt_hash(trial_yaml, strlen(trial_yaml));
            checkpoint_origin(&tc.data, x.origin, sizeof x.origin);
            x.c = c;
            x.o = &opt;
            x.r = &r_train;
        } else {
            log_warn("trial %d: no checkpoints: %s", trial_id, ce.msg);
        }
    }
    if (x.ckpt_path) {
        int dirty = 0;
        if (!load_checkpoint(&x, c, &opt, &r_train, &resume_phase, &dirty) && dirty) {
            /* half restored: start over from freshly built objects */
            compress_free(c);
            optim_free(&opt);
            model_free(m);
            c = NULL;
            m = NULL;
            if (build_run(&tc, specs, n_specs, db->n_features, extra_names, extra_lens, n_extra, teacher.m, &m,
                          &opt, &c, &te)) {
                set_failed(res, TRIAL_FAILED, te.msg);
                goto finish;
            }
            rng_seed(&r_train, rng_derive(tc.seed, 2));
            x.c = c;
        }
    }

    train_data d = {db->train.x, db->train.y, db->train.n, db->val.x, db->val.y, db->val.n};
    double t0 = time_now();
    x.t_start = t0;
    if (tc.prune.enable_pruning && tc.prune.calibration_batches > 0)
        st = train_oneshot(c, m, &opt, &tc, &d, &r_train, &x, resume_phase, &te);
    else
        st = compress_train(c, m, &opt, &tc.train, &d, &r_train, on_epoch, &x, &te);
    double wall = x.wall_before + (time_now() - t0);
    if (st == NL_ERR_INTERRUPTED) { set_failed(res, TRIAL_INTERRUPTED, te.msg); goto finish; }
    if (st != NL_OK) { set_failed(res, TRIAL_FAILED, te.msg); goto finish; }

    train_hooks hk = compress_hooks(c);
    epoch_stats ev;
    if (nn_evaluate(m, db->val.x, db->val.y, db->val.n, &hk, &ev, NULL, &te)) {
        set_failed(res, TRIAL_FAILED, te.msg);
        goto finish;
    }
    if (!isfinite(ev.loss)) { set_failed(res, TRIAL_FAILED, "validation loss is not finite"); goto finish; }
    res->metrics[MET_VAL_ACCURACY] = ev.accuracy;
    res->metrics[MET_VAL_LOSS] = ev.loss;
    if (db->test.n > 0) {
        if (nn_evaluate(m, db->test.x, db->test.y, db->test.n, &hk, &ev, NULL, &te)) {
            set_failed(res, TRIAL_FAILED, te.msg);
            goto finish;
        }
        res->metrics[MET_TEST_ACCURACY] = ev.accuracy;
        res->metrics[MET_TEST_LOSS] = ev.loss;
    }
    compress_report cr;
    if (compress_report_get(c, &cr, &te)) { set_failed(res, TRIAL_FAILED, te.msg); goto finish; }
    res->metrics[MET_SPARSITY] = cr.sparsity;
    res->metrics[MET_WEIGHTS] = (double)cr.weights;
    res->metrics[MET_REMAINING_WEIGHTS] = (double)cr.remaining;
    res->metrics[MET_EBOPS] = cr.ebops;
    fpga_report fr;
    memset(&fr, 0, sizeof fr);
    if (layer_info(&tc, m, c, &info, &te) || estimate_fpga(&tc, m, specs, n_specs, info, &fr, &te)) {
        compress_report_free(&cr);
        set_failed(res, TRIAL_FAILED, te.msg);
        goto finish;
    }
    res->metrics[MET_DSP] = (double)fr.total.dsp;
    res->metrics[MET_LUT] = (double)fr.total.lut;
    res->metrics[MET_FF] = (double)fr.total.ff;
    res->metrics[MET_BRAM18] = (double)fr.total.bram18;
    res->metrics[MET_LATENCY_CYCLES] = fr.total.latency_cycles;
    res->metrics[MET_LATENCY_NS] = fr.latency_ns;
    res->metrics[MET_FITS] = fr.fits;
    layers_csv(&x.layers, &cr, &fr);
    compress_report_free(&cr);
    fpga_report_free(&fr);
    res->metrics[MET_EPOCHS] = x.epochs;
    res->metrics[MET_TRAIN_SECONDS] = wall;
    res->metrics[MET_TRAIN_SAMPLES_PER_S] = x.train_seconds > 0 ? x.samples / x.train_seconds : NAN;

finish:
    st = NL_OK;
    if (x.ckpt_written)
        sbuf_printf(&x.log, "checkpoints: %d written (%.1f KiB each), %.3f s in total\n", x.ckpt_written,
                    (double)x.ckpt_bytes / 1024.0, x.ckpt_seconds);
    if (trial_dir) st = write_files(trial_dir, trial_id, trial_yaml, m, info, res, &x, e);
    /* Done or failed: a rerun must start over. Interrupted: keep it. */
    if (trial_dir && res->status != TRIAL_INTERRUPTED) {
        char p[4200];
        remove_checkpoint(fs_join(p, sizeof p, trial_dir, "checkpoint.bin"));
    }
    free(info);
    sbuf_free(&x.history);
    sbuf_free(&x.layers);
    sbuf_free(&x.log);
    compress_free(c);
    modelio_free(&teacher);
    optim_free(&opt);
    model_free(m);
    for (int i = 0; i < n_extra; i++) free(extra_names[i]);
    free(extra_names);
    free(extra_lens);
    free(specs);
    config_free_trial(&tc);
    return st;
}

nl_status worker_run_trial(int trial_id, const char *trial_yaml, const char *source,
                           const char *base_dir, const char *trial_dir, worker_cache *cache, trial_progress_fn cb,
                           void *cb_ctx, trial_result *res, nl_error *e) {
    return run_trial(trial_id, trial_yaml, source, base_dir, trial_dir, cache, cb, cb_ctx, res, NULL, e);
}

nl_status worker_check_trial(const char *trial_yaml, const char *source, const char *base_dir,
                             worker_cache *cache, long *n_params, nl_error *e) {
    trial_result res;
    long np = 0;
    run_trial(0, trial_yaml, source, base_dir, NULL, cache, NULL, NULL, &res, &np, e);
    if (res.status != TRIAL_DONE) return nl_err(e, NL_ERR_CONFIG, "%s", res.reason);
    if (n_params) *n_params = np;
    return NL_OK;
}

/* ---- result <-> JSON ---------------------------------------------------- */

void trial_result_to_json(const trial_result *r, sbuf *out) {
    sbuf_printf(out, "{\"trial\": %d, \"status\": \"%s\", \"reason\": ", r->id, trial_status_name(r->status));
    json_write_str(out, r->reason);
    sbuf_printf(out, ", \"metrics\": {");
    for (int k = 0; k < MET_COUNT; k++) {
        sbuf_printf(out, "%s\"%s\": ", k ? ", " : "", metric_name((metric_id)k));
        json_write_num(out, r->metrics[k]);
    }
    sbuf_printf(out, "}}");
}

nl_status trial_result_from_json(const char *text, trial_result *r, nl_error *e) {
    json *j = json_parse(text, e);
    if (!j) return NL_ERR_COMM;
    memset(r, 0, sizeof *r);
    r->id = (int)json_num(j, "trial", -1);
    const char *s = json_str(j, "status", "");
    r->status = !strcmp(s, "done")          ? TRIAL_DONE
                : !strcmp(s, "interrupted") ? TRIAL_INTERRUPTED
                : !strcmp(s, "pruned")      ? TRIAL_PRUNED
                                            : TRIAL_FAILED;
    snprintf(r->reason, sizeof r->reason, "%s", json_str(j, "reason", ""));
    const json *mj = json_get(j, "metrics");
    for (int k = 0; k < MET_COUNT; k++) r->metrics[k] = json_num(mj, metric_name((metric_id)k), NAN);
    json_free(j);
    if (r->id < 0) return nl_err(e, NL_ERR_COMM, "result without a trial id");
    return NL_OK;
}
