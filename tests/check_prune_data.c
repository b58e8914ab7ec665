/* check_prune_data.c — the data-driven and constrained pruners: wanda,
 * activation_pruning (CLNP), mdmm.
 * Pure math on hand-computed cases (Wanda scores and masks, N:M groups,
 * CLNP activity masks, the MDMM metric and infeasibilities), MDMM's
 * penalty gradient against central differences, the collection windows
 * driven batch by batch, the one-shot calibration against an independent
 * recomputation, and short toy trainings that must reach their sparsity
 * and still learn. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"
#include "nnlo/compress.h"
#include "compress_fixtures.h"
#include "testutil.h"

/* ---- wanda math ------------------------------------------------------------- */

/* W (in 4, out 2), input norms 2, 1, 4, 0.5: scores per unit
 *   unit 0: 2, 2.5, 2, 1.5     unit 1: 1, 0.25, 16, 0.5
 * Magnitude alone would prune inputs {0, 2} and {0, 1}; Wanda prunes
 * {3, 0} (tie 2 = 2 goes to the lower index) and {1, 3}. */
START_TEST(test_wanda_hand) {
    const float w[8] = {1.0f, -0.5f, -2.5f, 0.25f, 0.5f, 4.0f, 3.0f, -1.0f};
    const double sq[4] = {4, 1, 16, 0.25};
    float score[8], mask[8], col[4];
    cm_entry scratch[8];
    wanda_scores(w, 4, 2, sq, score);
    const float want_s[8] = {2.0f, 1.0f, 2.5f, 0.25f, 2.0f, 16.0f, 1.5f, 0.5f};
    for (int j = 0; j < 8; j++) ck_assert_float_eq(score[j], want_s[j]);
    ck_assert_int_eq(wanda_mask(score, 4, 2, 0.5, 0, mask, scratch, col), 4);
    const float per_unit[8] = {0, 1, 1, 0, 1, 1, 0, 0};
    for (int j = 0; j < 8; j++) ck_assert_msg(mask[j] == per_unit[j], "per unit, entry %d", j);
    /* Over the layer: the 4 lowest are 0.25, 0.5, 1, 1.5. */
    ck_assert_int_eq(wanda_mask(score, 4, 2, 0.5, 1, mask, scratch, col), 4);
    const float per_layer[8] = {1, 0, 1, 0, 1, 1, 0, 0};
    for (int j = 0; j < 8; j++) ck_assert_msg(mask[j] == per_layer[j], "per layer, entry %d", j);
    /* ratio 0: nothing; lround(0.6 * 4) = 2 per unit. */
    ck_assert_int_eq(wanda_mask(score, 4, 2, 0.0, 0, mask, scratch, col), 0);
    for (int j = 0; j < 8; j++) ck_assert(mask[j] == 1.0f);
    ck_assert_int_eq(wanda_mask(score, 4, 2, 0.6, 0, mask, scratch, col), 4);
    /* NaN weight: scored 0, pruned first. */
    float wn[8];
    memcpy(wn, w, sizeof wn);
    wn[4] = NAN;
    wanda_scores(wn, 4, 2, sq, score);
    ck_assert_float_eq(score[4], 0.0f);
}
END_TEST

START_TEST(test_wanda_nm_exact) {
    /* One unit, M = 4: keep 2 -> inputs 1 and 3; PQuant's prune_n 1:4 keeps 3. */
    const float s1[4] = {0.5f, 3.0f, 1.0f, 2.0f};
    float m1[4];
    ck_assert_int_eq(wanda_nm_keep(2, 4, NM_KEEP_N), 2);
    ck_assert_int_eq(wanda_nm_keep(1, 4, NM_PRUNE_N), 3);
    ck_assert_int_eq(wanda_nm_mask(s1, 4, 1, 2, 4, m1), 2);
    ck_assert(m1[0] == 0 && m1[1] == 1 && m1[2] == 0 && m1[3] == 1);
    ck_assert_int_eq(wanda_nm_mask(s1, 4, 1, wanda_nm_keep(1, 4, NM_PRUNE_N), 4, m1), 1);
    ck_assert(m1[0] == 0 && m1[1] == 1 && m1[2] == 1 && m1[3] == 1);
    /* Random scores with ties, in 16, out 5: every group of 4 has exactly N
     * survivors, and no pruned score beats a kept one in its group. */
    enum { IN = 16, OUT = 5 };
    float sc[IN * OUT], mk[IN * OUT];
    rng_t r;
    rng_seed(&r, 5);
    for (int j = 0; j < IN * OUT; j++) sc[j] = (float)(rng_below(&r, 6)) * 0.5f;
    for (int N = 1; N <= 3; N++) {
        ck_assert_int_eq(wanda_nm_mask(sc, IN, OUT, N, 4, mk), (long)(4 - N) * (IN / 4) * OUT);
        for (int o = 0; o < OUT; o++)
            for (int g = 0; g < IN; g += 4) {
                int kept = 0;
                float minkept = INFINITY, maxpruned = -INFINITY;
                for (int a = 0; a < 4; a++) {
                    long j = (long)(g + a) * OUT + o;
                    ck_assert(mk[j] == 0.0f || mk[j] == 1.0f);
                    if (mk[j] == 1.0f) {
                        kept++;
                        minkept = fminf(minkept, sc[j]);
                    } else {
                        maxpruned = fmaxf(maxpruned, sc[j]);
                    }
                }
                ck_assert_int_eq(kept, N);
                ck_assert(maxpruned <= minkept);
            }
    }
    /* Tail group: in 6, M 4, keep 2 -> the group of 2 keeps ceil(2 * 2 / 4) = 1. */
    const float s6[6] = {1, 2, 3, 4, 6, 5};
    float m6[6];
    ck_assert_int_eq(wanda_nm_mask(s6, 6, 1, 2, 4, m6), 3);
    ck_assert(m6[0] == 0 && m6[1] == 0 && m6[2] == 1 && m6[3] == 1 && m6[4] == 1 && m6[5] == 0);
}
END_TEST

