/* check_layers.c — the spatial and extra layers of nn: conv geometry by
 * hand, im2col + sgemm Conv1D/2D against the naive reference on awkward
 * sizes (strides, valid/same, kernels larger than the input, tiny im2col
 * blocks), pooling by hand, central-difference gradient checks of whole
 * models through every layer kind (BatchNorm in training and evaluation,
 * seeded Dropout), BatchNorm statistics and folding, Dropout's rate, shape
 * errors, and a small CNN that must learn a spatial task. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nn/nn_internal.h"
#include "nnlo/nn.h"
#include "testutil.h"

static void fill_uniform(float *a, long n, rng_t *r, float lo, float hi) {
    for (long j = 0; j < n; j++) a[j] = lo + (hi - lo) * (float)rng_uniform(r);
}

static layer_spec sp_kind(int k) {
    layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = (layer_kind)k;
    return s;
}
static layer_spec sp_dense(int units) {
    layer_spec s = sp_kind(LAYER_DENSE);
    s.units = units;
    return s;
}
static layer_spec sp_conv2d(int filters, int kh, int kw, int sh, int sw, pad_mode p) {
    layer_spec s = sp_kind(LAYER_CONV2D);
    s.filters = filters;
    s.kernel[0] = kh; s.kernel[1] = kw;
    s.strides[0] = sh; s.strides[1] = sw;
    s.padding = p;
    return s;
}
static layer_spec sp_conv1d(int filters, int k, int st, pad_mode p) {
    layer_spec s = sp_kind(LAYER_CONV1D);
    s.filters = filters;
    s.kernel[0] = k;
    s.strides[0] = st;
    s.padding = p;
    return s;
}
static layer_spec sp_pool(int kind, int ph, int pw, int sh, int sw, pad_mode p) {
    layer_spec s = sp_kind(kind);
    s.pool[0] = ph; s.pool[1] = pw;
    s.strides[0] = sh; s.strides[1] = sw;
    s.padding = p;
    return s;
}
static layer_spec sp_bn(void) {
    layer_spec s = sp_kind(LAYER_BATCHNORM);
    s.momentum = 0.9f;
    s.epsilon = 1e-3f;
    return s;
}

/* ---- geometry by hand -------------------------------------------------- */

START_TEST(test_geom) {
    conv_geom g;
    /* valid: floor((7 - 3) / 2) + 1 = 3 */
    ck_assert_int_eq(conv_geom_init(&g, 7, 7, 1, 1, 3, 3, 2, 2, PAD_VALID), 0);
    ck_assert_int_eq(g.oh, 3);
    ck_assert_int_eq(g.pt, 0);
    /* same: ceil(7 / 2) = 4, total padding 3*2 + 3 - 7 = 2 -> 1 before */
    ck_assert_int_eq(conv_geom_init(&g, 7, 6, 1, 1, 3, 3, 2, 2, PAD_SAME), 0);
    ck_assert_int_eq(g.oh, 4);
    ck_assert_int_eq(g.pt, 1);
    /* width 6: out 3, total 2*2 + 3 - 6 = 1 -> 0 before, 1 after (TF) */
    ck_assert_int_eq(g.ow, 3);
    ck_assert_int_eq(g.pl, 0);
    /* same with a window larger than the input: out 3, total 2 + 5 - 3 = 4 */
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 2, 4, 5, 5, 1, 1, PAD_SAME), 0);
    ck_assert_int_eq(g.oh, 3);
    ck_assert_int_eq(g.pt, 2);
    /* valid window larger than the input, zero sizes: refused */
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 1, 1, 4, 1, 1, 1, PAD_VALID), -1);
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 1, 0, 1, 1, 1, 1, PAD_VALID), -1);
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 1, 1, 1, 1, 0, 1, PAD_VALID), -1);
}
END_TEST

/* 3x3 input 1..9, 2x2 kernel (1, 2; 3, 4) + bias 0.5, valid, stride 1:
 * out(0,0) = 1 + 4 + 12 + 20 + .5 = 37.5, (0,1) = 2+6+15+24+.5 = 47.5,
 * (1,0) = 4+10+21+32+.5 = 67.5, (1,1) = 5+12+24+36+.5 = 77.5. */
START_TEST(test_conv_by_hand) {
    float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 2, 3, 4}, b = 0.5f;
    float want[4] = {37.5f, 47.5f, 67.5f, 77.5f}, out[4], col[64];
    conv_geom g;
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 1, 1, 2, 2, 1, 1, PAD_VALID), 0);
    conv_forward(out, in, w, &b, 1, &g, col, 64);
    tu_assert_close(out, want, 4, 0, 0, "conv im2col by hand");
    conv_forward_ref(out, in, w, &b, 1, &g);
    tu_assert_close(out, want, 4, 0, 0, "conv ref by hand");
    /* same padding, stride 2 on 3x3 with 2x2: out 2x2, total pad 1 -> 0 before;
     * out(1,1) covers only in(2,2) = 9 -> 9 * 1 + .5 */
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 1, 1, 2, 2, 2, 2, PAD_SAME), 0);
    conv_forward(out, in, w, &b, 1, &g, col, 64);
    float want2[4] = {37.5f, 3 * 1 + 6 * 3 + .5f, 7 * 1 + 8 * 2 + .5f, 9.5f};
    tu_assert_close(out, want2, 4, 0, 0, "conv same stride 2 by hand");
}
END_TEST

