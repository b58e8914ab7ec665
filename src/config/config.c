/* config.c — the schema tables (the ONE place each YAML key is named, typed,
 * defaulted and range-checked), the section handlers that check what spans
 * several keys, PQuant's hpo_parameters mapped onto search dimensions, and
 * the public API: parse trial / scan files, resolve a point to trial YAML.
 * It does not open datasets or check that files exist (data does that).
 * Invariant: config_parse_trial(config_resolve(s, v)) gives the values v. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/schema.h"
#include "config/yaml_tree.h"
#include "nnlo/config.h"
#include "nnlo/metrics.h"

_Static_assert(sizeof(fx_overflow) == sizeof(int) && sizeof(fx_round) == sizeof(int) &&
               sizeof(prune_method) == sizeof(int) && sizeof(rewind_mode) == sizeof(int) &&
               sizeof(label_format) == sizeof(int) && sizeof(search_algorithm) == sizeof(int) &&
               sizeof(cfg_layer_type) == sizeof(int) && sizeof(cfg_padding) == sizeof(int),
               "enums are stored through int pointers");

/* Everything one file can set: the trial config plus scan-level settings
 * and scratch fields for keys that only feed checks or other fields. */
typedef struct {
    trial_config t;
    char output_dir[512];
    search_algorithm algorithm;
    int trials, top_k, objective, n_startup_trials;
    int pruner, pruner_startup, pruner_warmup;
    double trial_timeout;
    scan_constraint constraints[16];
    int n_constraints;
    int legacy_int_bits, legacy_frac_bits; /* default_integer_bits / _fractional_bits */
    int input_shape[3], n_input_shape;     /* model.input_shape, copied to layers[0] */
    double label_smoothing;
    int enable_fitcompress;
    int io_type;
    int hpo_trials;
    char hpo_sampler[64];
    ynode *search_trials_at, *search_algorithm_at, *hpo_trials_at, *hpo_sampler_at;
    ynode *search_startup_at, *hpo_startup_at; /* n_startup_trials: search's, sampler.params' */
    int hpo_startup;
} cfg_doc;

#define D(f) ((long)offsetof(cfg_doc, f))
#define L(f) ((long)offsetof(cfg_layer, f))
#define N_(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- enum names (index = C enum value) ----------------------------------- */

static const char *const rewind_names[] = {"never", "every-round", "post-training-stage", NULL};
static const char *const optimizer_names[] = {"adam", "sgd", NULL};
static const char *const schedule_names[] = {"constant", "cosine", "multistep", NULL};
static const char *const method_names[] = {"pdp", "magnitude", "cs", "dst", "autosparse",
                                           "wanda", "activation_pruning", "mdmm", NULL};
static const char *const method_unsupported[] = {"fitcompress", NULL};
static const char *const threshold_type_names[] = {"channelwise", "weightwise", "layerwise", NULL};
static const char *const nm_names[] = {"keep_n", "prune_n", NULL};
static const char *const constraint_names[] = {"Equality", "LessThanOrEqual", "GreaterThanOrEqual", NULL};
static const char *const metric_type_names[] = {"UnstructuredSparsity", "StructuredSparsity", NULL};
static const char *const l0_names[] = {"coarse", "smooth", NULL};
static const char *const scale_mode_names[] = {"mean", "sum", NULL};
static const char *const overflow_names[] = {"SAT", "SAT_SYM", "WRAP", "WRAP_SM", NULL};
static const char *const round_names[] = {"RND", "TRN", "RND_CONV", "RND_ZERO",
                                          "RND_MIN_INF", "RND_INF", "TRN_ZERO", NULL};
static const char *const granularity_names[] = {"per_tensor", "per_channel", "per_weight", NULL};
/* standardize_mode order; YAML's true/false read as the first two. */
static const char *const standardize_names[] = {"false", "true", "global", NULL};
static const char *const label_names[] = {"auto", "index", "onehot", NULL};
static const char *const initializer_names[] = {"he_uniform", "glorot_uniform", "lecun_uniform",
                                                "pytorch", NULL}; /* = nn_init */
static const char *const strategy_names[] = {"latency", "resource", NULL};
static const char *const io_names[] = {"io_parallel", NULL};
static const char *const io_unsupported[] = {"io_stream", NULL};
static const char *const algorithm_names[] = {"random", "grid", "tpe", NULL};
static const char *const pruner_names[] = {"none", "median", NULL};
static const char *const layer_names[] = {"dense", "relu", "conv1d", "conv2d", "maxpool1d",
                                          "maxpool2d", "avgpool1d", "avgpool2d", "batchnorm",
                                          "flatten", "dropout", "tanh", "sigmoid", "hard_tanh",
                                          "leaky_relu", NULL};
static const char *const padding_names[] = {"valid", "same", NULL};

const char *prune_method_name(prune_method m) {
    if ((int)m < 0 || (int)m >= N_(method_names) - 1) return "unknown";
    return method_names[m];
}

/* ---- the schema tables --------------------------------------------------- */

/* Shorthands: INT(name, field, default, flags, lo, hi) etc. */
#define K_INT(n, f, d, fl, l, h) {.name = n, .type = KT_INT, .off = f, .def = d, .flags = fl, .lo = l, .hi = h}
#define K_FLT(n, f, d, fl, l, h) {.name = n, .type = KT_FLOAT, .off = f, .def = d, .flags = fl, .lo = l, .hi = h}
#define K_BOOL(n, f, d) {.name = n, .type = KT_BOOL, .off = f, .def = d}
#define K_ENUM(n, f, d, names_, fl) {.name = n, .type = KT_ENUM, .off = f, .def = d, .names = names_, .flags = fl}
#define K_STR(n, f, cap_, d, fl) {.name = n, .type = KT_STRING, .off = f, .cap = cap_, .def_str = d, .flags = fl}
#define K_INFO(n) {.name = n, .type = KT_ANY, .off = CFG_NO_FIELD, .flags = KF_INFO}
#define K_ALIAS(n, of) {.name = n, .alias_of = of}

static const cfg_key top_keys[] = {
    K_STR("name", D(t.name), 128, "", KF_NODIM),
    K_STR("output_dir", D(output_dir), 512, "", KF_NODIM),
    {.name = "seed", .type = KT_U64, .off = D(t.seed), .def = 0, .flags = KF_NODIM},
    /* sections: parsed by their handlers below */
    {.name = "data", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "model", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "training_parameters", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "pruning_parameters", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "quantization_parameters", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "fpga", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "distillation", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "search", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "constraints", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "hpo_parameters", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "fitcompress_parameters", .type = KT_ANY, .off = CFG_NO_FIELD},
};

static const cfg_key data_keys[] = {
    {.name = "train", .type = KT_STRLIST, .off = D(t.data.train_files), .off2 = D(t.data.n_train),
     .flags = KF_REQUIRED | KF_PATH},
    {.name = "validation", .type = KT_STRLIST, .off = D(t.data.val_files), .off2 = D(t.data.n_val),
     .flags = KF_PATH | KF_NULLABLE},
    {.name = "test", .type = KT_STRLIST, .off = D(t.data.test_files), .off2 = D(t.data.n_test),
     .flags = KF_PATH | KF_NULLABLE},
    K_STR("features", D(t.data.features), 128, "X", 0),
    K_STR("labels", D(t.data.labels), 128, "y", 0),
    K_ENUM("label_format", D(t.data.labels_format), LABELS_AUTO, label_names, 0),
    K_FLT("validation_split", D(t.data.validation_split), 0.2, KF_GT | KF_LT, 0, 1),
    K_ENUM("standardize", D(t.data.standardize), STANDARDIZE_PER_FEATURE, standardize_names, KF_CASEI),
    {.name = "max_samples", .type = KT_LONG, .off = D(t.data.max_samples), .def = 0, .flags = KF_MIN, .lo = 0},
};

static const cfg_key model_keys[] = {
    {.name = "layers", .type = KT_ANY, .off = CFG_NO_FIELD, .flags = KF_REQUIRED},
    {.name = "input_shape", .type = KT_INTLIST, .off = D(input_shape), .off2 = D(n_input_shape),
     .cap = 3, .flags = KF_MIN | KF_NULLABLE, .lo = 1},
    K_STR("init", D(t.model_init), 512, "", KF_PATH | KF_NODIM),
    K_ENUM("kernel_initializer", D(t.kernel_initializer), 0, initializer_names, KF_CASEI),
};

/* The layer keys; the order is used by layer_key_types below. kernel_size,
 * strides and pool_size take a number (a square window; may be a search
 * dimension) or a list [rows, cols] ([k] for 1-D): parsed in sec_model. */
enum { LK_TYPE, LK_UNITS, LK_NAME, LK_FILTERS, LK_KERNEL, LK_STRIDES, LK_POOL, LK_PADDING,
       LK_RATE, LK_ALPHA, LK_MOMENTUM, LK_EPSILON, LK_ENABLED, LK_N };
