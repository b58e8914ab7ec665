/* check_compress.c — pruning and quantization in the training loop.
 * Pure mask math first (PDP's linspace check, PDP gradients against central
 * differences, budgets, the Zhu & Gupta schedule, exact magnitude masks,
 * hand-computed EBOPs), then the compress object on a small MLP: model
 * specs, the full hook chain's gradient, STE, weights on the grid, exact
 * sparsities after training, the stage sequence, rewind, NaN handling. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"
#include "nnlo/compress.h"
#include "compress_fixtures.h"
#include "testutil.h"

/* ---- pure math ------------------------------------------------------------ */

START_TEST(test_pdp_linspace_exact) {
    enum { N = 128 };
    float w[N], scratch[N], m[N], out[N];
    uint32_t perm[N];
    for (uint32_t j = 0; j < N; j++) perm[j] = j;
    rng_t r;
    rng_seed(&r, 5);
    rng_shuffle_u32(&r, perm, N);
    for (int j = 0; j < N; j++) w[j] = (float)(-1.0 + 2.0 * perm[j] / (N - 1));
    /* Budget from the global sort (one layer), epsilon = 1, epoch 0. */
    const float *wl[1] = {w};
    long nl[1] = {N};
    double rl[1];
    cm_entry ent[N];
    pdp_budgets(wl, nl, 1, 0.75, rl, ent);
    ck_assert_double_eq(rl[0], 0.75);
    double ratio = fmin(1.0, 1.0 * (0 + 1)) * rl[0];
    long ia, ib;
    float t = pdp_threshold(w, N, ratio, scratch, &ia, &ib);
    /* The 32 largest |w| are the 16 outer pairs +-(97..127)/127. */
    ck_assert_float_eq_tol(t, 96.0f / 127.0f, 1e-6f);
    ck_assert(fabsf(w[ia]) == 97.0f / 127.0f || fabsf(fabsf(w[ia]) - 97.0f / 127.0f) < 1e-6f);
    pdp_forward(w, N, t, 1e-5f, m, out);
    float sorted[N];
    for (int j = 0; j < N; j++) sorted[j] = fabsf(w[j]);
    int kept = 0;
    for (int j = 0; j < N; j++) {
        int big = fabsf(w[j]) > t;
        if (big) {
            ck_assert_msg(out[j] == w[j], "w[%d] = %.9g kept as %.9g", j, w[j], out[j]);
            kept++;
        } else {
            ck_assert_msg(out[j] == 0.0f, "w[%d] = %.9g should be an exact zero, got %g", j,
                          w[j], out[j]);
        }
    }
    ck_assert_int_eq(kept, 32);
    /* NaN weights give a NaN threshold (a NaN loss downstream), no abort. */
    w[7] = NAN;
    ck_assert(isnan(pdp_threshold(w, N, ratio, scratch, &ia, &ib)));
    ck_assert_int_eq(ia, -1);
    /* The survivors are exactly the 32 largest magnitudes. */
    int above = 0;
    for (int j = 0; j < N; j++) above += sorted[j] >= 97.0f / 127.0f - 1e-6f;
    ck_assert_int_eq(above, 32);
}
END_TEST

/* Distinct, well separated magnitudes (gaps 0.06) with random signs. */
static void separated(float *w, long n, uint64_t seed) {
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    rng_t r;
    rng_seed(&r, seed);
    for (uint32_t j = 0; j < (uint32_t)n; j++) perm[j] = j;
    rng_shuffle_u32(&r, perm, (size_t)n);
    for (long j = 0; j < n; j++)
        w[j] = (float)((0.2 + 0.06 * perm[j]) * (rng_uniform(&r) < 0.5 ? -1 : 1));
    free(perm);
}

static double pdp_loss(const float *w, long n, double ratio, float tau, const float *c) {
    float scratch[64], m[64], out[64];
    long ia, ib;
    float t = pdp_threshold(w, n, ratio, scratch, &ia, &ib);
    pdp_forward(w, n, t, tau, m, out);
    double s = 0;
    for (long j = 0; j < n; j++) s += (double)c[j] * out[j];
    return s;
}

START_TEST(test_pdp_gradient) {
    enum { N = 20 };
    float w[N], c[N], g[N], m[N], scratch[N];
    separated(w, N, 7);
    rng_t r;
    rng_seed(&r, 8);
    for (int j = 0; j < N; j++) c[j] = rng_normal(&r);
    const double ratio = 0.4;
    const float tau = 0.05f;
    long ia, ib;
    float t = pdp_threshold(w, N, ratio, scratch, &ia, &ib);
    pdp_forward(w, N, t, tau, m, NULL);
    int soft = 0;
    for (int j = 0; j < N; j++) soft += m[j] > 0.05f && m[j] < 0.95f;
    ck_assert_int_ge(soft, 2); /* the check exercises the sigmoid's slope */
    memcpy(g, c, sizeof g);
    pdp_backward(w, m, N, t, tau, ia, ib, g);
    float num[N];
    const float h = 2e-3f;
    for (int j = 0; j < N; j++) {
        float save = w[j];
        w[j] = save + h;
        double lp = pdp_loss(w, N, ratio, tau, c);
        w[j] = save - h;
        double lm = pdp_loss(w, N, ratio, tau, c);
        w[j] = save;
        num[j] = (float)((lp - lm) / (2.0 * h));
    }
    tu_assert_close(g, num, N, 2e-2, 2e-2, "pdp dL/dw");
    /* Without the threshold term the boundary weights would be wrong:
     * make sure it matters here. */
    ck_assert(fabsf(num[ia] - c[ia] * m[ia]) > 0.05f || fabsf(num[ib] - c[ib] * m[ib]) > 0.05f);
}
END_TEST

