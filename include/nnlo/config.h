/* config.h — scan.yaml / trial.yaml -> typed structs, and the search space.
 *
 * libyaml parses the file into a tree that remembers line:column of every
 * node. One schema table per section is the single place where a key is
 * parsed, defaulted and validated; unknown keys are errors with a
 * did-you-mean suggestion; every message names file:line:column and the
 * key. Any scalar may be a search dimension:
 *   {choice: [a, b, ...]}  {uniform: [lo, hi]}  {log_uniform: [lo, hi]}
 *   {int: [lo, hi]}        (optional `grid_points: N` for grid search)
 * A trial config is the scan tree with every dimension replaced by a value,
 * emitted as YAML text (trial.yaml) and parsed back by config_parse_trial:
 * `nnlo-c train trial.yaml` therefore sees exactly what the worker saw.
 * PQuant's section names and keys are accepted as they are. */
#ifndef NNLO_CONFIG_H
#define NNLO_CONFIG_H

#include <stdint.h>
#include "nnlo/fixed.h"
#include "nnlo/util.h"

/* ---- typed trial configuration ----------------------------------------- */

typedef enum { LABELS_AUTO = 0, LABELS_INDEX = 1, LABELS_ONEHOT = 2 } label_format;
/* data.standardize: false | true (per feature) | global (one mean and std
 * over all training values, as image pipelines and the PyTorch reference do) */
typedef enum { STANDARDIZE_OFF = 0, STANDARDIZE_PER_FEATURE = 1, STANDARDIZE_GLOBAL = 2 } standardize_mode;

typedef struct {
    char **train_files; int n_train;   /* absolute or relative to the YAML's folder, resolved */
    char **val_files;   int n_val;     /* optional */
    char **test_files;  int n_test;    /* optional */
    char features[128];                /* dataset name, default "X" */
    char labels[128];                  /* dataset name, default "y" */
    label_format labels_format;        /* default auto: 1-D -> index, 2-D -> one-hot */
    double validation_split;           /* used when no validation files; default 0.2 */
    int standardize;                   /* standardize_mode; default per feature: mean/std of
                                          each feature over the training split */
    long max_samples;                  /* 0 = all; caps each split (quick tests) */
} cfg_data;

typedef enum {
    CFG_LAYER_DENSE = 0, CFG_LAYER_RELU = 1, CFG_LAYER_CONV1D = 2, CFG_LAYER_CONV2D = 3,
    CFG_LAYER_MAXPOOL1D = 4, CFG_LAYER_MAXPOOL2D = 5, CFG_LAYER_AVGPOOL1D = 6,
    CFG_LAYER_AVGPOOL2D = 7, CFG_LAYER_BATCHNORM = 8, CFG_LAYER_FLATTEN = 9,
    CFG_LAYER_DROPOUT = 10, CFG_LAYER_TANH = 11, CFG_LAYER_SIGMOID = 12,
    CFG_LAYER_HARD_TANH = 13, CFG_LAYER_LEAKY_RELU = 14
} cfg_layer_type; /* append only */

typedef enum { CFG_PAD_VALID = 0, CFG_PAD_SAME = 1 } cfg_padding;

typedef struct {
    cfg_layer_type type;
    char name[64];   /* "" -> generated */
    int units;       /* dense; 0 on the last dense = number of classes */
    /* appended; each only on the types named (an error elsewhere): */
    int filters;        /* conv: required, >= 1 */
    int kernel_size[2]; /* conv: required; (rows, cols); `k` means (k, k); 1-D: [0] */
    int strides[2];     /* conv, pool: 0 = default (conv 1, pool = pool_size) */
    int pool_size[2];   /* pool: default 2 (2 x 2) */
    cfg_padding padding;/* conv, pool: valid (default) | same */
    double rate;        /* dropout: fraction dropped, [0, 1); default 0.5 */
    double alpha;       /* leaky_relu: slope below 0; default 0.3 (Keras) */
    double momentum;    /* batchnorm: default 0.99 (Keras) */
    double epsilon;     /* batchnorm: default 0.001 (Keras) */
    int input_shape[3]; /* layers[0] only: model.input_shape as (H, W, C): [n] -> (1, 1, n),
                           [steps, ch] -> (1, steps, ch); zeros = flat features */
    int enabled;        /* all types: default true; `enabled: {choice: [true, false]}` makes a
                           layer optional (depth as a search dimension); a trial drops the
                           layers that are off, so trial_config never holds one */
} cfg_layer;

