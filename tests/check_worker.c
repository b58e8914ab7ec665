/* check_worker.c — one real trial on a small generated jets set: the saved
 * model.h5, evaluated again, gives exactly the reported val_accuracy; the
 * same YAML gives bit-identical metrics twice; the pruned model's sparsity
 * meets its target; bad input becomes a FAILED result with a reason that
 * names the problem, never a crash. */
#include <check.h>
#include <math.h>
#include <string.h>
#include "nnlo/modelio.h"
#include "nnlo/worker.h"
#include "testutil.h"

static char g_dir[512];

static const char *trial_yaml(char *buf, size_t len, const char *extra_data, double lr) {
    snprintf(buf, len,
             "seed: 5\n"
             "data:\n"
             "  train: %s/jets.h5\n"
             "  validation_split: 0.25\n"
             "%s"
             "model:\n"
             "  layers:\n"
             "    - {type: dense, units: 24}\n"
             "    - {type: relu}\n"
             "    - {type: dense}\n"
             "training_parameters: {epochs: 3, pretraining_epochs: 1, fine_tuning_epochs: 1, "
             "batch_size: 64, learning_rate: %g}\n"
             "pruning_parameters: {pruning_method: pdp, sparsity: 0.7, epsilon: 0.5}\n"
             "quantization_parameters: {default_data_keep_negatives: 1, default_data_integer_bits: 3}\n",
             g_dir, extra_data, lr);
    return buf;
}

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "%s", tu_tmpdir());
    char p[600];
    nl_error e;
    snprintf(p, sizeof p, "%s/jets.h5", g_dir);
    ck_assert_msg(data_make_jets(p, 2000, 7, &e) == NL_OK, "%s", e.msg);
    log_set_level(LOG_ERROR);
}

START_TEST(test_trial_saved_model_reproduces_metrics) {
    char yaml[2048], out[600], path[700];
    trial_yaml(yaml, sizeof yaml, "", 3e-3);
    snprintf(out, sizeof out, "%s/t0", g_dir);
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    trial_result r1, r2;
    nl_error e;
    ck_assert_int_eq(worker_run_trial(0, yaml, "t.yaml", NULL, out, &cache, NULL, NULL, &r1, &e), NL_OK);
    ck_assert_msg(r1.status == TRIAL_DONE, "%s", r1.reason);
    ck_assert(r1.metrics[MET_VAL_ACCURACY] > 0.4 && r1.metrics[MET_VAL_ACCURACY] < 1.0);
    /* pdp's budgets: round(0.7 N) of all prunable weights */
    ck_assert_msg(fabs(r1.metrics[MET_SPARSITY] - 0.7) < 0.01, "sparsity %g", r1.metrics[MET_SPARSITY]);
    ck_assert_double_eq(r1.metrics[MET_REMAINING_WEIGHTS],
                        round(r1.metrics[MET_WEIGHTS] * (1 - r1.metrics[MET_SPARSITY])));
    ck_assert(r1.metrics[MET_EBOPS] > 0 && r1.metrics[MET_LUT] > 0);
    /* same YAML, same cache: identical metrics (timings aside) */
    ck_assert_int_eq(worker_run_trial(0, yaml, "t.yaml", NULL, NULL, &cache, NULL, NULL, &r2, &e), NL_OK);
    for (int k = 0; k < MET_COUNT; k++) {
        if (k == MET_TRAIN_SECONDS || k == MET_TRAIN_SAMPLES_PER_S) continue;
        ck_assert_msg(r1.metrics[k] == r2.metrics[k] || (isnan(r1.metrics[k]) && isnan(r2.metrics[k])),
                      "%s: %.17g vs %.17g", metric_name(k), r1.metrics[k], r2.metrics[k]);
    }
    /* the saved model, evaluated on the same validation rows, gives the same accuracy */
    snprintf(path, sizeof path, "%s/model.h5", out);
    modelio_file f;
    ck_assert_msg(modelio_load(path, 256, &f, &e) == NL_OK, "%s", e.msg);
    epoch_stats ev;
    const data_bundle *db = &cache.data;
    ck_assert_int_eq(nn_evaluate(f.m, db->val.x, db->val.y, db->val.n, NULL, &ev, NULL, &e), NL_OK);
    ck_assert_msg(ev.accuracy == r1.metrics[MET_VAL_ACCURACY], "reloaded %.17g vs reported %.17g",
                  ev.accuracy, r1.metrics[MET_VAL_ACCURACY]);
    ck_assert_ptr_nonnull(f.trial_yaml);
    ck_assert_str_eq(f.trial_yaml, yaml);
    modelio_free(&f);
    snprintf(path, sizeof path, "%s/history.csv", out);
    ck_assert(fs_exists(path));
    worker_cache_free(&cache);
}
END_TEST