static const cfg_key layer_keys[] = {
    {.name = "type", .type = KT_ENUM, .off = L(type), .def = CFG_LAYER_DENSE, .names = layer_names,
     .flags = KF_REQUIRED | KF_CASEI | KF_NODIM},
    K_INT("units", L(units), 0, KF_MIN, 0, 0),
    {.name = "name", .type = KT_STRING, .off = L(name), .cap = 64, .def_str = "", .flags = KF_NODIM},
    K_INT("filters", L(filters), 0, KF_MIN, 1, 0),
    {.name = "kernel_size", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "strides", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "pool_size", .type = KT_ANY, .off = CFG_NO_FIELD},
    K_ENUM("padding", L(padding), CFG_PAD_VALID, padding_names, KF_CASEI),
    K_FLT("rate", L(rate), 0.5, KF_MIN | KF_LT, 0, 1),
    K_FLT("alpha", L(alpha), 0.3, KF_MIN, 0, 0),
    K_FLT("momentum", L(momentum), 0.99, KF_MIN | KF_LT, 0, 1),
    K_FLT("epsilon", L(epsilon), 1e-3, KF_GT, 0, 0),
    K_BOOL("enabled", L(enabled), 1),
    K_ALIAS("negative_slope", "alpha"),
};

#define LT(t) (1u << CFG_LAYER_##t)
/* Which layer types take each key (type and name: all). */
static const unsigned layer_key_types[LK_N] = {
    [LK_TYPE] = ~0u, [LK_NAME] = ~0u,
    [LK_UNITS] = LT(DENSE),
    [LK_FILTERS] = LT(CONV1D) | LT(CONV2D),
    [LK_KERNEL] = LT(CONV1D) | LT(CONV2D),
    [LK_STRIDES] = LT(CONV1D) | LT(CONV2D) | LT(MAXPOOL1D) | LT(MAXPOOL2D) | LT(AVGPOOL1D) | LT(AVGPOOL2D),
    [LK_POOL] = LT(MAXPOOL1D) | LT(MAXPOOL2D) | LT(AVGPOOL1D) | LT(AVGPOOL2D),
    [LK_PADDING] = LT(CONV1D) | LT(CONV2D) | LT(MAXPOOL1D) | LT(MAXPOOL2D) | LT(AVGPOOL1D) | LT(AVGPOOL2D),
    [LK_RATE] = LT(DROPOUT),
    [LK_ALPHA] = LT(LEAKY_RELU),
    [LK_MOMENTUM] = LT(BATCHNORM),
    [LK_EPSILON] = LT(BATCHNORM),
    [LK_ENABLED] = ~0u,
};
#undef LT

/* One entry of a window key (kernel_size, strides, pool_size); off 0: the
 * caller passes the int itself as the base. */
static const cfg_key window_keys[3] = {
    {.name = "kernel_size", .type = KT_INT, .off = 0, .flags = KF_MIN, .lo = 1},
    {.name = "strides", .type = KT_INT, .off = 0, .flags = KF_MIN, .lo = 1},
    {.name = "pool_size", .type = KT_INT, .off = 0, .flags = KF_MIN, .lo = 1},
};

static const cfg_key training_keys[] = {
    K_INT("epochs", D(t.train.epochs), 10, KF_MIN, 0, 0),
    K_INT("pretraining_epochs", D(t.train.pretraining_epochs), 0, KF_MIN, 0, 0),
    K_INT("fine_tuning_epochs", D(t.train.fine_tuning_epochs), 0, KF_MIN, 0, 0),
    K_INT("rounds", D(t.train.rounds), 1, KF_MIN, 1, 0),
    K_INT("save_weights_epoch", D(t.train.save_weights_epoch), -1, KF_MIN, -1, 0),
    K_ENUM("rewind", D(t.train.rewind), REWIND_NEVER, rewind_names, 0),
    K_BOOL("pruning_first", D(t.train.pruning_first), 1),
    K_INT("batch_size", D(t.train.batch_size), 256, KF_MIN, 1, 0),
    K_ENUM("optimizer", D(t.train.optimizer), OPTIMIZER_ADAM, optimizer_names, KF_CASEI),
    K_FLT("learning_rate", D(t.train.learning_rate), 1e-3, KF_GT, 0, 0),
    K_ALIAS("lr", "learning_rate"),
    K_FLT("momentum", D(t.train.momentum), 0.9, KF_MIN | KF_LT, 0, 1),
    K_FLT("l2_decay", D(t.train.l2_decay), 0, KF_MIN, 0, 0),
    K_ALIAS("weight_decay", "l2_decay"),
    K_ENUM("lr_schedule", D(t.train.schedule), LR_CONSTANT, schedule_names, KF_CASEI),
    {.name = "milestones", .type = KT_INTLIST, .off = D(t.train.milestones), .off2 = D(t.train.n_milestones),
     .cap = 16, .flags = KF_MIN | KF_NODIM, .lo = 1},
    K_FLT("gamma", D(t.train.gamma), 0.1, KF_GT, 0, 0),
    K_INT("cosine_tmax", D(t.train.cosine_tmax), 0, KF_MIN, 0, 0),
    K_INT("early_stopping_patience", D(t.train.early_stopping_patience), 0, KF_MIN, 0, 0),
    K_FLT("label_smoothing", D(label_smoothing), 0, KF_MIN | KF_LT, 0, 1),
    K_INFO("plot_frequency"), K_INFO("dataset"), K_INFO("prune_ratio"), K_INFO("default_integer_bits"),
};

#define MD(...) ((const method_default[]){__VA_ARGS__, {-1, 0}})
#define P(f) D(t.prune.f)
static const cfg_key pruning_keys[] = {
    {.name = "pruning_method", .type = KT_ENUM, .off = P(method), .def = PRUNE_PDP, .names = method_names,
     .unsupported = method_unsupported},
    K_BOOL("enable_pruning", P(enable_pruning), 1),
    {.name = "disable_pruning_for_layers", .type = KT_STRLIST, .off = P(disable_layers), .off2 = P(n_disable),
     .flags = KF_NULLABLE | KF_NODIM},
    {.name = "sparsity", .type = KT_FLOAT, .off = P(sparsity), .def = 0.8, .flags = KF_MIN | KF_LT, .lo = 0, .hi = 1,
     .mdef = MD({PRUNE_WANDA, 0.9})},
    {.name = "epsilon", .type = KT_FLOAT, .off = P(epsilon), .def = 0.015, .flags = KF_GT, .lo = 0,
     .mdef = MD({PRUNE_MDMM, 1e-3})},
    K_FLT("temperature", P(temperature), 1e-5, KF_GT, 0, 0),
    {.name = "threshold_decay", .type = KT_FLOAT, .off = P(threshold_decay), .def = 0, .flags = KF_MIN, .lo = 0,
     .mdef = MD({PRUNE_CS, 1e-9})},
    K_BOOL("structured_pruning", P(structured_pruning), 0),
    /* magnitude */
    K_FLT("initial_sparsity", P(initial_sparsity), 0, KF_MIN | KF_LT, 0, 1),
    K_INT("begin_epoch", P(begin_epoch), 0, KF_MIN, 0, 0),
    K_INT("end_epoch", P(end_epoch), -1, KF_MIN, -1, 0),
    K_FLT("power", P(power), 3, KF_GT, 0, 0),
    K_INT("update_frequency", P(update_frequency), 0, KF_MIN, 0, 0),
    /* cs */
    K_FLT("final_temp", P(final_temp), 200, KF_GT, 0, 0),
    {.name = "threshold_init", .type = KT_FLOAT, .off = P(threshold_init), .def = 0,
     .mdef = MD({PRUNE_AUTOSPARSE, -5})},
    /* dst, autosparse */
    K_ENUM("threshold_type", P(threshold_type), THRESH_CHANNELWISE, threshold_type_names, 0),
    {.name = "alpha", .type = KT_FLOAT, .off = P(alpha), .def = 5e-6, .flags = KF_MIN, .lo = 0,
     .mdef = MD({PRUNE_AUTOSPARSE, 0.5})},
    K_FLT("max_pruning_pct", P(max_pruning_pct), 0.99, KF_GT | KF_MAX, 0, 1),
    K_INT("alpha_reset_epoch", P(alpha_reset_epoch), 90, KF_MIN, 0, 0),
    K_INT("autotune_epochs", P(autotune_epochs), 10, KF_MIN, 0, 0),
    K_BOOL("backward_sparsity", P(backward_sparsity), 0),
    /* wanda, activation_pruning */
    K_INT("t_start_collecting_batch", P(t_start_collecting_batch), 100, KF_MIN, 0, 0),
    K_INT("t_delta", P(t_delta), 100, KF_MIN, 1, 0),
    K_INT("calibration_batches", P(calibration_batches), 0, KF_MIN, 0, 0),
    K_BOOL("calculate_pruning_budget", P(calculate_pruning_budget), 1),
    K_INT("N", P(N), 0, KF_MIN | KF_NULLABLE, 1, 0),
    K_INT("M", P(M), 0, KF_MIN | KF_NULLABLE, 2, 0),
    K_ENUM("nm_convention", P(nm_convention), NM_KEEP_N, nm_names, 0),
    K_FLT("threshold", P(threshold), 0.2, KF_MIN | KF_MAX, 0, 1),
    /* mdmm */
    K_ENUM("constraint_type", P(constraint_type), MDMM_EQUALITY, constraint_names, KF_CASEI),
    K_FLT("target_value", P(target_value), 0, 0, 0, 0),
    K_ENUM("metric_type", P(metric_type), MDMM_UNSTRUCTURED, metric_type_names, KF_CASEI),
    /* mdmm's constraint; activation_pruning's target (0: none, the threshold rule) */
    {.name = "target_sparsity", .type = KT_FLOAT, .off = P(target_sparsity), .def = 0.9,
     .flags = KF_MIN | KF_MAX, .lo = 0, .hi = 1, .mdef = MD({PRUNE_ACTIVATION, 0})},
    K_INT("rf", P(rf), 1, KF_MIN, 1, 0),
    K_FLT("scale", P(scale), 10, KF_MIN, 0, 0),
    K_FLT("damping", P(damping), 1, KF_MIN, 0, 0),
    K_BOOL("use_grad", P(use_grad), 0),
    K_ENUM("l0_mode", P(l0_mode), MDMM_L0_COARSE, l0_names, 0),
    K_ENUM("scale_mode", P(scale_mode), MDMM_SCALE_MEAN, scale_mode_names, 0),
    K_FLT("constraint_lr", P(constraint_lr), 1e-3, KF_GT, 0, 0),
    /* fitcompress (refused as a method; its key is accepted) */
    K_INFO("min_frac_bits"),
};
#undef P