/* ---- CLNP math ------------------------------------------------------------ */

START_TEST(test_clnp_hand) {
    /* Two batches of 2 rows, 3 units: active 3/4, 1/4 (exact zeros do not
     * count), 0/4. threshold 0.25: only unit 0 is kept (0.25 is not > 0.25). */
    const float b1[6] = {1.0f, 0.0f, -1.0f, 2.0f, -3.0f, 0.0f};
    const float b2[6] = {-0.5f, 0.5f, -2.0f, 0.1f, 0.0f, -0.1f};
    double act[3] = {0, 0, 0};
    clnp_count(b1, 2, 3, act);
    clnp_count(b2, 2, 3, act);
    ck_assert(act[0] == 3 && act[1] == 1 && act[2] == 0);
    float mask[6];
    ck_assert_int_eq(clnp_mask(act, 4, 2, 3, 0.25, mask), 2);
    const float want[6] = {1, 0, 0, 1, 0, 0};
    for (int j = 0; j < 6; j++) ck_assert(mask[j] == want[j]);
    ck_assert_int_eq(clnp_mask(act, 4, 2, 3, 0.2, mask), 1);
    ck_assert(mask[1] == 1.0f && mask[4] == 1.0f && mask[2] == 0.0f);
    ck_assert_int_eq(clnp_mask(act, 0, 2, 3, 0.2, mask), 0); /* no samples: keep */
}
END_TEST

/* ---- MDMM math ---------------------------------------------------------------- */

START_TEST(test_mdmm_hand) {
    /* |w| <= 1e-3 for one of 4: L0 = 1/4, ||w||_1 = 1.5025,
     * f = (0.81 - 0.0625) * 1.5025 / 4. */
    const float w[4] = {0.0005f, -0.002f, 0.5f, -1.0f};
    double f = mdmm_sparsity_metric(w, 4, 1e-3, MDMM_L0_COARSE, 0.9, 1, NULL);
    double l1 = (double)0.0005f + (double)0.002f + 0.5 + 1.0;
    ck_assert_double_eq_tol(f, 0.7475 * l1 / 4, 1e-15);
    ck_assert_double_eq_tol(mdmm_sparsity_metric(w, 4, 1e-3, MDMM_L0_COARSE, 0.9, 0, NULL),
                            0.7475 * l1, 1e-15);
    double l0s = 0;
    for (int j = 0; j < 4; j++) l0s += exp(-100.0 * (double)w[j] * w[j]) / 4;
    ck_assert_double_eq_tol(mdmm_sparsity_metric(w, 4, 1e-3, MDMM_L0_SMOOTH, 0.9, 1, NULL),
                            (0.81 - l0s * l0s) * l1 / 4, 1e-15);
    double d;
    ck_assert_double_eq(mdmm_infeasibility(0.3, 0.1, MDMM_EQUALITY, &d), 0.3 - 0.1);
    ck_assert_double_eq(d, 1);
    ck_assert_double_eq(mdmm_infeasibility(0.1, 0.3, MDMM_EQUALITY, &d), 0.3 - 0.1);
    ck_assert_double_eq(d, -1);
    ck_assert_double_eq(mdmm_infeasibility(0.1, 0.3, MDMM_LEQ, &d), 0);
    ck_assert_double_eq(d, 0);
    ck_assert_double_eq(mdmm_infeasibility(0.5, 0.3, MDMM_LEQ, &d), 0.5 - 0.3);
    ck_assert_double_eq(d, 1);
    ck_assert_double_eq(mdmm_infeasibility(0.5, 0.3, MDMM_GEQ, &d), 0);
    ck_assert_double_eq(mdmm_infeasibility(0.1, 0.3, MDMM_GEQ, &d), 0.3 - 0.1);
    ck_assert_double_eq(d, -1);
    /* penalty = scale (lambda h + damping h^2 / 2) */
    cfg_pruning p;
    memset(&p, 0, sizeof p);
    p.epsilon = 1e-3;
    p.target_sparsity = 0.9;
    p.scale = 10;
    p.damping = 2;
    p.l0_mode = MDMM_L0_COARSE;
    p.scale_mode = MDMM_SCALE_MEAN;
    p.constraint_type = MDMM_EQUALITY;
    double h;
    double pen = mdmm_penalty(w, 4, &p, 1.5, &h, NULL, NULL);
    ck_assert_double_eq_tol(h, f, 1e-15);
    ck_assert_double_eq_tol(pen, 10 * (1.5 * f + 2 * f * f / 2), 1e-13);
}
END_TEST

/* Central differences of the penalty wrt each weight, for both L0 modes,
 * all three constraint types (on their active side) and both scale modes.
 * Coarse L0 is constant as long as no weight crosses eps: the weights are
 * either tiny (3e-4) or >= 0.01 and the step is 1e-4. */
START_TEST(test_mdmm_gradient) {
    enum { N = 40 };
    float w[N];
    rng_t r;
    rng_seed(&r, 11);
    for (int j = 0; j < N; j++) {
        double u = rng_uniform(&r);
        double a = j % 5 == 0 ? 3e-4 : 0.01 + 0.5 * u;
        w[j] = (float)(j % 2 ? -a : a);
    }
    struct { mdmm_constraint ct; double target; } cases[3] = {
        {MDMM_EQUALITY, 0.0}, {MDMM_LEQ, -1.0}, {MDMM_GEQ, 5.0}};
    double scratch[N];
    for (int mode = 0; mode < 2; mode++)
        for (int k = 0; k < 3; k++)
            for (int sm = 0; sm < 2; sm++) {
                cfg_pruning p;
                memset(&p, 0, sizeof p);
                p.epsilon = 1e-3;
                p.target_sparsity = 0.7;
                p.scale = 3;
                p.damping = 1.5;
                p.l0_mode = mode ? MDMM_L0_SMOOTH : MDMM_L0_COARSE;
                p.scale_mode = sm ? MDMM_SCALE_SUM : MDMM_SCALE_MEAN;
                p.constraint_type = cases[k].ct;
                p.target_value = cases[k].target;
                float g[N], num[N];
                memset(g, 0, sizeof g);
                double h;
                mdmm_penalty(w, N, &p, 0.8, &h, scratch, g);
                ck_assert_msg(h > 0, "case %d: the constraint must be active", k);
                for (int j = 0; j < N; j++) {
                    float save = w[j];
                    w[j] = save + 1e-4f;
                    float wp = w[j];
                    double lp = mdmm_penalty(w, N, &p, 0.8, NULL, NULL, NULL);
                    w[j] = save - 1e-4f;
                    float wm = w[j];
                    double lm = mdmm_penalty(w, N, &p, 0.8, NULL, NULL, NULL);
                    w[j] = save;
                    num[j] = (float)((lp - lm) / ((double)wp - (double)wm));
                }
                tu_assert_close(g, num, N, 1e-4, 2e-3, "d penalty / dw");
            }
}
END_TEST