typedef struct { int B, h, w, c, oc, kh, kw, sh, sw; pad_mode p; } conv_case;
static const conv_case conv_cases[] = {
    {3, 7, 5, 3, 4, 3, 2, 2, 1, PAD_SAME},
    {2, 7, 5, 3, 4, 3, 2, 2, 1, PAD_VALID},
    {2, 1, 11, 2, 5, 1, 4, 1, 3, PAD_SAME},   /* 1-D */
    {2, 1, 11, 2, 5, 1, 4, 1, 3, PAD_VALID},
    {1, 9, 9, 1, 7, 5, 5, 3, 3, PAD_SAME},
    {4, 4, 4, 5, 2, 4, 4, 1, 1, PAD_VALID},   /* window = input */
    {2, 3, 3, 2, 3, 5, 5, 1, 1, PAD_SAME},    /* window larger than the input */
    {5, 13, 13, 16, 32, 3, 3, 1, 1, PAD_VALID}, /* the CNN's second conv */
    {3, 6, 8, 1, 1, 1, 1, 1, 1, PAD_VALID},   /* 1x1 */
};

START_TEST(test_conv_matches_ref) {
    const conv_case *k = &conv_cases[_i];
    conv_geom g;
    ck_assert_int_eq(conv_geom_init(&g, k->h, k->w, k->c, k->oc, k->kh, k->kw, k->sh, k->sw, k->p), 0);
    rng_t r;
    rng_seed(&r, 100 + (uint64_t)_i);
    long nin = (long)k->B * k->h * k->w * k->c, nout = (long)k->B * g.oh * g.ow * g.oc;
    long nw = (long)k->kh * k->kw * k->c * k->oc, per = (long)g.oh * g.ow * k->kh * k->kw * k->c;
    float *in = malloc(sizeof(float) * nin), *w = malloc(sizeof(float) * nw);
    float *b = malloc(sizeof(float) * k->oc), *o1 = malloc(sizeof(float) * nout);
    float *o2 = malloc(sizeof(float) * nout), *go = malloc(sizeof(float) * nout);
    float *dw1 = malloc(sizeof(float) * nw), *dw2 = malloc(sizeof(float) * nw);
    float *db1 = malloc(sizeof(float) * k->oc), *db2 = malloc(sizeof(float) * k->oc);
    float *di1 = malloc(sizeof(float) * nin), *di2 = malloc(sizeof(float) * nin);
    long big = per * k->B + 7;
    float *col = malloc(sizeof(float) * big), *dcol = malloc(sizeof(float) * big);
    fill_uniform(in, nin, &r, -1, 1);
    fill_uniform(w, nw, &r, -1, 1);
    fill_uniform(b, k->oc, &r, -1, 1);
    fill_uniform(go, nout, &r, -1, 1);
    conv_forward_ref(o2, in, w, b, k->B, &g);
    char what[96];
    /* one sample per block (ncol = per), then the whole batch at once */
    long ncols[2] = {per, big};
    for (int v = 0; v < 2; v++) {
        snprintf(what, sizeof what, "conv case %d ncol %ld forward", _i, ncols[v]);
        fill_uniform(o1, nout, &r, 5, 6);
        conv_forward(o1, in, w, b, k->B, &g, col, ncols[v]);
        tu_assert_close(o1, o2, nout, 1e-5, 1e-5, what);
        /* backward, accumulating onto a start value */
        for (long j = 0; j < nw; j++) dw1[j] = dw2[j] = 0.25f;
        for (int j = 0; j < k->oc; j++) db1[j] = db2[j] = -0.5f;
        fill_uniform(di1, nin, &r, 5, 6);
        conv_backward(di1, dw1, db1, go, in, w, k->B, &g, col, dcol, ncols[v], 1);
        conv_backward_ref(di2, dw2, db2, go, in, w, k->B, &g);
        snprintf(what, sizeof what, "conv case %d ncol %ld dw", _i, ncols[v]);
        tu_assert_close(dw1, dw2, nw, 1e-4, 1e-4, what);
        snprintf(what, sizeof what, "conv case %d ncol %ld db", _i, ncols[v]);
        tu_assert_close(db1, db2, k->oc, 1e-4, 1e-4, what);
        snprintf(what, sizeof what, "conv case %d ncol %ld din", _i, ncols[v]);
        tu_assert_close(di1, di2, nin, 1e-5, 1e-5, what);
        /* accumulate = 0 overwrites */
        fill_uniform(dw1, nw, &r, 5, 6);
        fill_uniform(db1, k->oc, &r, 5, 6);
        for (long j = 0; j < nw; j++) dw2[j] -= 0.25f;
        for (int j = 0; j < k->oc; j++) db2[j] += 0.5f;
        conv_backward(NULL, dw1, db1, go, in, w, k->B, &g, col, dcol, ncols[v], 0);
        snprintf(what, sizeof what, "conv case %d ncol %ld dw overwrite", _i, ncols[v]);
        tu_assert_close(dw1, dw2, nw, 1e-4, 1e-4, what);
        tu_assert_close(db1, db2, k->oc, 1e-4, 1e-4, what);
        for (long j = 0; j < nw; j++) dw2[j] += 0.25f;
        for (int j = 0; j < k->oc; j++) db2[j] -= 0.5f;
    }
    free(in); free(w); free(b); free(o1); free(o2); free(go); free(dw1); free(dw2);
    free(db1); free(db2); free(di1); free(di2); free(col); free(dcol);
}
END_TEST