#define Q(f) D(t.quant.f)
static const cfg_key quant_keys[] = {
    K_BOOL("enable_quantization", Q(enable_quantization), 1),
    K_BOOL("default_weight_keep_negatives", Q(weight.k), 1),
    K_INT("default_weight_integer_bits", Q(weight.i), 0, KF_MIN | KF_MAX, -16, 32),
    K_INT("default_weight_fractional_bits", Q(weight.f), 7, KF_MIN | KF_MAX, -16, 32),
    K_BOOL("default_data_keep_negatives", Q(data.k), 0),
    K_INT("default_data_integer_bits", Q(data.i), 0, KF_MIN | KF_MAX, -16, 32),
    K_INT("default_data_fractional_bits", Q(data.f), 7, KF_MIN | KF_MAX, -16, 32),
    K_INT("default_integer_bits", D(legacy_int_bits), 0, KF_MIN | KF_MAX, -16, 32),
    K_INT("default_fractional_bits", D(legacy_frac_bits), 7, KF_MIN | KF_MAX, -16, 32),
    K_ENUM("overflow_mode_parameters", Q(weight.overflow), FX_SAT, overflow_names, KF_CASEI),
    K_ENUM("overflow_mode_data", Q(data.overflow), FX_SAT, overflow_names, KF_CASEI),
    K_ENUM("round_mode", Q(weight.round), FX_RND, round_names, KF_CASEI),
    K_ENUM("granularity", Q(granularity), GRAN_PER_TENSOR, granularity_names, KF_CASEI),
    K_BOOL("quantize_input", Q(quantize_input), 1),
    K_BOOL("quantize_output", Q(quantize_output), 0),
    K_BOOL("quantize_relu", Q(quantize_relu), 0),
    {.name = "layer_specific", .type = KT_RAWMAP, .off = Q(layer_specific), .flags = KF_NODIM},
    K_BOOL("use_high_granularity_quantization", Q(use_hgq), 0),
    K_FLT("hgq_beta", Q(hgq_beta), 1e-5, KF_MIN, 0, 0),
    K_FLT("hgq_gamma", Q(hgq_gamma), 3e-4, KF_MIN, 0, 0),
    K_BOOL("hgq_heterogeneous", Q(hgq_heterogeneous), 1),
    K_BOOL("use_symmetric_quantization", Q(use_symmetric_quantization), 0),
    K_INFO("dynamic_data_quantization"), K_INFO("use_real_tanh"), K_INFO("use_relu_multiplier"),
};
#undef Q

/* One quantizer inside layer_specific: {layer: {weight|bias|input|output: {...}}}. */
#define O(f) ((long)offsetof(cfg_quant_override, f))
static const cfg_key override_keys[] = {
    {.name = "keep_negatives", .type = KT_BOOL, .off = O(spec.k), .def = 0, .flags = KF_NODIM},
    K_INT("integer_bits", O(spec.i), 0, KF_MIN | KF_MAX | KF_NODIM, -16, 32),
    K_INT("fractional_bits", O(spec.f), 0, KF_MIN | KF_MAX | KF_NODIM, -16, 32),
    K_ENUM("overflow", O(spec.overflow), FX_SAT, overflow_names, KF_CASEI | KF_NODIM),
    K_ENUM("round_mode", O(spec.round), FX_RND, round_names, KF_CASEI | KF_NODIM),
    {.name = "quantize", .type = KT_BOOL, .off = O(quantize), .def = 1, .flags = KF_NODIM},
};
#undef O

static const cfg_key fpga_keys[] = {
    K_STR("part", D(t.fpga.part), 64, "xcu250-figd2104-2L-e", 0),
    K_FLT("clock_period", D(t.fpga.clock_period_ns), 5, KF_GT, 0, 0),
    K_ENUM("strategy", D(t.fpga.strategy), FPGA_STRATEGY_LATENCY, strategy_names, KF_CASEI),
    K_INT("reuse_factor", D(t.fpga.reuse_factor), 1, KF_MIN, 1, 0),
    {.name = "io_type", .type = KT_ENUM, .off = D(io_type), .def = 0, .names = io_names,
     .unsupported = io_unsupported, .flags = KF_CASEI | KF_NODIM},
};

static const cfg_key distill_keys[] = {
    K_STR("teacher", D(t.distill.teacher), 512, "", KF_PATH | KF_NODIM),
    K_FLT("temperature", D(t.distill.temperature), 4, KF_GT, 0, 0),
    K_FLT("alpha", D(t.distill.alpha), 0.5, KF_MIN | KF_MAX, 0, 1),
};

static const cfg_key search_keys[] = {
    K_ENUM("algorithm", D(algorithm), SEARCH_RANDOM, algorithm_names, KF_CASEI | KF_NODIM),
    K_INT("trials", D(trials), 10, KF_MIN | KF_NODIM, 1, 0),
    K_INT("top_k", D(top_k), 5, KF_MIN | KF_NODIM, 1, 0),
    K_ENUM("objective", D(objective), MET_VAL_ACCURACY, metric_names, KF_NODIM),
    K_INT("n_startup_trials", D(n_startup_trials), 10, KF_MIN | KF_NODIM, 0, 0),
    {.name = "pruner", .type = KT_ANY, .off = CFG_NO_FIELD},
    K_FLT("trial_timeout", D(trial_timeout), 0, KF_MIN | KF_NODIM, 0, 0),
};

/* search.pruner: Optuna's MedianPruner, with its names and defaults. */
static const cfg_key pruner_keys[] = {
    K_ENUM("type", D(pruner), PRUNER_NONE, pruner_names, KF_CASEI | KF_NODIM),
    K_INT("n_startup_trials", D(pruner_startup), 5, KF_MIN | KF_NODIM, 1, 0),
    K_INT("n_warmup_steps", D(pruner_warmup), 0, KF_MIN | KF_NODIM, 0, 0),
};

static const cfg_key fitcompress_keys[] = {
    {.name = "enable_fitcompress", .type = KT_BOOL, .off = D(enable_fitcompress), .def = 0, .flags = KF_NODIM},
    {.name = "optimize_quantization", .type = KT_BOOL, .off = CFG_NO_FIELD, .flags = KF_INFO | KF_NODIM},
    {.name = "quantization_schedule", .type = KT_NUMLIST, .off = CFG_NO_FIELD, .flags = KF_INFO},
    {.name = "pruning_schedule", .type = KT_RAWMAP, .off = CFG_NO_FIELD, .flags = KF_INFO},
    {.name = "compression_goal", .type = KT_FLOAT, .off = CFG_NO_FIELD, .flags = KF_INFO | KF_NODIM},
    {.name = "optimize_pruning", .type = KT_BOOL, .off = CFG_NO_FIELD, .flags = KF_INFO | KF_NODIM},
    {.name = "greedy_astar", .type = KT_BOOL, .off = CFG_NO_FIELD, .flags = KF_INFO | KF_NODIM},
    {.name = "approximate", .type = KT_BOOL, .off = CFG_NO_FIELD, .flags = KF_INFO | KF_NODIM},
    {.name = "f_lambda", .type = KT_FLOAT, .off = CFG_NO_FIELD, .flags = KF_INFO | KF_NODIM},
};

static const cfg_key hpo_keys[] = {
    K_INFO("experiment_name"), K_INFO("model_name"), K_INFO("epochs"),
    K_INT("num_trials", D(hpo_trials), 0, KF_MIN | KF_NODIM, 1, 0),
    {.name = "sampler", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "hyperparameter_search", .type = KT_ANY, .off = CFG_NO_FIELD},
};
static const cfg_key hpo_sampler_keys[] = {
    K_STR("type", D(hpo_sampler), 64, "", KF_NODIM),
    {.name = "params", .type = KT_RAWMAP, .off = CFG_NO_FIELD, .flags = KF_INFO},
};
static const cfg_key hpo_search_keys[] = {
    {.name = "numerical", .type = KT_ANY, .off = CFG_NO_FIELD},
    {.name = "categorical", .type = KT_ANY, .off = CFG_NO_FIELD},
};

/* ---- section handlers ----------------------------------------------------- */

typedef nl_status (*section_fn)(pctx *c, ynode *root, ynode *node, cfg_doc *d);

static int seen_i(const cfg_key *keys, int nk, const char *name) {
    int i = cfg_key_find(keys, nk, name);
    NL_ASSERT(i >= 0);
    return i;
}

static nl_status sec_data(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    if (!node)
        return cfg_err(c, NULL, "missing required section 'data' (at least `data: {train: file.h5}`)");
    ynode *seen[N_(data_keys)];
    return cfg_section_parse(c, "data", node, data_keys, N_(data_keys), d, -1, seen);
}

/* A window key: a number (both axes; may be a search dimension) or a list
 * of 1 (1-D layers) or 2 (2-D layers) numbers, into v[0..1]. */