/* The keys' defaults (docs/config.md) for the three methods. */
static cfg_pruning pr_default(prune_method pm, double sparsity) {
    cfg_pruning p;
    memset(&p, 0, sizeof p);
    p.enable_pruning = 1;
    p.method = pm;
    p.sparsity = sparsity;
    p.epsilon = 1e-3;
    p.t_start_collecting_batch = 100;
    p.t_delta = 100;
    p.calculate_pruning_budget = 1;
    p.threshold = 0.2;
    p.threshold_type = THRESH_CHANNELWISE;
    p.constraint_type = MDMM_EQUALITY;
    p.metric_type = MDMM_UNSTRUCTURED;
    p.target_sparsity = 0.9;
    p.rf = 1;
    p.scale = 10;
    p.damping = 1;
    p.l0_mode = MDMM_L0_COARSE;
    p.scale_mode = MDMM_SCALE_MEAN;
    p.constraint_lr = 1e-3;
    if (pm == PRUNE_ACTIVATION) p.target_sparsity = 0; /* its default: no target */
    return p;
}

typedef struct {
    model *m;
    compress *c;
    optim o;
} net;

/* dense(hidden) relu dense(C), compress bound. */
static void net_make(net *n, int hidden, const cfg_pruning *p, const cfg_training *t,
                     uint64_t seed) {
    cfg_layer ly[3];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE; ly[0].units = hidden;
    ly[1].type = CFG_LAYER_RELU;
    ly[2].type = CFG_LAYER_DENSE; ly[2].units = 0;
    cfg_quant q = q_off();
    layer_spec *specs;
    int ns;
    nl_error e = {0};
    ck_assert_msg(compress_model_specs(ly, 3, C, &q, &specs, &ns, &e) == NL_OK, "%s", e.msg);
    n->m = model_create(specs, ns, D, 32, NULL, NULL, 0, &e);
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

typedef struct {
    int n;
    epoch_record rec[64];
} trace;

static int trace_cb(void *ctx, const epoch_record *r) {
    trace *t = ctx;
    if (t->n < 64) t->rec[t->n++] = *r;
    return 0;
}

static double train(net *n, const toy_data *td, const cfg_training *t, trace *tr) {
    train_data d = {td->xtr, td->ytr, NTR, td->xva, td->yva, NVA};
    rng_t r;
    rng_seed(&r, 77);
    nl_error e = {0};
    memset(tr, 0, sizeof *tr);
    nl_status rc = compress_train(n->c, n->m, &n->o, t, &d, &r, trace_cb, tr, &e);
    ck_assert_msg(rc == NL_OK, "compress_train: %s (%s)", nl_status_name(rc), e.msg);
    return tr->n ? tr->rec[tr->n - 1].val_accuracy : 0;
}

static double val_accuracy(net *n, const toy_data *td) {
    epoch_stats st;
    nl_error e = {0};
    ck_assert_int_eq(nn_evaluate(n->m, td->xva, td->yva, NVA, NULL, &st, NULL, &e), NL_OK);
    return st.accuracy;
}

/* Zeros of weff over all Dense kernels / their size; and weff agrees with
 * the hard mask everywhere. */
static double weff_sparsity(const net *n) {
    long z = 0, tot = 0;
    for (int li = 0; li < n->c->n_layers; li++) {
        const cl_layer *L = &n->c->layers[li];
        for (long j = 0; j < L->n; j++) {
            ck_assert(L->mask[j] == 0.0f || L->mask[j] == 1.0f);
            if (L->mask[j] == 0.0f) ck_assert(n->m->weff[L->w_off + j] == 0.0f);
            z += n->m->weff[L->w_off + j] == 0.0f;
        }
        tot += L->n;
    }
    return (double)z / (double)tot;
}

START_TEST(test_bad_configs) {
    cfg_training t = tr_toy(2);
    cfg_quant q = q_off();
    cfg_layer ly[1];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE;
    layer_spec *s;
    int ns;
    nl_error e = {0};
    ck_assert_int_eq(compress_model_specs(ly, 1, 3, &q, &s, &ns, &e), NL_OK);
    model *m = model_create(s, ns, 4, 8, NULL, NULL, 0, &e);
    free(s);
    ck_assert_ptr_nonnull(m);
    cfg_pruning p = pr_default(PRUNE_WANDA, 0.5);
    p.threshold_type = THRESH_WEIGHTWISE;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "threshold_type"), "%s", e.msg);
    p = pr_default(PRUNE_WANDA, 0.5);
    p.N = 4;
    p.M = 4;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "N:M"), "%s", e.msg);
    p = pr_default(PRUNE_MDMM, 0.5);
    p.use_grad = 1;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "use_grad"), "%s", e.msg);
    p = pr_default(PRUNE_MDMM, 0.5);
    p.metric_type = MDMM_STRUCTURED;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "StructuredSparsity"), "%s", e.msg);
    p = pr_default(PRUNE_ACTIVATION, 0.5);
    p.threshold = 1.5;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "threshold"), "%s", e.msg);
    /* one-shot needs a wanda object */
    p = pr_default(PRUNE_MDMM, 0.5);
    compress *c = compress_create(m, &p, &q, &t, &e);
    ck_assert_ptr_nonnull(c);
    float x[4] = {0};
    ck_assert_int_eq(compress_wanda_oneshot(c, x, 1, 1, &e), NL_ERR_CONFIG);
    compress_free(c);
    model_free(m);
}
END_TEST

