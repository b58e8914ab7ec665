/* check_checkpoint.c — epoch-boundary checkpoints resume bit for bit.
 *
 * For every pruning method (pdp also structured), static quantization,
 * HGQ, rounds with rewind, a BatchNorm + Dropout model and early stopping:
 * train uninterrupted on the toy problem; then, for EVERY epoch k, train
 * again, save the state after epoch k and stop, load it into a fresh
 * model / compress / optimizer / rng and finish: params, weff, masks,
 * optimizer state and the records of the later epochs must be identical
 * (memcmp / ==). Then the file framing (corrupted, truncated, wrong key)
 * and a whole trial through worker_run_trial (files and metrics). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include "nnlo/modelio.h"
#include "nnlo/worker.h"
#include "compress_fixtures.h"
#include "testutil.h"

/* ---- a network from a trial YAML (all defaults as a real trial has) -------- */

typedef struct {
    trial_config tc;
    model *m;
    compress *c;
    optim o;
    rng_t r;
} net;

static const char *g_layers_mlp =
    "model:\n  layers:\n    - {type: dense, units: 12}\n    - {type: relu}\n"
    "    - {type: dense, units: 8}\n    - {type: relu}\n    - {type: dense}\n";
static const char *g_layers_bn =
    "model:\n  layers:\n    - {type: dense, units: 12}\n    - {type: batchnorm, momentum: 0.9}\n"
    "    - {type: relu}\n    - {type: dropout, rate: 0.25}\n    - {type: dense}\n";

static const char *g_layers_conv =
    "model:\n  input_shape: [8, 1]\n  layers:\n    - {type: conv1d, filters: 4, kernel_size: 3}\n"
    "    - {type: relu}\n    - {type: maxpool1d, pool_size: 2}\n    - {type: flatten}\n"
    "    - {type: dense, units: 6}\n    - {type: relu}\n    - {type: dense}\n";

static void net_make(net *n, const char *layers, const char *rest) {
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "seed: 1\ndata: {train: none.h5}\n%s%s", layers, rest);
    nl_error e = {0};
    memset(n, 0, sizeof *n);
    ck_assert_msg(config_parse_trial(yaml, "ck.yaml", NULL, &n->tc, &e) == NL_OK, "%s\n%s", e.msg,
                  yaml);
    layer_spec *specs;
    int ns, nx;
    char **names;
    long *lens;
    ck_assert_msg(compress_model_specs(n->tc.layers, n->tc.n_layers, C, &n->tc.quant, &specs, &ns,
                                       &e) == NL_OK, "%s", e.msg);
    ck_assert_msg(compress_plan_all_params(specs, ns, D, &n->tc.prune, &n->tc.quant, &names, &lens,
                                           &nx, &e) == NL_OK, "%s", e.msg);
    n->m = model_create(specs, ns, D, n->tc.train.batch_size, (const char *const *)names, lens, nx,
                        &e);
    for (int k = 0; k < nx; k++) free(names[k]);
    free(names);
    free(lens);
    free(specs);
    ck_assert_msg(n->m != NULL, "%s", e.msg);
    rng_t ri;
    rng_seed(&ri, 11);
    model_init_params(n->m, &ri);
    ck_assert_int_eq(optim_init(&n->o, n->tc.train.optimizer == OPTIMIZER_SGD ? OPT_SGD : OPT_ADAM,
                                n->m->n_params, &e), NL_OK);
    n->o.lr = (float)n->tc.train.learning_rate;
    n->o.momentum = (float)n->tc.train.momentum;
    n->c = compress_create(n->m, &n->tc.prune, &n->tc.quant, &n->tc.train, &e);
    ck_assert_msg(n->c != NULL, "%s", e.msg);
    rng_seed(&n->r, 77);
}

static void net_free(net *n) {
    compress_free(n->c);
    optim_free(&n->o);
    model_free(n->m);
    config_free_trial(&n->tc);
}

/* ---- runs ----------------------------------------------------------------- */

enum { MAXREC = 64 };
typedef struct {
    net *n;
    int n_rec;
    epoch_record rec[MAXREC];
    int stop_after;       /* save and interrupt after this many epochs (-1: never) */
    ckpt_writer w;
} run_ctx;

static int record_cb(void *vctx, const epoch_record *r) {
    run_ctx *x = vctx;
    ck_assert_int_lt(x->n_rec, MAXREC);
    x->rec[x->n_rec++] = *r;
    if (x->n_rec == x->stop_after) {
        nl_error e = {0};
        ck_assert_msg(compress_state_save(x->n->c, &x->n->o, &x->n->r, &x->w, &e) == NL_OK, "%s",
                      e.msg);
        return 2;
    }
    return 0;
}

