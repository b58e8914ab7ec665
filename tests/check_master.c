/* check_master.c — the master without MPI and without training: a fake
 * worker thread on the in-process transport answers every trial with
 * metrics that are a function of the trial id. Checks dispatch of every
 * trial, the journal, results.csv, the ranking and best/, constraints,
 * drain on the stop flag, and that a resumed scan ends with exactly the
 * results of an uninterrupted one without re-running finished trials. */
#include <check.h>
#include <pthread.h>
#include <string.h>
#include "nnlo/master.h"
#include "master/search_internal.h"
#include "testutil.h"

static const char *SCAN =
    "name: fake\n"
    "seed: 11\n"
    "data: {train: [nowhere.h5]}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: dense, units: {choice: [8, 16, 32]}}\n"
    "    - {type: relu}\n"
    "    - {type: dense}\n"
    "training_parameters:\n"
    "  learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}\n"
    "search: {algorithm: random, trials: 7, top_k: 3}\n"
    "constraints: {dsp: 97}\n";

typedef struct {
    comm *c;
    volatile sig_atomic_t *flag;
    int stop_after;      /* raise the flag after this many trials (-1: never) */
    int ran;
    int seen[64];        /* trial ids received */
    int units[64];       /* the first layer's units each trial got */
} fake_worker;

static void *fake_main(void *p) {
    fake_worker *f = p;
    nl_error e;
    comm_send(f->c, 0, MSG_READY, NULL, 0, &e);
    for (;;) {
        comm_msg m;
        int got = 0;
        comm_recv(f->c, &m, -1, &got, &e);
        if (m.type == MSG_SHUTDOWN) { comm_msg_free(&m); break; }
        if (m.type != MSG_TRIAL) { comm_msg_free(&m); continue; }
        trial_result r;
        memset(&r, 0, sizeof r);
        r.id = atoi(m.data);
        ck_assert_ptr_nonnull(strstr(m.data, "learning_rate:"));
        const char *u = strstr(m.data, "units: ");
        if (u && r.id >= 0 && r.id < 64) f->units[r.id] = atoi(u + 7);
        comm_msg_free(&m);
        f->seen[r.id]++;
        for (int k = 0; k < MET_COUNT; k++) r.metrics[k] = 0;
        r.metrics[MET_VAL_ACCURACY] = 0.5 + 0.01 * (r.id % 5);
        r.metrics[MET_DSP] = 100 - r.id;
        r.metrics[MET_LUT] = 1000 + 10 * r.id;
        if (f->stop_after >= 0 && f->ran >= f->stop_after) {
            *f->flag = 1;
            r.status = TRIAL_INTERRUPTED;
            snprintf(r.reason, sizeof r.reason, "stopped");
        }
        f->ran++;
        sbuf b = {0};
        trial_result_to_json(&r, &b);
        comm_send(f->c, 0, MSG_RESULT, b.s, b.len, &e);
        sbuf_free(&b);
        comm_send(f->c, 0, MSG_READY, NULL, 0, &e);
    }
    return NULL;
}

static nl_status run_scan(const scan_config *s, const char *out, int resume, fake_worker *f,
                          volatile sig_atomic_t *flag, nl_error *e) {
    comm *mc, *wc;
    ck_assert_int_eq(comm_inproc_pair(&mc, &wc, e), NL_OK);
    f->c = wc;
    f->flag = flag;
    pthread_t th;
    pthread_create(&th, NULL, fake_main, f);
    master_options o = {.out_dir = out, .resume = resume, .quiet = 1};
    log_set_level(LOG_ERROR);
    FILE *devnull = freopen("/dev/null", "w", stdout);
    (void)devnull;
    nl_status st = master_run(mc, s, &o, flag, e);
    pthread_join(th, NULL);
    comm_close(mc);
    comm_close(wc);
    return st;
}

static int count_lines(const char *path, const char *needle) {
    char *text;
    size_t n;
    if (fs_read_all(path, &text, &n, NULL) != NL_OK) return -1;
    int c = 0;
    for (char *p = text; (p = strstr(p, needle)); p++) c++;
    free(text);
    return c;
}

static void load(scan_config *s) {
    nl_error e;
    ck_assert_msg(config_parse_scan(SCAN, "fake.yaml", "/tmp", s, &e) == NL_OK, "%s", e.msg);
}