/* Conv kernels are (kh kw cin, cout) matrices over channels-last inputs:
 * conv2d 2x2, 2 -> 3 channels on (3, 3, 2), relu, flatten, dense 2.
 * Wanda: channel 0 of the input is large, |W| = 1: the rows of channel 1
 * (odd rows) go. CLNP: at the ReLU's input (2 x 2 positions), channel 0
 * fires everywhere, channel 1 at 1 of 4 positions, channel 2 never:
 * threshold 0.3 keeps channel 0 only. */
START_TEST(test_conv_kernels) {
    layer_spec sp[4];
    memset(sp, 0, sizeof sp);
    sp[0].kind = (layer_kind)LAYER_CONV2D;
    snprintf(sp[0].name, sizeof sp[0].name, "conv");
    sp[0].filters = 3;
    sp[0].kernel[0] = sp[0].kernel[1] = 2;
    sp[0].in_shape[0] = sp[0].in_shape[1] = 3;
    sp[0].in_shape[2] = 2;
    sp[1].kind = LAYER_RELU;
    snprintf(sp[1].name, sizeof sp[1].name, "relu");
    sp[2].kind = (layer_kind)LAYER_FLATTEN;
    snprintf(sp[2].name, sizeof sp[2].name, "flat");
    sp[3].kind = LAYER_DENSE;
    snprintf(sp[3].name, sizeof sp[3].name, "out");
    sp[3].units = 2;
    cfg_training t = tr_toy(2);
    cfg_quant q = q_off();
    nl_error e = {0};
    for (int method = 0; method < 2; method++) {
        model *m = model_create(sp, 4, 18, 4, NULL, NULL, 0, &e);
        ck_assert_msg(m != NULL, "%s", e.msg);
        cfg_pruning p = pr_default(method ? PRUNE_ACTIVATION : PRUNE_WANDA, 0.5);
        p.t_start_collecting_batch = 0;
        p.t_delta = 1;
        p.calculate_pruning_budget = 0;
        p.threshold = 0.3;
        compress *c = compress_create(m, &p, &q, &t, &e);
        ck_assert_msg(c != NULL, "%s", e.msg);
        cl_layer *L = &c->layers[0];
        ck_assert(L->prunable); /* compress_create prunes conv kernels for every method */
        ck_assert_int_eq(L->in, 8);
        ck_assert_int_eq(L->out, 3);
        for (long j = 0; j < L->n; j++) m->params[L->w_off + j] = j % 2 ? 1.0f : -1.0f;
        c->stage = STAGE_MAIN;
        if (c->ops->setup) c->ops->setup(c);
        if (!method) {
            float x[2 * 18];
            for (int k = 0; k < 2 * 18; k++) x[k] = k % 2 ? 0.1f : 3.0f; /* channel = k % 2 */
            c->ops->observe(c, 0, x, 2);
        } else {
            float pre[2 * 12];
            for (int b = 0; b < 2; b++)
                for (int pos = 0; pos < 4; pos++) {
                    pre[b * 12 + pos * 3 + 0] = 1.0f;
                    pre[b * 12 + pos * 3 + 1] = pos == 2 ? 1.0f : -1.0f;
                    pre[b * 12 + pos * 3 + 2] = -1.0f;
                }
            c->ops->observe(c, 1, pre, 2);
        }
        c->ops->post_step(c);
        for (int r = 0; r < 8; r++)
            for (int o = 0; o < 3; o++) {
                float want = method ? (o == 0) : (r % 2 == 0);
                ck_assert_msg(L->mask[r * 3 + o] == want, "method %d row %d unit %d", method, r, o);
            }
        compress_free(c);
        model_free(m);
    }
}
END_TEST

/* ---- wanda in the loop --------------------------------------------------------- */

/* The collection window, batch by batch: t_start 2, t_delta 3. Batch b has
 * input 10 at feature b and 1 elsewhere; |W| = 1, so scores are the input
 * norms and each unit keeps the 4 features with the largest sum over
 * batches 2, 3, 4 (ties to the higher index): {2, 3, 4, 7}. A window off by
 * one would keep {1, 2, 3, 7} or {3, 4, 5, 7}. */
START_TEST(test_wanda_window) {
    cfg_training t = tr_toy(2);
    cfg_pruning p = pr_default(PRUNE_WANDA, 0.5);
    p.t_start_collecting_batch = 2;
    p.t_delta = 3;
    p.calculate_pruning_budget = 0;
    net n;
    net_make(&n, 4, &p, &t, 1);
    compress *c = n.c;
    cl_layer *L = &c->layers[0];
    for (long j = 0; j < L->n; j++) n.m->params[L->w_off + j] = j % 3 ? 1.0f : -1.0f;
    c->stage = STAGE_MAIN;
    c->ops->setup(c);
    float x[2 * D];
    for (int b = 0; b < 8; b++) {
        for (int k = 0; k < 2 * D; k++) x[k] = k % D == b ? 10.0f : 1.0f;
        c->ops->observe(c, L->layer, x, 2);
        c->ops->post_step(c);
        long z = 0;
        for (long j = 0; j < L->n; j++) z += L->mask[j] == 0.0f;
        ck_assert_int_eq(z, b < 4 ? 0 : 16);
    }
    for (int i = 0; i < D; i++)
        for (int o = 0; o < 4; o++)
            ck_assert_msg(L->mask[i * 4 + o] == ((i >= 2 && i <= 4) || i == 7 ? 1.0f : 0.0f),
                          "input %d unit %d", i, o);
    net_free(&n);
}
END_TEST