static double pdp_struct_loss(const float *w, int in, int out, double ratio, float tau,
                              const float *c) {
    float scores[16], scratch[16], cm[16], m[64], o[64];
    long ia, ib;
    float t = pdp_struct_threshold(w, in, out, ratio, scores, scratch, &ia, &ib);
    pdp_struct_forward(w, in, out, scores, t, tau, cm, m, o);
    double s = 0;
    for (int j = 0; j < in * out; j++) s += (double)c[j] * o[j];
    return s;
}

START_TEST(test_pdp_structured_gradient) {
    enum { IN = 4, OUT = 6, N = IN * OUT };
    float w[N], c[N], g[N], m[N], scores[OUT], scratch[OUT], cm[OUT];
    rng_t r;
    rng_seed(&r, 9);
    /* Columns with well separated norms: scale column u by (1 + 0.5 u). */
    for (int i = 0; i < IN; i++)
        for (int u = 0; u < OUT; u++)
            w[i * OUT + u] = (float)((0.3 + 0.2 * rng_uniform(&r)) * (0.4 + 0.25 * ((u * 5) % OUT)));
    for (int j = 0; j < N; j++) c[j] = rng_normal(&r);
    const double ratio = 0.5;
    const float tau = 0.3f;
    long ia, ib;
    float t = pdp_struct_threshold(w, IN, OUT, ratio, scores, scratch, &ia, &ib);
    pdp_struct_forward(w, IN, OUT, scores, t, tau, cm, m, NULL);
    memcpy(g, c, sizeof g);
    pdp_struct_backward(w, IN, OUT, scores, cm, t, tau, ia, ib, g);
    float num[N];
    const float h = 1e-3f;
    for (int j = 0; j < N; j++) {
        float save = w[j];
        w[j] = save + h;
        double lp = pdp_struct_loss(w, IN, OUT, ratio, tau, c);
        w[j] = save - h;
        double lm = pdp_struct_loss(w, IN, OUT, ratio, tau, c);
        w[j] = save;
        num[j] = (float)((lp - lm) / (2.0 * h));
    }
    tu_assert_close(g, num, N, 2e-2, 2e-2, "structured pdp dL/dw");
    /* Half the units are (softly) off. */
    int off = 0;
    for (int u = 0; u < OUT; u++) off += cm[u] < 0.5f;
    ck_assert_int_eq(off, 3);
}
END_TEST

START_TEST(test_pdp_budgets_hand) {
    float a[4] = {1, -2, 3, 4}, b[6] = {0.5f, 5, -6, 7, 8, -0.1f};
    const float *w[2] = {a, b};
    long n[2] = {4, 6};
    double r[2];
    cm_entry ent[10];
    pdp_budgets(w, n, 2, 0.4, r, ent); /* 4 smallest: 0.1, 0.5 (b), 1, 2 (a) */
    ck_assert_double_eq(r[0], 0.5);
    ck_assert_double_eq_tol(r[1], 2.0 / 6.0, 1e-12);
    pdp_budgets(w, n, 2, 0.75, r, ent); /* round(7.5) = 8: all but 7 and 8 */
    ck_assert_double_eq(r[0], 1.0);
    ck_assert_double_eq_tol(r[1], 4.0 / 6.0, 1e-12);
}
END_TEST

START_TEST(test_magnitude_schedule_values) {
    /* s_i = 0, s_f = 0.8, t0 = 2, t1 = 6, cubic. */
    ck_assert_double_eq(magnitude_schedule(0, 0.8, 1, 2, 6, 3), 0.0);
    ck_assert_double_eq_tol(magnitude_schedule(0, 0.8, 2, 2, 6, 3), 0.0, 1e-15);
    ck_assert_double_eq_tol(magnitude_schedule(0, 0.8, 3, 2, 6, 3), 0.8 - 0.8 * 0.421875, 1e-12);
    ck_assert_double_eq_tol(magnitude_schedule(0, 0.8, 4, 2, 6, 3), 0.7, 1e-12);
    ck_assert_double_eq_tol(magnitude_schedule(0, 0.8, 5, 2, 6, 3), 0.8 - 0.8 / 64, 1e-12);
    ck_assert_double_eq(magnitude_schedule(0, 0.8, 6, 2, 6, 3), 0.8);
    ck_assert_double_eq(magnitude_schedule(0, 0.8, 9, 2, 6, 3), 0.8);
    ck_assert_double_eq_tol(magnitude_schedule(0.2, 0.8, 4, 2, 6, 3), 0.725, 1e-12);
    ck_assert_double_eq_tol(magnitude_schedule(0.2, 0.8, 4, 2, 6, 1), 0.5, 1e-12);
}
END_TEST

START_TEST(test_magnitude_mask_exact) {
    long n[3] = {100, 37, 250};
    float *w[3], *mask[3];
    rng_t r;
    rng_seed(&r, 12);
    for (int l = 0; l < 3; l++) {
        w[l] = malloc((size_t)n[l] * sizeof(float));
        mask[l] = malloc((size_t)n[l] * sizeof(float));
        for (long j = 0; j < n[l]; j++) w[l][j] = rng_normal(&r) * (float)(l + 1);
    }
    w[1][3] = w[1][4] = 0.0f; /* ties */
    cm_entry *ent = malloc(387 * sizeof *ent);
    long P = magnitude_mask((const float *const *)w, n, 3, 0.6, mask, ent);
    ck_assert_int_eq(P, 232); /* round(0.6 * 387 = 232.2) */
    long zeros = 0;
    float max_pruned = 0, min_kept = INFINITY;
    for (int l = 0; l < 3; l++)
        for (long j = 0; j < n[l]; j++) {
            ck_assert(mask[l][j] == 0.0f || mask[l][j] == 1.0f);
            if (mask[l][j] == 0.0f) {
                zeros++;
                max_pruned = fmaxf(max_pruned, fabsf(w[l][j]));
            } else {
                min_kept = fminf(min_kept, fabsf(w[l][j]));
            }
        }
    ck_assert_int_eq(zeros, 232);
    ck_assert(max_pruned <= min_kept);
    ck_assert(mask[1][3] == 0.0f && mask[1][4] == 0.0f);
    for (int l = 0; l < 3; l++) { free(w[l]); free(mask[l]); }
    free(ent);
}
END_TEST

