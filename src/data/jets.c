/* jets.c — data_make_jets: a synthetic stand-in for the hls4ml jet-tagging
 * data (16 features, classes g, q, W, Z, t).
 *
 * Each jet draws a 6-d latent vector: mass-like, 2-prong-ness, 3-prong-ness,
 * gluon-likeness, a weak W/Z discriminant and a class-independent pT-like
 * nuisance, with class-dependent means and widths and Student-t (nu = 4)
 * tails. A fixed mixing (the same for every seed) turns the latent vector
 * into 16 correlated observables, some of them log-normal-like, plus
 * independent noise. The classes overlap on purpose (W/Z most, g/q next):
 * a 16-64-32-32-5 MLP reaches about 80 % (PyTorch, Adam 1e-3, batch 256,
 * 8 epochs on 100k standardized rows: 79.5 % on 20k held-out rows; most
 * errors are W<->Z, then g<->q). Only the samples depend on the seed. Rows
 * are generated in blocks and streamed to the file. */
#include <math.h>
#include <stdlib.h>
#include "data/h5write.h"
#include "nnlo/data.h"

#define JET_NF 16
#define JET_NC 5
#define JET_NL 6
#define JET_BLOCK 4096

/* latent means and widths per class: g, q, W, Z, t */
static const double jet_mu[JET_NC][JET_NL] = {
    /* mass  2prong 3prong  glue   w/z    pt */
    {0.25,  0.10,  0.00,  0.90,  0.00,  0.0},  /* g */
    {0.10,  0.00,  0.00, -0.30,  0.00,  0.0},  /* q */
    {0.85,  1.00,  0.20,  0.10,  0.35,  0.0},  /* W */
    {1.00,  1.00,  0.25,  0.15, -0.35,  0.0},  /* Z */
    {1.75,  0.70,  1.10,  0.30,  0.00,  0.0},  /* t */
};
static const double jet_sig[JET_NC][JET_NL] = {
    {0.30,  0.45,  0.40,  0.55,  0.60,  1.0},
    {0.25,  0.45,  0.40,  0.55,  0.60,  1.0},
    {0.22,  0.35,  0.40,  0.55,  0.60,  1.0},
    {0.22,  0.35,  0.40,  0.55,  0.60,  1.0},
    {0.35,  0.40,  0.35,  0.55,  0.60,  1.0},
};
static const double jet_sep = 1.0;    /* scales the class means: accuracy knob */
static const double jet_noise = 0.35; /* independent noise per observable */

/* Student-t with 4 degrees of freedom, scaled to unit variance. */
static double student4(rng_t *r) {
    double c = 0;
    for (int k = 0; k < 4; k++) { double g = rng_normal(r); c += g * g; }
    if (c < 1e-12) c = 1e-12;
    return rng_normal(r) / sqrt(c / 4.0) * sqrt(0.5); /* var(t4) = 2 */
}

/* The fixed mixing: observable j = sum_k A[j][k] z_k, then a per-j
 * nonlinearity. Generated from a constant seed, never the user's. */
static void jet_mixing(double A[JET_NF][JET_NL]) {
    rng_t r;
    rng_seed(&r, 0x6A657473ULL); /* "jets" */
    for (int j = 0; j < JET_NF; j++) {
        for (int k = 0; k < JET_NL; k++) A[j][k] = 0.35 * rng_normal(&r);
        A[j][j % (JET_NL - 1)] += 1.0; /* each physics latent dominates some observables */
        A[j][JET_NL - 1] += 0.3;       /* pT leaks into everything */
    }
}

static void jet_row(const double A[JET_NF][JET_NL], rng_t *r, float *x, int32_t *y) {
    int c = (int)rng_below(r, JET_NC);
    double z[JET_NL];
    for (int k = 0; k < JET_NL; k++) z[k] = jet_sep * jet_mu[c][k] + jet_sig[c][k] * student4(r);
    for (int j = 0; j < JET_NF; j++) {
        double s = 0;
        for (int k = 0; k < JET_NL; k++) s += A[j][k] * z[k];
        switch (j % 4) {
        case 0: s = exp(0.5 * fmin(fmax(s, -8.0), 8.0)); break; /* log-normal-like (mass, pT) */
        case 1: break;                                  /* linear */
        case 2: s = s + 0.25 * s * s; break;            /* mildly quadratic */
        default: s = tanh(0.8 * s); break;              /* bounded ratio (tau_N-like) */
        }
        x[j] = (float)(s + jet_noise * rng_normal(r));
    }
    *y = c;
}

nl_status data_make_jets(const char *path, long n, uint64_t seed, nl_error *e) {
    if (n < 1) return nl_err(e, NL_ERR_INVALID, "jets: --samples must be >= 1 (got %ld)", n);
    double A[JET_NF][JET_NL];
    jet_mixing(A);
    float *x = malloc((size_t)JET_BLOCK * JET_NF * sizeof *x);
    int32_t *y = malloc((size_t)JET_BLOCK * sizeof *y);
    if (!x || !y) { free(x); free(y); return nl_err(e, NL_ERR_NOMEM, "jets: out of memory"); }
    h5w w;
    nl_status st = h5w_open(&w, path, n, JET_NF, "X", "y", e);
    rng_t r;
    rng_seed(&r, seed);
    for (long r0 = 0; !st && r0 < n; r0 += JET_BLOCK) {
        long cnt = n - r0 < JET_BLOCK ? n - r0 : JET_BLOCK;
        for (long i = 0; i < cnt; i++) jet_row(A, &r, x + i * JET_NF, y + i);
        st = h5w_rows(&w, r0, cnt, x, y, e);
        if (st) h5w_abort(&w);
    }
    if (!st) st = h5w_close(&w, e);
    free(x); free(y);
    return st;
}