START_TEST(test_wanda_trains) {
    static toy_data td;
    toy_make(&td, 1);
    /* channelwise without budgets (exact 6 of 8, 24 of 32 per unit),
     * layerwise with budgets (exact round(S N)), and 2:4. */
    for (int v = 0; v < 3; v++) {
        cfg_training t = tr_toy(2);
        t.pretraining_epochs = 2;
        t.epochs = 3;
        t.fine_tuning_epochs = 1;
        cfg_pruning p = pr_default(PRUNE_WANDA, 0.75);
        p.t_start_collecting_batch = 5;
        p.t_delta = 10; /* 15 batches per epoch: masks at the end of main epoch 0 */
        p.calculate_pruning_budget = v == 1;
        if (v == 1) p.threshold_type = THRESH_LAYERWISE;
        if (v == 2) { p.N = 2; p.M = 4; }
        net n;
        net_make(&n, 32, &p, &t, 3);
        trace tr;
        double acc = train(&n, &td, &t, &tr);
        double want = v == 2 ? 0.5 : (v == 1 ? (double)lround(0.75 * 352) / 352 : 0.75);
        ck_assert_int_eq(tr.n, 6);
        ck_assert_double_eq(tr.rec[1].sparsity, 0.0);
        ck_assert_double_eq_tol(tr.rec[2].sparsity, want, 1e-12);
        ck_assert_double_eq_tol(tr.rec[5].sparsity, want, 1e-12);
        ck_assert_double_eq_tol(weff_sparsity(&n), want, 1e-12);
        ck_assert_msg(acc > 0.85, "variant %d: val accuracy %g", v, acc);
        if (v == 2)
            for (int li = 0; li < n.c->n_layers; li++) {
                const cl_layer *L = &n.c->layers[li];
                for (int o = 0; o < L->out; o++)
                    for (int g = 0; g < L->in; g += 4) {
                        int kept = 0;
                        for (int a = 0; a < 4; a++)
                            kept += L->mask[(long)(g + a) * L->out + o] == 1.0f;
                        ck_assert_int_eq(kept, 2);
                    }
            }
        net_free(&n);
    }
}
END_TEST

/* One-shot: a dense model (wanda never collected: masks stay 1), then 3
 * calibration batches; the masks equal a recomputation from the layer
 * inputs of plain forwards; then fine-tuning keeps them. */
START_TEST(test_wanda_oneshot) {
    static toy_data td;
    toy_make(&td, 4);
    cfg_training t = tr_toy(2);
    t.pretraining_epochs = 3;
    t.epochs = 0;
    cfg_pruning p = pr_default(PRUNE_WANDA, 0.6);
    p.calculate_pruning_budget = 0;
    net n;
    net_make(&n, 32, &p, &t, 5);
    trace tr;
    double acc0 = train(&n, &td, &t, &tr);
    ck_assert_double_eq(weff_sparsity(&n), 0.0);
    ck_assert_msg(acc0 > 0.85, "dense accuracy %g", acc0);
    /* independent statistics: plain forwards of the dense model */
    model *m = n.m;
    model_sync_weff(m);
    double sq0[D] = {0}, sq1[32] = {0};
    for (int b = 0; b < 3; b++) {
        const float *xb = td.xtr + (size_t)b * 32 * D;
        model_forward(m, xb, 32);
        for (int r = 0; r < 32; r++) {
            for (int i = 0; i < D; i++) sq0[i] += (double)xb[r * D + i] * xb[r * D + i];
            for (int i = 0; i < 32; i++) {
                float h = m->layers[1].out[r * 32 + i];
                sq1[i] += (double)h * h;
            }
        }
    }
    nl_error e = {0};
    ck_assert_int_eq(compress_wanda_oneshot(n.c, td.xtr, NTR, 3, &e), NL_OK);
    float score[D * 32], mask[D * 32], col[32];
    cm_entry scratch[32];
    const cl_layer *L0 = &n.c->layers[0], *L1 = &n.c->layers[1];
    wanda_scores(m->params + L0->w_off, D, 32, sq0, score);
    wanda_mask(score, D, 32, 0.6, 0, mask, scratch, col);
    ck_assert_int_eq(memcmp(mask, L0->mask, (size_t)L0->n * sizeof(float)), 0);
    wanda_scores(m->params + L1->w_off, 32, C, sq1, score);
    wanda_mask(score, 32, C, 0.6, 0, mask, scratch, col);
    ck_assert_int_eq(memcmp(mask, L1->mask, (size_t)L1->n * sizeof(float)), 0);
    double want = (double)(lround(0.6 * D) * 32 + lround(0.6 * 32) * C) / (D * 32 + 32 * C);
    ck_assert_double_eq_tol(weff_sparsity(&n), want, 1e-12);
    compress_report rep;
    ck_assert_int_eq(compress_report_get(n.c, &rep, &e), NL_OK);
    ck_assert_double_eq_tol(rep.sparsity, want, 1e-12);
    compress_report_free(&rep);
    double acc1 = val_accuracy(&n, &td);
    ck_assert_msg(acc1 > 0.6, "one-shot accuracy %g", acc1);
    /* fine-tuning with the one-shot masks */
    float keep0[8 * 32];
    memcpy(keep0, L0->mask, sizeof keep0);
    cfg_training ft = tr_toy(2);
    ft.epochs = 0;
    ft.fine_tuning_epochs = 2;
    double acc2 = train(&n, &td, &ft, &tr);
    ck_assert_int_eq(memcmp(keep0, L0->mask, sizeof keep0), 0);
    ck_assert_double_eq_tol(weff_sparsity(&n), want, 1e-12);
    ck_assert_msg(acc2 > 0.85 && acc2 >= acc1 - 0.02, "fine-tuned %g (one-shot %g)", acc2, acc1);
    net_free(&n);
}
END_TEST

/* ---- activation pruning in the loop ---------------------------------------------- */

/* Windows batch by batch: t_start 1, t_delta 2 -> batch 0 idle, 1-2
 * collect (mask), 3 idle, 4-5 collect (mask from scratch). */