START_TEST(test_ebops_hand) {
    fixed_spec s = {.k = 1, .i = 2, .f = 4, .overflow = FX_SAT, .round = FX_RND};
    /* (in 2, out 2): spans 2 (12 = 1100b), 0, 3 (10 = 1010b), 6 (33 = 100001b). */
    float w[4] = {0.75f, 0.0f, -0.625f, 2.0625f};
    ck_assert_double_eq(compress_ebops_dense(w, 2, 2, &s, 8), 8.0 * (2 + 3 + 6));
    ck_assert_double_eq(compress_ebops_dense(w, 2, 2, &s, 3), 3.0 * 11);
    float z[4] = {0, 0, 0, 0};
    ck_assert_double_eq(compress_ebops_dense(z, 2, 2, &s, 8), 0.0);
}
END_TEST

static cfg_pruning pr_default(prune_method pm, double sparsity) {
    cfg_pruning p;
    memset(&p, 0, sizeof p);
    p.enable_pruning = 1;
    p.method = pm;
    p.sparsity = sparsity;
    p.epsilon = 0.5;
    p.temperature = 1e-5;
    p.end_epoch = -1;
    p.power = 3;
    return p;
}

static fixed_spec fx(int k, int i, int f) {
    fixed_spec s = {.k = k, .i = i, .f = f, .overflow = FX_SAT, .round = FX_RND};
    return s;
}

static cfg_quant q_default(int enable) {
    cfg_quant q;
    memset(&q, 0, sizeof q);
    q.enable_quantization = enable;
    q.weight = fx(1, 0, 7);
    q.bias = fx(1, 0, 7);
    q.data = fx(1, 3, 4);
    q.quantize_input = 1;
    return q;
}

typedef struct {
    model *m;
    compress *c;
    optim o;
} net;

/* dense(hidden) relu dense(C) with the compress object bound. */
static void net_make(net *n, int hidden, const cfg_pruning *p, const cfg_quant *q,
                     const cfg_training *t, uint64_t seed) {
    cfg_layer ly[3];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE; ly[0].units = hidden;
    ly[1].type = CFG_LAYER_RELU;
    ly[2].type = CFG_LAYER_DENSE; ly[2].units = 0;
    layer_spec *specs;
    int ns;
    nl_error e = {0};
    ck_assert_msg(compress_model_specs(ly, 3, C, q, &specs, &ns, &e) == NL_OK, "%s", e.msg);
    n->m = model_create(specs, ns, D, 32, NULL, NULL, 0, &e);
    free(specs);
    ck_assert_msg(n->m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, seed);
    model_init_params(n->m, &r);
    memset(&n->o, 0, sizeof n->o);
    ck_assert_int_eq(optim_init(&n->o, OPT_ADAM, n->m->n_params, &e), NL_OK);
    n->o.lr = (float)t->learning_rate;
    n->c = compress_create(n->m, p, q, t, &e);
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
    int stop_at, interrupt_at;    /* global epoch at which to return 1 / 2, or -1 */
    const model *m;
    float *snap;                   /* params after a chosen epoch */
    int snap_at;
} trace;

static int trace_cb(void *ctx, const epoch_record *r) {
    trace *t = ctx;
    if (t->n < 64) t->rec[t->n++] = *r;
    if (t->snap && r->global_epoch == t->snap_at)
        memcpy(t->snap, t->m->params, (size_t)t->m->n_params * sizeof(float));
    if (r->global_epoch == t->interrupt_at) return 2;
    if (r->global_epoch == t->stop_at) return 1;
    return 0;
}

static void trace_init(trace *t) {
    memset(t, 0, sizeof *t);
    t->stop_at = t->interrupt_at = t->snap_at = -1;
}

/* ---- the compress object ----------------------------------------------------- */