/* ---- pooling by hand ------------------------------------------------------ */

START_TEST(test_pool_by_hand) {
    /* 1 sample, 3x3, 2 channels: channel 0 = 1..9, channel 1 = -(1..9) */
    float in[18];
    for (int j = 0; j < 9; j++) { in[2 * j] = (float)(j + 1); in[2 * j + 1] = -(float)(j + 1); }
    conv_geom g;
    float out[8], din[18], go[8];
    int32_t am[8];
    /* 2x2 max, stride 2, valid: one window (rows 0-1, cols 0-1) */
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 2, 2, 2, 2, 2, 2, PAD_VALID), 0);
    ck_assert_int_eq(g.oh * g.ow, 1);
    maxpool_forward(out, am, in, 1, &g);
    ck_assert_float_eq(out[0], 5.0f);
    ck_assert_float_eq(out[1], -1.0f);
    ck_assert_int_eq(am[0], 8);   /* (1,1) channel 0 */
    ck_assert_int_eq(am[1], 1);   /* (0,0) channel 1 */
    /* same: 2x2 output; window (1,1) covers only in(2,2) */
    ck_assert_int_eq(conv_geom_init(&g, 3, 3, 2, 2, 2, 2, 2, 2, PAD_SAME), 0);
    ck_assert_int_eq(g.oh, 2);
    maxpool_forward(out, am, in, 1, &g);
    float wmax[8] = {5, -1, 6, -3, 8, -7, 9, -9};
    tu_assert_close(out, wmax, 8, 0, 0, "maxpool same");
    avgpool_forward(out, in, 1, &g);
    /* averages over in-range elements only: (1+2+4+5)/4, (3+6)/2, (7+8)/2, 9 */
    float wavg[8] = {3, -3, 4.5f, -4.5f, 7.5f, -7.5f, 9, -9};
    tu_assert_close(out, wavg, 8, 1e-6, 0, "avgpool same");
    for (int j = 0; j < 8; j++) go[j] = (float)(j + 1);
    avgpool_backward(din, go, 1, &g);
    /* in(0,1) channel 0 gets go[0] / 4 + nothing else; in(0,2) ch 0 gets go[2] / 2 */
    ck_assert(fabsf(din[2] - 0.25f) < 1e-6f);
    ck_assert(fabsf(din[4] - 1.5f) < 1e-6f);
    ck_assert(fabsf(din[16] - 7.0f) < 1e-6f);
    maxpool_forward(out, am, in, 1, &g);
    maxpool_backward(din, go, am, 1, &g);
    /* channel 0 max of window 0 at (1,1) = index 8 gets go[0] = 1 */
    ck_assert_float_eq(din[8], 1.0f);
    ck_assert_float_eq(din[1], 2.0f);  /* channel 1 window 0 max at (0,0) */
    float s = 0;
    for (int j = 0; j < 18; j++) s += din[j];
    ck_assert_float_eq(s, 36.0f);       /* every output's gradient lands once */
}
END_TEST

START_TEST(test_activations_by_hand) {
    float in[4] = {-2.0f, -0.5f, 0.5f, 2.0f}, out[4], g[4];
    nn_act_forward(LAYER_HARD_TANH, out, in, 4, 0);
    ck_assert_float_eq(out[0], -1.0f);
    ck_assert_float_eq(out[1], -0.5f);
    ck_assert_float_eq(out[3], 1.0f);
    nn_act_forward(LAYER_LEAKY_RELU, out, in, 4, 0.1f);
    ck_assert(fabsf(out[0] + 0.2f) < 1e-7f);
    ck_assert_float_eq(out[2], 0.5f);
    nn_act_forward(LAYER_SIGMOID, out, in, 4, 0);
    ck_assert(fabsf(out[2] - 0.62245933f) < 1e-6f);
    nn_act_forward(LAYER_TANH, out, in, 4, 0);
    ck_assert(fabsf(out[3] - 0.96402758f) < 1e-6f);
    for (int j = 0; j < 4; j++) g[j] = 1.0f;
    nn_act_backward(LAYER_TANH, g, in, out, 4, 0);
    ck_assert(fabsf(g[3] - (1.0f - 0.96402758f * 0.96402758f)) < 1e-6f);
}
END_TEST