static nl_status train(net *n, run_ctx *x, const toy_data *td) {
    train_data d = toy_view(td);
    nl_error e = {0};
    x->n = n;
    nl_status st = compress_train(n->c, n->m, &n->o, &n->tc.train, &d, &n->r, record_cb, x, &e);
    ck_assert_msg(st == NL_OK || st == NL_ERR_INTERRUPTED, "%s", e.msg);
    return st;
}

static void same_record(const epoch_record *a, const epoch_record *b, const char *what, int k) {
    ck_assert_msg(a->stage == b->stage && a->round == b->round && a->epoch == b->epoch &&
                  a->global_epoch == b->global_epoch && a->lr == b->lr &&
                  a->train_loss == b->train_loss && a->train_accuracy == b->train_accuracy &&
                  a->val_loss == b->val_loss && a->val_accuracy == b->val_accuracy &&
                  a->sparsity == b->sparsity && a->ebops == b->ebops,
                  "%s, resumed after epoch %d: record of global epoch %d differs (train loss "
                  "%.17g vs %.17g, val loss %.17g vs %.17g, sparsity %g vs %g)",
                  what, k, b->global_epoch, a->train_loss, b->train_loss, a->val_loss, b->val_loss,
                  a->sparsity, b->sparsity);
}

static long first_diff(const float *a, const float *b, long n) {
    for (long j = 0; j < n; j++)
        if (memcmp(&a[j], &b[j], sizeof(float)) != 0) return j;
    return -1;
}

static void same_net(net *a, net *b, const char *what, int k) {
    model *ma = a->m, *mb = b->m;
    long j = first_diff(ma->params, mb->params, ma->n_params);
    ck_assert_msg(j < 0, "%s, resumed after epoch %d: params[%ld] %.9g vs %.9g", what, k, j,
                  j < 0 ? 0 : ma->params[j], j < 0 ? 0 : mb->params[j]);
    ck_assert_msg(first_diff(ma->weff, mb->weff, ma->n_params) < 0, "%s after %d: weff differs",
                  what, k);
    ck_assert_msg(first_diff(ma->state, mb->state, ma->n_state) < 0,
                  "%s after %d: BatchNorm moving statistics differ", what, k);
    ck_assert_msg(first_diff(a->o.m, b->o.m, a->o.n) < 0, "%s after %d: optimizer m differs", what,
                  k);
    if (a->o.v)
        ck_assert_msg(first_diff(a->o.v, b->o.v, a->o.n) < 0, "%s after %d: optimizer v differs",
                      what, k);
    ck_assert_int_eq(a->o.t, b->o.t);
    ck_assert_msg(memcmp(&a->r, &b->r, sizeof a->r) == 0, "%s after %d: training rng differs",
                  what, k);
    for (int l = 0; l < ma->n_layers; l++) {
        const float *x = compress_mask(a->c, l), *y = compress_mask(b->c, l);
        if (!x) continue;
        long n = (long)layer_kernel_rows(&ma->layers[l]) * layer_kernel_cols(&ma->layers[l]);
        ck_assert_msg(first_diff(x, y, n) < 0, "%s after %d: mask of layer %s differs", what, k,
                      ma->layers[l].name);
    }
}

/* Uninterrupted reference, then an interruption after every epoch k and a
 * resume in fresh objects. Returns the number of epochs. */
static double g_ref_sparsity; /* the last check_resume's final sparsity */

