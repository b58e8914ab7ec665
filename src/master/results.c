/* results.c — what a scan leaves for the user: results.csv (every trial),
 * pareto.csv (the non-dominated trials), best/<rank>_<id>/ (the top-k
 * models, each with an hls4ml-ready export in hls4ml/) and the ranking
 * table on stdout. Files are written atomically;
 * re-running after a resume rewrites them from the full set of trials. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nnlo/hls4ml.h"
#include "nnlo/master.h"

int results_feasible(const scan_config *s, const trial_result *r) {
    if (r->status != TRIAL_DONE) return 0;
    for (int k = 0; k < s->n_constraints; k++) {
        int m = metric_find(s->constraints[k].metric);
        if (m < 0) continue; /* the config layer rejects unknown names */
        double v = r->metrics[m], bound = s->constraints[k].max;
        if (metric_minimize((metric_id)m) ? !(v <= bound) : !(v >= bound)) return 0;
    }
    return 1;
}

static void csv_field(sbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\n")) { sbuf_append(b, s, strlen(s)); return; }
    sbuf_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') sbuf_append(b, "\"", 1);
        sbuf_append(b, p, 1);
    }
    sbuf_append(b, "\"", 1);
}

static void csv_num(sbuf *b, double v) {
    if (isnan(v)) return;
    char buf[40];
    fmt_double(buf, sizeof buf, v);
    sbuf_append(b, buf, strlen(buf));
}

static void csv_row(sbuf *b, const scan_config *s, const trial_entry *t) {
    char buf[160];
    sbuf_printf(b, "%d,%s", t->id, trial_status_name(t->res.status));
    for (int j = 0; j < s->n_dims; j++) {
        sbuf_append(b, ",", 1);
        csv_field(b, cfg_value_format(&t->values[j], buf, sizeof buf));
    }
    for (int k = 0; k < MET_COUNT; k++) {
        sbuf_append(b, ",", 1);
        csv_num(b, t->res.metrics[k]);
    }
    sbuf_append(b, ",", 1);
    csv_field(b, t->res.reason);
    sbuf_append(b, "\n", 1);
}

static void csv_header(sbuf *b, const scan_config *s, const char *first) {
    sbuf_printf(b, "%strial,status", first);
    for (int j = 0; j < s->n_dims; j++) {
        sbuf_append(b, ",", 1);
        csv_field(b, s->dims[j].path);
    }
    for (int k = 0; k < MET_COUNT; k++) sbuf_printf(b, ",%s", metric_name((metric_id)k));
    sbuf_printf(b, ",reason\n");
}

nl_status results_write_csv(const char *out_dir, const scan_config *s, const trial_entry *t, int n,
                            nl_error *e) {
    sbuf b = {0};
    csv_header(&b, s, "");
    for (int i = 0; i < n; i++)
        if (t[i].state == 2) csv_row(&b, s, &t[i]);
    char path[4096];
    nl_status st = fs_write_atomic(fs_join(path, sizeof path, out_dir, "results.csv"), b.s, b.len, e);
    sbuf_free(&b);
    return st;
}

/* Ranking order: the scan's objective in its direction (val_accuracy
 * descending by default), then fewer LUTs, then lower id. NaN ranks last. */
static const trial_entry *g_sort_base;
static metric_id g_objective;
static int rank_cmp(const void *a, const void *b) {
    const trial_result *x = &g_sort_base[*(const int *)a].res, *y = &g_sort_base[*(const int *)b].res;
    double ax = x->metrics[g_objective], ay = y->metrics[g_objective];
    if (isnan(ax) != isnan(ay)) return isnan(ax) ? 1 : -1;
    if (ax != ay && !isnan(ax)) return (metric_minimize(g_objective) ? ax < ay : ax > ay) ? -1 : 1;
    double lx = x->metrics[MET_LUT], ly = y->metrics[MET_LUT];
    if (lx != ly && !isnan(lx) && !isnan(ly)) return lx < ly ? -1 : 1;
    return x->id - y->id;
}

static const metric_id pareto_metrics[] = {MET_VAL_ACCURACY, MET_DSP, MET_LUT, MET_LATENCY_CYCLES, MET_EBOPS};
#define N_PARETO ((int)(sizeof pareto_metrics / sizeof pareto_metrics[0]))

/* a dominates b: no worse in every objective, better in one. NaN is worst. */
static int dominates(const trial_result *a, const trial_result *b) {
    int better = 0;
    for (int k = 0; k < N_PARETO; k++) {
        metric_id m = pareto_metrics[k];
        double x = a->metrics[m], y = b->metrics[m];
        int mn = metric_minimize(m);
        if (isnan(x) && !isnan(y)) return 0;
        if (isnan(x) || isnan(y)) continue;
        if (mn ? x > y : x < y) return 0;
        if (mn ? x < y : x > y) better = 1;
    }
    return better;
}

static nl_status copy_file(const char *from, const char *to, nl_error *e) {
    char *buf;
    size_t len;
    nl_status st = fs_read_all(from, &buf, &len, e);
    if (st) return st;
    st = fs_write_atomic(to, buf, len, e);
    free(buf);
    return st;
}