static nl_status parse_window(pctx *c, const char *lpath, const cfg_key *k, ynode *node, int d1,
                              int *v) {
    char path[128];
    snprintf(path, sizeof path, "%s.%s", lpath, k->name);
    if (node->kind != YN_SEQ) {
        nl_status st = cfg_key_parse(c, k, path, node, &v[0]);
        v[1] = d1 ? 0 : v[0];
        return st;
    }
    int want = d1 ? 1 : 2;
    if (node->n != want)
        return cfg_err(c, node, "%s: a %s layer takes %s, got a list of %d", path,
                       d1 ? "1-D" : "2-D", d1 ? "a number or [n]" : "a number or [rows, cols]",
                       node->n);
    for (int i = 0; i < want; i++) {
        char ipath[160];
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        nl_status st = cfg_key_parse(c, k, ipath, node->vals[i], &v[i]);
        if (st != NL_OK) return st;
    }
    return NL_OK;
}

static nl_status sec_model(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    if (!node)
        return cfg_err(c, NULL, "missing required section 'model' (model.layers: a list of "
                       "{type: dense, units: N} and {type: relu})");
    ynode *seen[N_(model_keys)];
    nl_status st = cfg_section_parse(c, "model", node, model_keys, N_(model_keys), d, -1, seen);
    if (st != NL_OK) return st;
    ynode *ls = seen[0];
    if (ls->kind != YN_SEQ || ls->n == 0)
        return cfg_err(c, ls, "model.layers: expected a non-empty list of layers "
                       "({type: dense, units: N} / {type: relu})");
    d->t.layers = calloc((size_t)ls->n, sizeof *d->t.layers);
    NL_ASSERT(d->t.layers != NULL);
    int last_dense = -1;
    for (int i = 0; i < ls->n; i++) {
        char path[64];
        snprintf(path, sizeof path, "model.layers[%d]", i);
        ynode *lseen[N_(layer_keys)];
        d->t.n_layers = i + 1;
        if (ls->vals[i]->kind != YN_MAP)
            return cfg_err(c, ls->vals[i], "%s: expected a map like {type: dense, units: 64}", path);
        st = cfg_section_parse(c, path, ls->vals[i], layer_keys, N_(layer_keys), &d->t.layers[i], -1, lseen);
        if (st != NL_OK) return st;
        cfg_layer *l = &d->t.layers[i];
        if (l->type == CFG_LAYER_DENSE) last_dense = i;
        if (l->type != CFG_LAYER_DENSE && lseen[1])
            return cfg_err(c, lseen[1], "%s.units: only dense layers have units", path);
        for (int k = LK_FILTERS; k < LK_N; k++) {
            if (!lseen[k] || (layer_key_types[k] >> l->type & 1u)) continue;
            sbuf types = {0};
            for (int t = 0; layer_names[t]; t++)
                if (layer_key_types[k] >> t & 1u)
                    sbuf_printf(&types, "%s%s", types.len ? ", " : "", layer_names[t]);
            st = cfg_err(c, lseen[k], "%s.%s: a %s layer has no %s (it is a key of: %s)", path,
                         layer_keys[k].name, layer_names[l->type], layer_keys[k].name, types.s);
            sbuf_free(&types);
            return st;
        }
        int d1 = l->type == CFG_LAYER_CONV1D || l->type == CFG_LAYER_MAXPOOL1D ||
                 l->type == CFG_LAYER_AVGPOOL1D;
        if (l->type == CFG_LAYER_CONV1D || l->type == CFG_LAYER_CONV2D) {
            if (!lseen[LK_FILTERS])
                return cfg_err(c, ls->vals[i], "%s: a %s layer needs filters (output channels, >= 1)",
                               path, layer_names[l->type]);
            if (!lseen[LK_KERNEL])
                return cfg_err(c, ls->vals[i], "%s: a %s layer needs kernel_size (e.g. %s)", path,
                               layer_names[l->type], d1 ? "3" : "3 or [3, 3]");
        }
        l->pool_size[0] = 2;
        l->pool_size[1] = d1 ? 0 : 2;
        int *win[3] = {l->kernel_size, l->strides, l->pool_size};
        for (int w = 0; w < 3; w++)
            if (lseen[LK_KERNEL + w] &&
                (st = parse_window(c, path, &window_keys[w], lseen[LK_KERNEL + w], d1, win[w])) != NL_OK)
                return st;
        for (int j = 0; j < i; j++)
            if (l->name[0] && !strcmp(l->name, d->t.layers[j].name))
                return cfg_err(c, lseen[2], "%s.name: '%s' is already the name of model.layers[%d]",
                               path, l->name, j);
    }
    /* Optional layers (enabled: false) leave; the output layer may not. */
    if (last_dense >= 0 && !d->t.layers[last_dense].enabled)
        return cfg_err(c, ls->vals[last_dense], "model.layers[%d].enabled: the last dense layer is the "
                       "output and cannot be turned off", last_dense);
    int kept = 0;
    for (int i = 0; i < d->t.n_layers; i++) {
        if (!d->t.layers[i].enabled) continue;
        if (i == last_dense) last_dense = kept;
        d->t.layers[kept++] = d->t.layers[i];
    }
    d->t.n_layers = kept;
    if (last_dense < 0)
        return cfg_err(c, ls, "model.layers: needs at least one dense layer");
    /* input_shape: [n] = flat, [steps, channels] = 1-D, [rows, cols, channels] = 2-D */
    int *is = d->t.layers[0].input_shape, ns = d->n_input_shape;
    if (ns == 3) { is[0] = d->input_shape[0]; is[1] = d->input_shape[1]; is[2] = d->input_shape[2]; }
    else if (ns == 2) { is[0] = 1; is[1] = d->input_shape[0]; is[2] = d->input_shape[1]; }
    else if (ns == 1) { is[0] = 1; is[1] = 1; is[2] = d->input_shape[0]; }
    else if (ns != 0)
        return cfg_err(c, seen[1], "model.input_shape: expected [features], [steps, channels] or "
                       "[rows, cols, channels]");
    for (int i = 0; i < last_dense; i++)
        if (d->t.layers[i].type == CFG_LAYER_DENSE && d->t.layers[i].units < 1)
            return cfg_err(c, ls->vals[i], "model.layers[%d].units: expected an integer >= 1 "
                           "(only the last dense layer may leave units 0 = number of classes)", i);
    return NL_OK;
}

static nl_status sec_training(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    ynode *seen[N_(training_keys)];
    nl_status st = cfg_section_parse(c, "training_parameters", node, training_keys, N_(training_keys),
                                     d, -1, seen);
    if (st != NL_OK) return st;
    cfg_training *t = &d->t.train;
    ynode *ls = seen[seen_i(training_keys, N_(training_keys), "label_smoothing")];
    if (d->label_smoothing != 0)
        return cfg_err(c, ls, "training_parameters.label_smoothing: label smoothing is not supported "
                       "yet; set it to 0 or remove it");
    ynode *ms = seen[seen_i(training_keys, N_(training_keys), "milestones")];
    for (int i = 1; i < t->n_milestones; i++)
        if (t->milestones[i] <= t->milestones[i - 1])
            return cfg_err(c, ms->vals[i], "training_parameters.milestones: must be increasing, got %d "
                           "after %d", t->milestones[i], t->milestones[i - 1]);
    if (t->schedule == LR_MULTISTEP && t->n_milestones == 0)
        return cfg_err(c, seen[seen_i(training_keys, N_(training_keys), "lr_schedule")],
                       "training_parameters.lr_schedule: multistep needs milestones: [epoch, ...]");
    return NL_OK;
}

static const cfg_key *find_key(const cfg_key *keys, int nk, const char *name) {
    int i = cfg_key_find(keys, nk, name);
    return i >= 0 ? &keys[i] : NULL;
}

static nl_status sec_pruning(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    /* The method comes first: other keys' defaults depend on it. */
    int method = PRUNE_PDP;
    ynode *mn = node && node->kind == YN_MAP ? yn_map_get(node, "pruning_method", NULL) : NULL;
    if (mn) {
        ynode *first = mn;
        if (mn->kind == YN_MAP) {
            ynode *ch = yn_map_get(mn, "choice", NULL);
            first = ch && ch->kind == YN_SEQ && ch->n > 0 ? ch->vals[0] : NULL;
        }
        if (first && first->kind == YN_SCALAR) {
            cfg_key mk = *find_key(pruning_keys, N_(pruning_keys), "pruning_method");
            mk.off = 0;
            nl_status st = cfg_key_parse(c, &mk, "pruning_parameters.pruning_method", first, &method);
            if (st != NL_OK) return st;
        }
    }
    ynode *seen[N_(pruning_keys)];
    nl_status st = cfg_section_parse(c, "pruning_parameters", node, pruning_keys, N_(pruning_keys), d,
                                     method, seen);
    if (st != NL_OK) return st;
    cfg_pruning *p = &d->t.prune;
    if ((p->N > 0) != (p->M > 0)) {
        ynode *at = seen[seen_i(pruning_keys, N_(pruning_keys), p->N > 0 ? "N" : "M")];
        return cfg_err(c, at, "pruning_parameters: N and M go together (N:M sparsity); set both or "
                       "neither (null)");
    }
    if (p->N > 0 && p->N >= p->M)
        return cfg_err(c, seen[seen_i(pruning_keys, N_(pruning_keys), "N")],
                       "pruning_parameters.N: must be smaller than M (%d), got %d", p->M, p->N);
    if (p->calibration_batches > 0 && p->method != PRUNE_WANDA)
        return cfg_err(c, seen[seen_i(pruning_keys, N_(pruning_keys), "calibration_batches")],
                       "pruning_parameters.calibration_batches: the one-shot post-training mode is "
                       "wanda's; set pruning_method: wanda or remove the key");
    return NL_OK;
}