static int check_resume(const char *what, const char *layers, const char *rest) {
    static toy_data td;
    toy_make(&td, 5);
    net ref;
    net_make(&ref, layers, rest);
    run_ctx rx = {.stop_after = -1};
    ck_assert_int_eq(train(&ref, &rx, &td), NL_OK);
    int N = rx.n_rec;
    ck_assert_msg(N >= 2, "%s: only %d epochs", what, N);
    for (int k = 1; k <= N; k++) {
        net a, b;
        net_make(&a, layers, rest);
        run_ctx ax = {.stop_after = k};
        ck_assert_int_eq(train(&a, &ax, &td), NL_ERR_INTERRUPTED);
        ck_assert_int_eq(ax.n_rec, k);
        for (int i = 0; i < k; i++) same_record(&ax.rec[i], &rx.rec[i], what, k);
        net_free(&a);
        /* fresh objects, a different init: everything must come from the checkpoint */
        net_make(&b, layers, rest);
        rng_t other;
        rng_seed(&other, 1234);
        model_init_params(b.m, &other);
        rng_seed(&b.r, 999);
        ckpt_reader rd = {ax.w.p, ax.w.len, 0};
        nl_error e = {0};
        ck_assert_msg(compress_state_load(b.c, &b.o, &b.r, &rd, &e) == NL_OK, "%s: %s", what, e.msg);
        ck_assert_uint_eq(rd.pos, rd.len);
        int fin = -1;
        ck_assert(compress_resume_point(b.c, NULL, NULL, NULL, &fin));
        ck_assert_int_eq(fin, rx.rec[k - 1].global_epoch + 1);
        run_ctx bx = {.stop_after = -1};
        ck_assert_int_eq(train(&b, &bx, &td), NL_OK);
        ck_assert_msg(bx.n_rec == N - k, "%s: resumed after epoch %d ran %d epochs, expected %d",
                      what, k, bx.n_rec, N - k);
        for (int i = 0; i < bx.n_rec; i++) same_record(&bx.rec[i], &rx.rec[k + i], what, k);
        same_net(&ref, &b, what, k);
        ckpt_writer_free(&ax.w);
        net_free(&b);
    }
    net_free(&ref);
    g_ref_sparsity = rx.rec[N - 1].sparsity;
    return N;
}

#define TRAIN(pre, ep, rounds, fine, extra)                                                 \
    "training_parameters: {pretraining_epochs: " #pre ", epochs: " #ep ", rounds: " #rounds    \
    ", fine_tuning_epochs: " #fine ", batch_size: 32, learning_rate: 0.01" extra "}\n"
#define NOQ "quantization_parameters: {enable_quantization: false}\n"

START_TEST(test_resume_pdp_rewind_every_round) {
    /* rounds with an every-round rewind: the snapshot is in the checkpoint */
    int n = check_resume("pdp every-round rewind", g_layers_mlp,
                         TRAIN(1, 3, 2, 2, ", save_weights_epoch: 1, rewind: every-round")
                         "pruning_parameters: {pruning_method: pdp, sparsity: 0.6, epsilon: 0.4}\n"
                         NOQ);
    ck_assert_int_eq(n, 9);
}
END_TEST

START_TEST(test_resume_pdp_structured_post_training_rewind) {
    check_resume("pdp structured, post-training-stage rewind", g_layers_mlp,
                 TRAIN(1, 2, 2, 2, ", save_weights_epoch: 0, rewind: post-training-stage, "
                                   "lr_schedule: cosine")
                 "pruning_parameters: {pruning_method: pdp, sparsity: 0.5, epsilon: 0.5, "
                 "structured_pruning: true}\n" NOQ);
}
END_TEST

START_TEST(test_resume_magnitude) {
    check_resume("magnitude (per step)", g_layers_mlp,
                 TRAIN(1, 4, 1, 1, "") "pruning_parameters: {pruning_method: magnitude, "
                 "sparsity: 0.7, update_frequency: 7}\n" NOQ);
    check_resume("magnitude (per epoch)", g_layers_mlp,
                 TRAIN(0, 4, 2, 1, ", lr_schedule: multistep, milestones: [2, 5]")
                 "pruning_parameters: {pruning_method: magnitude, sparsity: 0.6, begin_epoch: 1}\n"
                 NOQ);
}
END_TEST

START_TEST(test_resume_cs) {
    check_resume("cs", g_layers_mlp,
                 TRAIN(1, 3, 2, 1, "") "pruning_parameters: {pruning_method: cs, "
                 "threshold_decay: 1.0e-4, final_temp: 200}\n" NOQ);
}
END_TEST

START_TEST(test_resume_dst) {
    check_resume("dst", g_layers_mlp,
                 TRAIN(1, 3, 1, 1, "") "pruning_parameters: {pruning_method: dst, alpha: 1.0e-4, "
                 "max_pruning_pct: 0.5}\n" NOQ);
}
END_TEST

START_TEST(test_resume_autosparse) {
    check_resume("autosparse", g_layers_mlp,
                 TRAIN(1, 4, 1, 1, "") "pruning_parameters: {pruning_method: autosparse, "
                 "threshold_init: -3, alpha: 0.5, alpha_reset_epoch: 2}\n" NOQ);
}
END_TEST

START_TEST(test_resume_wanda) {
    /* 15 batches an epoch: collection starts at batch 10, masks at batch 30,
     * so checkpoints fall inside the accumulation */
    check_resume("wanda", g_layers_mlp,
                 TRAIN(1, 4, 1, 1, "") "pruning_parameters: {pruning_method: wanda, sparsity: 0.5, "
                 "t_start_collecting_batch: 10, t_delta: 20}\n" NOQ);
}
END_TEST

