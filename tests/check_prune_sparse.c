/* check_prune_sparse.c — cs, dst and autosparse.
 * Per method: the mask math on a hand-computed case (exact values), the
 * backward against central differences (W, the method's own parameters,
 * the extra loss; for the straight-through steps of dst/autosparse against
 * the smooth function whose derivative the surrogate is), the stage hooks
 * (CS's temperature and round reset, DST's reset and clamp, AutoSparse's
 * alpha schedule and fold at freeze), and a short training run on three
 * Gaussian blobs that must prune and still classify. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"
#include "nnlo/compress.h"
#include "compress_fixtures.h"
#include "testutil.h"

static float logitf_(double p) { return (float)log(p / (1.0 - p)); }

/* ---- CS ------------------------------------------------------------------- */

START_TEST(test_cs_mask_hand) {
    ck_assert_double_eq(cs_scale(0.0), 2.0);
    ck_assert_double_eq_tol(cs_scale(log(3.0)), 4.0 / 3.0, 1e-15);
    ck_assert_double_eq_tol(cs_beta_factor(200, 3), sqrt(200.0), 1e-12);
    ck_assert_double_eq(cs_beta_factor(200, 1), 200.0);
    /* beta^(E-1) = final_temp: the last epoch runs at final_temp. */
    ck_assert_double_eq_tol(pow(cs_beta_factor(200, 5), 4), 200.0, 1e-9);
    /* s0 = 0, c = 2, beta = 1: sigmoid(0) = 1/2, sigmoid(+-ln 3) = 3/4, 1/4. */
    float l3 = (float)log(3.0);
    float w[4] = {0.5f, -1.0f, 2.0f, 0.25f}, s[4] = {0.0f, l3, -l3, 2 * l3}, m[4], o[4];
    cs_forward(w, s, 4, 1.0, 2.0, m, o);
    const float em[4] = {1.0f, 1.5f, 0.5f, 1.8f}; /* sigmoid(2 ln 3) = 9/10 */
    for (int j = 0; j < 4; j++) {
        ck_assert_float_eq_tol(m[j], em[j], 1e-6f);
        ck_assert_float_eq_tol(o[j], em[j] * w[j], 1e-6f);
    }
    /* beta = 2 doubles the argument: s = ln3 / 2 -> 3/4. */
    float sh[1] = {l3 / 2};
    cs_forward(w, sh, 1, 2.0, 2.0, m, NULL);
    ck_assert_float_eq_tol(m[0], 1.5f, 1e-6f);
    /* L1 of the mask, lambda = 0.1. */
    cs_forward(w, s, 4, 1.0, 2.0, m, o);
    ck_assert_double_eq_tol(cs_l1(m, 4, 1.0, 2.0, 0.1, NULL), 0.1 * 4.8, 1e-6);
    /* Round reset s = min(beta s, s0). */
    float r[3] = {1.0f, -2.0f, 0.5f};
    cs_round_reset(r, 3, 3.0, 0.0);
    ck_assert_float_eq(r[0], 0.0f);
    ck_assert_float_eq(r[1], -6.0f);
    ck_assert_float_eq(r[2], 0.0f);
    float r2[2] = {1.0f, 0.25f};
    cs_round_reset(r2, 2, 2.0, 1.0);
    ck_assert_float_eq(r2[0], 1.0f);
    ck_assert_float_eq(r2[1], 0.5f);
}
END_TEST

static double cs_loss(const float *w, const float *s, long n, double beta, double scale,
                      double lambda, const float *c) {
    float m[32], o[32];
    cs_forward(w, s, n, beta, scale, m, o);
    double L = cs_l1(m, n, beta, scale, lambda, NULL);
    for (long j = 0; j < n; j++) L += (double)c[j] * o[j];
    return L;
}

START_TEST(test_cs_gradient) {
    enum { N = 16 };
    float w[N], s[N], c[N], g[N], gs[N], m[N];
    rng_t r;
    rng_seed(&r, 31);
    for (int j = 0; j < N; j++) {
        w[j] = rng_normal(&r);
        s[j] = 0.8f * rng_normal(&r);
        c[j] = rng_normal(&r);
    }
    const double beta = 1.7, s0 = 0.3, scale = cs_scale(s0), lambda = 0.4;
    cs_forward(w, s, N, beta, scale, m, NULL);
    memcpy(g, c, sizeof g);
    memset(gs, 0, sizeof gs);
    cs_backward(w, m, N, beta, scale, g, gs);
    cs_l1(m, N, beta, scale, lambda, gs);
    float nw[N], ns[N];
    const float h = 1e-3f;
    for (int j = 0; j < N; j++) {
        float sv = w[j];
        w[j] = sv + h;
        double lp = cs_loss(w, s, N, beta, scale, lambda, c);
        w[j] = sv - h;
        double lm = cs_loss(w, s, N, beta, scale, lambda, c);
        w[j] = sv;
        nw[j] = (float)((lp - lm) / (2.0 * h));
        sv = s[j];
        s[j] = sv + h;
        lp = cs_loss(w, s, N, beta, scale, lambda, c);
        s[j] = sv - h;
        lm = cs_loss(w, s, N, beta, scale, lambda, c);
        s[j] = sv;
        ns[j] = (float)((lp - lm) / (2.0 * h));
    }
    tu_assert_close(g, nw, N, 2e-3, 2e-3, "cs dL/dw");
    tu_assert_close(gs, ns, N, 2e-3, 2e-3, "cs dL/ds");
    /* The L1 term matters in this check. */
    float gs0[N];
    memset(gs0, 0, sizeof gs0);
    memcpy(g, c, sizeof g);
    cs_backward(w, m, N, beta, scale, g, gs0);
    double diff = 0;
    for (int j = 0; j < N; j++) diff += fabs(gs0[j] - gs[j]);
    ck_assert(diff > 0.05);
}
END_TEST