START_TEST(test_bad_input_fails_with_reason) {
    char yaml[2048];
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    trial_result r;
    nl_error e;
    trial_yaml(yaml, sizeof yaml, "  labels: nolabels\n", 1e-3);
    ck_assert_int_eq(worker_run_trial(1, yaml, "t.yaml", NULL, NULL, &cache, NULL, NULL, &r, &e), NL_OK);
    ck_assert_int_eq(r.status, TRIAL_FAILED);
    ck_assert_msg(strstr(r.reason, "nolabels") && strstr(r.reason, "jets.h5"), "%s", r.reason);
    ck_assert_int_eq(worker_run_trial(2, "data: [", "broken.yaml", NULL, NULL, &cache, NULL, NULL, &r, &e), NL_OK);
    ck_assert_int_eq(r.status, TRIAL_FAILED);
    ck_assert_msg(strstr(r.reason, "broken.yaml:"), "%s", r.reason);
    worker_cache_free(&cache);
}
END_TEST

static int stop_at_two(void *ctx, int id, const epoch_record *r) {
    (void)ctx; (void)id;
    return r->global_epoch >= 1 ? 2 : 0;
}

START_TEST(test_interrupted_trial) {
    char yaml[2048];
    trial_yaml(yaml, sizeof yaml, "", 1e-3);
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    trial_result r;
    nl_error e;
    ck_assert_int_eq(worker_run_trial(3, yaml, "t.yaml", NULL, NULL, &cache, stop_at_two, NULL, &r, &e), NL_OK);
    ck_assert_int_eq(r.status, TRIAL_INTERRUPTED);
    /* the result travels as JSON and comes back the same */
    sbuf b = {0};
    trial_result_to_json(&r, &b);
    trial_result back;
    ck_assert_int_eq(trial_result_from_json(b.s, &back, &e), NL_OK);
    ck_assert_int_eq(back.id, 3);
    ck_assert_int_eq(back.status, TRIAL_INTERRUPTED);
    ck_assert_str_eq(back.reason, r.reason);
    sbuf_free(&b);
    worker_cache_free(&cache);
}
END_TEST

static void run(const char *yaml, const char *dir, trial_result *r) {
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    nl_error e;
    ck_assert_int_eq(worker_run_trial(0, yaml, "t.yaml", NULL, dir, &cache, NULL, NULL, r, &e), NL_OK);
    worker_cache_free(&cache);
}

/* model.init: a trial that starts from a saved model and trains 0 epochs
 * evaluates exactly like the saved model; a mismatched architecture fails
 * naming both layers. */
