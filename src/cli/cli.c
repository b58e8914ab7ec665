/* cli.c — `nnlo-c [scan] FILE`, `train`, `check`, `data`: argument parsing, the
 * choice between MPI ranks and the in-process transport, signal handling
 * (SIGTERM/SIGUSR1/SIGINT set a flag; the master drains), exit codes. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "cli/cli_internal.h"
#include "nnlo/cli.h"
#include "nnlo/data.h"
#include "nnlo/json.h"
#include "nnlo/master.h"
#include "nnlo/nn.h"
#include "nnlo/worker.h"

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
    if (g_stop && sig == SIGINT) _exit(130); /* a second Ctrl-C: leave now */
    g_stop = 1;
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* OpenBLAS threads per rank: SLURM_CPUS_PER_TASK, else 1 — unless the user
 * set OPENBLAS_NUM_THREADS themselves. */
static void set_blas_threads(void) {
    if (getenv("OPENBLAS_NUM_THREADS")) return;
    const char *c = getenv("SLURM_CPUS_PER_TASK");
    int n = c ? atoi(c) : 1;
    nn_set_threads(n > 0 ? n : 1);
}

static void usage(FILE *f) {
    fprintf(f,
            "nnlo-c %s — hardware-aware neural-network compression scans\n\n"
            "usage:\n"
            "  nnlo-c [scan] SCAN.yaml [--out DIR] [--resume] [--trials N] [--quiet] [-v]\n"
            "      run a scan: rank 0 is the master, other ranks train trials; with one\n"
            "      process (no launcher) master and worker run as two threads.\n"
            "      mpirun -n 3 nnlo-c scan.yaml   |   srun --mpi=pmix -n 3 nnlo-c scan.yaml\n"
            "  nnlo-c train TRIAL.yaml [--out DIR] [--json]\n"
            "      run one trial (e.g. <out>/trials/<id>/trial.yaml: same metrics, bit for bit)\n"
            "  nnlo-c check SCAN.yaml [--points N]\n"
            "      before queueing: the file, the data, and every grid point's (or N random\n"
            "      points') model built as a worker would, without training\n"
            "  nnlo-c data jets OUT.h5 [--samples N] [--seed S]\n"
            "  nnlo-c data fashion-mnist OUTDIR [--source DIR]\n"
            "  nnlo-c estimate MODEL [--hls4ml-config FILE] [--part P] [--clock-ns NS] [--strategy S]\n"
            "      [--reuse-factor N] [--precision T] [--json]   FPGA cost (docs/estimate.md)\n"
            "  nnlo-c import KERAS.h5 OUT.h5   |   nnlo-c export MODEL --hls4ml DIR\n"
            "  nnlo-c --version | --help\n\n"
            "exit codes: 0 success (also a scan drained by SIGTERM/SIGUSR1), 1 run failed,\n"
            "2 bad usage or configuration. Docs: README.md, docs/config.md.\n",
            NNLO_VERSION);
}

static int exit_code(nl_status st) {
    return st == NL_OK ? 0 : (st == NL_ERR_CONFIG || st == NL_ERR_INVALID) ? 2 : 1;
}

/* ---- scan --------------------------------------------------------------- */

typedef struct {
    comm *c;
    nl_error e;
    nl_status st;
} worker_thread_arg;

static void *worker_thread(void *p) {
    worker_thread_arg *a = p;
    a->st = worker_serve(a->c, &g_stop, &a->e);
    return NULL;
}