/* SCAN with its search: and constraints: lines replaced by `tail`. */
static void load_with(scan_config *s, const char *tail) {
    char text[2048];
    snprintf(text, sizeof text, "%s", SCAN);
    char *c = strstr(text, "search:");
    snprintf(c, sizeof text - (size_t)(c - text), "%s", tail);
    nl_error e;
    ck_assert_msg(config_parse_scan(text, "fake.yaml", "/tmp", s, &e) == NL_OK, "%s", e.msg);
}

START_TEST(test_full_scan) {
    scan_config s;
    load(&s);
    char out[600], p[700];
    snprintf(out, sizeof out, "%s/out", tu_tmpdir());
    fake_worker f = {.stop_after = -1};
    volatile sig_atomic_t flag = 0;
    nl_error e;
    ck_assert_msg(run_scan(&s, out, 0, &f, &flag, &e) == NL_OK, "%s", e.msg);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(f.seen[i], 1);
    snprintf(p, sizeof p, "%s/journal.jsonl", out);
    ck_assert_int_eq(count_lines(p, "\"trial_end\""), 7);
    ck_assert_int_eq(count_lines(p, "\"scan_end\""), 1);
    snprintf(p, sizeof p, "%s/results.csv", out);
    ck_assert_int_eq(count_lines(p, "\n"), 8);
    ck_assert_int_eq(count_lines(p, ",done,"), 7);
    snprintf(p, sizeof p, "%s/trials/6/trial.yaml", out);
    ck_assert(fs_exists(p));
    /* dsp = 100 - id <= 97 keeps ids 3..6; val_acc 0.5 + 0.01 (id % 5):
     * id 4 (0.54) first, then 3 (0.53), then 6 (0.51). */
    snprintf(p, sizeof p, "%s/best/1_4/trial.yaml", out);
    ck_assert_msg(fs_exists(p), "best/1_4 missing");
    snprintf(p, sizeof p, "%s/best/2_3/trial.yaml", out);
    ck_assert(fs_exists(p));
    snprintf(p, sizeof p, "%s/best/3_6/trial.yaml", out);
    ck_assert(fs_exists(p));
    snprintf(p, sizeof p, "%s/best/4_5", out);
    ck_assert(!fs_exists(p));
    /* the same folder again without --resume is refused: finished work is kept */
    fake_worker g = {.stop_after = -1};
    ck_assert_int_eq(run_scan(&s, out, 0, &g, &flag, &e), NL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "--resume"));
    for (int i = 0; i < 7; i++) ck_assert_int_eq(g.seen[i], 0);
    config_free_scan(&s);
}
END_TEST

/* The same for random search and for TPE (which draws trial 3 on from
 * the finished trials, so its points come back from the journal). */
START_TEST(test_drain_then_resume_matches_uninterrupted) {
    scan_config s;
    if (_i == 0)
        load(&s);
    else
        load_with(&s, "search: {algorithm: tpe, n_startup_trials: 2, trials: 7, top_k: 3}\n"
                      "constraints: {dsp: 97}\n");
    const char *tmp = tu_tmpdir();
    char a[600], b[600], pa[700], pb[700];
    snprintf(a, sizeof a, "%s/straight", tmp);
    snprintf(b, sizeof b, "%s/interrupted", tmp);
    nl_error e;
    volatile sig_atomic_t flag = 0;
    fake_worker f1 = {.stop_after = -1};
    ck_assert_int_eq(run_scan(&s, a, 0, &f1, &flag, &e), NL_OK);

    fake_worker f2 = {.stop_after = 3};
    ck_assert_int_eq(run_scan(&s, b, 0, &f2, &flag, &e), NL_OK);
    ck_assert_int_eq(flag, 1);
    snprintf(pb, sizeof pb, "%s/journal.jsonl", b);
    ck_assert_int_eq(count_lines(pb, "\"trial_end\""), 3);
    ck_assert_int_eq(count_lines(pb, "\"scan_drained\""), 1);

    flag = 0;
    fake_worker f3 = {.stop_after = -1};
    ck_assert_msg(run_scan(&s, b, 1, &f3, &flag, &e) == NL_OK, "%s", e.msg);
    for (int i = 0; i < 3; i++) ck_assert_msg(f3.seen[i] == 0, "finished trial %d ran again", i);
    for (int i = 3; i < 7; i++) ck_assert_int_eq(f3.seen[i], 1);
    snprintf(pa, sizeof pa, "%s/results.csv", a);
    snprintf(pb, sizeof pb, "%s/results.csv", b);
    char *ta, *tb;
    ck_assert_int_eq(fs_read_all(pa, &ta, NULL, &e), NL_OK);
    ck_assert_int_eq(fs_read_all(pb, &tb, NULL, &e), NL_OK);
    ck_assert_str_eq(ta, tb);
    free(ta);
    free(tb);
    config_free_scan(&s);
}
END_TEST