START_TEST(test_model_init) {
    char a[4096], b[4096], dir[600];
    snprintf(dir, sizeof dir, "%s/src", g_dir);
    const char *fmt =
        "seed: %d\n"
        "data: {train: %s/jets.h5, validation_split: 0.25}\n"
        "model:\n"
        "  %s\n"
        "  layers: [{type: dense, units: %d}, {type: relu}, {type: dense}]\n"
        "training_parameters: {epochs: %d, batch_size: 64}\n"
        "pruning_parameters: {enable_pruning: false}\n"
        "quantization_parameters: {enable_quantization: false}\n";
    snprintf(a, sizeof a, fmt, 1, g_dir, "", 24, 3);
    trial_result ra, rb;
    run(a, dir, &ra);
    ck_assert_msg(ra.status == TRIAL_DONE, "%s", ra.reason);
    char init[700];
    snprintf(init, sizeof init, "init: %s/model.h5", dir);
    snprintf(b, sizeof b, fmt, 99, g_dir, init, 24, 0); /* other seed, no training */
    run(b, NULL, &rb);
    ck_assert_msg(rb.status == TRIAL_DONE, "%s", rb.reason);
    ck_assert_msg(rb.metrics[MET_VAL_ACCURACY] == ra.metrics[MET_VAL_ACCURACY], "%.17g vs %.17g",
                  rb.metrics[MET_VAL_ACCURACY], ra.metrics[MET_VAL_ACCURACY]);
    ck_assert(rb.metrics[MET_VAL_LOSS] == ra.metrics[MET_VAL_LOSS]);
    snprintf(b, sizeof b, fmt, 99, g_dir, init, 12, 0);
    run(b, NULL, &rb);
    ck_assert_int_eq(rb.status, TRIAL_FAILED);
    ck_assert_msg(strstr(rb.reason, "model.init") && strstr(rb.reason, "does not match"), "%s", rb.reason);

    /* a CNN with BatchNorm: kernels, gamma/beta and moving statistics */
    const char *cnn =
        "seed: %d\n"
        "data: {train: %s/jets.h5, validation_split: 0.25}\n"
        "model:\n"
        "  %s\n"
        "  input_shape: [4, 4, 1]\n"
        "  layers: [{type: conv2d, filters: 3, kernel_size: 2}, {type: batchnorm}, {type: relu},\n"
        "           {type: flatten}, {type: dense}]\n"
        "training_parameters: {epochs: %d, batch_size: 64}\n"
        "pruning_parameters: {enable_pruning: false}\n"
        "quantization_parameters: {enable_quantization: false}\n";
    snprintf(dir, sizeof dir, "%s/cnn", g_dir);
    snprintf(a, sizeof a, cnn, 1, g_dir, "", 2);
    run(a, dir, &ra);
    ck_assert_msg(ra.status == TRIAL_DONE, "%s", ra.reason);
    snprintf(init, sizeof init, "init: %s/model.h5", dir);
    snprintf(b, sizeof b, cnn, 99, g_dir, init, 0);
    run(b, NULL, &rb);
    ck_assert_msg(rb.status == TRIAL_DONE, "%s", rb.reason);
    ck_assert_msg(rb.metrics[MET_VAL_LOSS] == ra.metrics[MET_VAL_LOSS], "%.17g vs %.17g",
                  rb.metrics[MET_VAL_LOSS], ra.metrics[MET_VAL_LOSS]);
}
END_TEST

/* Wanda one-shot: dense pre-training, pruning from calibration batches,
 * fine-tuning with the frozen masks: the target sparsity, and learning. */
START_TEST(test_wanda_oneshot) {
    char y[4096];
    snprintf(y, sizeof y,
             "seed: 3\n"
             "data: {train: %s/jets.h5, validation_split: 0.25}\n"
             "model: {layers: [{type: dense, units: 32}, {type: relu}, {type: dense}]}\n"
             "training_parameters: {pretraining_epochs: 3, epochs: 0, fine_tuning_epochs: 1, batch_size: 64}\n"
             "pruning_parameters: {pruning_method: wanda, sparsity: 0.6, calibration_batches: 4}\n"
             "quantization_parameters: {enable_quantization: false}\n", g_dir);
    trial_result r;
    run(y, NULL, &r);
    ck_assert_msg(r.status == TRIAL_DONE, "%s", r.reason);
    /* per output unit, each unit rounds its own share (16 inputs: 0.6 x 16
     * -> 10 pruned): within 2 points here, exact on wide layers */
    ck_assert_msg(fabs(r.metrics[MET_SPARSITY] - 0.6) < 0.02, "sparsity %g", r.metrics[MET_SPARSITY]);
    ck_assert_msg(r.metrics[MET_VAL_ACCURACY] > 0.4, "val_accuracy %g", r.metrics[MET_VAL_ACCURACY]);
    ck_assert_double_eq(r.metrics[MET_EPOCHS], 4);
}
END_TEST

Suite *make_worker_suite(void) {
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("trial");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_trial_saved_model_reproduces_metrics);
    tcase_add_test(tc, test_bad_input_fails_with_reason);
    tcase_add_test(tc, test_interrupted_trial);
    tcase_add_test(tc, test_model_init);
    tcase_add_test(tc, test_wanda_oneshot);
    suite_add_tcase(s, tc);
    return s;
}