START_TEST(test_clnp_window) {
    cfg_training t = tr_toy(2);
    cfg_pruning p = pr_default(PRUNE_ACTIVATION, 0);
    p.t_start_collecting_batch = 1;
    p.t_delta = 2;
    p.threshold = 0.5;
    net n;
    net_make(&n, 3, &p, &t, 1);
    compress *c = n.c;
    cl_layer *L = &c->layers[0];
    int obs = L->layer + 1; /* the ReLU: its input is dense0's pre-activation */
    c->stage = STAGE_MAIN;
    /* unit activity per batch (2 rows): unit u positive in `on[b][u]` rows */
    const int on[6][3] = {{0, 0, 0}, {2, 1, 0}, {2, 1, 1}, {0, 0, 0}, {0, 2, 2}, {0, 2, 0}};
    const float want[6][3] = {{1, 1, 1}, {1, 1, 1}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {0, 1, 0}};
    for (int b = 0; b < 6; b++) {
        float pre[2 * 3];
        for (int r = 0; r < 2; r++)
            for (int u = 0; u < 3; u++) pre[r * 3 + u] = r < on[b][u] ? 0.5f : -0.5f;
        c->ops->observe(c, obs, pre, 2);
        /* the output layer's input is never a pre-activation with a ReLU: ignored */
        c->ops->observe(c, c->layers[1].layer, pre, 2);
        c->ops->post_step(c);
        for (int u = 0; u < 3; u++)
            for (int i = 0; i < D; i++)
                ck_assert_msg(L->mask[i * 3 + u] == want[b][u], "batch %d unit %d", b, u);
        for (long j = 0; j < c->layers[1].n; j++) ck_assert(c->layers[1].mask[j] == 1.0f);
    }
    net_free(&n);
}
END_TEST

/* Units 0-7 of 32 never fire (bias -50): they are pruned, whole columns;
 * the rest learns; the class layer is left alone. */
START_TEST(test_clnp_trains) {
    static toy_data td;
    toy_make(&td, 2);
    cfg_training t = tr_toy(2);
    t.pretraining_epochs = 1;
    t.epochs = 3;
    t.fine_tuning_epochs = 1;
    cfg_pruning p = pr_default(PRUNE_ACTIVATION, 0);
    p.t_start_collecting_batch = 5;
    p.t_delta = 10;
    net n;
    net_make(&n, 32, &p, &t, 6);
    const cl_layer *L = &n.c->layers[0];
    for (int u = 0; u < 8; u++) n.m->params[L->b_off + u] = -50.0f;
    trace tr;
    double acc = train(&n, &td, &t, &tr);
    ck_assert_msg(acc > 0.85, "val accuracy %g", acc);
    int dead = 0;
    for (int u = 0; u < 32; u++) {
        int z = 0;
        for (int i = 0; i < D; i++) z += L->mask[i * 32 + u] == 0.0f;
        ck_assert_msg(z == 0 || z == D, "unit %d: %d of %d pruned", u, z, D);
        if (u < 8) ck_assert_msg(z == D, "dead unit %d kept", u);
        dead += z == D;
    }
    for (long j = 0; j < n.c->layers[1].n; j++) ck_assert(n.c->layers[1].mask[j] == 1.0f);
    ck_assert_double_eq_tol(tr.rec[tr.n - 1].sparsity, (double)dead * D / 352, 1e-12);
    ck_assert_double_eq_tol(weff_sparsity(&n), (double)dead * D / 352, 1e-12);
    net_free(&n);
}
END_TEST

/* Target rule, hand case: dense 6 -> 4, relu, dense 4 -> 3, relu, dense 3 -> 2
 * (kernels 24 + 12 + 6 = 42 weights; the last is never pruned by CLNP).
 * Active fractions over 20 samples: layer 0 units 10, 0, 5, 20 / 20 =
 * 0.5, 0, 0.25, 1; layer 1 units 5, 0, 8 / 20 = 0.25, 0, 0.4. Ranked:
 * (0 L0u1) (0 L1u1) (0.25 L0u2) (0.25 L1u0) (0.4 L1u2) (0.5 L0u0) (1 L0u3),
 * ties by layer. target 0.3: need ceil(12.6) = 13 weights: L0u1 (6),
 * L1u1 (4), L0u2 (6) -> 16 / 42 (the tie goes to L0u2, L1u0 stays; the
 * other order would stop at 14). target 0.6: need 26: ... L1u0 (20), L1u2
 * skipped (the last unit of layer 1), L0u0 -> 26 / 42 = the maximum;
 * 0.62 is refused at set-up. target 0.385: 16.17 -> 17 -> 20 / 42. Ramp over W = 3 windows (target 0.6):
 * 0.6 (1 - (2/3)^3) = 0.4222 -> need 18 -> 20 / 42; then 0.5778 -> 26. */
static const int tgt_on0[4] = {10, 0, 5, 20}, tgt_on1[3] = {5, 0, 8};
static const float tgt_keep_03[2][4] = {{1, 0, 0, 1}, {1, 0, 1, 0}};
static const float tgt_keep_20[2][4] = {{1, 0, 0, 1}, {0, 0, 1, 0}};
static const float tgt_keep_06[2][4] = {{0, 0, 0, 1}, {0, 0, 1, 0}};