/* search.objective: lut (smaller is better); constraints on an accuracy
 * are a minimum: val_acc >= 0.52 keeps ids 2, 3, 4; by LUT (1000 + 10 id):
 * 2, then 3, then 4. */
START_TEST(test_objective_and_min_constraint) {
    scan_config s;
    nl_error e;
    load_with(&s, "search: {algorithm: random, trials: 7, top_k: 3, objective: lut}\n"
                  "constraints: {val_accuracy: 0.52}\n");
    char out[600], p[700];
    snprintf(out, sizeof out, "%s/obj", tu_tmpdir());
    fake_worker f = {.stop_after = -1};
    volatile sig_atomic_t flag = 0;
    ck_assert_int_eq(run_scan(&s, out, 0, &f, &flag, &e), NL_OK);
    const char *want[] = {"1_2", "2_3", "3_4"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/best/%s/trial.yaml", out, want[i]);
        ck_assert_msg(fs_exists(p), "missing best/%s", want[i]);
    }
    config_free_scan(&s);
}
END_TEST

START_TEST(test_search_points) {
    scan_config s;
    load(&s);
    ck_assert_int_eq(s.n_dims, 2);
    cfg_value v1[2], v2[2];
    for (int id = 0; id < 20; id++) {
        search_point(&s, id, v1);
        search_point(&s, id, v2);
        ck_assert(v1[0].num == v2[0].num && v1[1].num == v2[1].num);
        int u = (int)v1[0].num;
        ck_assert(u == 8 || u == 16 || u == 32);
        ck_assert(v1[1].num >= 1e-4 && v1[1].num <= 1e-2);
    }
    ck_assert_uint_ne(search_trial_seed(&s, 0), search_trial_seed(&s, 1));
    /* grid: 3 choices x 3 grid points, row-major, the last dimension fastest */
    s.algorithm = SEARCH_GRID;
    ck_assert_int_eq(search_grid_size(&s), 9);
    ck_assert_int_eq(search_n_trials(&s, 100), 9);
    search_point(&s, 0, v1);
    ck_assert(v1[0].num == 8 && fabs(v1[1].num - 1e-4) < 1e-12);
    search_point(&s, 1, v1);
    ck_assert(v1[0].num == 8 && fabs(v1[1].num - 1e-3) < 1e-12);
    search_point(&s, 8, v1);
    ck_assert(v1[0].num == 32 && fabs(v1[1].num - 1e-2) < 1e-12);
    config_free_scan(&s);
}
END_TEST


/* TPE: a trial that was dispatched keeps the point the journal recorded,
 * even when the history would now give another: the journal's trial_start
 * of trial 3 is rewritten to units 32 before --resume, and trial 3 reruns
 * with 32. */