static int cmd_scan(int argc, char **argv) {
    const char *file = NULL;
    master_options o = {0};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) o.out_dir = argv[++i];
        else if (!strcmp(argv[i], "--resume")) o.resume = 1;
        else if (!strcmp(argv[i], "--trials") && i + 1 < argc) o.trials = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) o.quiet = 1;
        else if (!strcmp(argv[i], "-v")) log_set_level(LOG_DEBUG);
        else if (argv[i][0] == '-') { fprintf(stderr, "nnlo-c scan: unknown option %s\n", argv[i]); return 2; }
        else if (!file) file = argv[i];
        else { fprintf(stderr, "nnlo-c scan: one scan file at a time (got %s and %s)\n", file, argv[i]); return 2; }
    }
    if (!file) { usage(stderr); return 2; }
    const char *rc = getenv("SLURM_RESTART_COUNT");
    if (rc && atoi(rc) > 0) o.resume = 1; /* requeued by Slurm: continue */
    install_signals();
    set_blas_threads();
    nl_error e = {0};
    nl_status st;
    comm *c = NULL;
    if (comm_mpi_launched()) {
        if ((st = comm_mpi_open(NULL, NULL, &c, &e))) {
            fprintf(stderr, "nnlo-c: %s\n", e.msg);
            return 1;
        }
    }
    int rank = c ? comm_rank(c) : 0, size = c ? comm_size(c) : 1;
    char tag[32];
    snprintf(tag, sizeof tag, "rank %d", rank);
    if (size > 1) log_set_tag(tag);
    if (rank > 0) {
        st = worker_serve(c, &g_stop, &e);
        if (st) log_error("%s", e.msg);
        comm_close(c);
        return exit_code(st);
    }
    scan_config s;
    memset(&s, 0, sizeof s);
    st = config_load_scan(file, &s, &e);
    if (st) {
        fprintf(stderr, "nnlo-c: %s\n", e.msg);
        if (c) { /* release the workers */
            for (int w = 1; w < size; w++) comm_send(c, w, MSG_SHUTDOWN, NULL, 0, NULL);
            comm_close(c);
        }
        return exit_code(st);
    }
    if (size > 1) {
        st = master_run(c, &s, &o, &g_stop, &e);
    } else {
        /* one process: master here, the worker in a thread */
        comm *mc, *wc;
        if ((st = comm_inproc_pair(&mc, &wc, &e)) == NL_OK) {
            pthread_t th;
            worker_thread_arg a = {wc, {0}, NL_OK};
            pthread_create(&th, NULL, worker_thread, &a);
            st = master_run(mc, &s, &o, &g_stop, &e);
            pthread_join(th, NULL);
            if (st == NL_OK && a.st) { st = a.st; e = a.e; }
            comm_close(mc);
            comm_close(wc);
        }
    }
    if (st) fprintf(stderr, "nnlo-c: %s\n", e.msg);
    config_free_scan(&s);
    if (c) comm_close(c);
    return exit_code(st);
}

/* ---- train ---------------------------------------------------------------- */

static int train_progress(void *ctx, int id, const epoch_record *r) {
    (void)ctx; (void)id;
    static const char *stages[] = {"pretrain", "main", "finetune"};
    log_info("[%s r%d e%d] loss %.4f acc %.4f val_loss %.4f val_acc %.4f sparsity %.3f (%.2f s)", stages[r->stage],
             r->round, r->epoch, r->train_loss, r->train_accuracy, r->val_loss, r->val_accuracy, r->sparsity,
             r->seconds);
    return g_stop ? 2 : 0;
}

static int cmd_train(int argc, char **argv) {
    const char *file = NULL, *out = NULL;
    int as_json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--json")) as_json = 1;
        else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) log_set_level(LOG_WARN);
        else if (argv[i][0] == '-') { fprintf(stderr, "nnlo-c train: unknown option %s\n", argv[i]); return 2; }
        else file = argv[i];
    }
    if (!file) { usage(stderr); return 2; }
    install_signals();
    set_blas_threads();
    nl_error e = {0};
    char *text;
    if (fs_read_all(file, &text, NULL, &e)) { fprintf(stderr, "nnlo-c: %s\n", e.msg); return 2; }
    /* A config error is the user's to fix: say it plainly, exit 2. */
    trial_config probe;
    if (config_load_trial(file, &probe, &e)) {
        fprintf(stderr, "nnlo-c: %s\n", e.msg);
        free(text);
        return 2;
    }
    config_free_trial(&probe);
    /* Relative data paths in the file are relative to the file's folder. */
    char *dir = str_dup(file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else strcpy(dir, ".");
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    trial_result res;
    nl_status st = worker_run_trial(0, text, file, dir, out, &cache, train_progress, NULL, &res, &e);
    worker_cache_free(&cache);
    free(dir);
    free(text);
    if (st) { fprintf(stderr, "nnlo-c: %s\n", e.msg); return 1; }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    log_info("peak_rss_mib=%.1f", (double)ru.ru_maxrss / 1024.0); /* Linux: KiB */
    if (res.status != TRIAL_DONE) log_error("trial %s: %s", trial_status_name(res.status), res.reason);
    if (as_json) {
        sbuf b = {0};
        trial_result_to_json(&res, &b);
        printf("%s\n", b.s);
        sbuf_free(&b);
    } else {
        printf("status: %s%s%s\n", trial_status_name(res.status), res.reason[0] ? ": " : "", res.reason);
        for (int k = 0; k < MET_COUNT; k++) printf("%s: %.6g\n", metric_name((metric_id)k), res.metrics[k]);
    }
    return res.status == TRIAL_DONE ? 0 : 1;
}