/* ---- DST ------------------------------------------------------------------- */

START_TEST(test_dst_mask_hand) {
    ck_assert_float_eq(dst_step_grad(0.0f), 2.0f);
    ck_assert_float_eq_tol(dst_step_grad(0.1f), 1.6f, 1e-6f);
    ck_assert_float_eq_tol(dst_step_grad(-0.25f), 1.0f, 1e-6f);
    ck_assert_float_eq_tol(dst_step_grad(0.4f), 0.4f, 1e-6f);
    ck_assert_float_eq(dst_step_grad(0.7f), 0.4f);
    ck_assert_float_eq(dst_step_grad(-1.0f), 0.4f);
    ck_assert_float_eq(dst_step_grad(1.01f), 0.0f);
    ck_assert_float_eq(dst_step_grad(-3.0f), 0.0f);
    /* (in 2, out 3) kernel, W[i * 3 + o]. */
    const float w[6] = {0.5f, -0.2f, 0.9f, -0.1f, 0.3f, -0.05f};
    float mask[6], o[6];
    const float Tc[3] = {0.3f, 0.25f, 1.0f};   /* per output unit */
    ck_assert_int_eq(dst_forward(w, 2, 3, Tc, THRESH_CHANNELWISE, mask, o), 4);
    const float ec[6] = {1, 0, 0, 0, 1, 0};
    for (int j = 0; j < 6; j++) {
        ck_assert_float_eq(mask[j], ec[j]);
        ck_assert_float_eq(o[j], ec[j] * w[j]);
    }
    const float Tl[1] = {0.15f};
    ck_assert_int_eq(dst_forward(w, 2, 3, Tl, THRESH_LAYERWISE, mask, o), 2);
    const float el[6] = {1, 1, 1, 0, 1, 0};
    for (int j = 0; j < 6; j++) ck_assert_float_eq(mask[j], el[j]);
    const float Tw[6] = {0.6f, 0.1f, 0.0f, 0.0f, 0.3f, -0.1f};
    ck_assert_int_eq(dst_forward(w, 2, 3, Tw, THRESH_WEIGHTWISE, mask, NULL), 2);
    const float ew[6] = {0, 1, 1, 1, 0, 1};  /* |0.3| - 0.3 = 0 is pruned: x > 0 keeps */
    for (int j = 0; j < 6; j++) ck_assert_float_eq(mask[j], ew[j]);
    /* Penalty alpha sum exp(-T): T = {0, ln 2}, alpha = 0.1 -> 0.15. */
    const float T2[2] = {0.0f, (float)log(2.0)};
    float gT[2] = {0, 0};
    ck_assert_double_eq_tol(dst_penalty(T2, 2, 0.1, gT), 0.15, 1e-7);
    ck_assert_float_eq_tol(gT[0], -0.1f, 1e-7f);
    ck_assert_float_eq_tol(gT[1], -0.05f, 1e-7f);
    /* Clamp: each threshold just below its unit's largest |w|. */
    float Tbig[3] = {2.0f, 0.1f, 0.9f};
    float gmax[3];
    dst_clamp(w, 2, 3, Tbig, THRESH_CHANNELWISE, gmax);
    ck_assert(Tbig[0] < 0.5f && Tbig[0] > 0.4999f);
    ck_assert_float_eq(Tbig[1], 0.1f);
    ck_assert(Tbig[2] < 0.9f && Tbig[2] > 0.8999f);
    ck_assert_int_eq(dst_forward(w, 2, 3, Tbig, THRESH_CHANNELWISE, mask, NULL), 2);
    const float eb[6] = {1, 1, 1, 0, 1, 0};  /* unit maxima 0.5 and 0.9 survive */
    for (int j = 0; j < 6; j++) ck_assert_float_eq(mask[j], eb[j]);
    /* Weightwise: T <= |w| + 1 (x stays where the surrogate is nonzero). */
    float Tw2[6] = {5.0f, 0.5f, -1.0f, 1.2f, 3.0f, 1.0f};
    dst_clamp(w, 2, 3, Tw2, THRESH_WEIGHTWISE, gmax);
    ck_assert(Tw2[0] < 1.5f && Tw2[0] > 1.4999f);
    ck_assert_float_eq(Tw2[1], 0.5f);
    ck_assert_float_eq(Tw2[2], -1.0f);
    ck_assert(Tw2[3] < 1.1f && Tw2[3] > 1.0999f);
    ck_assert(Tw2[4] < 1.3f && Tw2[4] > 1.2999f);
    ck_assert_float_eq(Tw2[5], 1.0f);
    for (int j = 0; j < 6; j++)  /* every pruned weight can still move */
        if (fabsf(w[j]) - Tw2[j] <= 0) ck_assert_float_gt(dst_step_grad(fabsf(w[j]) - Tw2[j]), 0.0f);
}
END_TEST

/* Antiderivative of the surrogate: S' = dst_step_grad. */
static double surrogate_S(double x) {
    if (x < -1) return 0;
    if (x < -0.4) return 0.4 * (x + 1);
    if (x <= 0) return 0.72 + 2 * x + 2 * x * x;
    if (x <= 0.4) return 0.72 + 2 * x - 2 * x * x;
    if (x <= 1) return 1.2 + 0.4 * (x - 0.4);
    return 1.44;
}

