/* check_config.c — the config module: defaults, every error class with its
 * exact file:line:col message, a PQuant config with all of PQuant's keys,
 * hpo_parameters -> search dimensions, dimension collection, the
 * resolve -> parse_trial round trip over random points, and data paths. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nnlo/config.h"
#include "nnlo/metrics.h"
#include "testutil.h"

#define MINIMAL "data: {train: t.h5}\nmodel: {layers: [{type: dense}]}\n"

/* Parses text as a trial (scan = 0) or scan (scan = 1) and asserts the
 * exact error message. */
static void expect_error(const char *text, int scan, const char *msg) {
    nl_error e = {0};
    nl_status st;
    if (scan) {
        scan_config s;
        st = config_parse_scan(text, "scan.yaml", "/base", &s, &e);
        if (st == NL_OK) config_free_scan(&s);
    } else {
        trial_config t;
        st = config_parse_trial(text, "scan.yaml", "/base", &t, &e);
        if (st == NL_OK) config_free_trial(&t);
    }
    ck_assert_msg(st == NL_ERR_CONFIG, "expected an error for:\n%s", text);
    ck_assert_str_eq(e.msg, msg);
}

/* Parses text, which must be valid, as a trial / a scan. */
static void parse_trial_ok(const char *text, trial_config *t) {
    nl_error e = {0};
    ck_assert_msg(config_parse_trial(text, "t.yaml", "/base", t, &e) == NL_OK, "%s\n%s", e.msg, text);
}
static void parse_scan_ok(const char *text, scan_config *s) {
    nl_error e = {0};
    ck_assert_msg(config_parse_scan(text, "s.yaml", "/base", s, &e) == NL_OK, "%s\n%s", e.msg, text);
}

START_TEST(test_defaults) {
    trial_config t;
    nl_error e = {0};
    ck_assert_int_eq(config_parse_trial(MINIMAL, "t.yaml", "/base", &t, &e), NL_OK);
    ck_assert_str_eq(t.source, "t.yaml");
    ck_assert_uint_eq(t.seed, 0);
    ck_assert_int_eq(t.data.n_train, 1);
    ck_assert_str_eq(t.data.train_files[0], "/base/t.h5");
    ck_assert_int_eq(t.data.n_val, 0);
    ck_assert_int_eq(t.data.n_test, 0);
    ck_assert_str_eq(t.data.features, "X");
    ck_assert_str_eq(t.data.labels, "y");
    ck_assert_int_eq(t.data.labels_format, LABELS_AUTO);
    ck_assert(t.data.validation_split == 0.2);
    ck_assert_int_eq(t.data.standardize, 1);
    ck_assert_int_eq(t.data.max_samples, 0);
    ck_assert_int_eq(t.n_layers, 1);
    ck_assert_int_eq(t.layers[0].type, CFG_LAYER_DENSE);
    ck_assert_int_eq(t.layers[0].units, 0);
    ck_assert_str_eq(t.layers[0].name, "");
    ck_assert_int_eq(t.kernel_initializer, 0); /* he_uniform */
    const cfg_training *tr = &t.train;
    ck_assert_int_eq(tr->epochs, 10);
    ck_assert_int_eq(tr->pretraining_epochs, 0);
    ck_assert_int_eq(tr->fine_tuning_epochs, 0);
    ck_assert_int_eq(tr->rounds, 1);
    ck_assert_int_eq(tr->save_weights_epoch, -1);
    ck_assert_int_eq(tr->rewind, REWIND_NEVER);
    ck_assert_int_eq(tr->pruning_first, 1);
    ck_assert_int_eq(tr->batch_size, 256);
    ck_assert_int_eq(tr->optimizer, OPTIMIZER_ADAM);
    ck_assert(tr->learning_rate == 1e-3);
    ck_assert(tr->momentum == 0.9);
    ck_assert(tr->l2_decay == 0);
    ck_assert_int_eq(tr->schedule, LR_CONSTANT);
    ck_assert_int_eq(tr->n_milestones, 0);
    ck_assert(tr->gamma == 0.1);
    ck_assert_int_eq(tr->cosine_tmax, 0);
    ck_assert_int_eq(tr->early_stopping_patience, 0);
    const cfg_pruning *p = &t.prune;
    ck_assert_int_eq(p->enable_pruning, 1);
    ck_assert_int_eq(p->method, PRUNE_PDP);
    ck_assert_int_eq(p->n_disable, 0);
    ck_assert(p->sparsity == 0.8);
    ck_assert(p->epsilon == 0.015);
    ck_assert(p->temperature == 1e-5);
    ck_assert(p->threshold_decay == 0);
    ck_assert_int_eq(p->structured_pruning, 0);
    ck_assert(p->initial_sparsity == 0);
    ck_assert_int_eq(p->end_epoch, -1);
    ck_assert(p->power == 3);
    ck_assert(p->final_temp == 200);
    ck_assert(p->threshold_init == 0);
    ck_assert(p->alpha == 5e-6);
    ck_assert(p->max_pruning_pct == 0.99);
    ck_assert_int_eq(p->t_delta, 100);
    ck_assert_int_eq(p->N, 0);
    ck_assert_int_eq(p->M, 0);
    ck_assert(p->threshold == 0.2);
    ck_assert(p->target_sparsity == 0.9);
    ck_assert(p->constraint_lr == 1e-3);
    const cfg_quant *q = &t.quant;
    ck_assert_int_eq(q->enable_quantization, 1);
    ck_assert_int_eq(q->weight.k, 1);
    ck_assert_int_eq(q->weight.i, 0);
    ck_assert_int_eq(q->weight.f, 7);
    ck_assert_int_eq(q->weight.overflow, FX_SAT);
    ck_assert_int_eq(q->weight.round, FX_RND);
    ck_assert_mem_eq(&q->bias, &q->weight, sizeof q->bias);
    ck_assert_int_eq(q->data.k, 0);
    ck_assert_int_eq(q->data.i, 0);
    ck_assert_int_eq(q->data.f, 7);
    ck_assert_int_eq(q->quantize_input, 1);
    ck_assert_int_eq(q->quantize_output, 0);
    ck_assert_int_eq(q->granularity, GRAN_PER_TENSOR);
    ck_assert_int_eq(q->use_hgq, 0);
    ck_assert(q->hgq_beta == 1e-5 && q->hgq_gamma == 3e-4);
    ck_assert_ptr_null(q->layer_specific);
    ck_assert_str_eq(t.fpga.part, "xcu250-figd2104-2L-e");
    ck_assert(t.fpga.clock_period_ns == 5);
    ck_assert_int_eq(t.fpga.strategy, FPGA_STRATEGY_LATENCY);
    ck_assert_int_eq(t.fpga.reuse_factor, 1);
    ck_assert_str_eq(t.distill.teacher, "");
    config_free_trial(&t);
    config_free_trial(&t); /* idempotent */
    config_free_trial(NULL);

    scan_config s;
    ck_assert_int_eq(config_parse_scan(MINIMAL, "dir/my_scan.yaml", "/base", &s, &e), NL_OK);
    ck_assert_str_eq(s.name, "my_scan");
    ck_assert_str_eq(s.output_dir, "runs/my_scan");
    ck_assert_int_eq(s.algorithm, SEARCH_RANDOM);
    ck_assert_int_eq(s.trials, 10);
    ck_assert_int_eq(s.top_k, 5);
    ck_assert_int_eq(s.n_dims, 0);
    ck_assert_int_eq(s.n_constraints, 0);
    ck_assert_str_eq(s.text, MINIMAL);
    ck_assert_int_eq(s.base.train.batch_size, 256);
    config_free_scan(&s);
    config_free_scan(NULL);
}
END_TEST

START_TEST(test_method_defaults) {
    /* per-method defaults follow PQuant's models */
    trial_config t;
    nl_error e = {0};
    ck_assert_int_eq(config_parse_trial(MINIMAL "pruning_parameters: {pruning_method: wanda}\n",
                                        "t.yaml", "/b", &t, &e), NL_OK);
    ck_assert(t.prune.sparsity == 0.9);
    config_free_trial(&t);
    ck_assert_int_eq(config_parse_trial(MINIMAL "pruning_parameters: {pruning_method: autosparse}\n",
                                        "t.yaml", "/b", &t, &e), NL_OK);
    ck_assert(t.prune.threshold_init == -5 && t.prune.alpha == 0.5);
    config_free_trial(&t);
    ck_assert_int_eq(config_parse_trial(MINIMAL "pruning_parameters: {pruning_method: cs}\n",
                                        "t.yaml", "/b", &t, &e), NL_OK);
    ck_assert(t.prune.threshold_decay == 1e-9);
    config_free_trial(&t);
    ck_assert_int_eq(config_parse_trial(MINIMAL "pruning_parameters: {pruning_method: mdmm}\n",
                                        "t.yaml", "/b", &t, &e), NL_OK);
    ck_assert(t.prune.epsilon == 1e-3);
    config_free_trial(&t);
}
END_TEST