/* ---- gradient checks of whole models ------------------------------------------ */

static double loss_at(model *m, const float *x, const int32_t *y, int B, const rng_t *rs) {
    m->drop_rng = *rs; /* the same Dropout masks every time */
    const float *z = model_forward(m, x, B);
    return loss_softmax_xent(z, y, B, m->out_size, NULL, NULL);
}

/* dL/dweff from model_backward against central differences, for every
 * parameter (or an even sample of up to ~400). */
static void grad_check(model *m, const float *x, const int32_t *y, int B, double h,
                       const char *what) {
    rng_t rs = m->drop_rng;
    m->drop_rng = rs;
    const float *z = model_forward(m, x, B);
    float *dl = malloc(sizeof(float) * B * m->out_size);
    loss_softmax_xent(z, y, B, m->out_size, dl, NULL);
    model_backward(m, x, dl, B);
    float *g = malloc(sizeof(float) * m->n_params);
    memcpy(g, m->grads, sizeof(float) * m->n_params);
    long step = m->n_params > 400 ? m->n_params / 400 : 1;
    int bad = 0, checked = 0;
    double worst = 0;
    for (long j = 0; j < m->n_params; j += step) {
        float keep = m->weff[j];
        m->weff[j] = keep + (float)h;
        double lp = loss_at(m, x, y, B, &rs);
        m->weff[j] = keep - (float)h;
        double lm = loss_at(m, x, y, B, &rs);
        m->weff[j] = keep;
        double num = (lp - lm) / (2 * h);
        double d = fabs(num - g[j]);
        if (d > worst) worst = d;
        checked++;
        if (d > 2e-3 + 2e-2 * fabs(num)) {
            if (bad < 5) fprintf(stderr, "%s: param %ld: analytic %.6g numeric %.6g\n", what, j, g[j], num);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%s: %d of %d gradients differ (worst |diff| %.3g)", what, bad, checked, worst);
    ck_assert_msg(checked > 10, "%s: only %d parameters checked", what, checked);
    free(dl);
    free(g);
}

/* Builds the model, random weights (BatchNorm gamma/beta perturbed too),
 * random inputs and labels; checks gradients in the given mode. */
static void check_model(const layer_spec *sp, int n, int in_size, int B, int training,
                        uint64_t seed, const char *what) {
    nl_error e = {0};
    model *m = model_create(sp, n, in_size, B, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s: %s", what, e.msg);
    rng_t r;
    rng_seed(&r, seed);
    model_init_params(m, &r);
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        if ((int)L->kind != LAYER_BATCHNORM) continue;
        fill_uniform(m->weff + L->w_off, L->out_c, &r, 0.5f, 1.5f);
        fill_uniform(m->weff + L->b_off, L->out_c, &r, -0.5f, 0.5f);
        fill_uniform(m->state + L->s_off, L->out_c, &r, -0.3f, 0.3f);
        fill_uniform(m->state + L->s_off + L->out_c, L->out_c, &r, 0.5f, 2.0f);
    }
    float *x = malloc(sizeof(float) * B * in_size);
    int32_t *y = malloc(sizeof(int32_t) * B);
    fill_uniform(x, (long)B * in_size, &r, -1, 1);
    for (int s = 0; s < B; s++) y[s] = (int32_t)rng_below(&r, (uint64_t)m->out_size);
    m->training = training;
    grad_check(m, x, y, B, 2e-3, what);
    free(x);
    free(y);
    model_free(m);
}

START_TEST(test_grad_conv2d_pool_tanh_sigmoid) {
    layer_spec sp[8];
    sp[0] = sp_conv2d(3, 3, 3, 1, 1, PAD_SAME);
    sp[0].in_shape[0] = 6; sp[0].in_shape[1] = 5; sp[0].in_shape[2] = 2;
    sp[1] = sp_kind(LAYER_TANH);
    sp[2] = sp_pool(LAYER_MAXPOOL2D, 2, 2, 0, 0, PAD_VALID);   /* 3 x 2 */
    sp[3] = sp_conv2d(4, 2, 2, 1, 1, PAD_VALID);               /* 2 x 1 */
    sp[4] = sp_kind(LAYER_SIGMOID);
    sp[5] = sp_kind(LAYER_FLATTEN);
    sp[6] = sp_dense(3);
    check_model(sp, 7, 60, 3, 1, 1, "conv2d/tanh/maxpool/conv2d/sigmoid/flatten/dense");
}
END_TEST

START_TEST(test_grad_strided_avgpool_bn_hardtanh_leaky) {
    layer_spec sp[8];
    sp[0] = sp_conv2d(3, 3, 2, 2, 1, PAD_VALID); /* 7x6x2 -> 3x5x3 */
    sp[0].in_shape[0] = 7; sp[0].in_shape[1] = 6; sp[0].in_shape[2] = 2;
    sp[1] = sp_kind(LAYER_LEAKY_RELU);
    sp[1].alpha = 0.1f;
    sp[2] = sp_pool(LAYER_AVGPOOL2D, 2, 2, 0, 0, PAD_SAME);    /* 2 x 3 */
    sp[3] = sp_bn();
    sp[4] = sp_kind(LAYER_HARD_TANH);
    sp[5] = sp_dense(4);
    /* evaluation mode: moving statistics */
    check_model(sp, 6, 84, 4, 0, 3, "conv2d s2/leaky/avgpool same/batchnorm eval/hard_tanh");
    /* training mode: batch statistics. Every weight moves every normalized
     * value through the batch mean and variance, so some cross the kinks of
     * leaky_relu / hard_tanh within h (a few of 121 checks off by ~0.01):
     * smooth activations instead; those kinks are checked above */
    sp[1] = sp_kind(LAYER_SIGMOID);
    sp[4] = sp_kind(LAYER_TANH);
    check_model(sp, 6, 84, 4, 1, 2, "conv2d s2/leaky/avgpool same/batchnorm train/tanh");
}
END_TEST

START_TEST(test_grad_conv1d_dropout_bn_dense) {
    layer_spec sp[10];
    sp[0] = sp_conv1d(3, 3, 2, PAD_SAME);                       /* (9, 2) -> (5, 3) */
    sp[0].in_shape[0] = 1; sp[0].in_shape[1] = 9; sp[0].in_shape[2] = 2;
    sp[1] = sp_kind(LAYER_TANH);
    sp[2] = sp_pool(LAYER_MAXPOOL1D, 2, 0, 0, 0, PAD_SAME);     /* (3, 3) */
    sp[3] = sp_pool(LAYER_AVGPOOL1D, 2, 0, 1, 0, PAD_VALID);    /* (2, 3) */
    sp[4] = sp_kind(LAYER_FLATTEN);
    sp[5] = sp_dense(5);
    sp[6] = sp_bn();                                             /* on flat features */
    sp[7] = sp_kind(LAYER_DROPOUT);
    sp[7].rate = 0.3f;
    sp[8] = sp_dense(3);
    check_model(sp, 9, 18, 5, 1, 4, "conv1d/maxpool1d/avgpool1d/dense/batchnorm/dropout train");
    check_model(sp, 9, 18, 5, 0, 5, "conv1d/maxpool1d/avgpool1d/dense/batchnorm/dropout eval");
}
END_TEST

/* Batches above the 256-row chunk and BatchNorm's whole-batch path give the
 * same outputs as sample-by-sample evaluation. */
START_TEST(test_forward_batched_equals_single) {
    layer_spec sp[6];
    sp[0] = sp_conv2d(4, 3, 3, 1, 1, PAD_SAME);
    sp[0].in_shape[0] = 5; sp[0].in_shape[1] = 5; sp[0].in_shape[2] = 1;
    sp[1] = sp_kind(LAYER_RELU);
    sp[2] = sp_pool(LAYER_MAXPOOL2D, 2, 2, 0, 0, PAD_VALID);
    sp[3] = sp_kind(LAYER_FLATTEN);
    sp[4] = sp_bn();
    sp[5] = sp_dense(3);
    for (int withbn = 0; withbn < 2; withbn++) {
        layer_spec s2[6];
        int n = 0;
        for (int j = 0; j < 6; j++)
            if (withbn || j != 4) s2[n++] = sp[j];
        const int B = 300;
        nl_error e = {0};
        model *m = model_create(s2, n, 25, B, NULL, NULL, 0, &e);
        ck_assert_msg(m != NULL, "%s", e.msg);
        rng_t r;
        rng_seed(&r, 9);
        model_init_params(m, &r);
        float *x = malloc(sizeof(float) * B * 25), *all = malloc(sizeof(float) * B * 3);
        fill_uniform(x, (long)B * 25, &r, -1, 1);
        memcpy(all, model_forward(m, x, B), sizeof(float) * B * 3);
        for (int s = 0; s < B; s += 37) {
            const float *one = model_forward(m, x + s * 25, 1);
            tu_assert_close(one, all + s * 3, 3, 1e-5, 1e-5, "sample vs batch");
        }
        free(x);
        free(all);
        model_free(m);
    }
}
END_TEST

/* ---- BatchNorm ---------------------------------------------------------------- */

START_TEST(test_batchnorm_statistics) {
    /* 4 samples of (1, 2, 2): channel c over 8 values */
    layer_spec sp[2] = {sp_bn(), sp_dense(2)};
    sp[0].in_shape[0] = 1; sp[0].in_shape[1] = 2; sp[0].in_shape[2] = 2;
    nl_error e = {0};
    model *m = model_create(sp, 2, 4, 4, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, 1);
    model_init_params(m, &r);
    const layer *L = &m->layers[0];
    ck_assert_int_eq(L->out_c, 2);
    ck_assert_ptr_nonnull(model_find_view(m, "batchnorm0/gamma"));
    ck_assert_ptr_nonnull(model_find_view(m, "batchnorm0/beta"));
    ck_assert_float_eq(m->state[L->s_off + 2], 1.0f); /* moving variance starts at 1 */
    m->weff[L->w_off] = 2.0f;  /* gamma_0 */
    m->weff[L->b_off + 1] = 3.0f; /* beta_1 */
    float x[16];
    for (int j = 0; j < 8; j++) { x[2 * j] = (float)j; x[2 * j + 1] = 10.0f; }
    m->training = 1;
    model_forward(m, x, 4);
    /* channel 0: 0..7, mean 3.5, biased var 5.25; channel 1 constant 10 */
    double inv = 1.0 / sqrt(5.25 + 1e-3);
    for (int j = 0; j < 8; j++) {
        ck_assert(fabs(L->out[2 * j] - 2.0 * (j - 3.5) * inv) < 1e-5);
        ck_assert(fabs(L->out[2 * j + 1] - 3.0) < 1e-5);
    }
    /* moving = 0.9 moving + 0.1 batch */
    ck_assert(fabsf(m->state[L->s_off] - 0.35f) < 1e-6f);
    ck_assert(fabsf(m->state[L->s_off + 1] - 1.0f) < 1e-6f);
    ck_assert(fabsf(m->state[L->s_off + 2] - (0.9f + 0.525f)) < 1e-5f);
    ck_assert(fabsf(m->state[L->s_off + 3] - 0.9f) < 1e-6f);
    /* evaluation: moving statistics, nothing moves */
    m->training = 0;
    float before[4];
    memcpy(before, m->state, sizeof before);
    model_forward(m, x, 4);
    ck_assert(fabs(L->out[2] - 2.0 * (1 - 0.35) / sqrt(1.425 + 1e-3)) < 1e-5);
    ck_assert(memcmp(before, m->state, sizeof before) == 0);
    model_free(m);
}
END_TEST

static void check_fold(const layer_spec *sp, int n, int in_size, const char *what) {
    nl_error e = {0};
    const int B = 5;
    model *m = model_create(sp, n, in_size, B, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, 21);
    model_init_params(m, &r);
    int bn = 1;
    const layer *P = &m->layers[0], *L = &m->layers[bn];
    fill_uniform(m->weff + P->b_off, layer_kernel_cols(P), &r, -1, 1);
    fill_uniform(m->weff + L->w_off, L->out_c, &r, 0.5f, 1.5f);
    fill_uniform(m->weff + L->b_off, L->out_c, &r, -0.5f, 0.5f);
    fill_uniform(m->state + L->s_off, L->out_c, &r, -0.3f, 0.3f);
    fill_uniform(m->state + L->s_off + L->out_c, L->out_c, &r, 0.5f, 2.0f);
    float *x = malloc(sizeof(float) * B * in_size);
    fill_uniform(x, (long)B * in_size, &r, -1, 1);
    model_forward(m, x, B);
    long nk = (long)layer_kernel_rows(P) * layer_kernel_cols(P);
    float *k = malloc(sizeof(float) * nk), *b = malloc(sizeof(float) * layer_kernel_cols(P));
    ck_assert_int_eq(model_fold_batchnorm(m, bn, k, b, &e), NL_OK);
    /* the folded layer alone reproduces layer bn's output */
    long nout = (long)B * L->out_size;
    float *o = malloc(sizeof(float) * nout);
    if ((int)P->kind == LAYER_DENSE) dense_forward_ref(o, x, k, b, B, P->in_size, P->out_size);
    else conv_forward_ref(o, x, k, b, B, &P->geom);
    tu_assert_close(o, L->out, nout, 1e-5, 1e-5, what);
    /* not a batchnorm after a kernel layer: refused with a message */
    ck_assert_int_eq(model_fold_batchnorm(m, 0, k, b, &e), NL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "batchnorm"));
    free(x); free(k); free(b); free(o);
    model_free(m);
}

START_TEST(test_batchnorm_fold) {
    layer_spec sp[3] = {sp_dense(6), sp_bn(), sp_dense(2)};
    check_fold(sp, 3, 7, "fold into dense");
    layer_spec sc[4] = {sp_conv2d(5, 3, 2, 2, 1, PAD_SAME), sp_bn(), sp_kind(LAYER_FLATTEN), sp_dense(2)};
    sc[0].in_shape[0] = 5; sc[0].in_shape[1] = 4; sc[0].in_shape[2] = 3;
    check_fold(sc, 4, 60, "fold into conv2d");
}
END_TEST

/* ---- Dropout ------------------------------------------------------------------- */

START_TEST(test_dropout) {
    const int B = 50, F = 2000;
    layer_spec sp[2] = {sp_kind(LAYER_DROPOUT), sp_dense(2)};
    sp[0].rate = 0.25f;
    nl_error e = {0};
    model *m = model_create(sp, 2, F, B, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, 5);
    model_init_params(m, &r);
    rng_t saved = m->drop_rng;
    float *x = malloc(sizeof(float) * B * F);
    fill_uniform(x, (long)B * F, &r, 1, 2);
    m->training = 1;
    model_forward(m, x, B);
    const float *o = m->layers[0].out;
    long zeros = 0;
    for (long j = 0; j < (long)B * F; j++) {
        if (o[j] == 0.0f) zeros++;
        else ck_assert_msg(fabsf(o[j] - x[j] / 0.75f) < 1e-6f, "kept values are scaled by 1/(1-rate)");
    }
    double frac = (double)zeros / (B * F);
    ck_assert_msg(fabs(frac - 0.25) < 0.01, "dropped fraction %.4f, want 0.25", frac);
    /* seeded: the same generator state gives the same mask */
    float *first = malloc(sizeof(float) * B * F);
    memcpy(first, o, sizeof(float) * B * F);
    m->drop_rng = saved;
    model_forward(m, x, B);
    ck_assert(memcmp(first, m->layers[0].out, sizeof(float) * B * F) == 0);
    model_forward(m, x, B); /* and the next batch a different one */
    ck_assert(memcmp(first, m->layers[0].out, sizeof(float) * B * F) != 0);
    /* evaluation: identity */
    m->training = 0;
    model_forward(m, x, B);
    ck_assert(memcmp(x, m->layers[0].out, sizeof(float) * B * F) == 0);
    free(x); free(first);
    model_free(m);
}
END_TEST

/* ---- shapes and errors ------------------------------------------------------------ */

START_TEST(test_shapes_and_views) {
    /* the Fashion-MNIST CNN */
    layer_spec sp[10] = {sp_conv2d(16, 3, 3, 0, 0, PAD_VALID), sp_kind(LAYER_RELU),
                         sp_pool(LAYER_MAXPOOL2D, 2, 2, 0, 0, PAD_VALID),
                         sp_conv2d(32, 3, 3, 0, 0, PAD_VALID), sp_kind(LAYER_RELU),
                         sp_pool(LAYER_MAXPOOL2D, 2, 2, 0, 0, PAD_VALID), sp_kind(LAYER_FLATTEN),
                         sp_dense(64), sp_kind(LAYER_RELU), sp_dense(10)};
    sp[0].in_shape[0] = 28; sp[0].in_shape[1] = 28; sp[0].in_shape[2] = 1;
    nl_error e = {0};
    model *m = model_create(sp, 10, 784, 8, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->layers[0].out_size, 26 * 26 * 16);
    ck_assert_int_eq(m->layers[2].out_size, 13 * 13 * 16);
    ck_assert_int_eq(m->layers[3].out_size, 11 * 11 * 32);
    ck_assert_int_eq(m->layers[5].out_size, 5 * 5 * 32);
    ck_assert_int_eq(m->layers[7].in_size, 800);
    ck_assert_str_eq(m->layers[0].name, "conv2d0");
    ck_assert_str_eq(m->layers[5].name, "maxpool2d1");
    const param_view *v = model_find_view(m, "conv2d1/kernel");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->len, 3 * 3 * 16 * 32);
    ck_assert_int_eq(layer_kernel_rows(&m->layers[3]), 144);
    ck_assert_int_eq(layer_kernel_cols(&m->layers[3]), 32);
    ck_assert_int_eq(layer_positions(&m->layers[3]), 121);
    ck_assert(layer_has_kernel(LAYER_CONV1D) && !layer_has_kernel(LAYER_BATCHNORM));
    /* 160 + 4640 + 51264 + 650 trainable weights, as PyTorch counts them */
    ck_assert_int_eq(model_count_weights(m), 56714);
    ck_assert_int_eq(m->n_params, 56714);
    model_free(m);

    /* a conv on a flat input without a shape: the message says what to set */
    sp[0].in_shape[0] = sp[0].in_shape[1] = sp[0].in_shape[2] = 0;
    ck_assert_ptr_null(model_create(sp, 10, 784, 8, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "input_shape"));
    ck_assert_ptr_nonnull(strstr(e.msg, "conv2d0"));
    /* a shape that does not match the features */
    sp[0].in_shape[0] = 28; sp[0].in_shape[1] = 27; sp[0].in_shape[2] = 1;
    ck_assert_ptr_null(model_create(sp, 10, 784, 8, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "784"));
    /* conv1d on 2-D data */
    layer_spec s1[2] = {sp_conv1d(2, 3, 1, PAD_VALID), sp_dense(2)};
    s1[0].in_shape[0] = 4; s1[0].in_shape[1] = 4; s1[0].in_shape[2] = 1;
    ck_assert_ptr_null(model_create(s1, 2, 16, 8, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "1-D"));
    /* bad dropout rate, batchnorm epsilon, filters */
    layer_spec sd[2] = {sp_kind(LAYER_DROPOUT), sp_dense(2)};
    sd[0].rate = 1.0f;
    ck_assert_ptr_null(model_create(sd, 2, 16, 8, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "rate"));
    sd[0] = sp_bn();
    sd[0].epsilon = 0;
    ck_assert_ptr_null(model_create(sd, 2, 16, 8, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "epsilon"));
    s1[0].in_shape[0] = 1;
    s1[0].in_shape[1] = 16;
    s1[0].filters = 0;
    ck_assert_ptr_null(model_create(s1, 2, 16, 8, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "filters"));
    ck_assert_str_eq(layer_kind_name(LAYER_MAXPOOL1D), "maxpool1d");
    ck_assert_ptr_null(layer_kind_name(LAYER_KIND_COUNT));
}
END_TEST