START_TEST(test_tpe_resume_keeps_recorded_point) {
    scan_config s;
    nl_error e;
    load_with(&s, "search: {algorithm: tpe, n_startup_trials: 2, trials: 7, top_k: 3}\n");
    char out[600], jp[700];
    snprintf(out, sizeof out, "%s/tpe_keep", tu_tmpdir());
    snprintf(jp, sizeof jp, "%s/journal.jsonl", out);
    volatile sig_atomic_t flag = 0;
    fake_worker f1 = {.stop_after = 3};
    ck_assert_int_eq(run_scan(&s, out, 0, &f1, &flag, &e), NL_OK);
    char *j;
    size_t n;
    ck_assert_int_eq(fs_read_all(jp, &j, &n, &e), NL_OK);
    char *start = strstr(j, "\"trial\": 3, \"worker\"");  /* trial 3's trial_start */
    ck_assert_ptr_nonnull(start);
    char *units = strstr(start, "\"model.layers[0].units\": ");
    ck_assert_ptr_nonnull(units);
    units += strlen("\"model.layers[0].units\": ");
    int old = atoi(units);
    int want = old == 32 ? 8 : 32;
    char *end = units;
    while (*end >= '0' && *end <= '9') end++;
    sbuf nj = {0};
    sbuf_append(&nj, j, (size_t)(units - j));
    sbuf_printf(&nj, "%d", want);
    sbuf_append(&nj, end, strlen(end));
    ck_assert_int_eq(fs_write_atomic(jp, nj.s, nj.len, &e), NL_OK);
    sbuf_free(&nj);
    free(j);
    flag = 0;
    fake_worker f2 = {.stop_after = -1};
    ck_assert_msg(run_scan(&s, out, 1, &f2, &flag, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(f2.seen[3], 1);
    ck_assert_int_eq(f2.units[3], want);
    config_free_scan(&s);
}
END_TEST

/* The Parzen estimator by hand: widths from the neighbours (range ends
 * included) clipped to [range / min(100, 1 + m), range]; a truncated
 * Gaussian's log density against the closed form; the mixture integrates
 * to 1 over [lo, hi] (the truncation's normalisation); gamma(n). */
START_TEST(test_tpe_math) {
    ck_assert_int_eq(tpe_n_good(1), 1);
    ck_assert_int_eq(tpe_n_good(10), 1);
    ck_assert_int_eq(tpe_n_good(11), 2);
    ck_assert_int_eq(tpe_n_good(249), 25);
    ck_assert_int_eq(tpe_n_good(1000), 25);
    double obs[3] = {0.9, 0.1, 0.12}, mu[4], sg[4];
    tpe_parzen(obs, 3, 0.0, 1.0, mu, sg);
    const double wmu[4] = {0.1, 0.12, 0.9, 0.5}, wsg[4] = {0.25, 0.78, 0.78, 1.0};
    for (int k = 0; k < 4; k++) {
        ck_assert_msg(fabs(mu[k] - wmu[k]) < 1e-12, "mu[%d] %g", k, mu[k]);
        ck_assert_msg(fabs(sg[k] - wsg[k]) < 1e-12, "sigma[%d] %g want %g", k, sg[k], wsg[k]);
    }
    /* one component N(0.5, 0.1) on [0, 1] at 0.62 */
    double m1 = 0.5, s1 = 0.1, x = 0.62;
    double mass = 0.5 * (erf((1 - m1) / (s1 * sqrt(2))) - erf((0 - m1) / (s1 * sqrt(2))));
    double want = -0.5 * pow((x - m1) / s1, 2) - log(s1 * sqrt(2 * M_PI) * mass);
    ck_assert_msg(fabs(tpe_log_density(&m1, &s1, 1, 0, 1, x) - want) < 1e-12, "log density");
    /* a wide component near an edge: most of its mass is outside */
    double acc = 0;
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        double u = (i + 0.5) / N;
        acc += exp(tpe_log_density(mu, sg, 4, 0.0, 1.0, u)) / N;
    }
    ck_assert_msg(fabs(acc - 1.0) < 1e-4, "the mixture integrates to %.6f", acc);
}
END_TEST

/* After 30 random trials whose objective peaks at learning rate 3e-3 and
 * units 16, TPE's next 20 points (ids 30..49, same history) sit mostly
 * near the peak, where random search puts about a third of them; the
 * same id and history give the same point; the same ranking through a
 * minimised objective (lut = -score) gives the same concentration. */
START_TEST(test_tpe_concentrates) {
    scan_config s;
    nl_error e;
    load_with(&s, "search: {algorithm: tpe, trials: 50}\n");
    trial_entry t[50];
    cfg_value vals[50][2];
    for (int pass = 0; pass < 2; pass++) {
        memset(t, 0, sizeof t);
        for (int i = 0; i < 50; i++) {
            t[i].id = i;
            t[i].values = vals[i];
            search_point(&s, i, vals[i]);
            if (i >= 30) continue;
            t[i].state = 2;
            t[i].res.status = TRIAL_DONE;
            for (int k = 0; k < MET_COUNT; k++) t[i].res.metrics[k] = 0;
            double d = log10(vals[i][1].num) - log10(3e-3);
            double score = 1 - d * d + (vals[i][0].num == 16 ? 0.5 : 0);
            t[i].res.metrics[MET_VAL_ACCURACY] = score;
            t[i].res.metrics[MET_LUT] = -score; /* pass 1: minimise lut = the same ranking */
        }
        s.objective = pass == 0 ? MET_VAL_ACCURACY : MET_LUT;
        int near = 0, sixteen = 0, rnear = 0;
        for (int id = 30; id < 50; id++) {
            cfg_value v[2], w[2];
            ck_assert_int_eq(search_tpe_point(&s, id, t, 50, v, &e), NL_OK);
            ck_assert_int_eq(search_tpe_point(&s, id, t, 50, w, &e), NL_OK);
            ck_assert(v[0].num == w[0].num && v[1].num == w[1].num);
            ck_assert(v[1].num >= 1e-4 && v[1].num <= 1e-2);
            near += fabs(log10(v[1].num) - log10(3e-3)) < 0.35;
            sixteen += v[0].num == 16;
            rnear += fabs(log10(vals[id][1].num) - log10(3e-3)) < 0.35;
        }
        ck_assert_msg(near >= 14 && sixteen >= 14, "pass %d: %d of 20 near the peak, %d with 16 units "
                      "(random: %d near)", pass, near, sixteen, rnear);
        ck_assert_msg(rnear <= 10, "random search put %d of 20 near the peak", rnear);
    }
    /* pruned trials rank below every completed one, whatever their metrics:
     * 15 done trials with 16 units (score 0.5) and 15 pruned with 32 units
     * and a higher recorded score; TPE hardly proposes 32 again (it does
     * try the unseen 8: with no observation in either group its density
     * ratio is the largest) */
    for (int i = 0; i < 30; i++) {
        vals[i][0].num = i < 15 ? 16 : 32;
        t[i].state = 2;
        t[i].res.status = i < 15 ? TRIAL_DONE : TRIAL_PRUNED;
        t[i].res.metrics[MET_VAL_ACCURACY] = i < 15 ? 0.5 : 0.9;
    }
    s.objective = MET_VAL_ACCURACY;
    int n32 = 0;
    for (int id = 30; id < 50; id++) {
        cfg_value v[2];
        ck_assert_int_eq(search_tpe_point(&s, id, t, 50, v, &e), NL_OK);
        n32 += v[0].num == 32;
    }
    ck_assert_msg(n32 <= 2, "%d of 20 points with 32 units: pruned trials ignored or counted as good", n32);
    /* fewer finished trials than n_startup_trials: the random point */
    for (int i = 5; i < 50; i++) t[i].state = 0;
    cfg_value v[2], r[2];
    ck_assert_int_eq(search_tpe_point(&s, 7, t, 50, v, &e), NL_OK);
    search_point(&s, 7, r);
    ck_assert(v[0].num == r[0].num && v[1].num == r[1].num);
    config_free_scan(&s);
}
END_TEST


/* The median rule by hand: completed curves (0.5 0.6 0.7), (0.4 0.7),
 * (0.6 0.65 0.8): at epoch 1 the median of 0.6, 0.7, 0.65 is 0.65, so a
 * best of 0.64 is pruned and 0.65 is not; at epoch 2 two curves reach it:
 * median 0.75; warm-up, too few completed trials, an epoch no completed
 * trial reached and a NaN best never prune. history.csv is read back with
 * a missing epoch as NaN. */
START_TEST(test_median_pruner) {
    const double c0[] = {0.5, 0.6, 0.7}, c1[] = {0.4, 0.7}, c2[] = {0.6, 0.65, 0.8};
    const double *curves[4] = {c0, NULL, c1, c2};
    const int lens[4] = {3, 0, 2, 3};
    double med, scratch[4];
    ck_assert_int_eq(pruner_median_verdict(curves, lens, 4, 3, 1, 0.64, 3, 0, &med, scratch), 1);
    ck_assert(fabs(med - 0.65) < 1e-15);
    ck_assert_int_eq(pruner_median_verdict(curves, lens, 4, 3, 1, 0.65, 3, 0, &med, scratch), 0);
    ck_assert_int_eq(pruner_median_verdict(curves, lens, 4, 3, 2, 0.74, 3, 0, &med, scratch), 1);
    ck_assert(fabs(med - 0.75) < 1e-15);
    ck_assert_int_eq(pruner_median_verdict(curves, lens, 4, 3, 0, 0.1, 3, 1, &med, scratch), 0);  /* warm-up */
    ck_assert_int_eq(pruner_median_verdict(curves, lens, 4, 3, 1, 0.1, 4, 0, &med, scratch), 0);  /* startup */
    ck_assert_int_eq(pruner_median_verdict(curves, lens, 4, 3, 3, 0.1, 1, 0, &med, scratch), 0);  /* nobody there */
    ck_assert(isnan(med));
    ck_assert_int_eq(pruner_median_verdict(curves, lens, 4, 3, 1, NAN, 1, 0, &med, scratch), 0);

    char path[600];
    snprintf(path, sizeof path, "%s/history.csv", tu_tmpdir());
    const char *csv = "global_epoch,stage,round,epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,sparsity\n"
                      "0,pretrain,0,0,0.01,1.0,0.5,1.1,0.625,0\n"
                      "1,main,0,0,0.01,0.9,0.6,1.0,0.75,0.1\n"
                      "3,finetune,0,0,0.01,0.8,0.7,0.9,0.8125,0.5\n";
    nl_error e;
    ck_assert_int_eq(fs_write_atomic(path, csv, strlen(csv), &e), NL_OK);
    double *c = NULL;
    int n = 0;
    ck_assert_int_eq(pruner_read_curve(path, &c, &n, &e), NL_OK);
    ck_assert_int_eq(n, 4);
    ck_assert(c[0] == 0.625 && c[1] == 0.75 && isnan(c[2]) && c[3] == 0.8125);
    free(c);
    ck_assert_int_eq(fs_write_atomic(path, "epoch,loss\n0,1\n", 15, &e), NL_OK);
    ck_assert_int_eq(pruner_read_curve(path, &c, &n, &e), NL_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(e.msg, "val_accuracy"));
}
END_TEST


/* No trial meets the constraint yet (dsp <= 5, dsp = units, accuracy rises
 * with units): TPE ranks them by how far they miss it, so its next points
 * move towards small models instead of the most accurate (largest) ones. */
START_TEST(test_tpe_infeasible_history) {
    const char *text = "name: c\nseed: 5\ndata: {train: [nowhere.h5]}\n"
                       "model: {layers: [{type: dense, units: {int: [1, 100]}}, {type: relu}, {type: dense}]}\n"
                       "search: {algorithm: tpe, trials: 60, n_startup_trials: 5}\n"
                       "constraints: {dsp: 5}\n";
    scan_config s;
    nl_error e;
    ck_assert_msg(config_parse_scan(text, "c.yaml", "/tmp", &s, &e) == NL_OK, "%s", e.msg);
    trial_entry t[60];
    cfg_value vals[60][1];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 60; i++) {
        t[i].id = i;
        t[i].values = vals[i];
        vals[i][0].kind = VAL_NUM;
        vals[i][0].num = 10 + 4 * i;  /* 10 .. 86 for the 20 finished ones */
        if (i >= 20) continue;
        t[i].state = 2;
        t[i].res.status = TRIAL_DONE;
        for (int k = 0; k < MET_COUNT; k++) t[i].res.metrics[k] = 0;
        t[i].res.metrics[MET_DSP] = vals[i][0].num;
        t[i].res.metrics[MET_VAL_ACCURACY] = 0.5 + vals[i][0].num / 200.0;
    }
    int small = 0;
    double sum = 0;
    for (int id = 20; id < 60; id++) {
        cfg_value v[1];
        ck_assert_int_eq(search_tpe_point(&s, id, t, 60, v, &e), NL_OK);
        ck_assert(v[0].num >= 1 && v[0].num <= 100 && v[0].num == round(v[0].num));
        small += v[0].num <= 20;
        sum += v[0].num;
    }
    ck_assert_msg(small >= 20, "only %d of 40 points at units <= 20 (mean %.1f)", small, sum / 40);
    config_free_scan(&s);
}
END_TEST

Suite *make_master_suite(void) {
    Suite *s = suite_create("master");
    TCase *tc = tcase_create("scheduler");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_full_scan);
    tcase_add_loop_test(tc, test_drain_then_resume_matches_uninterrupted, 0, 2);
    tcase_add_test(tc, test_tpe_resume_keeps_recorded_point);
    tcase_add_test(tc, test_tpe_math);
    tcase_add_test(tc, test_median_pruner);
    tcase_add_test(tc, test_tpe_concentrates);
    tcase_add_test(tc, test_tpe_infeasible_history);
    tcase_add_test(tc, test_search_points);
    tcase_add_test(tc, test_objective_and_min_constraint);
    suite_add_tcase(s, tc);
    return s;
}