nl_status results_finish(const char *out_dir, const scan_config *s, const trial_entry *t, int n,
                         FILE *out, nl_error *e) {
    int *idx = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!idx) return nl_err(e, NL_ERR_NOMEM, "out of memory");
    int nf = 0, ndone = 0, nfailed = 0, npruned = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].state != 2) continue;
        if (t[i].res.status == TRIAL_DONE) ndone++;
        else if (t[i].res.status == TRIAL_PRUNED) npruned++;
        else nfailed++;
        if (results_feasible(s, &t[i].res)) idx[nf++] = i;
    }
    g_sort_base = t;
    g_objective = (metric_id)s->objective;
    qsort(idx, (size_t)nf, sizeof *idx, rank_cmp);

    /* pareto.csv over the feasible trials, in ranking order */
    sbuf b = {0};
    csv_header(&b, s, "rank,");
    int rank = 0;
    for (int a = 0; a < nf; a++) {
        int dominated = 0;
        for (int c = 0; c < nf && !dominated; c++)
            if (c != a && dominates(&t[idx[c]].res, &t[idx[a]].res)) dominated = 1;
        if (dominated) continue;
        sbuf_printf(&b, "%d,", ++rank);
        csv_row(&b, s, &t[idx[a]]);
    }
    char path[4096], best[4096], dir[4096 + 64], from[4096 + 256], to[4096 + 256];
    nl_status st = fs_write_atomic(fs_join(path, sizeof path, out_dir, "pareto.csv"), b.s, b.len, e);
    sbuf_free(&b);
    if (st) { free(idx); return st; }

    /* best/<rank>_<id>/: model.h5 and trial.yaml of the top-k */
    fs_join(best, sizeof best, out_dir, "best");
    if ((st = fs_remove_tree(best, e))) { free(idx); return st; } /* an earlier ranking */
    int k = s->top_k < nf ? s->top_k : nf;
    for (int r = 0; r < k && st == NL_OK; r++) {
        const trial_entry *te = &t[idx[r]];
        snprintf(dir, sizeof dir, "%s/%d_%d", best, r + 1, te->id);
        if ((st = fs_mkdir_p(dir, e))) break;
        static const char *files[] = {"model.h5", "trial.yaml", "history.csv"};
        for (int f = 0; f < 3 && st == NL_OK; f++) {
            snprintf(from, sizeof from, "%s/trials/%d/%s", out_dir, te->id, files[f]);
            snprintf(to, sizeof to, "%s/%s", dir, files[f]);
            if (fs_exists(from)) st = copy_file(from, to, e);
        }
        /* hls4ml-ready: Keras JSON + H5, hls4ml_config.yml, w<N>.txt. A model
         * hls4ml cannot take is reported, not fatal: the ranking stands. */
        snprintf(from, sizeof from, "%s/model.h5", dir);
        snprintf(to, sizeof to, "%s/hls4ml", dir);
        nl_error xe;
        if (st == NL_OK && fs_exists(from) && hls4ml_export_file(from, &s->base.fpga, to, &xe) != NL_OK)
            log_warn("best model %d (trial %d): no hls4ml export: %s", r + 1, te->id, xe.msg);
    }

    /* the table */
    char pruned[48] = "";
    if (npruned) snprintf(pruned, sizeof pruned, ", %d pruned early", npruned);
    fprintf(out, "\nnnlo-c scan '%s': %d trials done%s, %d failed or interrupted, %d feasible%s; ranked by %s\n",
            s->name, ndone, pruned, nfailed, nf, s->n_constraints ? " (meeting the constraints)" : "",
            metric_name((metric_id)s->objective));
    fprintf(out, "%-4s %-6s %-8s %-8s %-8s %-10s %-6s %-8s %-7s", "rank", "trial", "val_acc", "test_acc",
            "sparsity", "ebops", "dsp", "lut", "latency");
    for (int j = 0; j < s->n_dims; j++) {
        const char *p = strrchr(s->dims[j].path, '.');
        fprintf(out, " %s", p ? p + 1 : s->dims[j].path);
    }
    fprintf(out, "\n");
    int show = nf < 20 ? nf : 20;
    for (int r = 0; r < show; r++) {
        const trial_entry *te = &t[idx[r]];
        const double *m = te->res.metrics;
        fprintf(out, "%-4d %-6d %-8.4f %-8.4f %-8.4f %-10.0f %-6.0f %-8.0f %-7.0f", r + 1, te->id,
                m[MET_VAL_ACCURACY], m[MET_TEST_ACCURACY], m[MET_SPARSITY], m[MET_EBOPS], m[MET_DSP],
                m[MET_LUT], m[MET_LATENCY_CYCLES]);
        for (int j = 0; j < s->n_dims; j++) {
            char buf[160];
            fprintf(out, " %s", cfg_value_format(&te->values[j], buf, sizeof buf));
        }
        fprintf(out, "\n");
    }
    if (nf > show) fprintf(out, "... %d more in results.csv\n", nf - show);
    fprintf(out, "results: %s/results.csv  pareto: %s/pareto.csv  best models: %s/best/\n", out_dir,
            out_dir, out_dir);
    fflush(out);
    free(idx);
    return st;
}