START_TEST(test_model_specs) {
    cfg_layer ly[3];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE; ly[0].units = 16;
    ly[1].type = CFG_LAYER_RELU;
    ly[2].type = CFG_LAYER_DENSE; ly[2].units = 0;
    cfg_quant q = q_default(1);
    layer_spec *s;
    int n;
    nl_error e = {0};
    ck_assert_int_eq(compress_model_specs(ly, 3, 5, &q, &s, &n, &e), NL_OK);
    ck_assert_int_eq(n, 5);
    const layer_kind kinds[5] = {LAYER_QUANT, LAYER_DENSE, LAYER_RELU, LAYER_QUANT, LAYER_DENSE};
    const char *names[5] = {"dense0_qin", "dense0", "relu0", "dense1_qin", "dense1"};
    for (int j = 0; j < 5; j++) {
        ck_assert_int_eq(s[j].kind, kinds[j]);
        ck_assert_str_eq(s[j].name, names[j]);
    }
    ck_assert_int_eq(s[1].units, 16);
    ck_assert_int_eq(s[4].units, 5);
    ck_assert_int_eq(s[0].quant.f, 4);
    free(s);
    q.quantize_output = 1;
    q.quantize_input = 0;
    snprintf(ly[2].name, sizeof ly[2].name, "out");
    ck_assert_int_eq(compress_model_specs(ly, 3, 5, &q, &s, &n, &e), NL_OK);
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(s[1].name, "dense0_qout");
    ck_assert_str_eq(s[3].name, "out");
    ck_assert_str_eq(s[4].name, "out_qout");
    free(s);
    q.enable_quantization = 0;
    ck_assert_int_eq(compress_model_specs(ly, 3, 5, &q, &s, &n, &e), NL_OK);
    ck_assert_int_eq(n, 3);
    free(s);
    ly[2].units = 4;
    ck_assert_int_eq(compress_model_specs(ly, 3, 5, &q, &s, &n, &e), NL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "'out'"));
    ck_assert_ptr_nonnull(strstr(e.msg, "5 classes"));
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_unknown_method_and_bad_names) {
    cfg_training t = tr_toy(2);
    cfg_quant q = q_default(0);
    /* every registry slot is implemented now: an out-of-range id stands in
     * for a method the registry does not know */
    cfg_pruning p = pr_default((prune_method)99, 0.5);
    cfg_layer ly[1];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE;
    layer_spec *s;
    int n;
    nl_error e = {0};
    ck_assert_int_eq(compress_model_specs(ly, 1, 3, &q, &s, &n, &e), NL_OK);
    model *m = model_create(s, n, 4, 8, NULL, NULL, 0, &e);
    free(s);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "pruning_method 99 is unknown"), "%s", e.msg);
    char **names; long *lens; int np;
    ck_assert_int_eq(compress_plan_params(NULL, 0, 4, &p, &names, &lens, &np, &e), NL_ERR_CONFIG);
    p.method = PRUNE_PDP;
    ck_assert_int_eq(compress_plan_params(NULL, 0, 4, &p, &names, &lens, &np, &e), NL_OK);
    ck_assert_int_eq(np, 0);
    char *dis[1] = {"dense7"};
    p.disable_layers = dis;
    p.n_disable = 1;
    ck_assert_ptr_null(compress_create(m, &p, &q, &t, &e));
    ck_assert_msg(strstr(e.msg, "'dense7'") && strstr(e.msg, "dense0"), "%s", e.msg);
    model_free(m);
}
END_TEST

/* The whole hook chain (pdp soft mask, pruning first, no quantization)
 * against central differences of the model's loss. */
START_TEST(test_hook_chain_gradient) {
    cfg_training t = tr_toy(2);
    cfg_quant q = q_default(0);
    cfg_pruning p = pr_default(PRUNE_PDP, 0.5);
    p.temperature = 0.05;
    p.epsilon = 1;
    cfg_layer ly[1];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE;
    layer_spec *s;
    int n;
    nl_error e = {0};
    ck_assert_int_eq(compress_model_specs(ly, 1, 3, &q, &s, &n, &e), NL_OK);
    model *m = model_create(s, n, 4, 8, NULL, NULL, 0, &e);
    free(s);
    ck_assert_ptr_nonnull(m);
    separated(m->params, 12, 21);               /* kernel (4, 3) */
    for (int j = 12; j < 15; j++) m->params[j] = 0.1f * (float)(j - 13);
    compress *c = compress_create(m, &p, &q, &t, &e);
    ck_assert_ptr_nonnull(c);
    c->stage = STAGE_MAIN;
    c->ops->setup(c);
    c->epoch = 0;
    c->ops->epoch_begin(c);
    float x[4 * 4];
    int32_t y[4] = {0, 1, 2, 1};
    rng_t r;
    rng_seed(&r, 4);
    for (int j = 0; j < 16; j++) x[j] = rng_normal(&r);
    train_hooks h = compress_hooks(c);
    float dl[4 * 3];
    h.pre_forward(h.ctx, m);
    const float *lg = model_forward(m, x, 4);
    loss_softmax_xent(lg, y, 4, 3, dl, NULL);
    model_backward(m, x, dl, 4);
    ck_assert_float_eq(h.post_backward(h.ctx, m), 0.0f);
    float ana[15], num[15];
    memcpy(ana, m->grads, sizeof ana);
    const float hh = 2e-3f;
    for (int j = 0; j < 15; j++) {
        float save = m->params[j];
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            m->params[j] = save + (sgn ? -hh : hh);
            h.pre_forward(h.ctx, m);
            l[sgn] = loss_softmax_xent(model_forward(m, x, 4), y, 4, 3, NULL, NULL);
        }
        m->params[j] = save;
        num[j] = (float)((l[0] - l[1]) / (2.0 * hh));
    }
    tu_assert_close(ana, num, 15, 3e-3, 3e-2, "hook chain dL/dW");
    compress_free(c);
    model_free(m);
}
END_TEST

