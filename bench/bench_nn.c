/* bench_nn.c — training throughput of the nn core on random data: the jet
 * MLP 16-64-32-32-5 (batch 256 and 1024), the Fashion-MNIST-shaped MLP
 * 784-256-128-10 (batch 256) and the Fashion-MNIST CNN of torch_peer.py
 * (conv 16 3x3, pool 2, conv 32 3x3, pool 2, dense 64, dense 10; batch 128),
 * Adam, samples/s as the median of timed epochs after one warm-up epoch.
 * Standalone, not part of the build or the tests:
 *   cc -O2 -march=x86-64-v2 -std=c11 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -Iinclude \
 *     $(pkg-config --cflags openblas) bench/bench_nn.c src/nn/[a-z]*.c src/util/[a-z]*.c \
 *     $(pkg-config --libs openblas) -lm -o build/bench_nn
 *   OPENBLAS_NUM_THREADS=1 build/bench_nn [jet256|jet1024|fmlp|fmlpsgd|jetq|cnn|all] [epochs]
 * With OPENBLAS_NUM_THREADS=2 the CNN splits each batch over 2 threads
 * (model_set_threads); per-cpu-s then falls below the wall-time figure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nnlo/nn.h"

/* CPU seconds of this process: less disturbed than wall time when other
 * jobs share the cores (wall time is what the report quotes). */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Gaussian blobs: k centres N(0, spread^2) in d dimensions, unit noise
 * (the peer's jet data uses spread 1; for 784 inputs a small spread keeps
 * the problem from being trivially separable, so gradients stay normal). */
static void make_blobs(float *x, int32_t *y, long n, int d, int k, float spread, rng_t *r) {
    float *c = malloc((size_t)k * d * sizeof *c);
    for (long j = 0; j < (long)k * d; j++) c[j] = spread * rng_normal(r);
    for (long s = 0; s < n; s++) {
        int lab = (int)rng_below(r, (uint64_t)k);
        y[s] = lab;
        for (int j = 0; j < d; j++) x[s * d + j] = c[lab * d + j] + rng_normal(r);
    }
    free(c);
}

static void run_specs(const char *label, const layer_spec *specs, int ns, int in, int classes,
                      long n, int batch, optim_kind ok, int epochs);

/* quant != 0: an ap_fixed<16,6> activation quantizer after every Dense
 * (what a quantized trial trains), to see what QUANT layers cost. */
static void run(const char *label, const int *units, int n_dense, int in, int classes, long n,
                int batch, optim_kind ok, int epochs, int quant) {
    layer_spec specs[24];
    int ns = 0;
    for (int l = 0; l < n_dense; l++) {
        memset(&specs[ns], 0, sizeof specs[ns]);
        specs[ns].kind = LAYER_DENSE;
        specs[ns++].units = units[l];
        if (quant) {
            memset(&specs[ns], 0, sizeof specs[ns]);
            specs[ns].kind = LAYER_QUANT;
            specs[ns++].quant = (fixed_spec){1, 5, 10, FX_SAT, FX_RND};
        }
        if (l + 1 < n_dense) {
            memset(&specs[ns], 0, sizeof specs[ns]);
            specs[ns++].kind = LAYER_RELU;
        }
    }
    run_specs(label, specs, ns, in, classes, n, batch, ok, epochs);
}

/* The CNN of torch_peer.py --model cnn on 28x28x1 inputs. */
static void run_cnn(long n, int batch, int epochs) {
    layer_spec sp[10];
    memset(sp, 0, sizeof sp);
    int kinds[10] = {LAYER_CONV2D, LAYER_RELU, LAYER_MAXPOOL2D, LAYER_CONV2D, LAYER_RELU,
                     LAYER_MAXPOOL2D, LAYER_FLATTEN, LAYER_DENSE, LAYER_RELU, LAYER_DENSE};
    for (int l = 0; l < 10; l++) {
        sp[l].kind = (layer_kind)kinds[l];
        sp[l].kernel[0] = sp[l].kernel[1] = 3;
        sp[l].pool[0] = sp[l].pool[1] = 2;
    }
    sp[0].in_shape[0] = 28; sp[0].in_shape[1] = 28; sp[0].in_shape[2] = 1;
    sp[0].filters = 16;
    sp[3].filters = 32;
    sp[7].units = 64;
    sp[9].units = 10;
    run_specs("cnn", sp, 10, 784, 10, n, batch, OPT_ADAM, epochs);
}