typedef enum { REWIND_NEVER = 0, REWIND_EVERY_ROUND = 1, REWIND_POST_TRAINING = 2 } rewind_mode;
typedef enum { OPTIMIZER_ADAM = 0, OPTIMIZER_SGD = 1 } optimizer_type;
typedef enum { LR_CONSTANT = 0, LR_COSINE = 1, LR_MULTISTEP = 2 } lr_schedule;

typedef struct {
    int epochs;              /* main stage epochs per round; default 10 */
    int pretraining_epochs;  /* default 0 */
    int fine_tuning_epochs;  /* default 0 */
    int rounds;              /* default 1 */
    int save_weights_epoch;  /* default -1 (never) */
    rewind_mode rewind;      /* never | every-round | post-training-stage */
    int pruning_first;       /* 1: Q(P(W)); 0: P(Q(W)). default 1 */
    int batch_size;          /* default 256 */
    optimizer_type optimizer;/* adam | sgd; default adam */
    double learning_rate;    /* default 1e-3 (`lr` is an alias) */
    double momentum;         /* sgd; default 0.9 */
    double l2_decay;         /* default 0 (`weight_decay` alias) */
    lr_schedule schedule;    /* lr_schedule: constant | cosine | multistep; default constant */
    int milestones[16]; int n_milestones; /* multistep: epochs (ascending) where lr *= gamma */
    double gamma;            /* default 0.1 */
    int cosine_tmax;         /* cosine period in epochs; default 0 = the main-stage epochs */
    int early_stopping_patience; /* epochs without val improvement; 0 = off */
} cfg_training;

/* Pruning methods: the registry in src/compress maps these to code. */
typedef enum {
    PRUNE_PDP = 0, PRUNE_MAGNITUDE = 1, PRUNE_CS = 2, PRUNE_DST = 3,
    PRUNE_AUTOSPARSE = 4, PRUNE_WANDA = 5, PRUNE_ACTIVATION = 6, PRUNE_MDMM = 7
} prune_method;
const char *prune_method_name(prune_method m); /* "pdp", ..., "activation_pruning" */

typedef enum { THRESH_CHANNELWISE = 0, THRESH_WEIGHTWISE = 1, THRESH_LAYERWISE = 2 } prune_threshold_type;
typedef enum { NM_KEEP_N = 0, NM_PRUNE_N = 1 } prune_nm_convention;
typedef enum { MDMM_EQUALITY = 0, MDMM_LEQ = 1, MDMM_GEQ = 2 } mdmm_constraint;
typedef enum { MDMM_UNSTRUCTURED = 0, MDMM_STRUCTURED = 1 } mdmm_metric;
typedef enum { MDMM_L0_COARSE = 0, MDMM_L0_SMOOTH = 1 } mdmm_l0_mode;
typedef enum { MDMM_SCALE_MEAN = 0, MDMM_SCALE_SUM = 1 } mdmm_scale_mode;

typedef struct {
    int enable_pruning;          /* default 1 */
    prune_method method;         /* default pdp */
    char **disable_layers; int n_disable;
    double sparsity;             /* target; default 0.8 (pdp) */
    double epsilon;              /* pdp: budget ramp per epoch; default 0.015 */
    double temperature;          /* pdp: tau; default 1e-5 */
    double threshold_decay;
    int structured_pruning;      /* default 0 */
    /* magnitude (Zhu & Gupta polynomial schedule over main-stage epochs) */
    double initial_sparsity;     /* default 0 */
    int begin_epoch;             /* default 0 */
    int end_epoch;               /* default -1: last main-stage epoch */
    double power;                /* default 3 */
    int update_frequency;        /* steps between mask updates; 0 = per epoch; default 0 */
    /* cs (Continuous Sparsification) */
    double final_temp;           /* beta reaches final_temp at the last epoch; default 200 */
    double threshold_init;       /* s0 / T0: cs 0, dst 0, autosparse -5 */
    /* dst, autosparse */
    prune_threshold_type threshold_type; /* default channelwise */
    double alpha;                /* dst: 5e-6 (threshold penalty); autosparse: 0.5 (relu slope) */
    double max_pruning_pct;      /* dst: reset T when a layer is this sparse; default 0.99 */
    int alpha_reset_epoch;       /* autosparse: alpha = 0 from this epoch; default 90 */
    int autotune_epochs;         /* autosparse (PQuant key, kept); default 10 */
    int backward_sparsity;       /* autosparse; default 0 */
    /* wanda, activation_pruning */
    int t_start_collecting_batch;/* default 100 */
    int t_delta;                 /* batches to accumulate; default 100 */
    int calculate_pruning_budget;/* wanda; default 1 */
    int calibration_batches;     /* wanda one-shot (post-training) mode: prune after the
                                    pre-training stage from this many batches; 0 = off */
    int N, M;                    /* wanda N:M; 0 = off (YAML null, PQuant's default) */
    prune_nm_convention nm_convention; /* keep_n (default): keep N of every M; prune_n: PQuant's */
    double threshold;            /* activation_pruning: keep a neuron active in > threshold; 0.2 */
    /* mdmm */
    mdmm_constraint constraint_type; /* Equality (default) | LessThanOrEqual | GreaterThanOrEqual */
    double target_value;         /* default 0 */
    mdmm_metric metric_type;     /* UnstructuredSparsity (default) | StructuredSparsity */
    double target_sparsity;      /* mdmm: 0.9; activation_pruning: 0 = no target (threshold rule) */
    int rf;                      /* default 1 */
    double scale;                /* default 10 */
    double damping;              /* default 1 */
    int use_grad;                /* default 0 */
    mdmm_l0_mode l0_mode;        /* coarse (default) | smooth */
    mdmm_scale_mode scale_mode;  /* mean (default) | sum */
    double constraint_lr;        /* default 1e-3 */
} cfg_pruning;