/* The straight-through function: value w step(x), derivative that of
 * w (S(x) + D) with D = step(x0) - S(x0) frozen at the point x0 of the
 * analytic gradient; plus the penalty. */
static double dst_st_loss(const float *w, const float *T, const float *w0, const float *T0,
                          int in, int out, prune_threshold_type tt, double alpha,
                          const float *c) {
    long n = (long)in * out, nT = sparse_n_thresholds(tt, in, out);
    double L = dst_penalty(T, nT, alpha, NULL);
    for (long j = 0; j < n; j++) {
        long k = tt == THRESH_CHANNELWISE ? j % out : tt == THRESH_WEIGHTWISE ? j : 0;
        double x0 = fabs((double)w0[j]) - T0[k];
        double D = (x0 > 0 ? 1.0 : 0.0) - surrogate_S(x0);
        double x = fabs((double)w[j]) - T[k];
        L += (double)c[j] * w[j] * (surrogate_S(x) + D);
    }
    return L;
}

static void dst_grad_case(prune_threshold_type tt, uint64_t seed) {
    enum { IN = 4, OUT = 5, N = IN * OUT };
    float w[N], w0[N], c[N], g[N], T[N], T0[N], gT[N];
    rng_t r;
    rng_seed(&r, seed);
    long nT = sparse_n_thresholds(tt, IN, OUT);
    /* |w| and T chosen so x spans the surrogate's three pieces, away from
     * its kinks (|x| = 1, where S' jumps). */
    for (int j = 0; j < N; j++) {
        w[j] = (float)((0.1 + 1.2 * rng_uniform(&r)) * (rng_uniform(&r) < 0.5 ? -1 : 1));
        c[j] = rng_normal(&r);
    }
    for (long k = 0; k < nT; k++) T[k] = (float)(0.2 + 0.6 * rng_uniform(&r));
    for (int j = 0; j < N; j++) {
        long k = tt == THRESH_CHANNELWISE ? j % OUT : tt == THRESH_WEIGHTWISE ? j : 0;
        float x = fabsf(w[j]) - T[k];
        if (fabsf(fabsf(x) - 1.0f) < 0.01f) w[j] += w[j] > 0 ? 0.02f : -0.02f;
    }
    memcpy(w0, w, sizeof w);
    memcpy(T0, T, sizeof T);
    const double alpha = 0.3;
    memcpy(g, c, sizeof g);
    memset(gT, 0, sizeof gT);
    dst_backward(w, IN, OUT, T, tt, g, gT);
    dst_penalty(T, nT, alpha, gT);
    float nw[N], nt[N];
    const float h = 1e-3f;
    for (int j = 0; j < N; j++) {
        float sv = w[j];
        w[j] = sv + h;
        double lp = dst_st_loss(w, T, w0, T0, IN, OUT, tt, alpha, c);
        w[j] = sv - h;
        double lm = dst_st_loss(w, T, w0, T0, IN, OUT, tt, alpha, c);
        w[j] = sv;
        nw[j] = (float)((lp - lm) / (2.0 * h));
    }
    for (long k = 0; k < nT; k++) {
        float sv = T[k];
        T[k] = sv + h;
        double lp = dst_st_loss(w, T, w0, T0, IN, OUT, tt, alpha, c);
        T[k] = sv - h;
        double lm = dst_st_loss(w, T, w0, T0, IN, OUT, tt, alpha, c);
        T[k] = sv;
        nt[k] = (float)((lp - lm) / (2.0 * h));
    }
    tu_assert_close(g, nw, N, 3e-3, 3e-3, "dst dL/dw");
    tu_assert_close(gT, nt, nT, 3e-3, 3e-3, "dst dL/dT");
    /* Both sides of the step occur, and the surrogate term is not zero. */
    float mask[N];
    long pruned = dst_forward(w, IN, OUT, T, tt, mask, NULL);
    ck_assert(pruned > 0 && pruned < N);
}

START_TEST(test_dst_gradient) {
    dst_grad_case(THRESH_CHANNELWISE, 41);
    dst_grad_case(THRESH_WEIGHTWISE, 42);
    dst_grad_case(THRESH_LAYERWISE, 43);
}
END_TEST

/* ---- AutoSparse --------------------------------------------------------------- */

START_TEST(test_autosparse_alpha_values) {
    ck_assert_double_eq(autosparse_alpha(0.5, 0, 10, 90), 0.5);
    /* e/E = 0.2: cos decay 0.9045, sigmoid decay sigmoid(3.6) = 0.97340 wins. */
    ck_assert_double_eq_tol(autosparse_alpha(0.5, 2, 10, 90), 0.4867015032115671, 1e-12);
    /* e/E = 0.5: both 1/2. */
    ck_assert_double_eq_tol(autosparse_alpha(0.5, 5, 10, 90), 0.25, 1e-12);
    /* e/E = 0.9: cos decay (1 + cos 0.9 pi)/2 = 0.024472 wins over 0.008165. */
    ck_assert_double_eq_tol(autosparse_alpha(0.5, 9, 10, 90), 0.012235870926211617, 1e-12);
    ck_assert_double_eq(autosparse_alpha(0.5, 9, 10, 9), 0.0);
    ck_assert_double_eq(autosparse_alpha(0.5, 95, 100, 90), 0.0);
}
END_TEST

