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

START_TEST(test_drain_then_resume_matches_uninterrupted) {
    scan_config s;
    load(&s);
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
    char text[2048];
    snprintf(text, sizeof text, "%s", SCAN);
    char *c = strstr(text, "search:");
    snprintf(c, sizeof text - (size_t)(c - text),
             "search: {algorithm: random, trials: 7, top_k: 3, objective: lut}\n"
             "constraints: {val_accuracy: 0.52}\n");
    scan_config s;
    nl_error e;
    ck_assert_msg(config_parse_scan(text, "fake.yaml", "/tmp", &s, &e) == NL_OK, "%s", e.msg);
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

Suite *make_master_suite(void) {
    Suite *s = suite_create("master");
    TCase *tc = tcase_create("scheduler");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_full_scan);
    tcase_add_test(tc, test_drain_then_resume_matches_uninterrupted);
    tcase_add_test(tc, test_search_points);
    tcase_add_test(tc, test_objective_and_min_constraint);
    suite_add_tcase(s, tc);
    return s;
}
