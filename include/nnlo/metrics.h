/* metrics.h — the table of trial metrics: the one place a metric is named
 * (results.csv columns, JSON keys, constraints, the ranking objective) and
 * whether smaller or larger is better. Lives in the config layer because
 * the config validates constraint and objective names against it. */
#ifndef NNLO_METRICS_H
#define NNLO_METRICS_H

/* Metrics of a trial; the order is the column order of results.csv. */
typedef enum {
    MET_VAL_ACCURACY = 0, MET_VAL_LOSS, MET_TEST_ACCURACY, MET_TEST_LOSS,
    MET_SPARSITY, MET_WEIGHTS, MET_REMAINING_WEIGHTS, MET_EBOPS,
    MET_DSP, MET_LUT, MET_FF, MET_BRAM18, MET_LATENCY_CYCLES, MET_LATENCY_NS, MET_FITS,
    MET_EPOCHS, MET_TRAIN_SECONDS, MET_TRAIN_SAMPLES_PER_S,
    MET_COUNT
} metric_id;

const char *metric_name(metric_id m);
/* -1 if unknown. */
int metric_find(const char *name);
/* 1 when smaller is better (resources, losses), 0 when larger is better. */
int metric_minimize(metric_id m);
/* The names in order, NULL-terminated (for did-you-mean and enum keys). */
extern const char *const metric_names[MET_COUNT + 1];

#endif