START_TEST(test_autosparse_mask_hand) {
    const float w[6] = {0.5f, -0.2f, 0.9f, -0.1f, 0.3f, -0.05f};
    /* sigmoid(T) = 0.4, 0.25, 0.95 per output unit. */
    const float T[3] = {logitf_(0.4), logitf_(0.25), logitf_(0.95)};
    float sT[3], mask[6], o[6];
    ck_assert_int_eq(autosparse_forward(w, 2, 3, T, THRESH_CHANNELWISE, sT, mask, o), 4);
    const float em[6] = {1, 0, 0, 0, 1, 0};
    const float eo[6] = {0.1f, 0, 0, 0, 0.05f, 0};
    for (int j = 0; j < 6; j++) {
        ck_assert_float_eq(mask[j], em[j]);
        ck_assert_float_eq_tol(o[j], eo[j], 1e-6f);
    }
    /* Negative kept weight: sign(w)(|w| - s). Layerwise sigmoid(T) = 0.04. */
    const float Tl[1] = {logitf_(0.04)};
    ck_assert_int_eq(autosparse_forward(w, 2, 3, Tl, THRESH_LAYERWISE, sT, mask, o), 0);
    ck_assert_float_eq_tol(o[1], -0.16f, 1e-6f);
    ck_assert_float_eq_tol(o[5], -0.01f, 1e-6f);
    ck_assert_float_eq_tol(o[2], 0.86f, 1e-6f);
    /* Guard: sigmoid(T) stays just below each unit's largest |w|, so the
     * unit keeps it; thresholds already below are untouched. */
    float Tg[3] = {3.0f, logitf_(0.25), 0.0f}, gmax[3];
    autosparse_clamp(w, 2, 3, Tg, THRESH_CHANNELWISE, gmax);
    ck_assert_float_eq(Tg[1], logitf_(0.25));
    ck_assert_int_eq(autosparse_forward(w, 2, 3, Tg, THRESH_CHANNELWISE, sT, mask, NULL), 3);
    ck_assert(sT[0] < 0.5f && sT[0] > 0.4999f);
    ck_assert(sT[2] == 0.5f);  /* 0.5 < 0.9: left alone */
    ck_assert(mask[0] == 1 && mask[4] == 1 && mask[2] == 1);
    float Tww[6] = {9, 9, 9, 9, 9, 9};
    autosparse_clamp(w, 2, 3, Tww, THRESH_WEIGHTWISE, gmax);
    for (int j = 0; j < 6; j++) ck_assert_float_eq(Tww[j], 9.0f);
    /* In place (o = w) as the freeze fold uses it. */
    float wc[6];
    memcpy(wc, w, sizeof wc);
    autosparse_forward(wc, 2, 3, T, THRESH_CHANNELWISE, sT, mask, wc);
    for (int j = 0; j < 6; j++) ck_assert_float_eq_tol(wc[j], eo[j], 1e-6f);
}
END_TEST

/* The straight-through value relu(x) has the derivative of the leaky relu
 * with slope alpha: check against sum c sign(w) leaky(|w| - sigmoid(T)). */
static double as_leaky_loss(const float *w, const float *T, int in, int out,
                            prune_threshold_type tt, double alpha, const float *c) {
    long n = (long)in * out;
    double L = 0;
    for (long j = 0; j < n; j++) {
        long k = tt == THRESH_CHANNELWISE ? j % out : tt == THRESH_WEIGHTWISE ? j : 0;
        double x = fabs((double)w[j]) - 1.0 / (1.0 + exp(-(double)T[k]));
        double y = x > 0 ? x : alpha * x;
        L += (double)c[j] * (w[j] > 0 ? y : -y);
    }
    return L;
}

static void as_grad_case(prune_threshold_type tt, uint64_t seed) {
    enum { IN = 4, OUT = 5, N = IN * OUT };
    float w[N], c[N], g[N], T[N], gT[N], sT[N], mask[N];
    rng_t r;
    rng_seed(&r, seed);
    long nT = sparse_n_thresholds(tt, IN, OUT);
    for (long k = 0; k < nT; k++) T[k] = (float)(-1.5 + 2.0 * rng_uniform(&r));
    for (int j = 0; j < N; j++) {
        w[j] = (float)((0.05 + 0.9 * rng_uniform(&r)) * (rng_uniform(&r) < 0.5 ? -1 : 1));
        c[j] = rng_normal(&r);
    }
    const float alpha = 0.3f;
    long pruned = autosparse_forward(w, IN, OUT, T, tt, sT, mask, NULL);
    /* Keep x away from the kink at 0 (|x| >= 0.01). */
    for (int j = 0; j < N; j++) {
        long k = tt == THRESH_CHANNELWISE ? j % OUT : tt == THRESH_WEIGHTWISE ? j : 0;
        float x = fabsf(w[j]) - sT[k];
        if (fabsf(x) < 0.01f) w[j] += w[j] > 0 ? 0.03f : -0.03f;
    }
    pruned = autosparse_forward(w, IN, OUT, T, tt, sT, mask, NULL);
    ck_assert(pruned > 0 && pruned < N);
    memcpy(g, c, sizeof g);
    memset(gT, 0, sizeof gT);
    autosparse_backward(w, IN, OUT, sT, tt, alpha, g, gT);
    float nw[N], nt[N];
    const float h = 1e-3f;
    for (int j = 0; j < N; j++) {
        float sv = w[j];
        w[j] = sv + h;
        double lp = as_leaky_loss(w, T, IN, OUT, tt, alpha, c);
        w[j] = sv - h;
        double lm = as_leaky_loss(w, T, IN, OUT, tt, alpha, c);
        w[j] = sv;
        nw[j] = (float)((lp - lm) / (2.0 * h));
    }
    for (long k = 0; k < nT; k++) {
        float sv = T[k];
        T[k] = sv + h;
        double lp = as_leaky_loss(w, T, IN, OUT, tt, alpha, c);
        T[k] = sv - h;
        double lm = as_leaky_loss(w, T, IN, OUT, tt, alpha, c);
        T[k] = sv;
        nt[k] = (float)((lp - lm) / (2.0 * h));
    }
    tu_assert_close(g, nw, N, 2e-3, 2e-3, "autosparse dL/dw");
    tu_assert_close(gT, nt, nT, 2e-3, 2e-3, "autosparse dL/dT");
}