static nl_status check_width(pctx *c, const fixed_spec *s, const char *what, ynode *at) {
    int w = fixed_width(s);
    if (w < 1 || w > 24)
        return cfg_err(c, at, "quantization_parameters: the %s format (keep_negatives %d, integer_bits "
                       "%d, fractional_bits %d) is %d bits wide; nnlo-c supports 1 to 24 bits "
                       "(values are carried in float)", what, s->k, s->i, s->f, w);
    return NL_OK;
}

/* layer_specific -> q->layers. Sections are weight, bias, input, output
 * (PQuant's); quantize applies to input/output only. Layer names are
 * checked against the model by compress. */
static nl_status parse_layer_specific(pctx *c, ynode *ls, cfg_quant *q) {
    static const char *const sections[] = {"weight", "bias", "input", "output", NULL};
    if (!ls || ls->kind != YN_MAP || ls->n == 0) return NL_OK;
    q->layers = calloc((size_t)ls->n, sizeof *q->layers);
    if (!q->layers) return nl_err(c->e, NL_ERR_NOMEM, "layer_specific: out of memory");
    for (int j = 0; j < ls->n; j++) {
        cfg_quant_layer *L = &q->layers[q->n_layers_specific++];
        const char *name = ls->keys[j]->text;
        if (strlen(name) >= sizeof L->layer)
            return cfg_err(c, ls->keys[j], "quantization_parameters.layer_specific: layer name "
                           "'%.40s...' is longer than %d characters", name, (int)sizeof L->layer - 1);
        snprintf(L->layer, sizeof L->layer, "%s", name);
        ynode *secs = ls->vals[j];
        if (yn_is_null(secs)) continue;
        if (secs->kind != YN_MAP)
            return cfg_err(c, secs, "quantization_parameters.layer_specific.%s: expected a map of "
                           "weight / bias / input / output sections", name);
        /* Keys directly under the layer (PQuant's older form, e.g. its
         * finetuning.yaml) set every quantizer of the layer; sections win. */
        ynode **dk = malloc((size_t)secs->n * 2 * sizeof *dk);
        if (!dk) return nl_err(c->e, NL_ERR_NOMEM, "layer_specific: out of memory");
        ynode direct = {.kind = YN_MAP, .line = secs->line, .col = secs->col, .keys = dk,
                        .vals = dk + secs->n};
        for (int k = 0; k < secs->n; k++)
            if (cfg_key_find(override_keys, N_(override_keys), secs->keys[k]->text) >= 0) {
                direct.keys[direct.n] = secs->keys[k];
                direct.vals[direct.n++] = secs->vals[k];
            }
        if (direct.n > 0) {
            char path[192];
            snprintf(path, sizeof path, "quantization_parameters.layer_specific.%s", name);
            ynode *seen[N_(override_keys)];
            cfg_quant_override *o = &L->weight;
            nl_status st = cfg_section_parse(c, path, &direct, override_keys, N_(override_keys), o,
                                             -1, seen);
            if (st != NL_OK) { free(dk); return st; }
            o->has_k = seen[0] != NULL;
            o->has_i = seen[1] != NULL;
            o->has_f = seen[2] != NULL;
            o->has_overflow = seen[3] != NULL;
            o->has_round = seen[4] != NULL;
            o->has_quantize = 0;
            L->bias = L->input = L->output = *o;
        }
        free(dk);
        for (int k = 0; k < secs->n; k++) {
            const char *sec = secs->keys[k]->text;
            int si = -1;
            if (cfg_key_find(override_keys, N_(override_keys), sec) >= 0) continue;
            for (int t = 0; sections[t]; t++)
                if (strcmp(sec, sections[t]) == 0) si = t;
            if (si < 0) {
                const char *sug = cfg_suggest(sec, sections, -1);
                return cfg_err(c, secs->keys[k], "quantization_parameters.layer_specific.%s: unknown "
                               "section '%s'%s%s%s (sections: weight, bias, input, output)", name, sec,
                               sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
            }
            cfg_quant_override *o = si == 0 ? &L->weight : si == 1 ? &L->bias
                                  : si == 2 ? &L->input : &L->output;
            char path[192];
            snprintf(path, sizeof path, "quantization_parameters.layer_specific.%s.%s", name, sec);
            ynode *seen[N_(override_keys)];
            cfg_quant_override t;
            memset(&t, 0, sizeof t);
            nl_status st = cfg_section_parse(c, path, secs->vals[k], override_keys,
                                             N_(override_keys), &t, -1, seen);
            if (st != NL_OK) return st;
            /* the section's keys over the layer-wide ones */
            if (seen[0]) { o->has_k = 1; o->spec.k = t.spec.k; }
            if (seen[1]) { o->has_i = 1; o->spec.i = t.spec.i; }
            if (seen[2]) { o->has_f = 1; o->spec.f = t.spec.f; }
            if (seen[3]) { o->has_overflow = 1; o->spec.overflow = t.spec.overflow; }
            if (seen[4]) { o->has_round = 1; o->spec.round = t.spec.round; }
            if (seen[5]) { o->has_quantize = 1; o->quantize = t.quantize; }
            if (o->has_quantize && si < 2)
                return cfg_err(c, seen[5], "%s.quantize: only input and output quantizers can be "
                               "switched off; weights and biases follow enable_quantization", path);
        }
    }
    return NL_OK;
}

static nl_status sec_quant(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    const int nk = N_(quant_keys);
    ynode *seen[N_(quant_keys)];
    nl_status st = cfg_section_parse(c, "quantization_parameters", node, quant_keys, nk, d, -1, seen);
    if (st != NL_OK) return st;
    cfg_quant *q = &d->t.quant;
    /* PQuant's older keys set weights and data alike; the specific keys win. */
    if (seen[seen_i(quant_keys, nk, "default_integer_bits")]) {
        if (!seen[seen_i(quant_keys, nk, "default_weight_integer_bits")]) q->weight.i = d->legacy_int_bits;
        if (!seen[seen_i(quant_keys, nk, "default_data_integer_bits")]) q->data.i = d->legacy_int_bits;
    }
    if (seen[seen_i(quant_keys, nk, "default_fractional_bits")]) {
        if (!seen[seen_i(quant_keys, nk, "default_weight_fractional_bits")]) q->weight.f = d->legacy_frac_bits;
        if (!seen[seen_i(quant_keys, nk, "default_data_fractional_bits")]) q->data.f = d->legacy_frac_bits;
    }
    q->data.round = q->weight.round; /* round_mode applies to every quantizer */
    q->bias = q->weight;
    st = parse_layer_specific(c, seen[seen_i(quant_keys, nk, "layer_specific")], q);
    if (st != NL_OK) return st;
    if (q->enable_quantization) {
        ynode *wat = seen[seen_i(quant_keys, nk, "default_weight_fractional_bits")];
        if (!wat) wat = seen[seen_i(quant_keys, nk, "default_weight_integer_bits")];
        if (!wat) wat = node && node->kind == YN_MAP ? node : NULL;
        if ((st = check_width(c, &q->weight, "weight", wat)) != NL_OK) return st;
        ynode *dat = seen[seen_i(quant_keys, nk, "default_data_fractional_bits")];
        if (!dat) dat = seen[seen_i(quant_keys, nk, "default_data_integer_bits")];
        if (!dat) dat = node && node->kind == YN_MAP ? node : NULL;
        if ((st = check_width(c, &q->data, "data", dat)) != NL_OK) return st;
    }
    return NL_OK;
}

static nl_status sec_fpga(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    ynode *seen[N_(fpga_keys)];
    return cfg_section_parse(c, "fpga", node, fpga_keys, N_(fpga_keys), d, -1, seen);
}

static nl_status sec_distill(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    ynode *seen[N_(distill_keys)];
    nl_status st = cfg_section_parse(c, "distillation", node, distill_keys, N_(distill_keys), d, -1, seen);
    if (st == NL_OK && node && node->kind == YN_MAP && node->n > 0 && !d->t.distill.teacher[0])
        return cfg_err(c, node, "distillation: missing required key 'teacher' (the teacher's model.h5)");
    return st;
}

static nl_status sec_search(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    ynode *seen[N_(search_keys)];
    nl_status st = cfg_section_parse(c, "search", node, search_keys, N_(search_keys), d, -1, seen);
    d->search_algorithm_at = seen[0];
    d->search_trials_at = seen[1];
    if (st != NL_OK) return st;
    d->search_startup_at = seen[seen_i(search_keys, N_(search_keys), "n_startup_trials")];
    ynode *pn = seen[seen_i(search_keys, N_(search_keys), "pruner")];
    ynode *pseen[N_(pruner_keys)];
    return cfg_section_parse(c, "search.pruner", pn, pruner_keys, N_(pruner_keys), d, -1, pseen);
}

static nl_status sec_constraints(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    d->n_constraints = 0;
    if (!node || yn_is_null(node)) return NL_OK;
    if (node->kind != YN_MAP)
        return cfg_err(c, node, "constraints: expected a map of metric: maximum, e.g. {dsp: 500}");
    for (int i = 0; i < node->n; i++) {
        const char *m = node->keys[i]->text;
        int id = metric_find(m);
        if (id < 0) {
            const char *sug = cfg_suggest(m, metric_names, -1);
            char extra[100] = "";
            if (sug) snprintf(extra, sizeof extra, "; did you mean '%s'?", sug);
            return cfg_err(c, node->keys[i], "unknown metric '%s' in constraints (any metric of "
                           "results.csv: dsp, lut, ff, bram18, latency_cycles, latency_ns, ebops, "
                           "remaining_weights, val_accuracy, ...)%s", m, extra);
        }
        NL_ASSERT(d->n_constraints < N_(d->constraints));
        scan_constraint *sc = &d->constraints[d->n_constraints++];
        snprintf(sc->metric, sizeof sc->metric, "%s", m);
        cfg_key mk = {.name = m, .type = KT_FLOAT, .off = 0, .flags = KF_MIN | KF_NODIM, .lo = 0};
        char path[80];
        snprintf(path, sizeof path, "constraints.%s", m);
        nl_status st = cfg_key_parse(c, &mk, path, node->vals[i], &sc->max);
        if (st != NL_OK) return st;
    }
    return NL_OK;
}

static nl_status sec_fitcompress(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)root;
    ynode *seen[N_(fitcompress_keys)];
    nl_status st = cfg_section_parse(c, "fitcompress_parameters", node, fitcompress_keys,
                                     N_(fitcompress_keys), d, -1, seen);
    if (st != NL_OK) return st;
    if (d->enable_fitcompress)
        return cfg_err(c, seen[0], "fitcompress_parameters.enable_fitcompress: FITCompress is not "
                       "supported by nnlo-c; set it to false (the other fitcompress keys are ignored)");
    return NL_OK;
}