typedef enum { GRAN_PER_TENSOR = 0, GRAN_PER_CHANNEL = 1, GRAN_PER_WEIGHT = 2 } quant_granularity;

/* One quantizer's layer_specific override (PQuant's keys keep_negatives,
 * integer_bits, fractional_bits, quantize; ours: overflow, round_mode).
 * has_* say which keys were given; the rest come from the defaults. */
typedef struct {
    int has_k, has_i, has_f, has_overflow, has_round, has_quantize;
    fixed_spec spec;             /* the given fields (others 0) */
    int quantize;                /* input/output only: insert (1) or drop (0) the quantizer */
} cfg_quant_override;

/* layer_specific: {<layer name>: {weight|bias|input|output: {...}}}. */
typedef struct {
    char layer[64];
    cfg_quant_override weight, bias, input, output;
} cfg_quant_layer;

typedef struct {
    int enable_quantization;     /* default 1 */
    fixed_spec weight;           /* default (1,0,7) SAT RND; bias uses the same */
    fixed_spec bias;
    fixed_spec data;             /* default (0,0,7) SAT RND (PQuant's default) */
    int quantize_input;          /* default 1 */
    int quantize_output;         /* default 0 */
    int quantize_relu;           /* nnlo-c: PQuant's ReLU quantizers (k 0, data i, data f + 1)
                                    on every ReLU as quantize_input/_output say; default 0 */
    quant_granularity granularity;
    int use_hgq;                 /* use_high_granularity_quantization; default 0 */
    double hgq_beta;             /* EBOPs loss weight; default 1e-5 */
    double hgq_gamma;            /* bit-count loss weight; default 3e-4 */
    int hgq_heterogeneous;       /* default 1 */
    int use_symmetric_quantization; /* default 0 */
    char *layer_specific;        /* the layer_specific map as YAML text; NULL when absent or
                                    empty; owned, freed with the config */
    cfg_quant_layer *layers;     /* layer_specific parsed (n_layers_specific entries); owned */
    int n_layers_specific;
} cfg_quant;

typedef enum { FPGA_STRATEGY_LATENCY = 0, FPGA_STRATEGY_RESOURCE = 1 } fpga_strategy;

typedef struct {
    char part[64];               /* default xcu250-figd2104-2L-e */
    double clock_period_ns;      /* default 5 */
    fpga_strategy strategy;      /* default latency */
    int reuse_factor;            /* default 1 */
} cfg_fpga;

typedef struct {
    char teacher[512];           /* model.h5 of a teacher; "" = no distillation (default) */
    double temperature;          /* T; default 4 */
    double alpha;                /* weight of the hard-label loss; default 0.5 */
} cfg_distill;

typedef struct {
    char source[512];            /* file name for messages */
    char name[128];              /* top-level `name`; "" if not given */
    uint64_t seed;               /* the trial's seed; everything random derives from it */
    cfg_data data;
    cfg_layer *layers; int n_layers;
    cfg_training train;
    cfg_pruning prune;
    cfg_quant quant;
    cfg_fpga fpga;
    cfg_distill distill;         /* `distillation:` section */
    char model_init[512];        /* model.init: an nnlo-c model file whose weights start
                                    training (e.g. `nnlo-c import` of a Keras model); "" = random */
    int kernel_initializer;      /* model.kernel_initializer, an nn_init: he_uniform 0 (default),
                                    glorot_uniform 1, lecun_uniform 2, pytorch 3 */
} trial_config;

