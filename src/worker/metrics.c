/* metrics.c — the table of trial metrics: names (CSV columns, JSON keys,
 * constraint names) and directions. The only place a metric is named. */
#include <string.h>
#include "nnlo/worker.h"

static const struct { const char *name; int minimize; } table[MET_COUNT] = {
    [MET_VAL_ACCURACY] = {"val_accuracy", 0},
    [MET_VAL_LOSS] = {"val_loss", 1},
    [MET_TEST_ACCURACY] = {"test_accuracy", 0},
    [MET_TEST_LOSS] = {"test_loss", 1},
    [MET_SPARSITY] = {"sparsity", 0},
    [MET_WEIGHTS] = {"weights", 1},
    [MET_REMAINING_WEIGHTS] = {"remaining_weights", 1},
    [MET_EBOPS] = {"ebops", 1},
    [MET_DSP] = {"dsp", 1},
    [MET_LUT] = {"lut", 1},
    [MET_FF] = {"ff", 1},
    [MET_BRAM18] = {"bram18", 1},
    [MET_LATENCY_CYCLES] = {"latency_cycles", 1},
    [MET_LATENCY_NS] = {"latency_ns", 1},
    [MET_FITS] = {"fits", 0},
    [MET_EPOCHS] = {"epochs", 1},
    [MET_TRAIN_SECONDS] = {"train_seconds", 1},
    [MET_TRAIN_SAMPLES_PER_S] = {"train_samples_per_s", 0},
};

const char *metric_name(metric_id m) {
    NL_ASSERT(m >= 0 && m < MET_COUNT);
    return table[m].name;
}

int metric_find(const char *name) {
    for (int m = 0; m < MET_COUNT; m++)
        if (!strcmp(table[m].name, name)) return m;
    return -1;
}

int metric_minimize(metric_id m) { return table[m].minimize; }

const char *trial_status_name(trial_status s) {
    switch (s) {
    case TRIAL_DONE: return "done";
    case TRIAL_FAILED: return "failed";
    case TRIAL_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}