/* STE: with quantization the gradient passes where W is inside the range. */
START_TEST(test_ste_gradient) {
    cfg_training t = tr_toy(2);
    cfg_quant q = q_default(1);
    q.quantize_input = 0;
    cfg_pruning p = pr_default(PRUNE_PDP, 0.5);
    p.enable_pruning = 0;
    cfg_layer ly[1];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE;
    layer_spec *s;
    int n;
    nl_error e = {0};
    ck_assert_int_eq(compress_model_specs(ly, 1, 2, &q, &s, &n, &e), NL_OK);
    model *m = model_create(s, n, 3, 4, NULL, NULL, 0, &e);
    free(s);
    compress *c = compress_create(m, &p, &q, &t, &e);
    ck_assert_ptr_nonnull(c);
    /* kernel (3, 2) and bias (2): range [-1, 127/128]. */
    const float w[8] = {0.5f, 1.5f, -0.3f, -1.2f, 0.995f, 0.2f, /* bias */ 2.0f, -0.1f};
    const int pass[8] = {1, 0, 1, 0, 0, 1, 0, 1}; /* 0.995 > 127/128 */
    memcpy(m->params, w, sizeof w);
    train_hooks h = compress_hooks(c);
    h.pre_forward(h.ctx, m);
    for (int j = 0; j < 8; j++) m->grads[j] = (float)(j + 1);
    h.post_backward(h.ctx, m);
    for (int j = 0; j < 8; j++)
        ck_assert_msg(m->grads[j] == (pass[j] ? (float)(j + 1) : 0.0f), "grad %d = %g", j,
                      m->grads[j]);
    ck_assert_float_eq(m->weff[1], 127.0f / 128);
    ck_assert_float_eq(m->weff[0], 0.5f);
    ck_assert_float_eq(m->weff[2], -38.0f / 128); /* -0.3 * 128 = -38.4 */
    compress_free(c);
    /* WRAP formats clip in training (1.5 would wrap to -0.5). */
    q.weight.overflow = FX_WRAP;
    c = compress_create(m, &p, &q, &t, &e);
    h = compress_hooks(c);
    h.pre_forward(h.ctx, m);
    ck_assert_float_eq(m->weff[1], 127.0f / 128);
    ck_assert_float_eq(m->weff[3], -1.0f);
    fixed_spec ws;
    compress_layer_formats(c, 0, &ws, NULL, NULL, NULL);
    ck_assert_int_eq(ws.overflow, FX_WRAP); /* reported as configured */
    compress_free(c);
    model_free(m);
}
END_TEST

static double run_acc(net *n, const toy_data *td, trace *tr, const cfg_training *t,
                      nl_status want) {
    train_data d = toy_view(td);
    rng_t r;
    rng_seed(&r, 77);
    nl_error e = {0};
    nl_status rc = compress_train(n->c, n->m, &n->o, t, &d, &r, trace_cb, tr, &e);
    ck_assert_msg(rc == want, "compress_train: %s (%s)", nl_status_name(rc), e.msg);
    return tr->n ? tr->rec[tr->n - 1].val_accuracy : 0;
}

START_TEST(test_pdp_trains_to_sparsity) {
    static toy_data td;
    toy_make(&td, 1);
    cfg_training t = tr_toy(2);
    t.pretraining_epochs = 2;
    t.epochs = 3;
    t.fine_tuning_epochs = 3;
    cfg_pruning p = pr_default(PRUNE_PDP, 0.75);
    cfg_quant q = q_default(0);
    net n;
    net_make(&n, 32, &p, &q, &t, 3);
    trace tr;
    trace_init(&tr);
    double acc = run_acc(&n, &td, &tr, &t, NL_OK);
    ck_assert_int_eq(tr.n, 8);
    ck_assert_double_eq(tr.rec[0].sparsity, 0.0);   /* pre-training: nothing pruned */
    double s_final = tr.rec[7].sparsity;
    ck_assert_msg(fabs(s_final - 0.75) <= 0.01, "hard-mask sparsity %g, want 0.75", s_final);
    ck_assert_msg(acc > 0.85, "val accuracy %g after pdp", acc);
    /* Masked weights are exact zeros in weff; the report agrees. */
    compress_report rep;
    nl_error e = {0};
    ck_assert_int_eq(compress_report_get(n.c, &rep, &e), NL_OK);
    long zeros = 0, total = 0;
    for (int li = 0; li < n.c->n_layers; li++) {
        const cl_layer *L = &n.c->layers[li];
        const float *mask = compress_mask(n.c, L->layer);
        ck_assert_ptr_nonnull(mask);
        for (long j = 0; j < L->n; j++) {
            ck_assert(mask[j] == 0.0f || mask[j] == 1.0f);
            if (mask[j] == 0.0f) {
                ck_assert(n.m->weff[L->w_off + j] == 0.0f);
                zeros++;
            }
        }
        total += L->n;
    }
    ck_assert_double_eq_tol((double)zeros / total, s_final, 1e-12);
    ck_assert_int_eq(rep.weights, total);
    ck_assert_int_le(rep.remaining, total - zeros);
    ck_assert_int_ge(rep.remaining, total - zeros - 2);
    compress_report_free(&rep);
    net_free(&n);
}
END_TEST

START_TEST(test_pdp_structured_trains) {
    static toy_data td;
    toy_make(&td, 8);
    cfg_training t = tr_toy(2);
    t.pretraining_epochs = 1;
    t.epochs = 3;
    t.fine_tuning_epochs = 2;
    cfg_pruning p = pr_default(PRUNE_PDP, 0.5);
    p.structured_pruning = 1;
    char *dis[1] = {"dense1"}; /* keep every class output */
    p.disable_layers = dis;
    p.n_disable = 1;
    cfg_quant q = q_default(0);
    net n;
    net_make(&n, 32, &p, &q, &t, 10);
    trace tr;
    trace_init(&tr);
    double acc = run_acc(&n, &td, &tr, &t, NL_OK);
    ck_assert_msg(acc > 0.8, "val accuracy %g with structured pdp", acc);
    const cl_layer *L = &n.c->layers[0];
    int dead = 0;
    for (int u = 0; u < L->out; u++) {
        int zeros = 0;
        for (int i = 0; i < L->in; i++) zeros += n.m->weff[L->w_off + (long)i * L->out + u] == 0.0f;
        ck_assert_msg(zeros == 0 || zeros == L->in, "unit %d: %d of %d zero", u, zeros, L->in);
        dead += zeros == L->in;
    }
    ck_assert_int_eq(dead, 16);
    ck_assert_double_eq_tol(tr.rec[tr.n - 1].sparsity, 16.0 * 8 / (8 * 32 + 32 * 3), 1e-12);
    net_free(&n);
}
END_TEST