static void run_specs(const char *label, const layer_spec *specs, int ns, int in, int classes,
                      long n, int batch, optim_kind ok, int epochs) {
    nl_error e = {0};
    model *m = model_create(specs, ns, in, batch, NULL, NULL, 0, &e);
    if (!m) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    rng_t r;
    rng_seed(&r, 1);
    model_init_params(m, &r);
    float *x = malloc((size_t)n * in * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    make_blobs(x, y, n, in, classes, in > 100 ? 0.04f : 1.0f, &r);
    optim o = {0};
    o.lr = ok == OPT_ADAM ? 1e-3f : 0.01f;
    o.momentum = 0.9f;
    if (optim_init(&o, ok, m->n_params, &e) != NL_OK) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    epoch_stats st;
    double rates[64], crates[64];
    if (epochs > 64) epochs = 64;
    for (int ep = -1; ep < epochs; ep++) {
        double t0 = time_now(), c0 = cpu_now();
        nn_train_epoch(m, &o, x, y, n, batch, &r, NULL, &st, &e);
        double dt = time_now() - t0, dc = cpu_now() - c0;
        if (ep >= 0) rates[ep] = (double)n / dt;
        if (ep >= 0) crates[ep] = (double)n / dc;
    }
    qsort(rates, (size_t)epochs, sizeof rates[0], cmp_double);
    qsort(crates, (size_t)epochs, sizeof crates[0], cmp_double);
    /* inference: batch = max_batch, whole set */
    double t0 = time_now();
    epoch_stats ev;
    nn_evaluate(m, x, y, n, NULL, &ev, NULL, &e);
    double inf = (double)n / (time_now() - t0);
    printf("%-8s batch %4d %s: train %9.0f samples/s (median of %d; min %.0f max %.0f)  "
           "per-cpu-s %9.0f  infer %9.0f/s  loss %.4f acc %.3f\n",
           label, batch, ok == OPT_ADAM ? "adam" : "sgd ", rates[epochs / 2], epochs, rates[0],
           rates[epochs - 1], crates[epochs / 2], inf, st.loss, st.accuracy);
    fflush(stdout);
    optim_free(&o);
    model_free(m);
    free(x);
    free(y);
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "all";
    int epochs = argc > 2 ? atoi(argv[2]) : 5;
    static const int jet[] = {64, 32, 32, 5}, fmlp[] = {256, 128, 10};
    int all = strcmp(which, "all") == 0;
    if (all || strcmp(which, "jet256") == 0) run("jet", jet, 4, 16, 5, 100000, 256, OPT_ADAM, epochs, 0);
    if (all || strcmp(which, "jet1024") == 0) run("jet", jet, 4, 16, 5, 100000, 1024, OPT_ADAM, epochs, 0);
    if (all || strcmp(which, "fmlp") == 0) run("fmlp", fmlp, 3, 784, 10, 60000, 256, OPT_ADAM, epochs, 0);
    if (all || strcmp(which, "fmlpsgd") == 0) run("fmlp", fmlp, 3, 784, 10, 60000, 256, OPT_SGD, epochs, 0);
    if (strcmp(which, "jetq") == 0) run("jet+q", jet, 4, 16, 5, 100000, 256, OPT_ADAM, epochs, 1);
    if (all || strcmp(which, "cnn") == 0) run_cnn(20000, 128, epochs);
    return 0;
}