START_TEST(test_autosparse_gradient) {
    as_grad_case(THRESH_CHANNELWISE, 51);
    as_grad_case(THRESH_WEIGHTWISE, 52);
    as_grad_case(THRESH_LAYERWISE, 53);
}
END_TEST

static cfg_pruning pr_default(prune_method pm) {
    cfg_pruning p;
    memset(&p, 0, sizeof p);
    p.enable_pruning = 1;
    p.method = pm;
    p.final_temp = 200;
    p.threshold_decay = pm == PRUNE_CS ? 1e-9 : 0;
    p.threshold_init = pm == PRUNE_AUTOSPARSE ? -5 : 0;
    p.threshold_type = THRESH_CHANNELWISE;
    p.alpha = pm == PRUNE_AUTOSPARSE ? 0.5 : 5e-6;
    p.max_pruning_pct = 0.99;
    p.alpha_reset_epoch = 90;
    return p;
}

typedef struct {
    model *m;
    compress *c;
    optim o;
} net;

/* dense(hidden) relu dense(C) (hidden 0: one dense), with the method's
 * segments planned and the compress object bound. */
static void net_make(net *n, int hidden, const cfg_pruning *p, const cfg_training *t,
                     uint64_t seed) {
    cfg_layer ly[3];
    memset(ly, 0, sizeof ly);
    int nl = 1;
    if (hidden > 0) {
        ly[0].type = CFG_LAYER_DENSE; ly[0].units = hidden;
        ly[1].type = CFG_LAYER_RELU;
        ly[2].type = CFG_LAYER_DENSE; ly[2].units = 0;
        nl = 3;
    } else {
        ly[0].type = CFG_LAYER_DENSE;
    }
    cfg_quant q = q_off();
    layer_spec *specs;
    int ns;
    nl_error e = {0};
    ck_assert_msg(compress_model_specs(ly, nl, C, &q, &specs, &ns, &e) == NL_OK, "%s", e.msg);
    char **names;
    long *lens;
    int nx;
    ck_assert_msg(compress_plan_params(specs, ns, D, p, &names, &lens, &nx, &e) == NL_OK, "%s",
                  e.msg);
    n->m = model_create(specs, ns, D, 32, (const char *const *)names, lens, nx, &e);
    for (int k = 0; k < nx; k++) free(names[k]);
    free(names);
    free(lens);
    free(specs);
    ck_assert_msg(n->m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, seed);
    model_init_params(n->m, &r);
    memset(&n->o, 0, sizeof n->o);
    ck_assert_int_eq(optim_init(&n->o, OPT_ADAM, n->m->n_params, &e), NL_OK);
    n->o.lr = (float)t->learning_rate;
    n->c = compress_create(n->m, p, &q, t, &e);
    ck_assert_msg(n->c != NULL, "%s", e.msg);
}

static void net_free(net *n) {
    compress_free(n->c);
    optim_free(&n->o);
    model_free(n->m);
}

