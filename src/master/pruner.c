/* pruner.c — search.pruner: Optuna's MedianPruner over epochs. A running
 * trial is stopped at global epoch k (k >= n_warmup_steps) when its best
 * val_accuracy so far is below the median val_accuracy at epoch k of the
 * trials that completed (status done), once at least n_startup_trials
 * have completed. Completed trials' curves come from their history.csv,
 * so a resumed scan sees the same ones. Pure functions; scan.c keeps the
 * state and sends MSG_PRUNE. Not here: other percentiles, hyperband. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/master.h"
#include "search_internal.h"

int pruner_median_verdict(const double *const *curves, const int *lens, int n, int n_completed, int step,
                          double best, int n_startup, int warmup, double *median, double *scratch) {
    *median = NAN;
    if (step < warmup || n_completed < n_startup || !isfinite(best)) return 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (curves[i] && step < lens[i] && isfinite(curves[i][step])) scratch[k++] = curves[i][step];
    if (k == 0) return 0;
    qsort(scratch, (size_t)k, sizeof *scratch, search_dbl_cmp);
    *median = k % 2 ? scratch[k / 2] : 0.5 * (scratch[k / 2 - 1] + scratch[k / 2]);
    return best < *median;
}

nl_status pruner_read_curve(const char *path, double **curve, int *len, nl_error *e) {
    *curve = NULL;
    *len = 0;
    char *text;
    size_t n;
    nl_status st = fs_read_all(path, &text, &n, e);
    if (st) return st;
    /* header: global_epoch,stage,round,epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,... */
    const char *col = "val_accuracy";
    int want = -1, c = 0;
    char *line_end = strchr(text, '\n');
    if (line_end) *line_end = '\0';
    for (char *p = text, *q; p; p = q ? q + 1 : NULL, c++) {
        q = strchr(p, ',');
        size_t w = q ? (size_t)(q - p) : strlen(p);
        if (w == strlen(col) && strncmp(p, col, w) == 0) { want = c; break; }
    }
    if (want < 0 || !line_end) {
        free(text);
        return nl_err(e, NL_ERR_DATA, "%s: no val_accuracy column in the header", path);
    }
    int cap = 0;
    double *v = NULL;
    for (char *line = line_end + 1; *line; ) {
        char *next = strchr(line, '\n');
        if (next) *next = '\0';
        int ge = atoi(line);
        char *p = line;
        for (int k = 0; k < want && p; k++) {
            p = strchr(p, ',');
            if (p) p++;
        }
        if (p && ge >= 0 && ge < 1000000) {
            if (ge >= cap) {
                int nc = ge + 16;
                double *nv = realloc(v, (size_t)nc * sizeof *nv);
                if (!nv) { free(v); free(text); return nl_err(e, NL_ERR_NOMEM, "%s: out of memory", path); }
                for (int k = cap; k < nc; k++) nv[k] = NAN;
                v = nv;
                cap = nc;
            }
            v[ge] = strtod(p, NULL);
            if (ge + 1 > *len) *len = ge + 1;
        }
        if (!next) break;
        line = next + 1;
    }
    free(text);
    *curve = v;
    return NL_OK;
}