static model *tgt_model(void) {
    layer_spec sp[5];
    memset(sp, 0, sizeof sp);
    const char *names[5] = {"fc0", "relu0", "fc1", "relu1", "out"};
    const int units[5] = {4, 0, 3, 0, 2};
    for (int k = 0; k < 5; k++) {
        sp[k].kind = k % 2 ? LAYER_RELU : LAYER_DENSE;
        snprintf(sp[k].name, sizeof sp[k].name, "%s", names[k]);
        sp[k].units = units[k];
    }
    nl_error e = {0};
    model *m = model_create(sp, 5, 6, 32, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    return m;
}

/* One window of one batch: 20 rows with the fractions above. */
static void tgt_window(compress *c) {
    float pre0[20 * 4], pre1[20 * 3];
    for (int r = 0; r < 20; r++) {
        for (int u = 0; u < 4; u++) pre0[r * 4 + u] = r < tgt_on0[u] ? 1.0f : -1.0f;
        for (int u = 0; u < 3; u++) pre1[r * 3 + u] = r < tgt_on1[u] ? 0.5f : 0.0f;
    }
    c->ops->observe(c, 1, pre0, 20);
    c->ops->observe(c, 3, pre1, 20);
    c->ops->post_step(c);
}

static void tgt_check(const compress *c, const float keep[2][4], int line) {
    for (int l = 0; l < 2; l++) {
        const cl_layer *L = &c->layers[l];
        for (int o = 0; o < L->out; o++)
            for (int i = 0; i < L->in; i++)
                ck_assert_msg(L->mask[(long)i * L->out + o] == keep[l][o],
                              "line %d: layer %d unit %d input %d: mask %g, want %g", line, l, o,
                              i, L->mask[(long)i * L->out + o], keep[l][o]);
    }
    for (long j = 0; j < c->layers[2].n; j++) ck_assert(c->layers[2].mask[j] == 1.0f);
}

START_TEST(test_clnp_target_hand) {
    cfg_training t = tr_toy(1);
    cfg_quant q = q_off();
    nl_error e = {0};
    model *m = tgt_model();
    cfg_pruning p = pr_default(PRUNE_ACTIVATION, 0);
    p.t_start_collecting_batch = 0;
    p.t_delta = 1;
    p.threshold = 0.99; /* ignored by the target rule */
    /* no ramp (set-up not run): the whole target at the first window.
     * 0.385 N = 16.17: at least the target, so 16 is not enough -> 20 */
    const double targets[3] = {0.3, 0.385, 0.6};
    const double want[3] = {16.0 / 42, 20.0 / 42, 26.0 / 42};
    const float(*keep[3])[4] = {tgt_keep_03, tgt_keep_20, tgt_keep_06};
    for (int k = 0; k < 3; k++) {
        p.target_sparsity = targets[k];
        compress *c = compress_create(m, &p, &q, &t, &e);
        ck_assert_msg(c != NULL, "%s", e.msg);
        c->stage = STAGE_MAIN;
        tgt_window(c);
        tgt_check(c, keep[k], __LINE__);
        ck_assert_double_eq_tol(cm_hard_sparsity(c), want[k], 1e-15);
        tgt_window(c); /* the same counts again: the same mask, from scratch */
        tgt_check(c, keep[k], __LINE__);
        compress_free(c);
    }
    /* the ramp: W = 3 windows (3 batches of one epoch, t_start 0, t_delta 1) */
    p.target_sparsity = 0.6;
    compress *c = compress_create(m, &p, &q, &t, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    c->stage = STAGE_MAIN;
    c->steps_per_epoch = 3;
    c->n_epochs = 1;
    c->ops->setup(c);
    tgt_window(c);
    ck_assert_double_eq_tol(cm_hard_sparsity(c), 20.0 / 42, 1e-15);
    tgt_check(c, tgt_keep_20, __LINE__);
    tgt_window(c);
    ck_assert_double_eq_tol(cm_hard_sparsity(c), 26.0 / 42, 1e-15);
    tgt_window(c);
    tgt_check(c, tgt_keep_06, __LINE__);
    compress_free(c);
    /* out of reach: the error names the key and the maximum 26/42 */
    p.target_sparsity = 0.62;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_int_eq(e.code, NL_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, "target_sparsity") && strstr(e.msg, "0.6190") &&
                      strstr(e.msg, "fc0, fc1") && strstr(e.msg, "out (6)"),
                  "%s", e.msg);
    /* disabling a layer lowers the maximum: fc1 dense -> 18 / 42 */
    static char *dis[1] = {"fc1"};
    p.disable_layers = dis;
    p.n_disable = 1;
    p.target_sparsity = 0.45;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "0.4285"), "%s", e.msg);
    model_free(m);
}
END_TEST

/* Target rule in training: 8-32-3 (352 weights, units of 8 inputs), target
 * 0.5 = 22 units exactly. 15 batches an epoch, windows of 2 + 5 batches:
 * W = 45 / 7 = 6; main epoch 0 ends after windows 1-2, ramp
 * 0.5 (1 - (4/6)^3) = 0.3519 -> ceil(123.9) = 124 -> 16 units = 128 / 352.
 * The end: exactly 176 / 352, every unit all-or-nothing, still learns. */
START_TEST(test_clnp_target_trains) {
    static toy_data td;
    toy_make(&td, 2);
    cfg_training t = tr_toy(3);
    t.pretraining_epochs = 1;
    t.fine_tuning_epochs = 1;
    cfg_pruning p = pr_default(PRUNE_ACTIVATION, 0);
    p.t_start_collecting_batch = 2;
    p.t_delta = 5;
    p.target_sparsity = 0.5;
    net n;
    net_make(&n, 32, &p, &t, 6);
    trace tr;
    double acc = train(&n, &td, &t, &tr);
    ck_assert_int_eq(tr.n, 5);
    ck_assert_int_eq(tr.rec[1].stage, STAGE_MAIN);
    ck_assert_double_eq_tol(tr.rec[0].sparsity, 0, 1e-15);
    ck_assert_double_eq_tol(tr.rec[1].sparsity, 128.0 / 352, 1e-12);
    for (int k = 2; k < 5; k++)
        ck_assert_msg(fabs(tr.rec[k].sparsity - 0.5) < 1e-12, "epoch %d: sparsity %g", k,
                      tr.rec[k].sparsity);
    const cl_layer *L = &n.c->layers[0];
    int dead = 0;
    for (int u = 0; u < 32; u++) {
        int z = 0;
        for (int i = 0; i < D; i++) z += L->mask[i * 32 + u] == 0.0f;
        ck_assert_msg(z == 0 || z == D, "unit %d: %d of %d pruned", u, z, D);
        dead += z == D;
        if (z == D) ck_assert(n.m->params[L->b_off + u] == 0.0f); /* the bias went too */
    }
    ck_assert_int_eq(dead, 22);
    ck_assert_double_eq_tol(weff_sparsity(&n), 0.5, 1e-12);
    ck_assert_msg(acc > 0.85, "val accuracy %g", acc);
    net_free(&n);
}
END_TEST