START_TEST(test_resume_activation) {
    check_resume("activation_pruning (threshold)", g_layers_mlp,
                 TRAIN(1, 4, 1, 1, "") "pruning_parameters: {pruning_method: activation_pruning, "
                 "threshold: 0.3, t_start_collecting_batch: 4, t_delta: 9}\n" NOQ);
    check_resume("activation_pruning (target ramp)", g_layers_mlp,
                 TRAIN(0, 3, 2, 1, "") "pruning_parameters: {pruning_method: activation_pruning, "
                 "target_sparsity: 0.5, t_start_collecting_batch: 2, t_delta: 8}\n" NOQ);
}
END_TEST

START_TEST(test_resume_mdmm) {
    check_resume("mdmm", g_layers_mlp,
                 TRAIN(1, 3, 1, 1, "") "pruning_parameters: {pruning_method: mdmm, "
                 "target_sparsity: 0.5, constraint_lr: 0.01, epsilon: 0.01}\n" NOQ);
}
END_TEST

START_TEST(test_resume_static_quant) {
    check_resume("static quantization + pdp", g_layers_mlp,
                 TRAIN(1, 3, 1, 2, "") "pruning_parameters: {pruning_method: pdp, sparsity: 0.5, "
                 "epsilon: 0.5}\nquantization_parameters: {default_weight_integer_bits: 1, "
                 "default_weight_fractional_bits: 5, default_data_keep_negatives: 1, "
                 "default_data_integer_bits: 3, default_data_fractional_bits: 4, "
                 "granularity: per_channel}\n");
}
END_TEST

START_TEST(test_resume_hgq) {
    check_resume("HGQ without pruning", g_layers_mlp,
                 TRAIN(1, 3, 1, 1, "") "pruning_parameters: {enable_pruning: false}\n"
                 "quantization_parameters: {use_high_granularity_quantization: true, "
                 "hgq_beta: 1.0e-4, default_data_keep_negatives: 1, default_data_integer_bits: 3}\n");
}
END_TEST

START_TEST(test_resume_conv_hgq_activation) {
    /* a Conv1D model with HGQ on its kernels and activation pruning's
     * target ramp over conv channels and dense units */
    check_resume("Conv1D, HGQ, activation_pruning target", g_layers_conv,
                 TRAIN(1, 3, 1, 1, "") "pruning_parameters: {pruning_method: activation_pruning, "
                 "target_sparsity: 0.3, t_start_collecting_batch: 2, t_delta: 3}\n"
                 "quantization_parameters: {use_high_granularity_quantization: true, "
                 "hgq_beta: 1.0e-4, default_data_keep_negatives: 1, default_data_integer_bits: 3}\n");
    ck_assert_msg(g_ref_sparsity > 0.2, "sparsity %g: the target ramp never pruned", g_ref_sparsity);
}
END_TEST

START_TEST(test_resume_batchnorm_dropout) {
    check_resume("BatchNorm + Dropout, pdp", g_layers_bn,
                 TRAIN(1, 2, 2, 2, "") "pruning_parameters: {pruning_method: pdp, sparsity: 0.5, "
                 "epsilon: 0.5}\n" NOQ);
}
END_TEST

START_TEST(test_resume_early_stopping) {
    /* a high learning rate with SGD momentum: validation loss wanders, and
     * patience 3 stops fine-tuning early; resumes land before, at and after
     * epochs with since_best > 0 */
    int n = check_resume("early stopping", g_layers_mlp,
                         "training_parameters: {pretraining_epochs: 0, epochs: 2, rounds: 1, "
                         "fine_tuning_epochs: 30, batch_size: 32, learning_rate: 0.3, "
                         "optimizer: sgd, momentum: 0.9, early_stopping_patience: 3}\n"
                         "pruning_parameters: {pruning_method: pdp, sparsity: 0.5, epsilon: 0.5}\n"
                         NOQ);
    ck_assert_msg(n < 2 + 30, "patience never stopped fine-tuning (%d epochs): the test proves "
                  "nothing", n);
}
END_TEST

/* ---- the file ---------------------------------------------------------------- */

