/* modelio.h — nnlo-c model files (HDF5), documented in docs/model-format.md.
 *
 * One group per layer under /layers ("000_dense0", ...) with the effective
 * kernel (in, out) exactly as the forward pass used it (pruned entries are
 * exact zeros, quantized values exact on their grid), bias, mask, and the
 * fixed-point formats as attributes; root attributes carry the format
 * version, the nnlo-c version, the input size, the class count, the trial
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
    const float *mask;        /* DENSE: kernel-shaped 0/1, or NULL (not pruned) */
    int quantized;            /* formats below are meaningful */
    fixed_spec w, b, in, out; /* DENSE formats (QUANT layers carry theirs in the spec) */
} modelio_layer_info;

typedef struct {
    const char *trial_yaml;   /* the resolved config, or NULL */
    const char *trial_id;     /* or NULL */
    int n_metrics;
    const char *const *metric_names;
    const double *metric_values;
} modelio_meta;

/* Saves m's layers with weff as the kernels/biases. info has m->n_layers
 * entries or is NULL. */
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

/* Loads a model file and rebuilds the model. Errors name the file and the
 * missing or mis-shaped item, and say when the format version is newer. */
nl_status modelio_load(const char *path, int max_batch, modelio_file *out, nl_error *e);
void modelio_free(modelio_file *f); /* NULL-safe */

#endif