/* ---- PQuant hpo_parameters -> search dimensions --------------------------- */

typedef struct { const char *section; const cfg_key *keys; int nk; } key_table;
static const key_table hpo_tables[] = {
    {"training_parameters", training_keys, N_(training_keys)},
    {"pruning_parameters", pruning_keys, N_(pruning_keys)},
    {"quantization_parameters", quant_keys, N_(quant_keys)},
};

static int scalar_key(const cfg_key *k) {
    return k->type == KT_INT || k->type == KT_LONG || k->type == KT_FLOAT || k->type == KT_BOOL ||
           k->type == KT_STRING || k->type == KT_ENUM;
}

static ynode *copy_scalar(const ynode *s) { return yn_new_scalar(s->text, s->quoted, s->line, s->col); }

/* Replaces or adds section.key = dim in the tree. */
static nl_status hpo_insert(pctx *c, ynode *root, const key_table *tab, const cfg_key *k, ynode *at,
                            ynode *dim) {
    int si = yn_map_index(root, tab->section);
    if (si < 0) {
        yn_map_add(root, yn_new_scalar(tab->section, 0, at->line, at->col), yn_new_map(at->line, at->col));
        si = root->n - 1;
    } else if (yn_is_null(root->vals[si])) {
        yn_free(root->vals[si]);
        root->vals[si] = yn_new_map(at->line, at->col);
    }
    ynode *sec = root->vals[si];
    if (sec->kind != YN_MAP) { yn_free(dim); return NL_OK; } /* the section handler reports it */
    for (int i = 0; i < sec->n; i++) {
        int ki = cfg_key_find(tab->keys, tab->nk, sec->keys[i]->text);
        if (ki < 0 || &tab->keys[ki] != k) continue;
        if (sec->vals[i]->kind == YN_MAP) {
            yn_free(dim);
            return cfg_err(c, at, "hpo_parameters: %s.%s is already a search dimension (line %d); "
                           "set it in one place", tab->section, sec->keys[i]->text, sec->vals[i]->line);
        }
        yn_free(sec->vals[i]);
        sec->vals[i] = dim;
        return NL_OK;
    }
    yn_map_add(sec, yn_new_scalar(k->name, 0, at->line, at->col), dim);
    return NL_OK;
}

static nl_status hpo_add(pctx *c, ynode *root, ynode *keynode, ynode *v, int numerical) {
    const char *name = keynode->text;
    const char *kind = numerical ? "numerical" : "categorical";
    const key_table *tab = NULL;
    const cfg_key *k = NULL;
    int found = 0;
    for (int t = 0; t < N_(hpo_tables); t++) {
        int i = cfg_key_find(hpo_tables[t].keys, hpo_tables[t].nk, name);
        if (i < 0 || (hpo_tables[t].keys[i].flags & KF_INFO)) continue;
        if (found++) {
            return cfg_err(c, keynode, "hpo_parameters.hyperparameter_search.%s: '%s' is a key of both %s "
                           "and %s; put the search dimension in the section instead (%s.%s: {choice: [...]})",
                           kind, name, tab->section, hpo_tables[t].section, tab->section, name);
        }
        tab = &hpo_tables[t];
        k = &tab->keys[i];
    }
    if (!found) {
        const char *names[256];
        int n = 0;
        for (int t = 0; t < N_(hpo_tables); t++)
            for (int i = 0; i < hpo_tables[t].nk && n < 256; i++)
                if (!(hpo_tables[t].keys[i].flags & KF_INFO)) names[n++] = hpo_tables[t].keys[i].name;
        const char *sug = cfg_suggest(name, names, n);
        char extra[120] = "";
        if (sug) snprintf(extra, sizeof extra, "; did you mean '%s'?", sug);
        return cfg_err(c, keynode, "hpo_parameters.hyperparameter_search.%s: unknown hyperparameter '%s' "
                       "(not a key of training_parameters, pruning_parameters or "
                       "quantization_parameters)%s", kind, name, extra);
    }
    if (!scalar_key(k) || (k->flags & KF_NODIM))
        return cfg_err(c, keynode, "hpo_parameters.hyperparameter_search.%s: %s.%s cannot be searched",
                       kind, tab->section, name);
    if (v->kind != YN_SEQ || v->n == 0)
        return cfg_err(c, v, "hpo_parameters.hyperparameter_search.%s.%s: expected a list (%s)", kind, name,
                       numerical ? "[low, high] or [low, high, step]" : "[value, ...]");
    for (int i = 0; i < v->n; i++)
        if (v->vals[i]->kind != YN_SCALAR)
            return cfg_err(c, v->vals[i], "hpo_parameters.hyperparameter_search.%s.%s: expected plain "
                           "values in the list", kind, name);
    ynode *dim = yn_new_map(v->line, v->col);
    if (!numerical) {
        ynode *seq = yn_new_seq(v->line, v->col);
        for (int i = 0; i < v->n; i++) yn_seq_add(seq, copy_scalar(v->vals[i]));
        yn_map_add(dim, yn_new_scalar("choice", 0, v->line, v->col), seq);
        return hpo_insert(c, root, tab, k, v, dim);
    }
    int key_int = k->type == KT_INT || k->type == KT_LONG;
    if ((k->type != KT_FLOAT && !key_int) || v->n < 2 || v->n > 3) {
        yn_free(dim);
        if (k->type != KT_FLOAT && !key_int)
            return cfg_err(c, v, "hpo_parameters.hyperparameter_search.numerical.%s: %s.%s is not a "
                           "number; put it under categorical", name, tab->section, name);
        return cfg_err(c, v, "hpo_parameters.hyperparameter_search.numerical.%s: expected [low, high] or "
                       "[low, high, step], got %d values", name, v->n);
    }
    double x[3];
    for (int i = 0; i < v->n; i++) {
        char *end;
        x[i] = strtod(v->vals[i]->text, &end);
        if (end == v->vals[i]->text || *end || !isfinite(x[i])) {
            yn_free(dim);
            return cfg_err(c, v->vals[i], "hpo_parameters.hyperparameter_search.numerical.%s: expected a "
                           "number, got '%s'", name, v->vals[i]->text);
        }
    }
    if (v->n == 2) {
        ynode *seq = yn_new_seq(v->line, v->col);
        yn_seq_add(seq, copy_scalar(v->vals[0]));
        yn_seq_add(seq, copy_scalar(v->vals[1]));
        yn_map_add(dim, yn_new_scalar(key_int ? "int" : "uniform", 0, v->line, v->col), seq);
        return hpo_insert(c, root, tab, k, v, dim);
    }
    /* [low, high, step]: the values low, low + step, ... <= high */
    double lo = x[0], hi = x[1], step = x[2];
    if (!(step > 0) || !(lo <= hi)) {
        yn_free(dim);
        return cfg_err(c, v, "hpo_parameters.hyperparameter_search.numerical.%s: [low, high, step] needs "
                       "low <= high and step > 0", name);
    }
    double count = floor((hi - lo) / step * (1 + 1e-12) + 1e-9) + 1;
    if (count > 10000) {
        yn_free(dim);
        return cfg_err(c, v, "hpo_parameters.hyperparameter_search.numerical.%s: %.0f values; at most "
                       "10000 (use [low, high] for a continuous range)", name, count);
    }
    if (key_int && (lo != floor(lo) || step != floor(step))) {
        yn_free(dim);
        return cfg_err(c, v, "hpo_parameters.hyperparameter_search.numerical.%s: %s.%s is an integer; "
                       "low and step must be integers", name, tab->section, name);
    }
    ynode *seq = yn_new_seq(v->line, v->col);
    for (int i = 0; i < (int)count; i++) {
        double val = lo + i * step;
        char buf[40];
        if (key_int) snprintf(buf, sizeof buf, "%.0f", val);
        else fmt_double(buf, sizeof buf, val);
        yn_seq_add(seq, yn_new_scalar(buf, 0, v->vals[0]->line, v->vals[0]->col));
    }
    yn_map_add(dim, yn_new_scalar("choice", 0, v->line, v->col), seq);
    return hpo_insert(c, root, tab, k, v, dim);
}