START_TEST(test_magnitude_exact_target) {
    static toy_data td;
    toy_make(&td, 2);
    for (int freq = 0; freq <= 1; freq++) {
        cfg_training t = tr_toy(2);
        t.epochs = 4;
        t.fine_tuning_epochs = 1;
        cfg_pruning p = pr_default(PRUNE_MAGNITUDE, 0.6);
        p.update_frequency = freq ? 5 : 0;
        cfg_quant q = q_default(0);
        net n;
        net_make(&n, 24, &p, &q, &t, 4);
        trace tr;
        trace_init(&tr);
        double acc = run_acc(&n, &td, &tr, &t, NL_OK);
        long N = 8 * 24 + 24 * 3;
        double want = (double)lround(0.6 * N) / N;
        ck_assert_int_eq(tr.n, 5);
        if (!freq) {
            /* Epoch e of 4 (end_epoch = 3): s = 0.6 (1 - (1 - e/3)^3). */
            for (int ep = 0; ep < 4; ep++) {
                double s = magnitude_schedule(0, 0.6, ep, 0, 3, 3);
                ck_assert_double_eq_tol(tr.rec[ep].sparsity, (double)lround(s * N) / N, 1e-12);
            }
            ck_assert_double_eq(tr.rec[1].sparsity, (double)lround(0.6 * (1 - 8.0 / 27) * N) / N);
        }
        ck_assert_double_eq_tol(tr.rec[4].sparsity, want, 1e-12);
        ck_assert_msg(acc > 0.8, "val accuracy %g after magnitude (freq %d)", acc, freq);
        long zeros = 0;
        for (int li = 0; li < n.c->n_layers; li++) {
            const cl_layer *L = &n.c->layers[li];
            for (long j = 0; j < L->n; j++) zeros += n.m->weff[L->w_off + j] == 0.0f;
        }
        ck_assert_int_eq(zeros, lround(0.6 * N));
        net_free(&n);
    }
}
END_TEST

START_TEST(test_quantized_weights_on_grid) {
    static toy_data td;
    toy_make(&td, 3);
    cfg_training t = tr_toy(2);
    t.epochs = 2;
    t.fine_tuning_epochs = 1;
    t.pruning_first = 0; /* P(Q(W)) */
    cfg_pruning p = pr_default(PRUNE_MAGNITUDE, 0.5);
    cfg_quant q = q_default(1);
    q.weight = fx(1, 1, 5); /* ap_fixed<7,2>: grid 1/32, [-2, 2 - 1/32] */
    q.bias = fx(1, 2, 3);
    net n;
    net_make(&n, 16, &p, &q, &t, 5);
    trace tr;
    trace_init(&tr);
    double acc = run_acc(&n, &td, &tr, &t, NL_OK);
    ck_assert_msg(acc > 0.8, "val accuracy %g quantized", acc);
    long off_grid = 0, checked = 0, nonzero = 0;
    for (int li = 0; li < n.c->n_layers; li++) {
        const cl_layer *L = &n.c->layers[li];
        for (long j = 0; j < L->n; j++) {
            double v = ldexp(n.m->weff[L->w_off + j], 5);
            off_grid += v != floor(v) || v < -64 || v > 63;
            nonzero += v != 0;
            checked++;
        }
        for (int j = 0; j < L->out; j++) {
            double v = ldexp(n.m->weff[L->b_off + j], 3);
            off_grid += v != floor(v) || v < -32 || v > 31;
            checked++;
        }
    }
    ck_assert_int_eq(off_grid, 0);
    ck_assert_int_gt(nonzero, checked / 4);
    /* The report's EBOPs match an independent recount. */
    compress_report rep;
    nl_error e = {0};
    ck_assert_int_eq(compress_report_get(n.c, &rep, &e), NL_OK);
    double eb = 0;
    for (int li = 0; li < n.c->n_layers; li++) {
        const cl_layer *L = &n.c->layers[li];
        eb += compress_ebops_dense(n.m->weff + L->w_off, L->in, L->out, &q.weight, 8);
        ck_assert_int_eq(rep.layers[li].in_spec.f, 4);
        ck_assert_int_le(rep.layers[li].bits_max, 7);
    }
    ck_assert_double_eq(rep.ebops, eb);
    ck_assert_double_eq(tr.rec[tr.n - 1].ebops, eb);
    /* history.csv's per-epoch totals are the report's: remaining weights
     * and the bit spans (min, weighted mean, max over the layers) */
    const epoch_record *last = &tr.rec[tr.n - 1];
    long rem = 0;
    int bmin = 99, bmax = 0;
    double bsum = 0;
    for (int li = 0; li < rep.n; li++) {
        const compress_layer_report *lr = &rep.layers[li];
        rem += lr->remaining;
        if (lr->remaining && lr->bits_min < bmin) bmin = lr->bits_min;
        if (lr->bits_max > bmax) bmax = lr->bits_max;
        bsum += lr->bits_mean * (double)lr->remaining;
    }
    ck_assert_int_eq(last->remaining, rep.remaining);
    ck_assert_int_eq(last->remaining, rem);
    ck_assert_int_eq(last->bits_min, bmin);
    ck_assert_int_eq(last->bits_max, bmax);
    ck_assert(bmin >= 1 && bmin < bmax && bmax <= 7);
    ck_assert(fabs(last->bits_mean - bsum / (double)rem) < 1e-12);
    compress_report_free(&rep);
    net_free(&n);
}
END_TEST