/* Conv in the real pipeline (compress_create, compress_train): conv1d
 * kernel 3, 1 -> 6 channels over the 8 toy features, relu, flatten,
 * dense 3 (kernels 18 + 108 = 126). Channels 0 and 1 get bias -50 and
 * never fire. Threshold 0.2: they are pruned (maybe more), whole channels.
 * Target 0.07: ceil(8.82) = 9 weights = 3 channels, 0 and 1 among them:
 * exactly 9 / 126. Both still learn. */
START_TEST(test_clnp_conv_trains) {
    static toy_data td;
    toy_make(&td, 4);
    for (int mode = 0; mode < 2; mode++) {
        layer_spec sp[4];
        memset(sp, 0, sizeof sp);
        sp[0].kind = (layer_kind)LAYER_CONV1D;
        snprintf(sp[0].name, sizeof sp[0].name, "conv");
        sp[0].filters = 6;
        sp[0].kernel[0] = 3;
        sp[0].in_shape[0] = 1;
        sp[0].in_shape[1] = D;
        sp[0].in_shape[2] = 1;
        sp[1].kind = LAYER_RELU;
        snprintf(sp[1].name, sizeof sp[1].name, "relu");
        sp[2].kind = (layer_kind)LAYER_FLATTEN;
        snprintf(sp[2].name, sizeof sp[2].name, "flat");
        sp[3].kind = LAYER_DENSE;
        snprintf(sp[3].name, sizeof sp[3].name, "out");
        sp[3].units = C;
        nl_error e = {0};
        net n;
        n.m = model_create(sp, 4, D, 32, NULL, NULL, 0, &e);
        ck_assert_msg(n.m != NULL, "%s", e.msg);
        rng_t r;
        rng_seed(&r, 9);
        model_init_params(n.m, &r);
        cfg_training t = tr_toy(3);
        t.fine_tuning_epochs = 1;
        memset(&n.o, 0, sizeof n.o);
        ck_assert_int_eq(optim_init(&n.o, OPT_ADAM, n.m->n_params, &e), NL_OK);
        n.o.lr = (float)t.learning_rate;
        cfg_pruning p = pr_default(PRUNE_ACTIVATION, 0);
        p.t_start_collecting_batch = 2;
        p.t_delta = 5;
        p.target_sparsity = mode ? 0.07 : 0;
        cfg_quant q = q_off();
        n.c = compress_create(n.m, &p, &q, &t, &e);
        ck_assert_msg(n.c != NULL, "%s", e.msg);
        const cl_layer *L = &n.c->layers[0];
        ck_assert(L->prunable);
        ck_assert_int_eq(L->in, 3);
        ck_assert_int_eq(L->out, 6);
        for (int o = 0; o < 2; o++) n.m->params[L->b_off + o] = -50.0f;
        trace tr;
        double acc = train(&n, &td, &t, &tr);
        int dead = 0;
        for (int o = 0; o < 6; o++) {
            int z = 0;
            for (int i = 0; i < 3; i++) z += L->mask[i * 6 + o] == 0.0f;
            ck_assert_msg(z == 0 || z == 3, "mode %d channel %d: %d of 3 pruned", mode, o, z);
            if (o < 2) ck_assert_msg(z == 3, "mode %d: dead channel %d kept", mode, o);
            dead += z == 3;
        }
        if (mode) ck_assert_int_eq(dead, 3);
        for (long j = 0; j < n.c->layers[1].n; j++) ck_assert(n.c->layers[1].mask[j] == 1.0f);
        ck_assert_double_eq_tol(tr.rec[tr.n - 1].sparsity, dead * 3.0 / 126, 1e-12);
        ck_assert_double_eq_tol(weff_sparsity(&n), dead * 3.0 / 126, 1e-12);
        ck_assert_msg(acc > 0.8, "mode %d: val accuracy %g", mode, acc);
        net_free(&n);
    }
}
END_TEST

/* ---- mdmm in the loop ------------------------------------------------------------- */

START_TEST(test_mdmm_trains) {
    static toy_data td;
    toy_make(&td, 3);
    cfg_training t = tr_toy(2);
    t.epochs = 25;
    t.fine_tuning_epochs = 2;
    t.schedule = LR_COSINE;
    cfg_pruning p = pr_default(PRUNE_MDMM, 0);
    p.target_sparsity = 0.75;
    p.epsilon = 1e-3;
    net n;
    net_make(&n, 32, &p, &t, 7);
    trace tr;
    double acc = train(&n, &td, &t, &tr);
    double s = tr.rec[tr.n - 1].sparsity;
    ck_assert_msg(fabs(s - 0.75) <= 0.03, "mdmm sparsity %g, want 0.75", s);
    ck_assert_double_eq_tol(weff_sparsity(&n), s, 1e-12);
    ck_assert_msg(acc > 0.85, "val accuracy %g", acc);
    net_free(&n);
}
END_TEST

Suite *make_prune_data_suite(void) {
    Suite *s = suite_create("prune_data");
    TCase *tm = tcase_create("math");
    tcase_add_test(tm, test_wanda_hand);
    tcase_add_test(tm, test_wanda_nm_exact);
    tcase_add_test(tm, test_clnp_hand);
    tcase_add_test(tm, test_clnp_target_hand);
    tcase_add_test(tm, test_mdmm_hand);
    tcase_add_test(tm, test_mdmm_gradient);
    suite_add_tcase(s, tm);
    TCase *to = tcase_create("loop");
    tcase_set_timeout(to, 30);
    tcase_add_test(to, test_bad_configs);
    tcase_add_test(to, test_conv_kernels);
    tcase_add_test(to, test_wanda_window);
    tcase_add_test(to, test_wanda_trains);
    tcase_add_test(to, test_wanda_oneshot);
    tcase_add_test(to, test_clnp_window);
    tcase_add_test(to, test_clnp_trains);
    tcase_add_test(to, test_clnp_target_trains);
    tcase_add_test(to, test_clnp_conv_trains);
    tcase_add_test(to, test_mdmm_trains);
    suite_add_tcase(s, to);
    return s;
}