START_TEST(test_plan_segments) {
    cfg_layer ly[5];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE; ly[0].units = 6;
    ly[1].type = CFG_LAYER_RELU;
    ly[2].type = CFG_LAYER_DENSE; ly[2].units = 5;
    ly[3].type = CFG_LAYER_RELU;
    ly[4].type = CFG_LAYER_DENSE; ly[4].units = 0;
    cfg_quant q = q_off();
    q.enable_quantization = 1;  /* QUANT layers in between must not confuse sizes */
    q.quantize_input = 1;
    q.data.k = 1;
    q.data.i = 3;
    q.data.f = 4;
    q.weight = q.bias = q.data;
    layer_spec *specs;
    int ns;
    nl_error e = {0};
    ck_assert_msg(compress_model_specs(ly, 5, 3, &q, &specs, &ns, &e) == NL_OK, "%s", e.msg);
    char *dis[1] = {"dense1"};
    struct { prune_method pm; prune_threshold_type tt; const char *n0; long l0, l2; } cs[] = {
        {PRUNE_CS, THRESH_CHANNELWISE, "dense0/cs_s", 8 * 6, 5 * 3},
        {PRUNE_DST, THRESH_CHANNELWISE, "dense0/dst_threshold", 6, 3},
        {PRUNE_DST, THRESH_WEIGHTWISE, "dense0/dst_threshold", 48, 15},
        {PRUNE_AUTOSPARSE, THRESH_LAYERWISE, "dense0/autosparse_threshold", 1, 1},
    };
    for (int k = 0; k < 4; k++) {
        cfg_pruning p = pr_default(cs[k].pm);
        p.threshold_type = cs[k].tt;
        p.disable_layers = dis;
        p.n_disable = 1;
        char **names;
        long *lens;
        int nx;
        ck_assert_int_eq(compress_plan_params(specs, ns, 8, &p, &names, &lens, &nx, &e), NL_OK);
        ck_assert_int_eq(nx, 2);  /* dense1 is disabled */
        ck_assert_str_eq(names[0], cs[k].n0);
        ck_assert_int_eq(lens[0], cs[k].l0);
        ck_assert_int_eq(lens[1], cs[k].l2);
        ck_assert_ptr_nonnull(strstr(names[1], "dense2/"));
        for (int j = 0; j < nx; j++) free(names[j]);
        free(names);
        free(lens);
    }
    free(specs);
    /* Conv kernels are (kh kw cin, cout) matrices: conv2d 3x3, 2 -> 4
     * channels on (6, 6, 2), flatten (4 x 4 x 4 = 64), dense 3. */
    layer_spec cv[3];
    memset(cv, 0, sizeof cv);
    cv[0].kind = (layer_kind)LAYER_CONV2D;
    snprintf(cv[0].name, sizeof cv[0].name, "conv");
    cv[0].filters = 4;
    cv[0].kernel[0] = cv[0].kernel[1] = 3;
    cv[0].in_shape[0] = cv[0].in_shape[1] = 6;
    cv[0].in_shape[2] = 2;
    cv[1].kind = (layer_kind)LAYER_FLATTEN;
    snprintf(cv[1].name, sizeof cv[1].name, "flat");
    cv[2].kind = LAYER_DENSE;
    snprintf(cv[2].name, sizeof cv[2].name, "out");
    cv[2].units = 3;
    for (int k = 0; k < 2; k++) {
        cfg_pruning p = pr_default(k ? PRUNE_CS : PRUNE_DST);
        char **names;
        long *lens;
        int nx;
        ck_assert_msg(compress_plan_params(cv, 3, 72, &p, &names, &lens, &nx, &e) == NL_OK, "%s",
                      e.msg);
        ck_assert_int_eq(nx, 2);
        ck_assert_str_eq(names[0], k ? "conv/cs_s" : "conv/dst_threshold");
        ck_assert_int_eq(lens[0], k ? 3 * 3 * 2 * 4 : 4);
        ck_assert_int_eq(lens[1], k ? 64 * 3 : 3);
        for (int j = 0; j < nx; j++) free(names[j]);
        free(names);
        free(lens);
    }
    /* A model without the segments is refused with the segment's name. */
    cfg_training t = tr_toy(1);
    cfg_pruning p = pr_default(PRUNE_DST);
    layer_spec one;
    memset(&one, 0, sizeof one);
    one.kind = LAYER_DENSE;
    one.units = 3;
    snprintf(one.name, sizeof one.name, "fc");
    model *m = model_create(&one, 1, 4, 8, NULL, NULL, 0, &e);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "'fc/dst_threshold'"), "%s", e.msg);
    /* autosparse's backward_sparsity is refused before any segment lookup */
    p = pr_default(PRUNE_AUTOSPARSE);
    p.backward_sparsity = 1;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "backward_sparsity: true is refused"), "%s", e.msg);
    model_free(m);
}
END_TEST

/* The whole hook chain for CS (one Dense, s and the L1 term) against
 * central differences of data loss + extra loss over W and s. */
START_TEST(test_cs_hook_chain_gradient) {
    cfg_training t = tr_toy(3);
    cfg_pruning p = pr_default(PRUNE_CS);
    p.threshold_decay = 0.05;
    p.threshold_init = 0.2;
    net n;
    net_make(&n, 0, &p, &t, 61);
    model *m = n.m;
    compress *c = n.c;
    const param_view *sv = model_find_view(m, "dense0/cs_s");
    const param_view *kv = model_find_view(m, "dense0/kernel");
    ck_assert_ptr_nonnull(sv);
    ck_assert_ptr_nonnull(kv);
    ck_assert_int_eq(sv->len, D * C);
    for (long j = 0; j < sv->len; j++) ck_assert_float_eq(m->params[sv->off + j], 0.2f);
    c->stage = STAGE_MAIN;
    c->n_epochs = 3;
    c->ops->setup(c);
    c->ops->epoch_end(c);  /* beta = sqrt(200): a steep mask */
    ck_assert_double_eq_tol(cs_beta(c), sqrt(200.0), 1e-9);
    rng_t r;
    rng_seed(&r, 62);
    for (long j = 0; j < sv->len; j++) m->params[sv->off + j] = 0.15f * rng_normal(&r);
    float x[4 * D];
    int32_t y[4] = {0, 1, 2, 1};
    for (int j = 0; j < 4 * D; j++) x[j] = rng_normal(&r);
    train_hooks h = compress_hooks(c);
    float dl[4 * C];
    h.pre_forward(h.ctx, m);
    loss_softmax_xent(model_forward(m, x, 4), y, 4, C, dl, NULL);
    model_backward(m, x, dl, 4);
    float extra = h.post_backward(h.ctx, m);
    ck_assert(extra > 0);
    long np = m->n_params;
    float *ana = malloc((size_t)np * sizeof *ana), *num = malloc((size_t)np * sizeof *num);
    memcpy(ana, m->grads, (size_t)np * sizeof *ana);
    const float hh = 1e-3f;
    for (long j = 0; j < np; j++) {
        float save = m->params[j];
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            m->params[j] = save + (sgn ? -hh : hh);
            h.pre_forward(h.ctx, m);
            l[sgn] = loss_softmax_xent(model_forward(m, x, 4), y, 4, C, NULL, NULL);
            /* + lambda ||m||_1 of the current s */
            float mm[D * C];
            cs_forward(m->params + kv->off, m->params + sv->off, D * C, cs_beta(c), cs_scale(0.2), mm, NULL);
            l[sgn] += cs_l1(mm, D * C, cs_beta(c), cs_scale(0.2), p.threshold_decay, NULL);
        }
        m->params[j] = save;
        num[j] = (float)((l[0] - l[1]) / (2.0 * hh));
    }
    tu_assert_close(ana, num, np, 3e-3, 3e-2, "cs hook chain dL/d(W, b, s)");
    /* Reported (hard) mask follows s > 0. */
    const float *mask = compress_mask(c, 0);
    for (long j = 0; j < sv->len; j++)
        ck_assert_float_eq(mask[j], m->params[sv->off + j] > 0 ? 1.0f : 0.0f);
    free(ana);
    free(num);
    net_free(&n);
}
END_TEST