START_TEST(test_stage_sequence_and_callback) {
    static toy_data td;
    toy_make(&td, 4);
    cfg_training t = tr_toy(2);
    t.pretraining_epochs = 1;
    t.rounds = 2;
    t.epochs = 2;
    t.fine_tuning_epochs = 1;
    t.schedule = LR_MULTISTEP;
    t.milestones[0] = 2; t.milestones[1] = 4; t.n_milestones = 2;
    t.gamma = 0.5;
    cfg_pruning p = pr_default(PRUNE_PDP, 0.5);
    cfg_quant q = q_default(1);
    net n;
    net_make(&n, 8, &p, &q, &t, 6);
    trace tr;
    trace_init(&tr);
    run_acc(&n, &td, &tr, &t, NL_OK);
    const int want[6][3] = {{STAGE_PRETRAIN, 0, 0}, {STAGE_MAIN, 0, 0}, {STAGE_MAIN, 0, 1},
                            {STAGE_MAIN, 1, 0},     {STAGE_MAIN, 1, 1}, {STAGE_FINETUNE, 0, 0}};
    const double lr[6] = {1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3};
    ck_assert_int_eq(tr.n, 6);
    for (int j = 0; j < 6; j++) {
        ck_assert_int_eq(tr.rec[j].stage, want[j][0]);
        ck_assert_int_eq(tr.rec[j].round, want[j][1]);
        ck_assert_int_eq(tr.rec[j].epoch, want[j][2]);
        ck_assert_int_eq(tr.rec[j].global_epoch, j);
        ck_assert_double_eq_tol(tr.rec[j].lr, lr[j], 1e-9);
        ck_assert(isfinite(tr.rec[j].val_loss) && tr.rec[j].val_accuracy > 0);
    }
    net_free(&n);
    /* Cosine: base in pre-training, one anneal over the main stage's
     * rounds x epochs = 4, a fresh one over the 2 fine-tuning epochs. */
    t.schedule = LR_COSINE;
    t.fine_tuning_epochs = 2;
    net_make(&n, 8, &p, &q, &t, 6);
    trace_init(&tr);
    run_acc(&n, &td, &tr, &t, NL_OK);
    const double cl[7] = {1e-2, 1e-2, 1e-2 * (0.5 + 0.5 * M_SQRT1_2), 0.5e-2,
                          1e-2 * (0.5 - 0.5 * M_SQRT1_2), 1e-2, 0.5e-2};
    ck_assert_int_eq(tr.n, 7);
    for (int j = 0; j < 7; j++) ck_assert_double_eq_tol(tr.rec[j].lr, cl[j], 1e-9);
    net_free(&n);
    t.schedule = LR_MULTISTEP;
    t.fine_tuning_epochs = 1;
    /* Stop (1) keeps the model and returns OK; 2 is an interruption. */
    net_make(&n, 8, &p, &q, &t, 6);
    trace_init(&tr);
    tr.stop_at = 2;
    run_acc(&n, &td, &tr, &t, NL_OK);
    ck_assert_int_eq(tr.n, 3);
    const float *mask = compress_mask(n.c, n.c->layers[0].layer);
    for (long j = 0; j < n.c->layers[0].n; j++) ck_assert(mask[j] == 0.0f || mask[j] == 1.0f);
    net_free(&n);
    net_make(&n, 8, &p, &q, &t, 6);
    trace_init(&tr);
    tr.interrupt_at = 1;
    run_acc(&n, &td, &tr, &t, NL_ERR_INTERRUPTED);
    ck_assert_int_eq(tr.n, 2);
    net_free(&n);
}
END_TEST

/* Counts round hooks through a stand-in method (identity mask). */
static int round_hooks;
static void count_round(compress *c, int round) { (void)c; (void)round; round_hooks++; }
static void ident_fwd(compress *c, int li, const float *w, float *out) {
    memcpy(out, w, (size_t)c->layers[li].n * sizeof *out);
}
static const prune_ops counting_ops = {.name = "count", .round_end = count_round,
                                       .forward = ident_fwd};

START_TEST(test_rewind_restores_snapshot) {
    static toy_data td;
    toy_make(&td, 5);
    for (int mode = 0; mode < 2; mode++) {
        cfg_training t = tr_toy(2);
        t.pretraining_epochs = 1;
        t.rounds = 3;
        t.epochs = 2;
        t.save_weights_epoch = 0;
        t.rewind = mode ? REWIND_EVERY_ROUND : REWIND_POST_TRAINING;
        cfg_pruning p = pr_default(PRUNE_PDP, 0.5);
        cfg_quant q = q_default(0);
        net n;
        net_make(&n, 8, &p, &q, &t, 7);
        const prune_ops *orig = n.c->ops;
        n.c->ops = &counting_ops; /* keep weights comparable: no masking */
        round_hooks = 0;
        trace tr;
        trace_init(&tr);
        tr.m = n.m;
        float *snap = malloc((size_t)n.m->n_params * sizeof *snap);
        tr.snap = snap;
        tr.snap_at = 0; /* params after pre-training = before main epoch 0 */
        run_acc(&n, &td, &tr, &t, NL_OK);
        ck_assert_int_eq(tr.n, 7);
        ck_assert_int_eq(round_hooks, 2); /* also with every-round rewind */
        long same = 0;
        for (long j = 0; j < n.m->n_params; j++) same += n.m->params[j] == snap[j];
        ck_assert_msg(same == n.m->n_params, "mode %d: %ld of %ld params rewound", mode, same,
                      n.m->n_params);
        n.c->ops = orig;
        net_free(&n);
        free(snap);
    }
    /* Rewinding without a snapshot is a config error. */
    cfg_training t = tr_toy(2);
    t.rewind = REWIND_EVERY_ROUND;
    cfg_pruning p = pr_default(PRUNE_PDP, 0.5);
    cfg_quant q = q_default(0);
    net n;
    net_make(&n, 8, &p, &q, &t, 7);
    trace tr;
    trace_init(&tr);
    run_acc(&n, &td, &tr, &t, NL_ERR_CONFIG);
    net_free(&n);
}
END_TEST