/* Parses a trial YAML (no search dimensions allowed: they are an error that
 * says to use `nnlo-c scan`). source names the text in messages; base_dir
 * resolves relative data paths (NULL = current directory). On error fills e
 * and leaves *out freed. */
nl_status config_parse_trial(const char *yaml_text, const char *source, const char *base_dir,
                             trial_config *out, nl_error *e);
nl_status config_load_trial(const char *path, trial_config *out, nl_error *e);
void config_free_trial(trial_config *t); /* NULL-safe, idempotent */

/* ---- scan configuration and search space ------------------------------- */

typedef enum { DIM_CHOICE = 0, DIM_UNIFORM = 1, DIM_LOG_UNIFORM = 2, DIM_INT = 3 } dim_kind;
typedef enum { VAL_NUM = 0, VAL_STR = 1, VAL_BOOL = 2 } value_kind;

typedef struct {
    value_kind kind;
    double num;       /* VAL_NUM, and VAL_BOOL as 0/1 */
    char str[128];    /* VAL_STR */
} cfg_value;

typedef struct {
    char path[160];   /* "training_parameters.learning_rate", "model.layers[2].units" */
    dim_kind kind;
    double lo, hi;    /* uniform, log_uniform, int (inclusive) */
    int is_int;       /* values must be integers (the key's type); config_resolve rounds */
    cfg_value *choices; int n_choices;
    int grid_points;  /* uniform/log_uniform under grid search; default 3 */
    int line, col;
} search_dim;

typedef enum { SEARCH_RANDOM = 0, SEARCH_GRID = 1, SEARCH_TPE = 2 } search_algorithm;
typedef enum { PRUNER_NONE = 0, PRUNER_MEDIAN = 1 } search_pruner;

typedef struct {
    char metric[32];  /* any metric of metrics.h: dsp, lut, latency_cycles, val_accuracy, ... */
    double max;       /* the bound: a maximum for metrics where smaller is better,
                         a minimum for those where larger is better (accuracy) */
} scan_constraint;

typedef struct {
    char source[512];
    char name[128];               /* default: file name without .yaml */
    char output_dir[512];         /* default "runs/<name>" */
    uint64_t seed;                /* default 0 */
    search_algorithm algorithm;   /* search.algorithm; default random */
    int n_startup_trials;         /* search.n_startup_trials: TPE draws at random until this
                                     many trials have finished; default 10 (Optuna's) */
    search_pruner pruner;         /* search.pruner.type: none (default) | median */
    int pruner_startup;           /* search.pruner.n_startup_trials: finished trials needed
                                     at an epoch before the rule applies there; default 5 */
    int pruner_warmup;            /* search.pruner.n_warmup_steps: epochs never pruned; default 0 */
    double trial_timeout;         /* search.trial_timeout: seconds a trial may run before the
                                     master stops it (status pruned); 0 = no limit (default) */
    int trials;                   /* search.trials or hpo_parameters.num_trials; default 10
                                     (grid without either: the size of the grid) */
    int top_k;                    /* search.top_k; default 5 */
    int objective;                /* search.objective: the metric_id (metrics.h) the ranking
                                     sorts by, in its direction; default val_accuracy */
    scan_constraint constraints[16]; int n_constraints;
    search_dim *dims; int n_dims;
    char *text;                   /* the file as read (copied to <out>/scan.yaml) */
    void *tree;                   /* opaque: the parsed YAML, used by config_resolve */
    trial_config base;            /* the config with every dimension at its first value
                                     (choice[0] / lo), validated; useful for data set-up */
} scan_config;

/* Reads and validates a whole scan file: every key, and every dimension's
 * every choice / both bounds against the key's type and range. */
nl_status config_load_scan(const char *path, scan_config *out, nl_error *e);
nl_status config_parse_scan(const char *text, const char *source, const char *base_dir,
                            scan_config *out, nl_error *e);
void config_free_scan(scan_config *s); /* NULL-safe */

/* The trial YAML for one point: values[j] for dims[j]; `seed: trial_seed`
 * at the top; data paths made absolute; the search/constraints/
 * hpo_parameters sections left out; key and layer order kept. Every value
 * is checked against its key and the result is parsed as a trial before it
 * is returned. Returns malloc'd text (caller frees) or NULL with e filled
 * (e.g. "scan.yaml:13:13: training_parameters.momentum: expected a number
 * in [0, 1), got '1.5'", pointing at the dimension). */
char *config_resolve(const scan_config *s, const cfg_value *values, uint64_t trial_seed,
                     nl_error *e);
/* "0.001", "adam", "true": for CSV and logs. */
char *cfg_value_format(const cfg_value *v, char *buf, int len);

#endif