START_TEST(test_records_and_file) {
    ckpt_writer w = {0};
    float v[3] = {1.5f, -2.0f, 3.25f};
    ckpt_put(&w, "floats", v, sizeof v);
    ckpt_put_i64(&w, "count", -7);
    ckpt_put_f64(&w, "value", 0.1);
    ckpt_put(&w, "empty", NULL, 0);
    char path[600];
    snprintf(path, sizeof path, "%s/ck.bin", tu_tmpdir());
    nl_error e = {0};
    ck_assert_int_eq(ckpt_write_file(path, 42, &w, &e), NL_OK);
    unsigned char *buf;
    ckpt_reader r;
    ck_assert_msg(ckpt_read_file(path, 42, &buf, &r, &e) == NL_OK, "%s", e.msg);
    float got[3];
    int64_t i;
    double d;
    ck_assert_int_eq(ckpt_get(&r, "floats", got, sizeof got, &e), NL_OK);
    ck_assert(memcmp(got, v, sizeof v) == 0);
    ck_assert_int_eq(ckpt_get_i64(&r, "count", &i, &e), NL_OK);
    ck_assert_int_eq(i, -7);
    /* a wrong tag names both */
    ckpt_reader r2 = r;
    ck_assert_int_eq(ckpt_get_f64(&r2, "other", &d, &e), NL_ERR_DATA);
    ck_assert_msg(strstr(e.msg, "'other'") && strstr(e.msg, "'value'"), "%s", e.msg);
    ck_assert_int_eq(ckpt_get_f64(&r, "value", &d, &e), NL_OK);
    ck_assert(d == 0.1);
    /* a wrong length is refused */
    r2 = r;
    ck_assert_int_eq(ckpt_get(&r2, "empty", got, 4, &e), NL_ERR_DATA);
    ck_assert_int_eq(ckpt_get(&r, "empty", NULL, 0, &e), NL_OK);
    ck_assert_int_eq(ckpt_get(&r, "more", NULL, 0, &e), NL_ERR_DATA);
    ck_assert_msg(strstr(e.msg, "end"), "%s", e.msg);
    free(buf);
    /* wrong key */
    ck_assert_int_eq(ckpt_read_file(path, 43, &buf, &r, &e), NL_ERR_DATA);
    ck_assert_msg(strstr(e.msg, "hash"), "%s", e.msg);
    /* one flipped payload byte */
    char *raw;
    size_t n;
    ck_assert_int_eq(fs_read_all(path, &raw, &n, &e), NL_OK);
    raw[45] ^= 0x10;
    ck_assert_int_eq(fs_write_atomic(path, raw, n, &e), NL_OK);
    ck_assert_int_eq(ckpt_read_file(path, 42, &buf, &r, &e), NL_ERR_DATA);
    ck_assert_msg(strstr(e.msg, "corrupted"), "%s", e.msg);
    raw[45] ^= 0x10;
    /* truncated */
    ck_assert_int_eq(fs_write_atomic(path, raw, n - 3, &e), NL_OK);
    ck_assert_int_eq(ckpt_read_file(path, 42, &buf, &r, &e), NL_ERR_DATA);
    ck_assert_msg(strstr(e.msg, "truncated"), "%s", e.msg);
    ck_assert_int_eq(fs_write_atomic(path, raw, 20, &e), NL_OK);
    ck_assert_int_eq(ckpt_read_file(path, 42, &buf, &r, &e), NL_ERR_DATA);
    /* another format version */
    raw[8] ^= 0x7;
    ck_assert_int_eq(fs_write_atomic(path, raw, n, &e), NL_OK);
    ck_assert_int_eq(ckpt_read_file(path, 42, &buf, &r, &e), NL_ERR_DATA);
    ck_assert_msg(strstr(e.msg, "format"), "%s", e.msg);
    free(raw);
    ckpt_writer_free(&w);
}
END_TEST

START_TEST(test_load_refuses_other_layout) {
    static toy_data td;
    toy_make(&td, 5);
    net a, b;
    const char *rest = TRAIN(1, 2, 1, 1, "") "pruning_parameters: {pruning_method: pdp, "
                       "sparsity: 0.5, epsilon: 0.5}\n" NOQ;
    net_make(&a, g_layers_mlp, rest);
    run_ctx ax = {.stop_after = 2};
    ck_assert_int_eq(train(&a, &ax, &td), NL_ERR_INTERRUPTED);
    net_make(&b, g_layers_bn, rest);
    ckpt_reader rd = {ax.w.p, ax.w.len, 0};
    nl_error e = {0};
    ck_assert_int_eq(compress_state_load(b.c, &b.o, &b.r, &rd, &e), NL_ERR_DATA);
    ck_assert_msg(strstr(e.msg, "parameters"), "%s", e.msg);
    ck_assert(!compress_resume_point(b.c, NULL, NULL, NULL, NULL));
    net_free(&b);
    /* another method on the same layout: the method record refuses it */
    net_make(&b, g_layers_mlp, TRAIN(1, 2, 1, 1, "") "pruning_parameters: {pruning_method: "
             "magnitude, sparsity: 0.5}\n" NOQ);
    rd.pos = 0;
    ck_assert_int_eq(compress_state_load(b.c, &b.o, &b.r, &rd, &e), NL_ERR_DATA);
    net_free(&b);
    /* outside the callback there is nothing to save */
    ckpt_writer w = {0};
    ck_assert_int_eq(compress_state_save(a.c, &a.o, &a.r, &w, &e), NL_ERR_INVALID);
    ckpt_writer_free(&w);
    ckpt_writer_free(&ax.w);
    net_free(&a);
}
END_TEST

