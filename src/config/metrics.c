/* metrics.c — the table of trial metrics (metrics.h): names (CSV columns,
 * JSON keys, constraint and objective names) and directions. The only place
 * a metric is named. */
#include <string.h>
#include "nnlo/metrics.h"
#include "nnlo/util.h"

const char *const metric_names[MET_COUNT + 1] = {
    [MET_VAL_ACCURACY] = "val_accuracy",
    [MET_VAL_LOSS] = "val_loss",
    [MET_TEST_ACCURACY] = "test_accuracy",
    [MET_TEST_LOSS] = "test_loss",
    [MET_SPARSITY] = "sparsity",
    [MET_WEIGHTS] = "weights",
    [MET_REMAINING_WEIGHTS] = "remaining_weights",
    [MET_EBOPS] = "ebops",
    [MET_DSP] = "dsp",
    [MET_LUT] = "lut",
    [MET_FF] = "ff",
    [MET_BRAM18] = "bram18",
    [MET_LATENCY_CYCLES] = "latency_cycles",
    [MET_LATENCY_NS] = "latency_ns",
    [MET_FITS] = "fits",
    [MET_EPOCHS] = "epochs",
    [MET_TRAIN_SECONDS] = "train_seconds",
    [MET_TRAIN_SAMPLES_PER_S] = "train_samples_per_s",
    [MET_COUNT] = NULL,
};

/* Larger is better for accuracies, sparsity, fits and throughput. */
static const unsigned char maximize[MET_COUNT] = {
    [MET_VAL_ACCURACY] = 1, [MET_TEST_ACCURACY] = 1, [MET_SPARSITY] = 1,
    [MET_FITS] = 1, [MET_TRAIN_SAMPLES_PER_S] = 1,
};

const char *metric_name(metric_id m) {
    NL_ASSERT(m >= 0 && m < MET_COUNT);
    return metric_names[m];
}

int metric_find(const char *name) {
    for (int m = 0; m < MET_COUNT; m++)
        if (!strcmp(metric_names[m], name)) return m;
    return -1;
}

int metric_minimize(metric_id m) { return !maximize[m]; }