/* model.kernel_initializer, per-method target_sparsity defaults, TPE and
 * the pruner's keys. */
START_TEST(test_newer_keys) {
    const char *names[4] = {"he_uniform", "glorot_uniform", "lecun_uniform", "PyTorch"};
    for (int k = 0; k < 4; k++) {
        char text[256];
        snprintf(text, sizeof text,
                 "data: {train: t.h5}\nmodel: {kernel_initializer: %s, layers: [{type: dense}]}\n",
                 names[k]);
        trial_config t;
        parse_trial_ok(text, &t);
        ck_assert_int_eq(t.kernel_initializer, k); /* = nn_init */
        config_free_trial(&t);
    }
    /* target_sparsity: mdmm's constraint defaults to 0.9, activation_pruning's
     * target to 0 (PQuant's threshold rule) */
    const char *methods[2] = {"mdmm", "activation_pruning"};
    const double want[2] = {0.9, 0.0};
    for (int k = 0; k < 2; k++) {
        char text[256];
        snprintf(text, sizeof text, MINIMAL "pruning_parameters: {pruning_method: %s}\n", methods[k]);
        trial_config t;
        parse_trial_ok(text, &t);
        ck_assert_msg(t.prune.target_sparsity == want[k], "%s: target_sparsity %g", methods[k],
                      t.prune.target_sparsity);
        config_free_trial(&t);
    }
    /* search.algorithm: tpe and PQuant's TPESampler; n_startup_trials */
    {
        scan_config s2;
        parse_scan_ok(MINIMAL "hpo_parameters: {sampler: {type: TPESampler}}\n", &s2);
        ck_assert_int_eq(s2.algorithm, SEARCH_TPE);
        ck_assert_int_eq(s2.n_startup_trials, 10);
        config_free_scan(&s2);
        parse_scan_ok(MINIMAL "hpo_parameters: {sampler: {type: TPESampler, params: "
                              "{n_startup_trials: 7, seed: 42}}}\n", &s2);
        ck_assert_int_eq(s2.algorithm, SEARCH_TPE);
        ck_assert_int_eq(s2.n_startup_trials, 7);
        config_free_scan(&s2);
        parse_scan_ok(MINIMAL "search: {algorithm: TPE, n_startup_trials: 4}\n", &s2);
        ck_assert_int_eq(s2.algorithm, SEARCH_TPE);
        ck_assert_int_eq(s2.n_startup_trials, 4);
        ck_assert_int_eq(s2.pruner, PRUNER_NONE);
        ck_assert_int_eq(s2.pruner_startup, 5);
        ck_assert_int_eq(s2.pruner_warmup, 0);
        ck_assert(s2.trial_timeout == 0);
        config_free_scan(&s2);
        parse_scan_ok(MINIMAL "search: {pruner: {type: median, n_startup_trials: 3, "
                              "n_warmup_steps: 2}, trial_timeout: 600}\n", &s2);
        ck_assert(s2.trial_timeout == 600);
        ck_assert_int_eq(s2.pruner, PRUNER_MEDIAN);
        ck_assert_int_eq(s2.pruner_startup, 3);
        ck_assert_int_eq(s2.pruner_warmup, 2);
        config_free_scan(&s2);
    }
    expect_error(MINIMAL "hpo_parameters: {sampler: {type: TPESampler, params: {n_startup_trials: 7}}}\n"
                         "search: {n_startup_trials: 3}\n", 1,
                 "scan.yaml:4:28: search.n_startup_trials: also set by "
                 "hpo_parameters.sampler.params.n_startup_trials (line 3); keep one");
    expect_error(MINIMAL "hpo_parameters: {sampler: {type: TPESampler, params: {n_startup_trials: -2}}}\n", 1,
                 "scan.yaml:3:73: hpo_parameters.sampler.params.n_startup_trials: expected an integer >= 0, "
                 "got '-2'");
    expect_error(MINIMAL "hpo_parameters: {sampler: {params: {n_startup_trials: 4}}}\n", 1,
                 "scan.yaml:3:37: hpo_parameters.sampler.params.n_startup_trials needs sampler.type: "
                 "TPESampler (without a type the scan searches at random)");
    expect_error(MINIMAL "search: {pruner: {type: hyperband}}\n", 1,
                 "scan.yaml:3:25: search.pruner.type: expected one of none, median, got 'hyperband'");
    /* a search dimension: the grid has 2 points */
    scan_config s;
    parse_scan_ok("data: {train: t.h5}\nsearch: {algorithm: grid}\nmodel: "
                  "{kernel_initializer: {choice: [he_uniform, pytorch]}, layers: [{type: dense}]}\n", &s);
    ck_assert_int_eq(s.n_dims, 1);
    ck_assert_int_eq(s.trials, 2);
    config_free_scan(&s);
}
END_TEST