/* ---- check ---------------------------------------------------------------- */

/* One point as "path=value, ..." for messages. */
static void point_text(const scan_config *s, const cfg_value *v, char *buf, size_t len) {
    size_t n = 0;
    buf[0] = '\0';
    for (int j = 0; j < s->n_dims && n < len; j++) {
        char val[160];
        n += (size_t)snprintf(buf + n, len - n, "%s%s=%s", j ? ", " : "", s->dims[j].path,
                              cfg_value_format(&v[j], val, (int)sizeof val));
    }
}

/* 1 (and remembered in seen[n]) when msg's kind, its text up to the first
 * ": " (the key, file or layer it names), is not among seen[0..n). */
static int new_reason(const char *msg, char (*seen)[64], int n) {
    const char *colon = strstr(msg, ": ");
    int len = colon ? (int)(colon - msg) : (int)strlen(msg);
    if (len > 63) len = 63;
    for (int i = 0; i < n; i++)
        if ((int)strlen(seen[i]) == len && strncmp(seen[i], msg, (size_t)len) == 0) return 0;
    snprintf(seen[n], 64, "%.*s", len, msg);
    return 1;
}

/* `nnlo-c check SCAN.yaml [--points N]`: what a scan would run into,
 * before it waits in a queue: the file as `scan` reads it, the data, and
 * for each checked point the model, optimizer and compressor built as a
 * worker builds them (worker_check_trial). The points: the whole grid
 * (grid_points per continuous range, so the ends of every range are in
 * it) when it has at most N (default 200) points; else, for a grid search,
 * N grid points spread evenly over it, for the others N random-search
 * points. Exit 0 when everything builds, 2 otherwise. */