/* ---- learning ------------------------------------------------------------------- */

/* 8x8 images with a 2x2 bright square: class = the quadrant it lies in. A
 * CNN with BatchNorm and Dropout must learn it; evaluation is deterministic. */
START_TEST(test_cnn_learns_quadrants) {
    const int N = 1200, NT = 400, D = 64;
    float *x = calloc((size_t)(N + NT) * D, sizeof(float));
    int32_t *y = malloc(sizeof(int32_t) * (N + NT));
    rng_t r;
    rng_seed(&r, 77);
    for (int s = 0; s < N + NT; s++) {
        int py = (int)rng_below(&r, 7), px = (int)rng_below(&r, 7);
        for (int j = 0; j < D; j++) x[(long)s * D + j] = 0.3f * (float)rng_uniform(&r);
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) x[(long)s * D + (py + dy) * 8 + px + dx] += 1.0f;
        y[s] = (py + 1 > 3 ? 2 : 0) + (px + 1 > 3 ? 1 : 0);
    }
    layer_spec sp[9] = {sp_conv2d(8, 3, 3, 1, 1, PAD_SAME), sp_bn(), sp_kind(LAYER_RELU),
                        sp_pool(LAYER_MAXPOOL2D, 2, 2, 0, 0, PAD_VALID),
                        sp_conv2d(8, 3, 3, 1, 1, PAD_SAME), sp_kind(LAYER_RELU),
                        sp_kind(LAYER_FLATTEN), sp_kind(LAYER_DROPOUT), sp_dense(4)};
    sp[0].in_shape[0] = 8; sp[0].in_shape[1] = 8; sp[0].in_shape[2] = 1;
    sp[7].rate = 0.1f;
    nl_error e = {0};
    model *m = model_create(sp, 9, D, 64, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    model_init_params(m, &r);
    optim o;
    ck_assert_int_eq(optim_init(&o, OPT_ADAM, m->n_params, &e), NL_OK);
    o.lr = 3e-3f;
    o.beta1 = 0.9f; o.beta2 = 0.999f; o.eps = 1e-7f;
    epoch_stats st;
    for (int ep = 0; ep < 6; ep++)
        ck_assert_int_eq(nn_train_epoch(m, &o, x, y, N, 32, &r, NULL, &st, &e), NL_OK);
    ck_assert_int_eq(m->training, 0);
    epoch_stats ev, ev2;
    ck_assert_int_eq(nn_evaluate(m, x + (long)N * D, y + N, NT, NULL, &ev, NULL, &e), NL_OK);
    ck_assert_msg(ev.accuracy > 0.95, "held-out accuracy %.3f", ev.accuracy);
    ck_assert_int_eq(nn_evaluate(m, x + (long)N * D, y + N, NT, NULL, &ev2, NULL, &e), NL_OK);
    ck_assert(ev.loss == ev2.loss);
    optim_free(&o);
    model_free(m);
    free(x);
    free(y);
}
END_TEST