START_TEST(test_every_round_rewind_moves_then_restores) {
    static toy_data td;
    toy_make(&td, 6);
    cfg_training t = tr_toy(2);
    t.rounds = 2;
    t.epochs = 2;
    t.save_weights_epoch = 0;
    t.rewind = REWIND_EVERY_ROUND;
    cfg_pruning p = pr_default(PRUNE_PDP, 0.5);
    p.enable_pruning = 0;
    cfg_quant q = q_default(0);
    net n;
    net_make(&n, 8, &p, &q, &t, 8);
    float *init = malloc((size_t)n.m->n_params * sizeof *init);
    memcpy(init, n.m->params, (size_t)n.m->n_params * sizeof *init);
    trace tr;
    trace_init(&tr);
    tr.m = n.m;
    float *mid = malloc((size_t)n.m->n_params * sizeof *mid);
    tr.snap = mid;
    tr.snap_at = 1; /* end of round 0 */
    run_acc(&n, &td, &tr, &t, NL_OK);
    long moved = 0, back = 0;
    for (long j = 0; j < n.m->n_params; j++) {
        moved += mid[j] != init[j];
        back += n.m->params[j] == init[j];
    }
    ck_assert_int_gt(moved, n.m->n_params / 2);
    ck_assert_int_eq(back, n.m->n_params);
    /* No pruning: no mask, nothing zero in the report. */
    ck_assert_ptr_null(compress_mask(n.c, n.c->layers[0].layer));
    ck_assert_double_eq(tr.rec[tr.n - 1].sparsity, 0.0);
    free(init);
    free(mid);
    net_free(&n);
}
END_TEST

START_TEST(test_disable_layer_and_nan) {
    static toy_data td;
    toy_make(&td, 7);
    cfg_training t = tr_toy(2);
    t.epochs = 2;
    cfg_pruning p = pr_default(PRUNE_MAGNITUDE, 0.5);
    char *dis[1] = {"dense1"};
    p.disable_layers = dis;
    p.n_disable = 1;
    cfg_quant q = q_default(0);
    net n;
    net_make(&n, 8, &p, &q, &t, 9);
    trace tr;
    trace_init(&tr);
    run_acc(&n, &td, &tr, &t, NL_OK);
    const cl_layer *L0 = &n.c->layers[0], *L1 = &n.c->layers[1];
    ck_assert_ptr_nonnull(compress_mask(n.c, L0->layer));
    ck_assert_ptr_null(compress_mask(n.c, L1->layer));
    long z0 = 0, z1 = 0;
    for (long j = 0; j < L0->n; j++) z0 += n.m->weff[L0->w_off + j] == 0.0f;
    for (long j = 0; j < L1->n; j++) z1 += n.m->weff[L1->w_off + j] == 0.0f;
    ck_assert_int_eq(z0, lround(0.5 * L0->n)); /* the budget is over prunable layers only */
    ck_assert_int_eq(z1, 0);
    net_free(&n);
    /* A NaN in the data: NL_ERR_NUMERIC naming the stage and epoch. */
    td.xtr[5] = NAN;
    t.pretraining_epochs = 1;
    net_make(&n, 8, &p, &q, &t, 9);
    trace_init(&tr);
    train_data d = toy_view(&td);
    rng_t r;
    rng_seed(&r, 1);
    nl_error e = {0};
    ck_assert_int_eq(compress_train(n.c, n.m, &n.o, &t, &d, &r, trace_cb, &tr, &e),
                     NL_ERR_NUMERIC);
    ck_assert_msg(strstr(e.msg, "pre-training epoch 0"), "%s", e.msg);
    ck_assert_int_eq(tr.n, 0);
    net_free(&n);
}
END_TEST

Suite *make_compress_suite(void) {
    Suite *s = suite_create("compress");
    TCase *tm = tcase_create("math");
    tcase_add_test(tm, test_pdp_linspace_exact);
    tcase_add_test(tm, test_pdp_gradient);
    tcase_add_test(tm, test_pdp_structured_gradient);
    tcase_add_test(tm, test_pdp_budgets_hand);
    tcase_add_test(tm, test_magnitude_schedule_values);
    tcase_add_test(tm, test_magnitude_mask_exact);
    tcase_add_test(tm, test_ebops_hand);
    suite_add_tcase(s, tm);
    TCase *to = tcase_create("object");
    tcase_set_timeout(to, 30);
    tcase_add_test(to, test_model_specs);
    tcase_add_test(to, test_unknown_method_and_bad_names);
    tcase_add_test(to, test_hook_chain_gradient);
    tcase_add_test(to, test_ste_gradient);
    tcase_add_test(to, test_pdp_trains_to_sparsity);
    tcase_add_test(to, test_pdp_structured_trains);
    tcase_add_test(to, test_magnitude_exact_target);
    tcase_add_test(to, test_quantized_weights_on_grid);
    tcase_add_test(to, test_stage_sequence_and_callback);
    tcase_add_test(to, test_rewind_restores_snapshot);
    tcase_add_test(to, test_every_round_rewind_moves_then_restores);
    tcase_add_test(to, test_disable_layer_and_nan);
    suite_add_tcase(s, to);
    return s;
}