static int cmd_check(int argc, char **argv) {
    const char *file = NULL;
    long max_points = 200;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--points") && i + 1 < argc) max_points = atol(argv[++i]);
        else if (argv[i][0] == '-') { fprintf(stderr, "nnlo-c check: unknown option %s\n", argv[i]); return 2; }
        else file = argv[i];
    }
    if (!file || max_points < 1) {
        fprintf(stderr, "usage: nnlo-c check SCAN.yaml [--points N]   (N >= 1, default 200)\n");
        return 2;
    }
    nl_error e = {0};
    scan_config s;
    if (config_load_scan(file, &s, &e)) { fprintf(stderr, "nnlo-c: %s\n", e.msg); return 2; }
    long grid = search_grid_size(&s);
    /* a grid search larger than N: N grid points spread evenly over it;
     * otherwise N random-search points */
    int use_grid = grid <= max_points || s.algorithm == SEARCH_GRID;
    long n = grid <= max_points ? grid : max_points;
    scan_config g = s;            /* the same dimensions, walked as a grid */
    g.algorithm = SEARCH_GRID;
    cfg_value *v = calloc((size_t)(s.n_dims > 0 ? s.n_dims : 1), sizeof *v);
    if (!v) { config_free_scan(&s); fprintf(stderr, "nnlo-c: out of memory\n"); return 1; }
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    long bad = 0, listed = 0, pmin = -1, pmax = -1;
    char seen[10][64];  /* the kinds of reason listed so far */
    log_set_level(LOG_WARN);
    for (long k = 0; k < n; k++) {
        long id = use_grid ? k * grid / n : k; /* the trial id this point has in a scan */
        search_point(use_grid ? &g : &s, (int)id, v);
        char where[1024];
        point_text(&s, v, where, sizeof where);
        char *yaml = config_resolve(&s, v, search_trial_seed(&s, (int)id), &e);
        long np = 0;
        if (yaml && worker_check_trial(yaml, file, NULL, &cache, &np, &e) == NL_OK) {
            if (pmin < 0 || np < pmin) pmin = np;
            if (np > pmax) pmax = np;
        } else if (++bad, listed < 10 && new_reason(e.msg, seen, listed)) {
            if (where[0]) fprintf(stderr, "nnlo-c check: point %ld (%s): %s\n", id, where, e.msg);
            else fprintf(stderr, "nnlo-c check: %s\n", e.msg);
            listed++;
        }
        free(yaml);
    }
    if (bad > listed)
        fprintf(stderr, "nnlo-c check: %ld more failing point%s not listed (each kind of reason is listed once)\n",
                bad - listed, bad - listed == 1 ? "" : "s");
    printf("%s: %d trials (%s search, %d dimension%s); %ld %s point%s checked%s, %ld fail\n", file,
           search_n_trials(&s, 0), s.algorithm == SEARCH_GRID ? "grid" : s.algorithm == SEARCH_TPE ? "TPE" : "random",
           s.n_dims, s.n_dims == 1 ? "" : "s", n, use_grid ? "grid" : "random", n == 1 ? "" : "s",
           use_grid && n < grid ? " (spread evenly over the grid)" : "", bad);
    if (cache.loaded)
        printf("data: train %ld x %d features, %d classes; validation %ld; test %ld\n", cache.data.train.n,
               cache.data.n_features, cache.data.n_classes, cache.data.val.n, cache.data.test.n);
    if (pmax >= 0) printf("models: %ld to %ld parameters\n", pmin, pmax);
    worker_cache_free(&cache);
    free(v);
    config_free_scan(&s);
    return bad ? 2 : 0;
}

/* ---- data ----------------------------------------------------------------- */

static int cmd_data(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    nl_error e = {0};
    nl_status st;
    if (!strcmp(argv[0], "jets")) {
        long n = 100000;
        uint64_t seed = 0;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--samples") && i + 1 < argc) n = atol(argv[++i]);
            else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
            else { fprintf(stderr, "nnlo-c data jets: unknown option %s\n", argv[i]); return 2; }
        }
        if (n < 1) { fprintf(stderr, "nnlo-c data jets: --samples must be >= 1\n"); return 2; }
        st = data_make_jets(argv[1], n, seed, &e);
        if (!st) printf("wrote %s: %ld jets, 16 features, 5 classes (seed %llu)\n", argv[1], n, (unsigned long long)seed);
    } else if (!strcmp(argv[0], "fashion-mnist")) {
        const char *src = NULL;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--source") && i + 1 < argc) src = argv[++i];
            else { fprintf(stderr, "nnlo-c data fashion-mnist: unknown option %s\n", argv[i]); return 2; }
        }
        st = data_make_fashion_mnist(argv[1], src, &e);
        if (!st) printf("wrote %s/train.h5 and %s/test.h5\n", argv[1], argv[1]);
    } else {
        fprintf(stderr, "nnlo-c data: unknown generator '%s' (jets, fashion-mnist)\n", argv[0]);
        return 2;
    }
    if (st) fprintf(stderr, "nnlo-c: %s\n", e.msg);
    return exit_code(st);
}

int cli_main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    if (!strcmp(cmd, "--version")) { printf("nnlo-c %s\n", NNLO_VERSION); return 0; }
    if (!strcmp(cmd, "scan")) return cmd_scan(argc - 2, argv + 2);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "data")) return cmd_data(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "estimate")) return cmd_estimate(argc - 2, argv + 2);
    if (!strcmp(cmd, "import")) return cmd_import(argc - 2, argv + 2);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 2, argv + 2);
    if (cmd[0] != '-' && (strstr(cmd, ".yaml") || strstr(cmd, ".yml") || fs_exists(cmd)))
        return cmd_scan(argc - 1, argv + 1);
    fprintf(stderr, "nnlo-c: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