static nl_status sec_hpo(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    ynode *seen[N_(hpo_keys)];
    nl_status st = cfg_section_parse(c, "hpo_parameters", node, hpo_keys, N_(hpo_keys), d, -1, seen);
    if (st != NL_OK || !node) return st;
    d->hpo_trials_at = seen[seen_i(hpo_keys, N_(hpo_keys), "num_trials")];
    ynode *sampler = seen[seen_i(hpo_keys, N_(hpo_keys), "sampler")];
    if (sampler) {
        ynode *sseen[N_(hpo_sampler_keys)];
        st = cfg_section_parse(c, "hpo_parameters.sampler", sampler, hpo_sampler_keys,
                               N_(hpo_sampler_keys), d, -1, sseen);
        if (st != NL_OK) return st;
        if (sseen[0]) {
            if (strcmp(d->hpo_sampler, "RandomSampler") && strcmp(d->hpo_sampler, "GridSampler") &&
                strcmp(d->hpo_sampler, "TPESampler"))
                return cfg_err(c, sseen[0], "hpo_parameters.sampler.type: '%s' is not supported; nnlo-c "
                               "supports RandomSampler, GridSampler and TPESampler (or search.algorithm: "
                               "random | grid | tpe)",
                               d->hpo_sampler);
            d->hpo_sampler_at = sseen[0];
        }
        /* Optuna's TPESampler(n_startup_trials=...): the one sampler
         * parameter nnlo-c uses; the others (seed, ...) are ignored */
        ynode *params = sseen[1];
        if (params && params->kind == YN_MAP && !sseen[0])
            for (int i = 0; i < params->n; i++)
                if (!strcmp(params->keys[i]->text, "n_startup_trials"))
                    return cfg_err(c, params->keys[i], "hpo_parameters.sampler.params.n_startup_trials "
                                   "needs sampler.type: TPESampler (without a type the scan searches at "
                                   "random)");
        if (params && params->kind == YN_MAP && !strcmp(d->hpo_sampler, "TPESampler"))
            for (int i = 0; i < params->n; i++) {
                if (strcmp(params->keys[i]->text, "n_startup_trials")) continue;
                ynode *v = params->vals[i];
                char *end = NULL;
                long k = v->kind == YN_SCALAR ? strtol(v->text, &end, 10) : -1;
                if (!end || *end || end == v->text || k < 0 || k > 1000000)
                    return cfg_err(c, v, "hpo_parameters.sampler.params.n_startup_trials: expected an "
                                   "integer >= 0, got '%s'", v->kind == YN_SCALAR ? v->text : "a non-scalar");
                d->hpo_startup = (int)k;
                d->hpo_startup_at = v;
            }
    }
    ynode *hs = seen[seen_i(hpo_keys, N_(hpo_keys), "hyperparameter_search")];
    if (!hs) return NL_OK;
    ynode *hseen[N_(hpo_search_keys)];
    st = cfg_section_parse(c, "hpo_parameters.hyperparameter_search", hs, hpo_search_keys,
                           N_(hpo_search_keys), d, -1, hseen);
    if (st != NL_OK) return st;
    for (int which = 0; which < 2; which++) {
        ynode *m = hseen[which];
        if (!m || yn_is_null(m)) continue;
        if (m->kind != YN_MAP)
            return cfg_err(c, m, "hpo_parameters.hyperparameter_search.%s: expected a map of "
                           "key: [values]", which == 0 ? "numerical" : "categorical");
        for (int i = 0; i < m->n; i++)
            if ((st = hpo_add(c, root, m->keys[i], m->vals[i], which == 0)) != NL_OK) return st;
    }
    return NL_OK;
}

static nl_status sec_nothing(pctx *c, ynode *root, ynode *node, cfg_doc *d) {
    (void)c, (void)root, (void)node, (void)d;
    return NL_OK;
}

static const struct { const char *name; section_fn fn; } sections[] = {
    {"data", sec_data},
    {"model", sec_model},
    {"training_parameters", sec_training},
    {"pruning_parameters", sec_pruning},
    {"quantization_parameters", sec_quant},
    {"fpga", sec_fpga},
    {"distillation", sec_distill},
    {"search", sec_search},
    {"constraints", sec_constraints},
    {"hpo_parameters", sec_nothing}, /* done first, by sec_hpo */
    {"fitcompress_parameters", sec_fitcompress},
};

/* ---- whole documents ------------------------------------------------------ */

void config_free_trial(trial_config *t) {
    if (!t) return;
    cfg_strlist_free(&t->data.train_files, &t->data.n_train);
    cfg_strlist_free(&t->data.val_files, &t->data.n_val);
    cfg_strlist_free(&t->data.test_files, &t->data.n_test);
    cfg_strlist_free(&t->prune.disable_layers, &t->prune.n_disable);
    free(t->layers);
    free(t->quant.layer_specific);
    free(t->quant.layers);
    memset(t, 0, sizeof *t);
}

static nl_status set_base_dir(pctx *c, const char *base_dir) {
    char cwd[1024];
    if (base_dir && base_dir[0] == '/') {
        snprintf(c->base_dir, sizeof c->base_dir, "%s", base_dir);
    } else {
        if (!getcwd(cwd, sizeof cwd))
            return nl_err(c->e, NL_ERR_IO, "cannot determine the current directory");
        if (!base_dir || !*base_dir || !strcmp(base_dir, "."))
            snprintf(c->base_dir, sizeof c->base_dir, "%s", cwd);
        else if ((size_t)snprintf(c->base_dir, sizeof c->base_dir, "%s/%s", cwd, base_dir) >=
                 sizeof c->base_dir)
            return nl_err(c->e, NL_ERR_INVALID, "base directory path too long");
    }
    size_t n = strlen(c->base_dir);
    while (n > 1 && c->base_dir[n - 1] == '/') c->base_dir[--n] = '\0';
    return NL_OK;
}

/* Parses root into d. On error d may hold allocations: free d->t. */
static nl_status doc_parse(pctx *c, ynode *root, cfg_doc *d) {
    ynode *seen[N_(top_keys)];
    nl_status st = cfg_section_parse(c, "", root, top_keys, N_(top_keys), d, -1, seen);
    if (st != NL_OK) return st;
    /* PQuant's hpo_parameters first: it turns into search dimensions in sections */
    ynode *hpo = yn_map_get(root, "hpo_parameters", NULL);
    if ((st = sec_hpo(c, root, hpo, d)) != NL_OK) return st;
    int done[N_(sections)] = {0};
    for (int i = 0; i < root->n; i++)
        for (int s = 0; s < N_(sections); s++)
            if (!strcmp(root->keys[i]->text, sections[s].name)) {
                ynode *v = root->vals[i];
                if ((st = sections[s].fn(c, root, v, d)) != NL_OK) return st;
                done[s] = 1;
            }
    for (int s = 0; s < N_(sections); s++)
        if (!done[s] && (st = sections[s].fn(c, root, NULL, d)) != NL_OK) return st;
    /* search vs hpo_parameters */
    if (d->hpo_trials_at) {
        if (d->search_trials_at)
            return cfg_err(c, d->search_trials_at, "search.trials: the number of trials is also set by "
                           "hpo_parameters.num_trials (line %d); keep one", d->hpo_trials_at->line);
        d->trials = d->hpo_trials;
    }
    if (d->hpo_sampler_at) {
        int alg = strcmp(d->hpo_sampler, "GridSampler") == 0  ? SEARCH_GRID
                  : strcmp(d->hpo_sampler, "TPESampler") == 0 ? SEARCH_TPE
                                                               : SEARCH_RANDOM;
        if (d->search_algorithm_at && (int)d->algorithm != alg)
            return cfg_err(c, d->search_algorithm_at, "search.algorithm: '%s' contradicts "
                           "hpo_parameters.sampler.type '%s' (line %d); keep one",
                           algorithm_names[d->algorithm], d->hpo_sampler, d->hpo_sampler_at->line);
        d->algorithm = (search_algorithm)alg;
    }
    if (d->hpo_startup_at) {
        if (d->search_startup_at)
            return cfg_err(c, d->search_startup_at, "search.n_startup_trials: also set by "
                           "hpo_parameters.sampler.params.n_startup_trials (line %d); keep one",
                           d->hpo_startup_at->line);
        d->n_startup_trials = d->hpo_startup;
    }
    return NL_OK;
}

static void doc_free(cfg_doc *d) { config_free_trial(&d->t); }

nl_status config_parse_trial(const char *yaml_text, const char *source, const char *base_dir,
                             trial_config *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    if (!source) source = "<trial>";
    pctx c = {.source = source, .allow_dims = 0, .e = e};
    nl_status st = set_base_dir(&c, base_dir);
    if (st != NL_OK) return st;
    ynode *root;
    if ((st = yn_parse(yaml_text, source, &root, e)) != NL_OK) return st;
    cfg_doc *d = calloc(1, sizeof *d);
    NL_ASSERT(d != NULL);
    st = doc_parse(&c, root, d);
    yn_free(root);
    free(c.dims);
    free(c.dim_keys);
    if (st != NL_OK) {
        doc_free(d);
        free(d);
        return st;
    }
    *out = d->t;
    snprintf(out->source, sizeof out->source, "%s", source);
    free(d);
    return NL_OK;
}

/* Folder of path ("." if none). */
static void dir_of(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, len, ".");
    else if (slash == path) snprintf(buf, len, "/");
    else snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

/* The text of a config file and its folder (relative paths in it are
 * taken from there). */