Suite *make_layers_suite(void) {
    Suite *s = suite_create("layers");
    TCase *k = tcase_create("kernels");
    tcase_add_test(k, test_geom);
    tcase_add_test(k, test_conv_by_hand);
    tcase_add_loop_test(k, test_conv_matches_ref, 0, (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_test(k, test_pool_by_hand);
    tcase_add_test(k, test_activations_by_hand);
    suite_add_tcase(s, k);
    TCase *g = tcase_create("gradients");
    tcase_add_test(g, test_grad_conv2d_pool_tanh_sigmoid);
    tcase_add_test(g, test_grad_strided_avgpool_bn_hardtanh_leaky);
    tcase_add_test(g, test_grad_conv1d_dropout_bn_dense);
    tcase_add_test(g, test_forward_batched_equals_single);
    suite_add_tcase(s, g);
    TCase *b = tcase_create("batchnorm_dropout");
    tcase_add_test(b, test_batchnorm_statistics);
    tcase_add_test(b, test_batchnorm_fold);
    tcase_add_test(b, test_dropout);
    suite_add_tcase(s, b);
    TCase *m = tcase_create("model");
    tcase_add_test(m, test_shapes_and_views);
    tcase_add_test(m, test_cnn_learns_quadrants);
    tcase_set_timeout(m, 60);
    suite_add_tcase(s, m);
    return s;
}