/* Beta schedule over epochs, the round reset and the hard mask at freeze. */
START_TEST(test_cs_schedule_and_rounds) {
    cfg_training t = tr_toy(3);
    cfg_pruning p = pr_default(PRUNE_CS);
    p.final_temp = 100;
    p.threshold_init = 0.5;
    net n;
    net_make(&n, 0, &p, &t, 71);
    compress *c = n.c;
    const param_view *sv = model_find_view(n.m, "dense0/cs_s");
    float *s = n.m->params + sv->off;
    c->stage = STAGE_MAIN;
    c->n_epochs = 3;
    c->ops->setup(c);
    ck_assert_double_eq(cs_beta(c), 1.0);
    c->ops->epoch_end(c);
    c->ops->epoch_end(c);
    ck_assert_double_eq_tol(cs_beta(c), 100.0, 1e-9);  /* the last epoch runs at final_temp */
    s[0] = 0.001f;
    s[1] = -0.02f;
    s[2] = 0.3f;
    c->ops->round_end(c, 0);
    ck_assert_double_eq(cs_beta(c), 1.0);
    ck_assert_float_eq_tol(s[0], 0.1f, 1e-6f);   /* min(100 * 0.001, 0.5) */
    ck_assert_float_eq_tol(s[1], -2.0f, 1e-6f);
    ck_assert_float_eq(s[2], 0.5f);               /* capped at s0 */
    s[0] = -0.1f;
    float w[D * C];
    c->ops->forward(c, 0, n.m->params, w);  /* the method ran */
    c->ops->freeze(c);
    const float *mask = compress_mask(c, 0);
    ck_assert_float_eq(mask[0], 0.0f);
    ck_assert_float_eq(mask[1], 0.0f);
    ck_assert_float_eq(mask[2], 1.0f);
    net_free(&n);
}
END_TEST

/* DST in the compress object: the max_pruning_pct reset, the clamp guard,
 * and that the hook chain's threshold gradient is the pure function's. */
START_TEST(test_dst_reset_and_guard) {
    cfg_training t = tr_toy(2);
    cfg_pruning p = pr_default(PRUNE_DST);
    p.max_pruning_pct = 0.9;
    p.alpha = 0.01;
    net n;
    net_make(&n, 0, &p, &t, 81);
    model *m = n.m;
    compress *c = n.c;
    const param_view *tv = model_find_view(m, "dense0/dst_threshold");
    ck_assert_int_eq(tv->len, C);
    float *T = m->params + tv->off;
    c->stage = STAGE_MAIN;
    c->n_epochs = 2;
    c->ops->setup(c);
    for (int k = 0; k < C; k++) ck_assert_float_eq(T[k], 0.0f);
    /* All pruned (>= 90 %): T goes back to 0 and nothing is pruned. */
    for (int k = 0; k < C; k++) T[k] = 50.0f;
    train_hooks h = compress_hooks(c);
    h.pre_forward(h.ctx, m);
    for (int k = 0; k < C; k++) ck_assert_float_eq(T[k], 0.0f);
    ck_assert_double_eq(cm_hard_sparsity(c), 0.0);
    /* Guard: after a step no threshold is above its unit's largest |w|. */
    T[0] = 50.0f;
    T[1] = 0.05f;
    h.post_step(h.ctx, m);
    float mx = 0;
    for (int i = 0; i < D; i++) mx = fmaxf(mx, fabsf(m->params[i * C + 0]));
    ck_assert(T[0] < mx && T[0] > mx - 1e-6f);
    ck_assert_float_eq(T[1], 0.05f);
    /* Hook chain: T's gradient = surrogate term of dL/dweff + penalty. */
    rng_t r;
    rng_seed(&r, 82);
    float x[4 * D];
    int32_t y[4] = {0, 1, 2, 0};
    for (int j = 0; j < 4 * D; j++) x[j] = rng_normal(&r);
    float dl[4 * C];
    h.pre_forward(h.ctx, m);
    loss_softmax_xent(model_forward(m, x, 4), y, 4, C, dl, NULL);
    model_backward(m, x, dl, 4);
    float g[D * C], gT[C] = {0, 0, 0};
    memcpy(g, m->grads, sizeof g);
    float extra = h.post_backward(h.ctx, m);
    dst_backward(m->params, D, C, T, THRESH_CHANNELWISE, g, gT);
    double pen = dst_penalty(T, C, p.alpha, gT);
    ck_assert_float_eq_tol(extra, (float)pen, 1e-6f);
    tu_assert_close(m->grads + tv->off, gT, C, 1e-6, 1e-5, "dst hook dL/dT");
    tu_assert_close(m->grads, g, D * C, 1e-6, 1e-5, "dst hook dL/dW");
    net_free(&n);
}
END_TEST

/* AutoSparse: alpha per epoch through epoch_begin; freeze folds the
 * shrinkage into W so the frozen layer computes what the trained one did. */