static nl_status read_config(const char *path, char **text, char *dir, size_t dirlen, nl_error *e) {
    size_t len;
    nl_status st = fs_read_all(path, text, &len, e);
    if (st == NL_OK) dir_of(path, dir, dirlen);
    return st;
}

nl_status config_load_trial(const char *path, trial_config *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    char *text, dir[1024];
    nl_status st = read_config(path, &text, dir, sizeof dir, e);
    if (st != NL_OK) return st;
    st = config_parse_trial(text, path, dir, out, e);
    free(text);
    return st;
}

/* ---- scans ---------------------------------------------------------------- */

typedef struct {
    ynode *root;
    char base_dir[1024];
    const cfg_key **dim_keys; /* per dimension: the key it sets */
} scan_tree;

void config_free_scan(scan_config *s) {
    if (!s) return;
    for (int i = 0; i < s->n_dims; i++) free(s->dims[i].choices);
    free(s->dims);
    free(s->text);
    scan_tree *t = s->tree;
    if (t) {
        yn_free(t->root);
        free(t->dim_keys);
        free(t);
    }
    config_free_trial(&s->base);
    memset(s, 0, sizeof *s);
}

static void name_from_source(const char *source, char *buf, size_t len) {
    const char *b = strrchr(source, '/');
    b = b ? b + 1 : source;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".yaml")) n -= 5;
    else if (n > 4 && !strcmp(b + n - 4, ".yml")) n -= 4;
    if (n == 0 || b[0] == '<') snprintf(buf, len, "scan");
    else snprintf(buf, len, "%.*s", (int)n, b);
}

nl_status config_parse_scan(const char *text, const char *source, const char *base_dir,
                            scan_config *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    if (!source) source = "<scan>";
    pctx c = {.source = source, .allow_dims = 1, .e = e};
    nl_status st = set_base_dir(&c, base_dir);
    if (st != NL_OK) return st;
    ynode *root;
    if ((st = yn_parse(text, source, &root, e)) != NL_OK) return st;
    cfg_doc *d = calloc(1, sizeof *d);
    NL_ASSERT(d != NULL);
    st = doc_parse(&c, root, d);
    if (st != NL_OK) {
        for (int i = 0; i < c.n_dims; i++) free(c.dims[i].choices);
        free(c.dims);
        free(c.dim_keys);
        yn_free(root);
        doc_free(d);
        free(d);
        return st;
    }
    snprintf(out->source, sizeof out->source, "%s", source);
    if (d->t.name[0]) snprintf(out->name, sizeof out->name, "%s", d->t.name);
    else name_from_source(source, out->name, sizeof out->name);
    if (d->output_dir[0]) snprintf(out->output_dir, sizeof out->output_dir, "%s", d->output_dir);
    else snprintf(out->output_dir, sizeof out->output_dir, "runs/%s", out->name);
    out->seed = d->t.seed;
    out->algorithm = d->algorithm;
    out->n_startup_trials = d->n_startup_trials;
    out->pruner = (search_pruner)d->pruner;
    out->pruner_startup = d->pruner_startup;
    out->pruner_warmup = d->pruner_warmup;
    out->trial_timeout = d->trial_timeout;
    out->trials = d->trials;
    out->top_k = d->top_k;
    out->objective = d->objective;
    memcpy(out->constraints, d->constraints, sizeof out->constraints);
    out->n_constraints = d->n_constraints;
    out->dims = c.dims;
    out->n_dims = c.n_dims;
    if (out->algorithm == SEARCH_GRID && !d->search_trials_at && !d->hpo_trials_at) {
        /* a grid runs every point unless trials caps it */
        double g = 1;
        for (int i = 0; i < c.n_dims; i++) {
            const search_dim *sd = &c.dims[i];
            g *= sd->kind == DIM_CHOICE ? sd->n_choices
                 : sd->kind == DIM_INT  ? sd->hi - sd->lo + 1
                                        : sd->grid_points;
        }
        out->trials = g > INT_MAX ? INT_MAX : (int)g;
    }
    out->text = str_dup(text);
    NL_ASSERT(out->text != NULL);
    scan_tree *t = calloc(1, sizeof *t);
    NL_ASSERT(t != NULL);
    t->root = root;
    memcpy(t->base_dir, c.base_dir, sizeof t->base_dir);
    t->dim_keys = c.dim_keys;
    out->tree = t;
    out->base = d->t;
    snprintf(out->base.source, sizeof out->base.source, "%s", source);
    free(d);
    return NL_OK;
}

nl_status config_load_scan(const char *path, scan_config *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    char *text, dir[1024];
    nl_status st = read_config(path, &text, dir, sizeof dir, e);
    if (st != NL_OK) return st;
    st = config_parse_scan(text, path, dir, out, e);
    free(text);
    return st;
}

/* ---- resolving a point ---------------------------------------------------- */

typedef struct {
    const scan_config *s;
    const scan_tree *t;
    const cfg_value *values;
    nl_error *e;
    int failed;
    cfg_doc *scratch; /* values are checked against their key by parsing them into it */
} resolver;

/* Checks text as a value of the dimension's key; messages point at the
 * dimension in the scan file. */
static int resolve_check(resolver *r, const cfg_key *k, const search_dim *sd, const char *text,
                         int quoted) {
    pctx c = {.source = r->s->source, .allow_dims = 0, .e = r->e};
    memcpy(c.base_dir, r->t->base_dir, sizeof c.base_dir);
    ynode *n = yn_new_scalar(text, quoted, sd->line, sd->col);
    nl_status st = cfg_key_parse(&c, k, sd->path, n, r->scratch);
    yn_free(n);
    if (st != NL_OK) r->failed = 1;
    return st == NL_OK;
}

static int resolve_subst(void *ctx, const ynode *node, sbuf *b) {
    resolver *r = ctx;
    if (r->failed) return 0;
    if (node->dim >= 0) {
        NL_ASSERT(node->dim < r->s->n_dims);
        const cfg_key *k = r->t->dim_keys[node->dim];
        const search_dim *sd = &r->s->dims[node->dim];
        const cfg_value *v = &r->values[node->dim];
        char buf[64];
        int numeric = k->type == KT_INT || k->type == KT_LONG || k->type == KT_FLOAT;
        if (numeric || k->type == KT_BOOL) {
            if (v->kind == VAL_STR || !isfinite(v->num)) {
                nl_err(r->e, NL_ERR_INVALID, "%s: value for %s must be a finite %s", r->s->source,
                       sd->path, k->type == KT_BOOL ? "boolean" : "number");
                r->failed = 1;
                return 0;
            }
            if (k->type == KT_BOOL) snprintf(buf, sizeof buf, "%s", v->num != 0 ? "true" : "false");
            else if (sd->is_int) snprintf(buf, sizeof buf, "%.0f", nearbyint(v->num));
            else fmt_double(buf, sizeof buf, v->num);
            if (!resolve_check(r, k, sd, buf, 0)) return 0;
            sbuf_append(b, buf, strlen(buf));
        } else {
            if (v->kind != VAL_STR) {
                nl_err(r->e, NL_ERR_INVALID, "%s: value for %s must be a string", r->s->source, sd->path);
                r->failed = 1;
                return 0;
            }
            if (!resolve_check(r, k, sd, v->str, 1)) return 0;
            yn_write_scalar(b, v->str, !yn_plain_safe(v->str, 1));
        }
        return 1;
    }
    if (node->kind == YN_SCALAR && node->is_path && node->text[0] != '/') {
        const char *rel = node->text;
        while (rel[0] == '.' && rel[1] == '/') rel += 2;
        sbuf p = {0};
        sbuf_printf(&p, "%s/%s", r->t->base_dir, rel);
        yn_write_scalar(b, p.s, !yn_plain_safe(p.s, 1));
        sbuf_free(&p);
        return 1;
    }
    return 0;
}

char *config_resolve(const scan_config *s, const cfg_value *values, uint64_t trial_seed,
                     nl_error *e) {
    const scan_tree *t = s->tree;
    NL_ASSERT(t != NULL);
    sbuf b = {0};
    if (!strpbrk(s->source, "\r\n")) sbuf_printf(&b, "# trial of %s\n", s->source);
    sbuf_printf(&b, "seed: %llu\n", (unsigned long long)trial_seed);
    static const char *const skip[] = {"seed", "search", "constraints", "hpo_parameters", NULL};
    resolver r = {.s = s, .t = t, .values = values, .e = e, .scratch = calloc(1, sizeof(cfg_doc))};
    NL_ASSERT(r.scratch != NULL);
    yn_write(&b, t->root, 0, skip, resolve_subst, &r);
    free(r.scratch);
    if (r.failed) { sbuf_free(&b); return NULL; }
    /* The trial must parse and pass every check (ranges, cross-key rules). */
    trial_config check;
    char src[600];
    snprintf(src, sizeof src, "%s (resolved trial)", s->source);
    if (config_parse_trial(b.s, src, t->base_dir, &check, e) != NL_OK) {
        sbuf_free(&b);
        return NULL;
    }
    config_free_trial(&check);
    return b.s;
}

char *cfg_value_format(const cfg_value *v, char *buf, int len) {
    if (v->kind == VAL_STR) snprintf(buf, (size_t)len, "%s", v->str);
    else if (v->kind == VAL_BOOL) snprintf(buf, (size_t)len, "%s", v->num != 0 ? "true" : "false");
    else {
        char tmp[40];
        snprintf(buf, (size_t)len, "%s", fmt_double(tmp, sizeof tmp, v->num));
    }
    return buf;
}
