/* modelio.h — nnlo-c model files (HDF5), documented in docs/model-format.md.
 *
 * One group per layer under /layers ("000_dense0", ...) with its kind,
 * hyperparameters and input/output shapes; Dense/Conv layers add the
 * effective kernel (Keras order) exactly as the forward pass used it
 * (pruned entries are exact zeros, quantized values exact on their grid),
 * bias, mask and the fixed-point formats; BatchNorm adds gamma, beta and
 * the moving statistics. Root attributes carry the format version, the
 * nnlo-c version, the input size and shape, the class count, the trial
 * config (YAML text) and the metrics. Written to a temporary name and
 * renamed, so a killed job never leaves a half-written model. Knows nn's
 * model and fixed-point formats; not compress, MPI or YAML parsing. */
#ifndef NNLO_MODELIO_H
#define NNLO_MODELIO_H

#include "nnlo/fixed.h"
#include "nnlo/nn.h"
#include "nnlo/util.h"

#define MODELIO_FORMAT_VERSION 1

/* Per-layer compression facts the model alone does not carry. */
typedef struct {
    const float *mask;        /* DENSE, CONV: kernel-shaped 0/1, or NULL (not pruned) */
    int quantized;            /* formats below are meaningful */
    fixed_spec w, b, in, out; /* DENSE, CONV formats (QUANT layers carry theirs in the spec) */
} modelio_layer_info;

typedef struct {
    const char *trial_yaml;   /* the resolved config, or NULL */
    const char *trial_id;     /* or NULL */
    int n_metrics;
    const char *const *metric_names;
    const double *metric_values;
} modelio_meta;

/* Saves m's layers with weff as the kernels/biases/gamma/beta and m->state
 * as the BatchNorm moving statistics. info has m->n_layers entries (only
 * those of DENSE/CONV layers are read) or is NULL. */
nl_status modelio_save(const char *path, const model *m, const modelio_layer_info *info,
                       const modelio_meta *meta, nl_error *e);

typedef struct {
    layer_spec *specs; int n_specs;
    int in_size, out_size;
    model *m;                 /* built for max_batch; params == weff == stored values */
    modelio_layer_info *info; /* n_specs entries; masks owned by this struct */
    char *trial_yaml;         /* NULL if absent */
    char trial_id[64];
    int n_metrics;
    char (*metric_names)[64];
    double *metric_values;
} modelio_file;

/* Loads a model file and rebuilds the specs (strides as used, in_shape on
 * the first spec when the input is not flat and on specs that reshape) and
 * the model (state = the stored moving statistics, evaluation mode).
 * Errors name the file, the layer and the missing or mis-shaped item, and
 * say when the format version is newer. */
nl_status modelio_load(const char *path, int max_batch, modelio_file *out, nl_error *e);
void modelio_free(modelio_file *f); /* NULL-safe */

/* ---- the structured shrink (shrink.c) ------------------------------------- */

/* A physically smaller copy of in: every Dense output unit / Conv output
 * channel whose kernel column and bias (in->m->weff) are exactly zero is
 * removed, with the matching input rows (Dense) / input channels (Conv) of
 * the next Dense/Conv layer (through Flatten: every row fed by the channel)
 * and the channel's parameters in per-channel layers between (BatchNorm
 * gamma, beta, moving mean and variance). A unit is removed only if the
 * layers up to that next layer are value-wise or per-channel (activations,
 * QUANT, Dropout, BatchNorm, pooling, Flatten) and carry its zero through as
 * an exact 0 (not sigmoid(0) = 0.5, not a BatchNorm shift), so out computes
 * the same outputs as in. Weights that only reach removed inputs count as
 * zero. Never removed: the units of the last weighted layer; the last unit
 * of a layer. out: new specs (same names, fewer units/filters), a model for
 * max_batch with params == weff == the kept values, state, info with masks
 * cut to the new kernels, the metadata copied; free with modelio_free.
 * in->info may be NULL; in is not changed. *removed (may be NULL): units
 * removed. Errors: NL_ERR_NOMEM, NL_ERR_INVALID when specs and model
 * disagree. */
nl_status modelio_shrink(const modelio_file *in, int max_batch, modelio_file *out, long *removed,
                         nl_error *e);
/* One line per Dense/Conv layer, "dense0: 256 -> 200 units (kernel 784 x
 * 256 -> 784 x 200)", and the weight totals, appended to b. */
void modelio_shrink_describe(const modelio_file *before, const modelio_file *after, sbuf *b);
/* The export's step: replaces *f by its shrunk copy (same max_batch) and,
 * when dir is not NULL, writes dir/shrink.txt (modelio_shrink_describe,
 * creating dir). On error *f is unchanged. */
nl_status modelio_shrink_file(modelio_file *f, const char *dir, nl_error *e);

#endif