START_TEST(test_autosparse_hooks_and_fold) {
    cfg_training t = tr_toy(10);
    cfg_pruning p = pr_default(PRUNE_AUTOSPARSE);
    p.threshold_init = -1.5;  /* sigmoid = 0.18: prunes part of the kernel */
    net n;
    net_make(&n, 0, &p, &t, 91);
    model *m = n.m;
    compress *c = n.c;
    c->stage = STAGE_MAIN;
    c->n_epochs = 10;
    c->ops->setup(c);
    c->epoch = 2;
    c->ops->epoch_begin(c);
    ck_assert_double_eq_tol(autosparse_current_alpha(c), 0.4867015032115671, 1e-12);
    train_hooks h = compress_hooks(c);
    h.pre_forward(h.ctx, m);
    float before[D * C];
    memcpy(before, m->weff, sizeof before);
    double sp = cm_hard_sparsity(c);
    ck_assert(sp > 0.1 && sp < 0.9);
    c->ops->freeze(c);
    c->frozen = 1;
    c->stage = STAGE_FINETUNE;
    h.pre_forward(h.ctx, m);
    tu_assert_close(m->weff, before, D * C, 1e-7, 1e-6, "autosparse weff after the fold");
    ck_assert_double_eq(cm_hard_sparsity(c), sp);
    net_free(&n);
}
END_TEST

/* ---- training on three blobs ---------------------------------------------------- */

typedef struct {
    double val_acc, sparsity;
} run_result;

static int last_cb(void *ctx, const epoch_record *r) {
    run_result *x = ctx;
    x->val_acc = r->val_accuracy;
    x->sparsity = r->sparsity;
    return 0;
}

static run_result train_toy(const cfg_pruning *p, const cfg_training *t, int hidden,
                            uint64_t seed) {
    static toy_data td;
    toy_make(&td, 5);
    net n;
    net_make(&n, hidden, p, t, seed);
    train_data d = {td.xtr, td.ytr, NTR, td.xva, td.yva, NVA};
    rng_t r;
    rng_seed(&r, seed + 1);
    run_result res = {0, 0};
    nl_error e = {0};
    ck_assert_msg(compress_train(n.c, n.m, &n.o, t, &d, &r, last_cb, &res, &e) == NL_OK, "%s",
                  e.msg);
    /* The final hard-masked model. */
    train_hooks h = compress_hooks(n.c);
    epoch_stats st;
    ck_assert_int_eq(nn_evaluate(n.m, td.xva, td.yva, NVA, &h, &st, NULL, &e), NL_OK);
    res.val_acc = st.accuracy;
    res.sparsity = cm_hard_sparsity(n.c);
    net_free(&n);
    return res;
}

START_TEST(test_cs_trains) {
    cfg_training t = tr_toy(4);
    t.rounds = 2;
    t.fine_tuning_epochs = 2;
    cfg_pruning p = pr_default(PRUNE_CS);
    p.threshold_decay = 1e-2;
    run_result r = train_toy(&p, &t, 16, 101);
    ck_assert_msg(r.sparsity > 0.5, "cs sparsity %.3f", r.sparsity);
    ck_assert_msg(r.val_acc > 0.9, "cs val accuracy %.3f at sparsity %.3f", r.val_acc,
                  r.sparsity);
}
END_TEST

START_TEST(test_dst_trains) {
    cfg_training t = tr_toy(8);
    cfg_pruning p = pr_default(PRUNE_DST);
    p.alpha = 0.2;
    run_result r = train_toy(&p, &t, 16, 111);
    ck_assert_msg(r.sparsity > 0.5, "dst sparsity %.3f", r.sparsity);
    ck_assert_msg(r.val_acc > 0.9, "dst val accuracy %.3f at sparsity %.3f", r.val_acc,
                  r.sparsity);
}
END_TEST

START_TEST(test_autosparse_trains) {
    cfg_training t = tr_toy(8);
    cfg_pruning p = pr_default(PRUNE_AUTOSPARSE);
    p.threshold_init = 1.0;
    run_result r = train_toy(&p, &t, 16, 121);
    ck_assert_msg(r.sparsity > 0.5, "autosparse sparsity %.3f", r.sparsity);
    ck_assert_msg(r.val_acc > 0.9, "autosparse val accuracy %.3f at sparsity %.3f", r.val_acc,
                  r.sparsity);
}
END_TEST

Suite *make_prune_sparse_suite(void) {
    Suite *s = suite_create("prune_sparse");
    TCase *tc = tcase_create("math");
    tcase_add_test(tc, test_cs_mask_hand);
    tcase_add_test(tc, test_cs_gradient);
    tcase_add_test(tc, test_dst_mask_hand);
    tcase_add_test(tc, test_dst_gradient);
    tcase_add_test(tc, test_autosparse_alpha_values);
    tcase_add_test(tc, test_autosparse_mask_hand);
    tcase_add_test(tc, test_autosparse_gradient);
    suite_add_tcase(s, tc);
    TCase *to = tcase_create("object");
    tcase_set_timeout(to, 60);
    tcase_add_test(to, test_plan_segments);
    tcase_add_test(to, test_cs_hook_chain_gradient);
    tcase_add_test(to, test_cs_schedule_and_rounds);
    tcase_add_test(to, test_dst_reset_and_guard);
    tcase_add_test(to, test_autosparse_hooks_and_fold);
    tcase_add_test(to, test_cs_trains);
    tcase_add_test(to, test_dst_trains);
    tcase_add_test(to, test_autosparse_trains);
    suite_add_tcase(s, to);
    return s;
}