/* ---- a whole trial ---------------------------------------------------------- */

static char g_dir[512];

static void trial_setup(void) {
    snprintf(g_dir, sizeof g_dir, "%s", tu_tmpdir());
    char p[600];
    nl_error e;
    snprintf(p, sizeof p, "%s/jets.h5", g_dir);
    ck_assert_msg(data_make_jets(p, 1200, 7, &e) == NL_OK, "%s", e.msg);
    log_set_level(LOG_ERROR);
}

static void trial_text(char *buf, size_t len, const char *prune, const char *rewind) {
    snprintf(buf, len,
             "seed: 5\ndata:\n  train: %s/jets.h5\n  validation_split: 0.25\n"
             "model:\n  layers:\n    - {type: dense, units: 16}\n    - {type: relu}\n"
             "    - {type: dense}\n"
             "training_parameters: {epochs: 2, rounds: 2, pretraining_epochs: 1, "
             "fine_tuning_epochs: 2, batch_size: 64, learning_rate: 0.003%s}\n"
             "pruning_parameters: %s\n"
             "quantization_parameters: {default_data_keep_negatives: 1, default_data_integer_bits: 3}\n",
             g_dir, rewind, prune);
}

static int g_stop_after;
/* What the worker reports per global epoch: the best val_accuracy so far
 * (across a resume) and the val_accuracy itself; -1 = not reported. */
static double g_best[64], g_val[64];

static int stop_cb(void *ctx, int id, const epoch_record *r) {
    (void)ctx; (void)id;
    if (r->global_epoch >= 0 && r->global_epoch < 64) {
        g_best[r->global_epoch] = r->best_val_accuracy;
        g_val[r->global_epoch] = r->val_accuracy;
    }
    return g_stop_after > 0 && --g_stop_after == 0 ? 2 : 0;
}

static char *read_text(const char *dir, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *s;
    nl_error e;
    ck_assert_msg(fs_read_all(p, &s, NULL, &e) == NL_OK, "%s", e.msg);
    return s;
}

/* history.csv without its last column (seconds: wall time). */
static void strip_seconds(char *s) {
    char *out = s;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *comma = NULL;
        for (size_t k = 0; k < n; k++)
            if (line[k] == ',') comma = line + k;
        size_t keep = comma ? (size_t)(comma - line) : n;
        memmove(out, line, keep);
        out += keep;
        *out++ = '\n';
        if (!nl) break;
        line = nl + 1;
    }
    *out = '\0';
}