START_TEST(test_error_messages) {
    expect_error("data: {train: t.h5}\nmodel:\n  layers: [\n    {type: dense}\n", 0,
                 "scan.yaml:5:1: did not find expected ',' or ']' (while parsing a flow sequence "
                 "that starts at line 3)");
    expect_error(MINIMAL "a: b: c\n", 0, "scan.yaml:3:5: mapping values are not allowed in this context");
    expect_error(MINIMAL "pruning_parameters:\n  pruning_method: pdp\n  sparsty: 0.5\n", 1,
                 "scan.yaml:5:3: unknown key 'sparsty' in pruning_parameters; did you mean 'sparsity'?");
    expect_error(MINIMAL "traning_parameters: {}\n", 1,
                 "scan.yaml:3:1: unknown key 'traning_parameters' at the top level; did you mean "
                 "'training_parameters'?");
    expect_error(MINIMAL "fpga: {qwerty: 1}\n", 0,
                 "scan.yaml:3:8: unknown key 'qwerty' in fpga (see docs/config.md for the keys)");
    expect_error(MINIMAL "training_parameters:\n  epochs: 3\n  batch_size: abc\n", 1,
                 "scan.yaml:5:15: training_parameters.batch_size: expected an integer >= 1, got 'abc'");
    expect_error(MINIMAL "training_parameters:\n  batch_size: 0\n", 0,
                 "scan.yaml:4:15: training_parameters.batch_size: expected an integer >= 1, got '0'");
    expect_error(MINIMAL "training_parameters:\n  epochs: 2.5\n", 0,
                 "scan.yaml:4:11: training_parameters.epochs: expected an integer >= 0, got '2.5'");
    expect_error(MINIMAL "data_x: 1\n", 0,
                 "scan.yaml:3:1: unknown key 'data_x' at the top level; did you mean 'data'?");
    expect_error(MINIMAL "data2: 1\n", 0,
                 "scan.yaml:3:1: unknown key 'data2' at the top level; did you mean 'data'?");
    expect_error("data: {train: t.h5, validation_split: 1.5}\nmodel: {layers: [{type: dense}]}\n", 0,
                 "scan.yaml:1:39: data.validation_split: expected a number in (0, 1), got '1.5'");
    expect_error(MINIMAL "training_parameters: {momentum: [0.9]}\n", 0,
                 "scan.yaml:3:33: training_parameters.momentum: expected a number in [0, 1), got a list");
    expect_error(MINIMAL "training_parameters:\n  rewind: evry-round\n", 0,
                 "scan.yaml:4:11: training_parameters.rewind: expected one of never, every-round, "
                 "post-training-stage, got 'evry-round'; did you mean 'every-round'?");
    expect_error("data: {train: t.h5}\nmodel: {kernel_initializer: torch, layers: [{type: dense}]}\n", 0,
                 "scan.yaml:2:29: model.kernel_initializer: expected one of he_uniform, glorot_uniform, "
                 "lecun_uniform, pytorch, got 'torch'; did you mean 'pytorch'?");
    expect_error(MINIMAL "quantization_parameters:\n  round_mode: ROUND\n", 0,
                 "scan.yaml:4:15: quantization_parameters.round_mode: expected one of RND, TRN, "
                 "RND_CONV, RND_ZERO, RND_MIN_INF, RND_INF, TRN_ZERO, got 'ROUND'; did you mean 'RND'?");
    expect_error("model: {layers: [{type: dense}]}\n", 0,
                 "scan.yaml: missing required section 'data' (at least `data: {train: file.h5}`)");
    expect_error("data:\n  features: X\nmodel: {layers: [{type: dense}]}\n", 0,
                 "scan.yaml:2:3: data: missing required key 'train'");
    expect_error(MINIMAL "training_parameters:\n  optimizer: {uniform: [0, 1]}\n", 1,
                 "scan.yaml:4:15: training_parameters.optimizer: {uniform: [lo, hi]} needs a numeric "
                 "key, but training_parameters.optimizer takes one of adam, sgd; use {choice: [...]}");
    expect_error(MINIMAL "training_parameters:\n  learning_rate: {uniform: [0.1, 0.01]}\n", 1,
                 "scan.yaml:4:28: training_parameters.learning_rate: uniform needs lo < hi, got [0.1, 0.01]");
    expect_error(MINIMAL "training_parameters:\n  learning_rate: {log_uniform: [-1, 0.01]}\n", 1,
                 "scan.yaml:4:33: training_parameters.learning_rate: expected a number > 0, got '-1'");
    expect_error(MINIMAL "training_parameters:\n  batch_size: {choice: [32, 0]}\n", 1,
                 "scan.yaml:4:29: training_parameters.batch_size: expected an integer >= 1, got '0'");
    expect_error(MINIMAL "training_parameters:\n  batch_size: {unifrom: [32, 64]}\n", 1,
                 "scan.yaml:4:16: training_parameters.batch_size: unknown search dimension key "
                 "'unifrom'; did you mean 'uniform'?");
    expect_error(MINIMAL "training_parameters:\n  learning_rate: {uniform: [0.001, 0.1]}\n", 0,
                 "scan.yaml:4:18: training_parameters.learning_rate is a search dimension ({uniform: "
                 "...}), but a trial config takes single values; use `nnlo-c scan` to search, or "
                 "write one value");
    expect_error(MINIMAL "seed: {choice: [1, 2]}\n", 1,
                 "scan.yaml:3:7: seed cannot be a search dimension; write one value");
    expect_error(MINIMAL "training_parameters:\n  label_smoothing: 0.1\n", 0,
                 "scan.yaml:4:20: training_parameters.label_smoothing: label smoothing is not "
                 "supported yet; set it to 0 or remove it");
    expect_error(MINIMAL "fitcompress_parameters:\n  enable_fitcompress : true\n", 0,
                 "scan.yaml:4:24: fitcompress_parameters.enable_fitcompress: FITCompress is not "
                 "supported by nnlo-c; set it to false (the other fitcompress keys are ignored)");
    expect_error(MINIMAL "training_parameters: {lr: 0.1, learning_rate: 0.2}\n", 0,
                 "scan.yaml:3:32: training_parameters: 'lr' and 'learning_rate' are the same "
                 "setting; give only one");
    expect_error(MINIMAL "constraints: {dps: 3}\n", 1,
                 "scan.yaml:3:15: unknown metric 'dps' in constraints (any metric of results.csv: "
                 "dsp, lut, ff, bram18, latency_cycles, latency_ns, ebops, remaining_weights, "
                 "val_accuracy, ...); did you mean 'dsp'?");
    expect_error(MINIMAL "search: {objective: val_acuracy}\n", 1,
                 "scan.yaml:3:21: search.objective: expected one of val_accuracy, val_loss, "
                 "test_accuracy, test_loss, sparsity, weights, remaining_weights, ebops, dsp, lut, ff, "
                 "bram18, latency_cycles, latency_ns, fits, epochs, train_seconds, "
                 "train_samples_per_s, got 'val_acuracy'; did you mean 'val_accuracy'?");
    expect_error(MINIMAL "hpo_parameters: {sampler: {type: CmaEsSampler}}\n", 1,
                 "scan.yaml:3:34: hpo_parameters.sampler.type: 'CmaEsSampler' is not supported; "
                 "nnlo-c supports RandomSampler, GridSampler and TPESampler (or search.algorithm: "
                 "random | grid | tpe)");
    expect_error(MINIMAL "hpo_parameters: {sampler: {type: TPESampler}}\nsearch: {algorithm: grid}\n", 1,
                 "scan.yaml:4:21: search.algorithm: 'grid' contradicts hpo_parameters.sampler.type "
                 "'TPESampler' (line 3); keep one");
    expect_error(MINIMAL "hpo_parameters: {num_trials: 3}\nsearch: {trials: 4}\n", 1,
                 "scan.yaml:4:18: search.trials: the number of trials is also set by "
                 "hpo_parameters.num_trials (line 3); keep one");
    expect_error(MINIMAL "quantization_parameters: {default_weight_integer_bits: 20}\n", 0,
                 "scan.yaml:3:56: quantization_parameters: the weight format (keep_negatives 1, "
                 "integer_bits 20, fractional_bits 7) is 28 bits wide; nnlo-c supports 1 to 24 bits "
                 "(values are carried in float)");
    expect_error("data: {train: t.h5}\nmodel:\n  layers:\n    - {type: dense}\n    - {type: relu, units: 3}\n", 0,
                 "scan.yaml:5:27: model.layers[1].units: only dense layers have units");
    expect_error("data: {train: t.h5}\nmodel:\n  layers:\n    - {type: relu}\n", 0,
                 "scan.yaml:4:5: model.layers: needs at least one dense layer");
    expect_error("data: {train: t.h5}\nmodel:\n  layers:\n    - {type: dense}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:7: model.layers[0].units: expected an integer >= 1 (only the last dense "
                 "layer may leave units 0 = number of classes)");
    expect_error(MINIMAL "pruning_parameters: {N: 2, M: null}\n", 0,
                 "scan.yaml:3:25: pruning_parameters: N and M go together (N:M sparsity); set both or "
                 "neither (null)");
    expect_error(MINIMAL "pruning_parameters: {pruning_method: fitcompress}\n", 0,
                 "scan.yaml:3:38: pruning_parameters.pruning_method: 'fitcompress' is not supported by "
                 "nnlo-c yet; use one of pdp, magnitude, cs, dst, autosparse, wanda, "
                 "activation_pruning, mdmm");
    expect_error(MINIMAL "training_parameters: {lr_schedule: multistep}\n", 0,
                 "scan.yaml:3:36: training_parameters.lr_schedule: multistep needs milestones: [epoch, ...]");
    expect_error(MINIMAL "model: {}\n", 0, "scan.yaml:3:1: duplicate key 'model' (first at line 2)");
    expect_error(MINIMAL "x: &a 1\ny: *a\n", 0,
                 "scan.yaml:4:4: YAML aliases (*name) are not supported; write the value out");
    expect_error("- 1\n- 2\n", 0, "scan.yaml:1:1: the file must be a map of sections (key: value), not a list");
    expect_error(MINIMAL "training_parameters: 5\n", 0,
                 "scan.yaml:3:22: training_parameters: expected a map of settings (key: value), got '5'");
    expect_error("", 0, "scan.yaml: missing required section 'data' (at least `data: {train: file.h5}`)");
}
END_TEST

/* A PQuant config_pdp.yaml-style file with every key PQuant's shipped
 * configs use (written here, values changed so defaults cannot pass). */
static const char *pquant_pdp =
    "data: {train: train.h5}\n"
    "model: {layers: [{type: dense, units: 32}, {type: relu}, {type: dense, units: 5}]}\n"
    "pruning_parameters:\n"
    "  disable_pruning_for_layers: [fc2] # kept dense\n"
    "  enable_pruning: true\n"
    "  epsilon: 0.02\n"
    "  pruning_method: pdp\n"
    "  sparsity: 0.75\n"
    "  temperature: 1.0e-04\n"
    "  threshold_decay: 0.\n"
    "  structured_pruning: false\n"
    "quantization_parameters:\n"
    "  default_weight_keep_negatives: 1.\n"
    "  default_weight_integer_bits: 1.\n"
    "  default_weight_fractional_bits: 6.\n"
    "  default_data_keep_negatives: 0.\n"
    "  default_data_integer_bits: 2.\n"
    "  default_data_fractional_bits: 5.\n"
    "  dynamic_data_quantization: false\n"
    "  granularity: \"per_tensor\"\n"
    "  quantize_input: true\n"
    "  quantize_output: true\n"
    "  enable_quantization: true\n"
    "  hgq_beta: 2e-5\n"
    "  hgq_gamma: 0.0004\n"
    "  hgq_heterogeneous: True\n"
    "  layer_specific: {}\n"
    "  use_high_granularity_quantization: false\n"
    "  use_real_tanh: false\n"
    "  use_relu_multiplier: false\n"
    "  use_symmetric_quantization: false\n"
    "  overflow_mode_parameters: SAT_SYM\n"
    "  overflow_mode_data: WRAP\n"
    "  round_mode: RND_CONV\n"
    "fitcompress_parameters:\n"
    "  enable_fitcompress : false\n"
    "  optimize_quantization : true\n"
    "  quantization_schedule : [7.,4.,3.,2.,1.]\n"
    "  pruning_schedule : {start : 0, end : -2, steps : 40}\n"
    "  compression_goal : 0.10\n"
    "  optimize_pruning : true\n"
    "  greedy_astar : true\n"
    "  approximate : true\n"
    "  f_lambda : 1\n"
    "training_parameters:\n"
    "  epochs: 100\n"
    "  fine_tuning_epochs: 20\n"
    "  pretraining_epochs: 1\n"
    "  pruning_first: false\n"
    "  rewind: post-training-stage\n"
    "  rounds: 2\n"
    "  save_weights_epoch: -1.0\n"
    "hpo_parameters:\n"
    "    experiment_name: experiment_name\n"
    "    model_name: jet_tagger\n"
    "    num_trials: 1\n"
    "    sampler:\n"
    "      type: RandomSampler\n"
    "    hyperparameter_search:\n"
    "      numerical: {}\n"
    "      categorical: {}\n";

