/* data.h — HDF5 datasets in memory, splits, standardisation, generators.
 *
 * A split is row-major float features x (n, n_features) and int32 class ids
 * y (n). Every check that can fail on user data happens at load time and
 * names the file, the dataset and the problem: missing dataset, wrong rank
 * or shape, non-numeric type, NaN/Inf, labels out of range, files whose
 * feature counts disagree. Files are opened read-only. Loading keeps one
 * copy of the data (validation split and shuffling are done in place), so
 * peak memory is the data's size plus a small constant. */
#ifndef NNLO_DATA_H
#define NNLO_DATA_H

#include <stdint.h>
#include "nnlo/config.h"
#include "nnlo/util.h"

typedef struct {
    float *x;        /* (n, n_features) */
    int32_t *y;      /* (n) class ids in [0, n_classes) */
    long n;
} data_split;

typedef struct {
    data_split train, val, test;   /* test.n == 0 when no test files */
    int n_features;
    int n_classes;                 /* max label + 1 over all splits, or one-hot width */
    float *mean, *std;             /* (n_features) from train; NULL if not standardized */
    long bytes;                    /* memory held by x and y of all splits */
    int test_is_val;               /* test lists the validation files: test.x/y are val's
                                      rows (one copy in memory, not freed twice) */
} data_bundle;

/* Loads train / validation / test as cfg describes. Validation comes from
 * the validation files, else the last validation_split of the training rows
 * after a shuffle seeded with `seed`. Standardisation statistics come from
 * the training split only and are applied to all splits; features with zero
 * variance get std 1. Fills e and frees everything on error.
 * Ownership: train and val share one allocation (val.x / val.y point just
 * past train's rows), freed by data_free; test has its own. max_samples
 * keeps the first rows of each split's files (of the training files before
 * validation rows are split off). */
nl_status data_load(const cfg_data *cfg, uint64_t seed, data_bundle *out, nl_error *e);
void data_free(data_bundle *b); /* NULL-safe, idempotent */

/* Writes a dataset file: features x (n, n_features) as float32 under
 * `features`, labels y (n) as int32 under `labels`. Used by generators and
 * tests. */
nl_status data_write_h5(const char *path, const float *x, const int32_t *y, long n,
                        int n_features, const char *features, const char *labels,
                        nl_error *e);

/* `nnlo-c data jets OUT.h5 --samples N --seed S`: synthetic jet-tagging-like
 * set, 16 features, 5 overlapping classes (a 16-64-32-32-5 MLP reaches
 * 70-90 %, not 100 %). Datasets "X" (n,16) float32, "y" (n) int32. */
nl_status data_make_jets(const char *path, long n, uint64_t seed, nl_error *e);
/* `nnlo-c data fashion-mnist OUTDIR [--source DIR]`: converts the idx(.gz)
 * files of Debian's dataset-fashion-mnist (default
 * /usr/share/datasets/fashion-mnist) into OUTDIR/train.h5 and test.h5 with
 * "X" (n,784) float32 in [0,1] and "y" (n) int32. */
nl_status data_make_fashion_mnist(const char *outdir, const char *source_dir, nl_error *e);

#endif