static void same_trial_files(const char *a, const char *b, const trial_result *ra,
                             const trial_result *rb) {
    ck_assert_int_eq(ra->status, TRIAL_DONE);
    ck_assert_int_eq(rb->status, TRIAL_DONE);
    for (int k = 0; k < MET_COUNT; k++) {
        if (k == MET_TRAIN_SECONDS || k == MET_TRAIN_SAMPLES_PER_S) continue;
        ck_assert_msg(ra->metrics[k] == rb->metrics[k] ||
                      (isnan(ra->metrics[k]) && isnan(rb->metrics[k])),
                      "%s: %.17g vs %.17g", metric_name((metric_id)k), ra->metrics[k],
                      rb->metrics[k]);
    }
    char *ha = read_text(a, "history.csv"), *hb = read_text(b, "history.csv");
    strip_seconds(ha);
    strip_seconds(hb);
    ck_assert_str_eq(ha, hb);
    free(ha);
    free(hb);
    char *la = read_text(a, "layers.csv"), *lb = read_text(b, "layers.csv");
    ck_assert_str_eq(la, lb);
    free(la);
    free(lb);
    char pa[1200], pb[1200];
    snprintf(pa, sizeof pa, "%s/model.h5", a);
    snprintf(pb, sizeof pb, "%s/model.h5", b);
    modelio_file fa, fb;
    nl_error e;
    ck_assert_msg(modelio_load(pa, 8, &fa, &e) == NL_OK, "%s", e.msg);
    ck_assert_msg(modelio_load(pb, 8, &fb, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(fa.m->n_params, fb.m->n_params);
    ck_assert(memcmp(fa.m->weff, fb.m->weff, (size_t)fa.m->n_params * sizeof(float)) == 0);
    modelio_free(&fa);
    modelio_free(&fb);
    snprintf(pb, sizeof pb, "%s/checkpoint.bin", b);
    ck_assert_msg(!fs_exists(pb), "the checkpoint of a finished trial was not removed");
}

static void run_trial(const char *yaml, const char *dir, int stop_after, trial_result *r) {
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    nl_error e = {0};
    g_stop_after = stop_after;
    for (int i = 0; i < 64; i++) g_best[i] = g_val[i] = -1;
    ck_assert_int_eq(worker_run_trial(0, yaml, "t.yaml", NULL, dir, &cache, stop_cb, NULL, r, &e), NL_OK);
    worker_cache_free(&cache);
}

START_TEST(test_trial_resumes) {
    static const char *prunes[] = {
        "{pruning_method: pdp, sparsity: 0.6, epsilon: 0.5}",
        /* Wanda's one-shot mode: phase 1 (dense), one-shot masks, phase 2 */
        "{pruning_method: wanda, sparsity: 0.5, calibration_batches: 2}",
    };
    for (int q = 0; q < 2; q++) {
        char yaml[2048], ref[700], dir[700];
        trial_text(yaml, sizeof yaml, prunes[q],
                   q ? "" : ", save_weights_epoch: 0, rewind: every-round");
        snprintf(ref, sizeof ref, "%s/ref%d", g_dir, q);
        trial_result rr, r;
        run_trial(yaml, ref, 0, &rr);
        ck_assert_msg(rr.status == TRIAL_DONE, "%s", rr.reason);
        int N = (int)rr.metrics[MET_EPOCHS];
        ck_assert_int_ge(N, 3);
        double ref_val[64];
        memcpy(ref_val, g_val, sizeof ref_val);
        int ks[3] = {1, q ? 2 : 4, N - 1};
        for (int i = 0; i < 3; i++) {
            snprintf(dir, sizeof dir, "%s/run%d_%d", g_dir, q, i);
            run_trial(yaml, dir, ks[i], &r);
            ck_assert_int_eq(r.status, TRIAL_INTERRUPTED);
            char p[800];
            snprintf(p, sizeof p, "%s/checkpoint.bin", dir);
            ck_assert_msg(fs_exists(p), "no checkpoint after an interruption");
            run_trial(yaml, dir, 0, &r);
            /* the best val_accuracy reported after the resume covers the
             * epochs before it: the running maximum of the reference run
             * (pdp: one training call, so global epochs are unique) */
            double best = -1;
            for (int ep = 0; q == 0 && ep < N && ep < 64; ep++) {
                best = fmax(best, ref_val[ep]);
                if (ep < ks[i]) ck_assert_msg(g_best[ep] == -1, "q %d k %d: epoch %d reported again (%g)", q, ks[i], ep, g_best[ep]); /* not reported again */
                else ck_assert_msg(g_best[ep] == best, "epoch %d: best %g reported, %g expected", ep,
                                   g_best[ep], best);
            }
            char *log = read_text(dir, "log");
            char want[96];
            snprintf(want, sizeof want, "resuming from its checkpoint after epoch %d", ks[i] - 1);
            ck_assert_msg(strstr(log, want), "log lacks '%s':\n%s", want, log);
            free(log);
            same_trial_files(ref, dir, &rr, &r);
        }
    }
}
END_TEST

START_TEST(test_bad_checkpoint_is_ignored) {
    char yaml[2048], ref[700], dir[700], p[800];
    trial_text(yaml, sizeof yaml, "{pruning_method: pdp, sparsity: 0.6, epsilon: 0.5}", "");
    snprintf(ref, sizeof ref, "%s/ref", g_dir);
    trial_result rr, r;
    run_trial(yaml, ref, 0, &rr);
    static const char *why[] = {"corrupted", "truncated", "another trial configuration",
                                "'optim_t' expected", "other data files"};
    for (int k = 0; k < 5; k++) {
        snprintf(dir, sizeof dir, "%s/bad%d", g_dir, k);
        snprintf(p, sizeof p, "%s/checkpoint.bin", dir);
        if (k < 2) {
            run_trial(yaml, dir, 3, &r);
            ck_assert_int_eq(r.status, TRIAL_INTERRUPTED);
            char *raw;
            size_t n;
            nl_error e;
            ck_assert_int_eq(fs_read_all(p, &raw, &n, &e), NL_OK);
            if (k == 0) raw[n / 2] ^= 0x01;
            ck_assert_int_eq(fs_write_atomic(p, raw, k == 0 ? n : n / 2, &e), NL_OK);
            free(raw);
        } else if (k == 3) {
            /* a valid header over records this build does not expect, found
             * after params were already overwritten: the trial is rebuilt */
            run_trial(yaml, dir, 4, &r);
            ck_assert_int_eq(r.status, TRIAL_INTERRUPTED);
            unsigned char *buf;
            ckpt_reader rd;
            nl_error e;
            uint64_t key = ckpt_hash(yaml, strlen(yaml));
            ck_assert_msg(ckpt_read_file(p, key, &buf, &rd, &e) == NL_OK, "%s", e.msg);
            unsigned char *at = NULL;
            for (size_t j = 0; j + 7 <= rd.len && !at; j++)
                if (memcmp(rd.p + j, "optim_t", 7) == 0) at = (unsigned char *)rd.p + j;
            ck_assert_ptr_nonnull(at);
            at[6] = 'T';
            ckpt_writer w = {malloc(rd.len), rd.len, rd.len, 0}; /* the payload, re-framed */
            ck_assert_ptr_nonnull(w.p);
            memcpy(w.p, rd.p, rd.len);
            ck_assert_int_eq(ckpt_write_file(p, key, &w, &e), NL_OK);
            ckpt_writer_free(&w);
            free(buf);
        } else if (k == 4) {
            /* the data file changed since (its modification time): the
             * checkpoint's origin differs, so it is not trusted */
            run_trial(yaml, dir, 3, &r);
            ck_assert_int_eq(r.status, TRIAL_INTERRUPTED);
            char data[700];
            snprintf(data, sizeof data, "%s/jets.h5", g_dir);
            struct stat st;
            ck_assert_int_eq(stat(data, &st), 0);
            struct timespec ts[2] = {{st.st_atime, 0}, {st.st_mtime + 100, 0}};
            ck_assert_int_eq(utimensat(AT_FDCWD, data, ts, 0), 0);
        } else {
            /* a checkpoint of another configuration (another learning rate) */
            char other[2048];
            snprintf(other, sizeof other, "%s", yaml);
            char *lr = strstr(other, "learning_rate: 0.003");
            ck_assert_ptr_nonnull(lr);
            memcpy(lr, "learning_rate: 0.009", 20);
            run_trial(other, dir, 3, &r);
            ck_assert_int_eq(r.status, TRIAL_INTERRUPTED);
        }
        run_trial(yaml, dir, 0, &r);
        char *log = read_text(dir, "log");
        ck_assert_msg(strstr(log, "checkpoint ignored") && strstr(log, why[k]), "%s", log);
        ck_assert_msg(!strstr(log, "resuming from"), "%s", log);
        free(log);
        same_trial_files(ref, dir, &rr, &r);
    }
}
END_TEST

Suite *make_checkpoint_suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resume_pdp_rewind_every_round);
    tcase_add_test(tc, test_resume_pdp_structured_post_training_rewind);
    tcase_add_test(tc, test_resume_magnitude);
    tcase_add_test(tc, test_resume_cs);
    tcase_add_test(tc, test_resume_dst);
    tcase_add_test(tc, test_resume_autosparse);
    tcase_add_test(tc, test_resume_wanda);
    tcase_add_test(tc, test_resume_activation);
    tcase_add_test(tc, test_resume_mdmm);
    tcase_add_test(tc, test_resume_static_quant);
    tcase_add_test(tc, test_resume_hgq);
    tcase_add_test(tc, test_resume_conv_hgq_activation);
    tcase_add_test(tc, test_resume_batchnorm_dropout);
    tcase_add_test(tc, test_resume_early_stopping);
    tcase_add_test(tc, test_records_and_file);
    tcase_add_test(tc, test_load_refuses_other_layout);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("trial");
    tcase_set_timeout(tt, 120);
    tcase_add_unchecked_fixture(tt, trial_setup, NULL);
    tcase_add_test(tt, test_trial_resumes);
    tcase_add_test(tt, test_bad_checkpoint_is_ignored);
    suite_add_tcase(s, tt);
    return s;
}