START_TEST(test_pquant_pdp) {
    trial_config t;
    nl_error e = {0};
    ck_assert_msg(config_parse_trial(pquant_pdp, "pdp.yaml", "/b", &t, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(t.n_layers, 3);
    ck_assert_int_eq(t.layers[0].units, 32);
    ck_assert_int_eq(t.layers[1].type, CFG_LAYER_RELU);
    ck_assert_int_eq(t.layers[2].units, 5);
    ck_assert_int_eq(t.prune.n_disable, 1);
    ck_assert_str_eq(t.prune.disable_layers[0], "fc2");
    ck_assert(t.prune.epsilon == 0.02 && t.prune.sparsity == 0.75 && t.prune.temperature == 1e-4);
    ck_assert_int_eq(t.prune.method, PRUNE_PDP);
    const cfg_quant *q = &t.quant;
    ck_assert_int_eq(q->weight.k, 1);
    ck_assert_int_eq(q->weight.i, 1);
    ck_assert_int_eq(q->weight.f, 6);
    ck_assert_int_eq(q->weight.overflow, FX_SAT_SYM);
    ck_assert_int_eq(q->weight.round, FX_RND_CONV);
    ck_assert_int_eq(q->bias.f, 6);
    ck_assert_int_eq(q->bias.overflow, FX_SAT_SYM);
    ck_assert_int_eq(q->data.k, 0);
    ck_assert_int_eq(q->data.i, 2);
    ck_assert_int_eq(q->data.f, 5);
    ck_assert_int_eq(q->data.overflow, FX_WRAP);
    ck_assert_int_eq(q->data.round, FX_RND_CONV);
    ck_assert_int_eq(q->quantize_output, 1);
    ck_assert(q->hgq_beta == 2e-5 && q->hgq_gamma == 4e-4);
    ck_assert_ptr_null(q->layer_specific);
    ck_assert_int_eq(t.train.epochs, 100);
    ck_assert_int_eq(t.train.fine_tuning_epochs, 20);
    ck_assert_int_eq(t.train.pretraining_epochs, 1);
    ck_assert_int_eq(t.train.pruning_first, 0);
    ck_assert_int_eq(t.train.rewind, REWIND_POST_TRAINING);
    ck_assert_int_eq(t.train.rounds, 2);
    ck_assert_int_eq(t.train.save_weights_epoch, -1);
    config_free_trial(&t);

    /* the same file as a scan: hpo_parameters gives trials and the sampler */
    scan_config s;
    ck_assert_msg(config_parse_scan(pquant_pdp, "pdp.yaml", "/b", &s, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(s.trials, 1);
    ck_assert_int_eq(s.algorithm, SEARCH_RANDOM);
    ck_assert_int_eq(s.n_dims, 0);
    config_free_scan(&s);
}
END_TEST

/* Every other key of PQuant's shipped configs (cs, dst, autosparse, wanda,
 * activation pruning, mdmm, finetuning) is accepted and lands in its field. */
START_TEST(test_pquant_other_methods) {
    static const char *texts[] = {
        MINIMAL "pruning_parameters: {disable_pruning_for_layers: [], enable_pruning: true, "
        "final_temp: 150, pruning_method: cs, threshold_decay: 1.0e-09, threshold_init: 0.5}\n",
        MINIMAL "pruning_parameters: {alpha: 5.0e-06, max_pruning_pct: 0.95, pruning_method: dst, "
        "threshold_decay: 0.0, threshold_init: 0.0, threshold_type: weightwise}\n",
        MINIMAL "pruning_parameters: {alpha: 0.25, alpha_reset_epoch: 80, autotune_epochs: 12, "
        "backward_sparsity: true, pruning_method: autosparse, threshold_init: -4.0, "
        "threshold_type: channelwise}\n",
        MINIMAL "pruning_parameters: {calculate_pruning_budget: False, M: null, N: null, "
        "pruning_method: wanda, sparsity: 0.85, t_delta: 50, t_start_collecting_batch: 70}\n",
        MINIMAL "pruning_parameters: {pruning_method: activation_pruning, threshold: 0.3, "
        "threshold_decay: 0., t_delta: 60, t_start_collecting_batch: 40}\n",
        MINIMAL "pruning_parameters:\n  pruning_method: mdmm\n  constraint_type: \"LessThanOrEqual\"\n"
        "  target_value: 0.5\n  metric_type: \"StructuredSparsity\"\n  target_sparsity: 0.7\n  rf: 2\n"
        "  epsilon: 1.0e-03\n  scale: 5.0\n  damping: 2.0\n  use_grad: false\n"
        "  l0_mode: \"smooth\" # 'coarse' or 'smooth'\n  scale_mode: sum\n  constraint_lr: 2.0e-3\n",
        MINIMAL "quantization_parameters:\n  default_integer_bits: 3.\n  default_fractional_bits: 4.\n"
        "  default_data_fractional_bits: 6\n  layer_specific:\n    layer3.0.conv1:\n      integer_bits: 4\n"
        "      fractional_bits: 6\n"
        "training_parameters:\n   batch_size: 128\n   optimizer: sgd\n   plot_frequency: 100\n"
        "   label_smoothing: 0\n   dataset: \"cifar10\"\n   l2_decay:  0.001\n   momentum:  0.8\n"
        "   lr_schedule: \"cosine\"\n   milestones: [30, 80]\n   gamma: 0.2\n   cosine_tmax: 200\n"
        "   learning_rate: 0.002\n   prune_ratio: 10\n   default_integer_bits: 0\n   epochs: 2\n"
        "hpo_parameters:\n    experiment_name: x\n    epochs: 2\n    model_name: resnet18\n",
    };
    trial_config t;
    nl_error e = {0};
    for (int i = 0; i < (int)(sizeof texts / sizeof texts[0]); i++) {
        ck_assert_msg(config_parse_trial(texts[i], "p.yaml", "/b", &t, &e) == NL_OK, "%d: %s", i, e.msg);
        const cfg_pruning *p = &t.prune;
        const cfg_quant *q = &t.quant;
        switch (i) {
        case 0: ck_assert(p->method == PRUNE_CS && p->final_temp == 150 && p->threshold_init == 0.5 &&
                          p->threshold_decay == 1e-9); break;
        case 1: ck_assert(p->method == PRUNE_DST && p->alpha == 5e-6 && p->max_pruning_pct == 0.95 &&
                          p->threshold_type == THRESH_WEIGHTWISE); break;
        case 2: ck_assert(p->method == PRUNE_AUTOSPARSE && p->alpha == 0.25 && p->alpha_reset_epoch == 80 &&
                          p->autotune_epochs == 12 && p->backward_sparsity == 1 && p->threshold_init == -4);
            break;
        case 3: ck_assert(p->method == PRUNE_WANDA && p->calculate_pruning_budget == 0 && p->N == 0 &&
                          p->M == 0 && p->sparsity == 0.85 && p->t_delta == 50 &&
                          p->t_start_collecting_batch == 70); break;
        case 4: ck_assert(p->method == PRUNE_ACTIVATION && p->threshold == 0.3 && p->t_delta == 60); break;
        case 5: ck_assert(p->method == PRUNE_MDMM && p->constraint_type == MDMM_LEQ && p->target_value == 0.5 &&
                          p->metric_type == MDMM_STRUCTURED && p->target_sparsity == 0.7 && p->rf == 2 &&
                          p->scale == 5 && p->damping == 2 && p->l0_mode == MDMM_L0_SMOOTH &&
                          p->scale_mode == MDMM_SCALE_SUM && p->constraint_lr == 2e-3); break;
        case 6:
            /* the older keys set weights and data; the specific data key wins */
            ck_assert(q->weight.i == 3 && q->weight.f == 4 && q->data.i == 3 && q->data.f == 6);
            ck_assert_ptr_nonnull(q->layer_specific);
            ck_assert_str_eq(q->layer_specific, "layer3.0.conv1:\n  integer_bits: 4\n  fractional_bits: 6\n");
            ck_assert(t.train.batch_size == 128 && t.train.optimizer == OPTIMIZER_SGD &&
                      t.train.l2_decay == 0.001 && t.train.momentum == 0.8 && t.train.schedule == LR_COSINE &&
                      t.train.n_milestones == 2 && t.train.milestones[1] == 80 && t.train.gamma == 0.2 &&
                      t.train.cosine_tmax == 200 && t.train.learning_rate == 0.002 && t.train.epochs == 2);
            break;
        }
        config_free_trial(&t);
    }
}
END_TEST

static const search_dim *find_dim(const scan_config *s, const char *path) {
    for (int i = 0; i < s->n_dims; i++)
        if (!strcmp(s->dims[i].path, path)) return &s->dims[i];
    ck_abort_msg("no dimension %s", path);
    return NULL;
}

START_TEST(test_hpo_mapping) {
    const char *text =
        MINIMAL
        "training_parameters:\n"
        "  batch_size: 64\n"
        "hpo_parameters:\n"
        "  num_trials: 7\n"
        "  sampler: {type: GridSampler}\n"
        "  hyperparameter_search:\n"
        "    numerical:\n"
        "      learning_rate: [1e-5, 1e-3, 0.2]\n"
        "      batch_size: [16, 256, 32]\n"
        "      default_integer_bits: [0, 8, 2]\n"
        "      sparsity: [0.5, 0.9]\n"
        "      epochs: [5, 20]\n"
        "    categorical:\n"
        "      lr_schedule: [\"cosine\", \"constant\"]\n";
    scan_config s;
    nl_error e = {0};
    ck_assert_msg(config_parse_scan(text, "h.yaml", "/b", &s, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(s.trials, 7);
    ck_assert_int_eq(s.algorithm, SEARCH_GRID);
    ck_assert_int_eq(s.n_dims, 6);
    const search_dim *d = find_dim(&s, "training_parameters.learning_rate");
    ck_assert_int_eq(d->kind, DIM_CHOICE);
    ck_assert_int_eq(d->n_choices, 1); /* 1e-5 + 0.2 > 1e-3 */
    ck_assert(d->choices[0].num == 1e-5);
    d = find_dim(&s, "training_parameters.batch_size"); /* replaces the section's 64 */
    ck_assert_int_eq(d->kind, DIM_CHOICE);
    ck_assert_int_eq(d->n_choices, 8);
    for (int i = 0; i < 8; i++) ck_assert(d->choices[i].num == 16 + 32 * i);
    ck_assert_int_eq(d->line, 11);
    ck_assert_int_eq(d->col, 19);
    ck_assert_int_eq(s.base.train.batch_size, 16);
    d = find_dim(&s, "quantization_parameters.default_integer_bits");
    ck_assert_int_eq(d->n_choices, 5);
    ck_assert(d->choices[4].num == 8);
    ck_assert_int_eq(s.base.quant.weight.i, 0);
    d = find_dim(&s, "pruning_parameters.sparsity");
    ck_assert_int_eq(d->kind, DIM_UNIFORM);
    ck_assert(d->lo == 0.5 && d->hi == 0.9 && !d->is_int);
    d = find_dim(&s, "training_parameters.epochs");
    ck_assert_int_eq(d->kind, DIM_INT);
    ck_assert(d->lo == 5 && d->hi == 20 && d->is_int);
    d = find_dim(&s, "training_parameters.lr_schedule");
    ck_assert_int_eq(d->n_choices, 2);
    ck_assert_int_eq(d->choices[0].kind, VAL_STR);
    ck_assert_str_eq(d->choices[1].str, "constant");

    /* a point: the trial shows the values in the sections, hpo_parameters gone */
    cfg_value v[6];
    for (int i = 0; i < s.n_dims; i++) {
        const search_dim *sd = &s.dims[i];
        if (sd->kind == DIM_CHOICE) v[i] = sd->choices[sd->n_choices - 1];
        else { v[i].kind = VAL_NUM; v[i].num = sd->hi; }
    }
    char *y = config_resolve(&s, v, 99, &e);
    ck_assert_msg(y != NULL, "%s", e.msg);
    ck_assert_ptr_null(strstr(y, "hpo_parameters"));
    trial_config t;
    ck_assert_msg(config_parse_trial(y, "trial.yaml", NULL, &t, &e) == NL_OK, "%s\n%s", e.msg, y);
    ck_assert_int_eq(t.train.batch_size, 240);
    ck_assert_int_eq(t.train.epochs, 20);
    ck_assert_int_eq(t.train.schedule, LR_CONSTANT);
    ck_assert(t.prune.sparsity == 0.9);
    ck_assert_int_eq(t.quant.weight.i, 8);
    ck_assert_int_eq(t.quant.data.i, 8);
    ck_assert_uint_eq(t.seed, 99);
    config_free_trial(&t);
    free(y);
    config_free_scan(&s);

    expect_error(MINIMAL "hpo_parameters:\n  hyperparameter_search:\n    numerical:\n      learnig_rate: [1, 2]\n", 1,
                 "scan.yaml:6:7: hpo_parameters.hyperparameter_search.numerical: unknown hyperparameter "
                 "'learnig_rate' (not a key of training_parameters, pruning_parameters or "
                 "quantization_parameters); did you mean 'learning_rate'?");
    expect_error(MINIMAL "training_parameters: {epochs: {int: [1, 3]}}\n"
                 "hpo_parameters: {hyperparameter_search: {numerical: {epochs: [1, 5]}}}\n", 1,
                 "scan.yaml:4:62: hpo_parameters: training_parameters.epochs is already a search "
                 "dimension (line 3); set it in one place");
    expect_error(MINIMAL "hpo_parameters: {hyperparameter_search: {numerical: {optimizer: [1, 5]}}}\n", 1,
                 "scan.yaml:3:65: hpo_parameters.hyperparameter_search.numerical.optimizer: "
                 "training_parameters.optimizer is not a number; put it under categorical");
    /* hpo dimensions in a trial config are refused like any dimension */
    expect_error(MINIMAL "hpo_parameters: {hyperparameter_search: {categorical: {optimizer: [adam, sgd]}}}\n", 0,
                 "scan.yaml:3:67: training_parameters.optimizer is a search dimension ({choice: ...}), "
                 "but a trial config takes single values; use `nnlo-c scan` to search, or write one value");
}
END_TEST

static const char *scan_text =
    "name: rt\n"
    "seed: 5\n"
    "data:\n"
    "  train: [a.h5, ./sub/b.h5]\n"
    "  features: {choice: [\"X: 1\", \"yes\", plain, \"#x\"]}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: dense, units: {int: [4, 64]}, name: fc1}\n"
    "    - {type: relu}\n"
    "    - {type: dense, units: 10}\n"
    "training_parameters:\n"
    "  learning_rate: {log_uniform: [1.0e-5, 0.1]}\n"
    "  momentum: {uniform: [0.0, 0.99], grid_points: 4}\n"
    "  batch_size: {choice: [32, 64, 128]}\n"
    "  optimizer: {choice: [adam, sgd]}\n"
    "  pruning_first: {choice: [true, false]}\n"
    "  epochs: 2\n"
    "pruning_parameters:\n"
    "  pruning_method: {choice: [magnitude, pdp, wanda]}\n"
    "  sparsity: {uniform: [0.1, 0.95]}\n"
    "quantization_parameters:\n"
    "  default_weight_fractional_bits: {int: [2, 10]}\n"
    "  round_mode: {choice: [RND, TRN, RND_CONV]}\n"
    "fpga:\n"
    "  clock_period: {uniform: [2.5, 10]}\n"
    "  strategy: {choice: [Latency, resource]}\n"
    "search: {algorithm: random, trials: 20}\n"
    "constraints: {dsp: 100, lut: 2e4}\n";

START_TEST(test_dims_collected) {
    scan_config s;
    nl_error e = {0};
    ck_assert_msg(config_parse_scan(scan_text, "rt.yaml", "/proj", &s, &e) == NL_OK, "%s", e.msg);
    static const struct { const char *path; dim_kind kind; int is_int, n, line, col; } want[] = {
        {"data.features", DIM_CHOICE, 0, 4, 5, 13},
        {"model.layers[0].units", DIM_INT, 1, 0, 8, 28},
        {"training_parameters.learning_rate", DIM_LOG_UNIFORM, 0, 0, 12, 18},
        {"training_parameters.momentum", DIM_UNIFORM, 0, 0, 13, 13},
        {"training_parameters.batch_size", DIM_CHOICE, 1, 3, 14, 15},
        {"training_parameters.optimizer", DIM_CHOICE, 0, 2, 15, 14},
        {"training_parameters.pruning_first", DIM_CHOICE, 0, 2, 16, 18},
        {"pruning_parameters.pruning_method", DIM_CHOICE, 0, 3, 19, 19},
        {"pruning_parameters.sparsity", DIM_UNIFORM, 0, 0, 20, 13},
        {"quantization_parameters.default_weight_fractional_bits", DIM_INT, 1, 0, 22, 35},
        {"quantization_parameters.round_mode", DIM_CHOICE, 0, 3, 23, 15},
        {"fpga.clock_period", DIM_UNIFORM, 0, 0, 25, 17},
        {"fpga.strategy", DIM_CHOICE, 0, 2, 26, 13},
    };
    int nw = (int)(sizeof want / sizeof want[0]);
    ck_assert_int_eq(s.n_dims, nw);
    for (int i = 0; i < nw; i++) {
        const search_dim *d = &s.dims[i];
        ck_assert_str_eq(d->path, want[i].path);
        ck_assert_int_eq(d->kind, want[i].kind);
        ck_assert_int_eq(d->is_int, want[i].is_int);
        ck_assert_int_eq(d->n_choices, want[i].n);
        ck_assert_msg(d->line == want[i].line && d->col == want[i].col, "%s at %d:%d", d->path, d->line,
                      d->col);
    }
    ck_assert(s.dims[1].lo == 4 && s.dims[1].hi == 64);
    ck_assert(s.dims[2].lo == 1e-5 && s.dims[2].hi == 0.1);
    ck_assert_int_eq(s.dims[3].grid_points, 4);
    ck_assert_int_eq(s.dims[8].grid_points, 3);
    ck_assert_str_eq(s.dims[0].choices[0].str, "X: 1");
    ck_assert_int_eq(s.dims[6].choices[1].kind, VAL_BOOL);
    ck_assert(s.dims[6].choices[1].num == 0);
    ck_assert_int_eq(s.dims[4].choices[2].kind, VAL_NUM);
    ck_assert(s.dims[4].choices[2].num == 128);
    /* scan-level settings */
    ck_assert_str_eq(s.name, "rt");
    ck_assert_uint_eq(s.seed, 5);
    ck_assert_int_eq(s.trials, 20);
    ck_assert_int_eq(s.n_constraints, 2);
    ck_assert_str_eq(s.constraints[1].metric, "lut");
    ck_assert(s.constraints[1].max == 2e4);
    /* base = every dimension at its first value */
    const trial_config *b = &s.base;
    ck_assert_str_eq(b->data.features, "X: 1");
    ck_assert_int_eq(b->layers[0].units, 4);
    ck_assert(b->train.learning_rate == 1e-5);
    ck_assert(b->train.momentum == 0);
    ck_assert_int_eq(b->train.batch_size, 32);
    ck_assert_int_eq(b->train.pruning_first, 1);
    ck_assert_int_eq(b->prune.method, PRUNE_MAGNITUDE);
    ck_assert_int_eq(b->quant.weight.f, 2);
    ck_assert_int_eq(b->fpga.strategy, FPGA_STRATEGY_LATENCY);
    ck_assert_uint_eq(b->seed, 5);
    config_free_scan(&s);

    /* grid: trials = the grid's size unless given */
    ck_assert_int_eq(config_parse_scan(MINIMAL "search: {algorithm: grid}\ntraining_parameters: {epochs: "
                                       "{int: [1, 3]}, lr: {uniform: [0.1, 0.2], grid_points: 5}, "
                                       "optimizer: {choice: [adam, sgd]}}\n",
                                       "g.yaml", "/b", &s, &e), NL_OK);
    ck_assert_int_eq(s.trials, 3 * 5 * 2);
    config_free_scan(&s);
}
END_TEST

START_TEST(test_resolve_round_trip) {
    scan_config s;
    nl_error e = {0};
    ck_assert_msg(config_parse_scan(scan_text, "rt.yaml", "/proj", &s, &e) == NL_OK, "%s", e.msg);
    rng_t r;
    rng_seed(&r, 2024);
    cfg_value v[32];
    for (int point = 0; point < 25; point++) {
        for (int i = 0; i < s.n_dims; i++) {
            const search_dim *d = &s.dims[i];
            memset(&v[i], 0, sizeof v[i]);
            if (d->kind == DIM_CHOICE) v[i] = d->choices[rng_below(&r, (uint64_t)d->n_choices)];
            else if (d->kind == DIM_INT) {
                v[i].kind = VAL_NUM;
                v[i].num = d->lo + (double)rng_below(&r, (uint64_t)(d->hi - d->lo + 1));
            } else if (d->kind == DIM_UNIFORM) {
                v[i].kind = VAL_NUM;
                v[i].num = d->lo + rng_uniform(&r) * (d->hi - d->lo);
            } else {
                v[i].kind = VAL_NUM;
                v[i].num = exp(log(d->lo) + rng_uniform(&r) * (log(d->hi) - log(d->lo)));
            }
        }
        uint64_t seed = rng_derive(5, (uint64_t)point);
        char *y = config_resolve(&s, v, seed, &e);
        ck_assert_msg(y != NULL, "%s", e.msg);
        ck_assert_ptr_null(strstr(y, "search:"));
        ck_assert_ptr_null(strstr(y, "constraints:"));
        trial_config t;
        ck_assert_msg(config_parse_trial(y, "trial.yaml", "/elsewhere", &t, &e) == NL_OK, "%s\n%s", e.msg, y);
        ck_assert_uint_eq(t.seed, seed);
        ck_assert_str_eq(t.name, "rt");
        ck_assert_str_eq(t.data.features, v[0].str);
        ck_assert_int_eq(t.layers[0].units, (int)v[1].num);
        ck_assert_str_eq(t.layers[0].name, "fc1");
        ck_assert_int_eq(t.layers[2].units, 10);
        ck_assert(t.train.learning_rate == v[2].num);
        ck_assert(t.train.momentum == v[3].num);
        ck_assert_int_eq(t.train.batch_size, (int)v[4].num);
        ck_assert_int_eq(t.train.optimizer, strcmp(v[5].str, "adam") == 0 ? OPTIMIZER_ADAM : OPTIMIZER_SGD);
        ck_assert_int_eq(t.train.pruning_first, (int)v[6].num);
        ck_assert_int_eq(t.train.epochs, 2);
        ck_assert_str_eq(prune_method_name(t.prune.method), v[7].str);
        ck_assert(t.prune.sparsity == v[8].num);
        ck_assert_int_eq(t.quant.weight.f, (int)v[9].num);
        ck_assert_int_eq(t.quant.weight.round, !strcmp(v[10].str, "RND") ? FX_RND
                                               : !strcmp(v[10].str, "TRN") ? FX_TRN : FX_RND_CONV);
        ck_assert(t.fpga.clock_period_ns == v[11].num);
        ck_assert_int_eq(t.fpga.strategy, !strcmp(v[12].str, "Latency") ? FPGA_STRATEGY_LATENCY
                                                                       : FPGA_STRATEGY_RESOURCE);
        /* paths were made absolute against the scan's folder, not the trial's */
        ck_assert_int_eq(t.data.n_train, 2);
        ck_assert_str_eq(t.data.train_files[0], "/proj/a.h5");
        ck_assert_str_eq(t.data.train_files[1], "/proj/sub/b.h5");
        config_free_trial(&t);
        free(y);
    }
    /* out of range / wrong kind -> NULL with a message */
    v[3].num = 1.5;
    ck_assert_ptr_null(config_resolve(&s, v, 1, &e));
    ck_assert_str_eq(e.msg, "rt.yaml:13:13: training_parameters.momentum: expected a number in [0, 1), "
                            "got '1.5'");
    v[3].num = 0.5;
    v[5].kind = VAL_NUM;
    ck_assert_ptr_null(config_resolve(&s, v, 1, &e));
    ck_assert_str_eq(e.msg, "rt.yaml: value for training_parameters.optimizer must be a string");
    config_free_scan(&s);
}
END_TEST

/* Strings that YAML would misread unquoted survive resolve -> parse. */
START_TEST(test_resolve_quoting) {
    const char *text =
        "name: \"a: b # c\"\n"
        "data:\n"
        "  train: \"dir with space/t #1.h5\"\n"
        "  features: {choice: [\"null\", \"a \\\"q\\\" \\\\ b\", \"- dash\", \"x #y\", \"1.5\", \" lead\", "
        "\"tab\\there\", \"true\", \"{x}\"]}\n"
        "model: {layers: [{type: dense}]}\n";
    scan_config s;
    nl_error e = {0};
    ck_assert_msg(config_parse_scan(text, "q.yaml", "/p", &s, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(s.n_dims, 1);
    ck_assert_int_eq(s.dims[0].n_choices, 9);
    ck_assert_str_eq(s.dims[0].choices[1].str, "a \"q\" \\ b");
    for (int i = 0; i < s.dims[0].n_choices; i++) {
        char *y = config_resolve(&s, &s.dims[0].choices[i], 1, &e);
        ck_assert_msg(y != NULL, "%s", e.msg);
        trial_config t;
        ck_assert_msg(config_parse_trial(y, "t.yaml", "/", &t, &e) == NL_OK, "%s\n%s", e.msg, y);
        ck_assert_str_eq(t.data.features, s.dims[0].choices[i].str);
        ck_assert_str_eq(t.name, "a: b # c");
        ck_assert_str_eq(t.data.train_files[0], "/p/dir with space/t #1.h5");
        config_free_trial(&t);
        free(y);
    }
    config_free_scan(&s);
}
END_TEST

/* Integer keys under uniform / log_uniform: is_int, and resolve rounds. */
START_TEST(test_int_key_rounding) {
    scan_config s;
    nl_error e = {0};
    ck_assert_int_eq(config_parse_scan(MINIMAL "training_parameters: {batch_size: {log_uniform: [16, 512]}}\n",
                                       "i.yaml", "/b", &s, &e), NL_OK);
    ck_assert_int_eq(s.n_dims, 1);
    ck_assert_int_eq(s.dims[0].kind, DIM_LOG_UNIFORM);
    ck_assert_int_eq(s.dims[0].is_int, 1);
    ck_assert_int_eq(s.base.train.batch_size, 16);
    cfg_value v = {.kind = VAL_NUM, .num = 100.6};
    char *y = config_resolve(&s, &v, 0, &e);
    ck_assert_ptr_nonnull(y);
    trial_config t;
    ck_assert_int_eq(config_parse_trial(y, "t.yaml", "/", &t, &e), NL_OK);
    ck_assert_int_eq(t.train.batch_size, 101);
    config_free_trial(&t);
    free(y);
    v.num = 0.2; /* rounds to 0: below the key's minimum */
    ck_assert_ptr_null(config_resolve(&s, &v, 0, &e));
    ck_assert_str_eq(e.msg, "i.yaml:3:35: training_parameters.batch_size: expected an integer >= 1, got '0'");
    config_free_scan(&s);
}
END_TEST

/* The CNN layer keys: values, defaults, the scalar/list window forms,
 * input_shape, per-type key errors, and search dimensions on them. */
START_TEST(test_cnn_layers) {
    const char *text =
        "data: {train: t.h5}\n"
        "model:\n"
        "  input_shape: [28, 28, 1]\n"
        "  layers:\n"
        "    - {type: conv2d, filters: 16, kernel_size: 3}\n"
        "    - {type: Leaky_ReLU, negative_slope: 0.1}\n"
        "    - {type: maxpool2d}\n"
        "    - {type: conv2d, filters: 8, kernel_size: [3, 1], strides: [2, 1], padding: same}\n"
        "    - {type: batchnorm, momentum: 0.9}\n"
        "    - {type: avgpool2d, pool_size: [2, 3], strides: 1}\n"
        "    - {type: flatten}\n"
        "    - {type: dropout, rate: 0.25}\n"
        "    - {type: tanh}\n"
        "    - {type: sigmoid}\n"
        "    - {type: hard_tanh}\n"
        "    - {type: dense}\n";
    trial_config t;
    nl_error e = {0};
    ck_assert_msg(config_parse_trial(text, "c.yaml", "/b", &t, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(t.n_layers, 12);
    const cfg_layer *l = t.layers;
    ck_assert_int_eq(l[0].type, CFG_LAYER_CONV2D);
    ck_assert_int_eq(l[0].filters, 16);
    ck_assert_int_eq(l[0].kernel_size[0], 3);
    ck_assert_int_eq(l[0].kernel_size[1], 3);
    ck_assert_int_eq(l[0].strides[0], 0);   /* default: 1 for conv (decided by nn) */
    ck_assert_int_eq(l[0].padding, CFG_PAD_VALID);
    ck_assert_int_eq(l[0].input_shape[0], 28);
    ck_assert_int_eq(l[0].input_shape[2], 1);
    ck_assert_int_eq(l[1].type, CFG_LAYER_LEAKY_RELU);
    ck_assert(l[1].alpha == 0.1);
    ck_assert_int_eq(l[2].pool_size[0], 2);  /* default 2 x 2 */
    ck_assert_int_eq(l[2].pool_size[1], 2);
    ck_assert_int_eq(l[3].kernel_size[1], 1);
    ck_assert_int_eq(l[3].strides[0], 2);
    ck_assert_int_eq(l[3].padding, CFG_PAD_SAME);
    ck_assert(l[4].momentum == 0.9 && l[4].epsilon == 1e-3);
    ck_assert_int_eq(l[5].pool_size[1], 3);
    ck_assert_int_eq(l[5].strides[0], 1);
    ck_assert_int_eq(l[5].strides[1], 1);
    ck_assert(l[7].rate == 0.25);
    ck_assert_int_eq(l[10].type, CFG_LAYER_HARD_TANH);
    ck_assert_int_eq(l[1].input_shape[0], 0);
    config_free_trial(&t);

    /* 1-D: input_shape [steps, channels] -> (1, steps, channels) */
    ck_assert_int_eq(config_parse_trial("data: {train: t.h5}\nmodel:\n  input_shape: [100, 3]\n  layers:\n"
                                        "    - {type: conv1d, filters: 4, kernel_size: [5], strides: 2}\n"
                                        "    - {type: maxpool1d, pool_size: 3}\n    - {type: dense}\n",
                                        "c.yaml", "/b", &t, &e), NL_OK);
    ck_assert_int_eq(t.layers[0].input_shape[0], 1);
    ck_assert_int_eq(t.layers[0].input_shape[1], 100);
    ck_assert_int_eq(t.layers[0].input_shape[2], 3);
    ck_assert_int_eq(t.layers[0].kernel_size[0], 5);
    ck_assert_int_eq(t.layers[0].strides[0], 2);
    ck_assert_int_eq(t.layers[1].pool_size[0], 3);
    config_free_trial(&t);

#define L0 "data: {train: t.h5}\nmodel:\n  layers:\n"
    expect_error(L0 "    - {type: conv2d, kernel_size: 3}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:7: model.layers[0]: a conv2d layer needs filters (output channels, >= 1)");
    expect_error(L0 "    - {type: conv1d, filters: 2}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:7: model.layers[0]: a conv1d layer needs kernel_size (e.g. 3)");
    expect_error(L0 "    - {type: maxpool2d, filters: 2}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:34: model.layers[0].filters: a maxpool2d layer has no filters (it is a "
                 "key of: conv1d, conv2d)");
    expect_error(L0 "    - {type: dense, rate: 0.5}\n", 0,
                 "scan.yaml:4:27: model.layers[0].rate: a dense layer has no rate (it is a key of: dropout)");
    expect_error(L0 "    - {type: conv1d, filters: 2, kernel_size: [3, 3]}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:47: model.layers[0].kernel_size: a 1-D layer takes a number or [n], got a "
                 "list of 2");
    expect_error(L0 "    - {type: conv2d, filters: 2, kernel_size: [3, 0]}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:51: model.layers[0].kernel_size[1]: expected an integer >= 1, got '0'");
    expect_error(L0 "    - {type: dropout, rate: 1}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:29: model.layers[0].rate: expected a number in [0, 1), got '1'");
    expect_error(L0 "    - {type: conv2d, filters: 2, kernel_size: 3, padding: full}\n    - {type: dense}\n", 0,
                 "scan.yaml:4:59: model.layers[0].padding: expected one of valid, same, got 'full'");
    expect_error("data: {train: t.h5}\nmodel:\n  input_shape: [28, 0]\n  layers: [{type: dense}]\n", 0,
                 "scan.yaml:3:21: model.input_shape[1]: expected an integer, got '0'");
#undef L0

    /* search dimensions on the new keys, resolved and parsed back */
    const char *scan =
        "data: {train: t.h5}\n"
        "model:\n"
        "  input_shape: [8, 8, 1]\n"
        "  layers:\n"
        "    - {type: conv2d, filters: {choice: [4, 8]}, kernel_size: {choice: [3, 5]}, padding: {choice: [valid, same]}}\n"
        "    - {type: dropout, rate: {uniform: [0.1, 0.5]}}\n"
        "    - {type: flatten}\n"
        "    - {type: dense}\n";
    scan_config sc;
    ck_assert_msg(config_parse_scan(scan, "s.yaml", "/b", &sc, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(sc.n_dims, 4);
    ck_assert_int_eq(sc.base.layers[0].kernel_size[1], 3);
    /* dims in parse order (window keys after the table's keys): by path */
    static const char *const paths[4] = {"model.layers[0].filters", "model.layers[0].kernel_size",
                                         "model.layers[0].padding", "model.layers[1].rate"};
    const cfg_value want[4] = {{.kind = VAL_NUM, .num = 8}, {.kind = VAL_NUM, .num = 5},
                               {.kind = VAL_STR, .str = "same"}, {.kind = VAL_NUM, .num = 0.3}};
    cfg_value v[4];
    for (int i = 0; i < 4; i++) {
        int j = 0;
        while (j < 4 && strcmp(sc.dims[i].path, paths[j])) j++;
        ck_assert_msg(j < 4, "unexpected dimension %s", sc.dims[i].path);
        v[i] = want[j];
    }
    char *y = config_resolve(&sc, v, 1, &e);
    ck_assert_msg(y != NULL, "%s", e.msg);
    ck_assert_msg(config_parse_trial(y, "t.yaml", "/", &t, &e) == NL_OK, "%s\n%s", e.msg, y);
    ck_assert_int_eq(t.layers[0].filters, 8);
    ck_assert_int_eq(t.layers[0].kernel_size[0], 5);
    ck_assert_int_eq(t.layers[0].kernel_size[1], 5);
    ck_assert_int_eq(t.layers[0].padding, CFG_PAD_SAME);
    ck_assert(fabs(t.layers[1].rate - 0.3) < 1e-12);
    ck_assert_int_eq(t.layers[0].input_shape[1], 8);
    config_free_trial(&t);
    free(y);
    config_free_scan(&sc);
}
END_TEST

START_TEST(test_relative_paths) {
    char dir[600], sub[700], path[800];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(sub, sizeof sub, "%s/cfg", dir);
    nl_error e = {0};
    ck_assert_int_eq(fs_mkdir_p(sub, &e), NL_OK);
    snprintf(path, sizeof path, "%s/trial.yaml", sub);
    const char *text = "data:\n  train: ../d/train.h5\n  test: [/abs/t.h5, ./x.h5]\n"
                       "model: {layers: [{type: dense}]}\n";
    ck_assert_int_eq(fs_write_atomic(path, text, strlen(text), &e), NL_OK);
    trial_config t;
    ck_assert_msg(config_load_trial(path, &t, &e) == NL_OK, "%s", e.msg);
    char want[900];
    snprintf(want, sizeof want, "%s/../d/train.h5", sub);
    ck_assert_str_eq(t.data.train_files[0], want);
    ck_assert_str_eq(t.data.test_files[0], "/abs/t.h5");
    snprintf(want, sizeof want, "%s/x.h5", sub);
    ck_assert_str_eq(t.data.test_files[1], want);
    ck_assert_str_eq(t.source, path);
    config_free_trial(&t);

    /* a relative base_dir is taken from the current directory */
    char cwd[600];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(config_parse_trial(MINIMAL, "t.yaml", "rel/dir", &t, &e), NL_OK);
    snprintf(want, sizeof want, "%s/rel/dir/t.h5", cwd);
    ck_assert_str_eq(t.data.train_files[0], want);
    config_free_trial(&t);
    ck_assert_int_eq(config_parse_trial(MINIMAL, "t.yaml", NULL, &t, &e), NL_OK);
    snprintf(want, sizeof want, "%s/t.h5", cwd);
    ck_assert_str_eq(t.data.train_files[0], want);
    config_free_trial(&t);

    /* a scan loaded from its file resolves against its folder */
    snprintf(path, sizeof path, "%s/scan.yaml", sub);
    const char *stext = "data: {train: ../d/train.h5}\nmodel: {layers: [{type: dense, units: {choice: [3, 4]}}]}\n";
    ck_assert_int_eq(fs_write_atomic(path, stext, strlen(stext), &e), NL_OK);
    scan_config s;
    ck_assert_msg(config_load_scan(path, &s, &e) == NL_OK, "%s", e.msg);
    ck_assert_str_eq(s.name, "scan");
    cfg_value v = {.kind = VAL_NUM, .num = 4};
    char *y = config_resolve(&s, &v, 3, &e);
    ck_assert_ptr_nonnull(y);
    snprintf(want, sizeof want, "train: %s/../d/train.h5\n", sub);
    ck_assert_ptr_nonnull(strstr(y, want));
    free(y);
    config_free_scan(&s);

    ck_assert_int_eq(config_load_trial("/nonexistent/t.yaml", &t, &e), NL_ERR_IO);
}
END_TEST

START_TEST(test_value_format) {
    char buf[64];
    cfg_value v = {.kind = VAL_NUM, .num = 0.001};
    ck_assert_str_eq(cfg_value_format(&v, buf, sizeof buf), "0.001");
    v.num = 64;
    ck_assert_str_eq(cfg_value_format(&v, buf, sizeof buf), "64");
    v.kind = VAL_BOOL;
    v.num = 1;
    ck_assert_str_eq(cfg_value_format(&v, buf, sizeof buf), "true");
    v.kind = VAL_STR;
    strcpy(v.str, "adam");
    ck_assert_str_eq(cfg_value_format(&v, buf, sizeof buf), "adam");
    ck_assert_str_eq(prune_method_name(PRUNE_ACTIVATION), "activation_pruning");
    ck_assert_str_eq(prune_method_name(PRUNE_MDMM), "mdmm");
}
END_TEST

/* search.objective takes any metric (default val_accuracy); constraints
 * take any metric: a maximum for resources, a minimum for accuracies. */
START_TEST(test_objective_and_constraints) {
    scan_config s;
    nl_error e = {0};
    ck_assert_int_eq(config_parse_scan(MINIMAL, "a.yaml", "/b", &s, &e), NL_OK);
    ck_assert_int_eq(s.objective, MET_VAL_ACCURACY);
    config_free_scan(&s);
    ck_assert_msg(config_parse_scan(MINIMAL "search: {objective: ebops}\n"
                                    "constraints: {lut: 5000, val_accuracy: 0.75}\n",
                                    "a.yaml", "/b", &s, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(s.objective, MET_EBOPS);
    ck_assert_int_eq(s.n_constraints, 2);
    ck_assert_str_eq(s.constraints[1].metric, "val_accuracy");
    ck_assert(s.constraints[1].max == 0.75);
    config_free_scan(&s);
}
END_TEST

/* enabled: a layer's presence as a search dimension (depth search). */
START_TEST(test_optional_layers) {
    const char *text =
        "data: {train: t.h5}\n"
        "model:\n"
        "  layers:\n"
        "    - {type: dense, units: 32}\n"
        "    - {type: relu}\n"
        "    - {type: dense, units: 16, enabled: {choice: [true, false]}, name: extra}\n"
        "    - {type: relu, enabled: {choice: [true, false]}}\n"
        "    - {type: dense}\n";
    scan_config s;
    nl_error e = {0};
    ck_assert_msg(config_parse_scan(text, "o.yaml", "/b", &s, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(s.n_dims, 2);
    ck_assert_str_eq(s.dims[0].path, "model.layers[2].enabled");
    cfg_value v[2] = {{.kind = VAL_BOOL, .num = 0}, {.kind = VAL_BOOL, .num = 0}};
    char *y = config_resolve(&s, v, 1, &e);
    ck_assert_msg(y != NULL, "%s", e.msg);
    trial_config t;
    ck_assert_msg(config_parse_trial(y, "t.yaml", "/b", &t, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(t.n_layers, 3);
    ck_assert_int_eq(t.layers[2].type, CFG_LAYER_DENSE);
    ck_assert_int_eq(t.layers[1].units, 0);
    config_free_trial(&t);
    free(y);
    v[0].num = 1;
    v[1].num = 1;
    y = config_resolve(&s, v, 1, &e);
    ck_assert_msg(config_parse_trial(y, "t.yaml", "/b", &t, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(t.n_layers, 5);
    ck_assert_str_eq(t.layers[2].name, "extra");
    config_free_trial(&t);
    free(y);
    config_free_scan(&s);
    expect_error("data: {train: t.h5}\nmodel: {layers: [{type: dense, enabled: false}]}\n", 0,
                 "scan.yaml:2:18: model.layers[0].enabled: the last dense layer is the output and cannot "
                 "be turned off");
}
END_TEST

Suite *make_config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_method_defaults);
    tcase_add_test(tc, test_error_messages);
    tcase_add_test(tc, test_newer_keys);
    tcase_add_test(tc, test_pquant_pdp);
    tcase_add_test(tc, test_pquant_other_methods);
    tcase_add_test(tc, test_hpo_mapping);
    tcase_add_test(tc, test_dims_collected);
    tcase_add_test(tc, test_resolve_round_trip);
    tcase_add_test(tc, test_resolve_quoting);
    tcase_add_test(tc, test_int_key_rounding);
    tcase_add_test(tc, test_relative_paths);
    tcase_add_test(tc, test_cnn_layers);
    tcase_add_test(tc, test_value_format);
    tcase_add_test(tc, test_objective_and_constraints);
    tcase_add_test(tc, test_optional_layers);
    suite_add_tcase(s, tc);
    return s;
}
