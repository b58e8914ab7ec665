/* check_nn.c — the nn core: BLAS kernels against the naive references on
 * awkward sizes, central-difference gradient checks (Dense, ReLU, loss, a
 * whole model), hand-computed optimizer steps, the model's layout and
 * errors, the training loop's hooks, and a small MLP that must learn a
 * separable problem deterministically; batch-parallel passes against one
 * thread and against themselves. QUANT layers have their own TCase. */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/nn.h"
#include "testutil.h"

static void fill_uniform(float *a, long n, rng_t *r, float lo, float hi) {
    for (long j = 0; j < n; j++) a[j] = lo + (hi - lo) * (float)rng_uniform(r);
}

static layer_spec spec_dense(int units) {
    layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = LAYER_DENSE;
    s.units = units;
    return s;
}

static layer_spec spec_kind(layer_kind k) {
    layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = k;
    return s;
}

/* ---- kernels against references -------------------------------------- */

static const int sizes[] = {1, 3, 7, 17, 33};

START_TEST(test_dense_forward_matches_ref) {
    rng_t r;
    rng_seed(&r, 11);
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++)
            for (int c = 0; c < 5; c++) {
                int B = sizes[a], IN = sizes[b], OUT = sizes[c];
                float *in = malloc(sizeof(float) * B * IN), *w = malloc(sizeof(float) * IN * OUT);
                float *bias = malloc(sizeof(float) * OUT);
                float *o1 = malloc(sizeof(float) * B * OUT), *o2 = malloc(sizeof(float) * B * OUT);
                fill_uniform(in, (long)B * IN, &r, -1, 1);
                fill_uniform(w, (long)IN * OUT, &r, -1, 1);
                fill_uniform(bias, OUT, &r, -1, 1);
                fill_uniform(o1, (long)B * OUT, &r, 5, 6); /* garbage must be overwritten */
                dense_forward(o1, in, w, bias, B, IN, OUT);
                dense_forward_ref(o2, in, w, bias, B, IN, OUT);
                char what[64];
                snprintf(what, sizeof what, "forward B%d IN%d OUT%d", B, IN, OUT);
                tu_assert_close(o1, o2, (long)B * OUT, 1e-5, 1e-5, what);
                /* no bias */
                dense_forward(o1, in, w, NULL, B, IN, OUT);
                dense_forward_ref(o2, in, w, NULL, B, IN, OUT);
                tu_assert_close(o1, o2, (long)B * OUT, 1e-5, 1e-5, what);
                free(in); free(w); free(bias); free(o1); free(o2);
            }
    /* one exact hand case: [1 2] @ [[1 2 3] [4 5 6]] + [0.5 0 -1] */
    float in[2] = {1, 2}, w[6] = {1, 2, 3, 4, 5, 6}, b[3] = {0.5f, 0, -1}, out[3];
    dense_forward(out, in, w, b, 1, 2, 3);
    ck_assert_float_eq(out[0], 9.5f);
    ck_assert_float_eq(out[1], 12.0f);
    ck_assert_float_eq(out[2], 14.0f);
}
END_TEST

START_TEST(test_dense_backward_matches_ref) {
    rng_t r;
    rng_seed(&r, 12);
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++)
            for (int c = 0; c < 5; c++) {
                int B = sizes[a], IN = sizes[b], OUT = sizes[c];
                long nin = (long)B * IN, nw = (long)IN * OUT, nout = (long)B * OUT;
                float *in = malloc(sizeof(float) * nin), *w = malloc(sizeof(float) * nw);
                float *dout = malloc(sizeof(float) * nout);
                float *din1 = malloc(sizeof(float) * nin), *din2 = malloc(sizeof(float) * nin);
                float *dw1 = malloc(sizeof(float) * nw), *dw2 = malloc(sizeof(float) * nw);
                float *db1 = malloc(sizeof(float) * OUT), *db2 = malloc(sizeof(float) * OUT);
                fill_uniform(in, nin, &r, -1, 1);
                fill_uniform(w, nw, &r, -1, 1);
                fill_uniform(dout, nout, &r, -1, 1);
                /* accumulation: both start from the same non-zero grads */
                fill_uniform(dw1, nw, &r, -1, 1);
                memcpy(dw2, dw1, sizeof(float) * nw);
                fill_uniform(db1, OUT, &r, -1, 1);
                memcpy(db2, db1, sizeof(float) * OUT);
                fill_uniform(din1, nin, &r, 5, 6);
                dense_backward(din1, dw1, db1, dout, in, w, B, IN, OUT);
                dense_backward_ref(din2, dw2, db2, dout, in, w, B, IN, OUT);
                char what[64];
                snprintf(what, sizeof what, "B%d IN%d OUT%d", B, IN, OUT);
                tu_assert_close(dw1, dw2, nw, 1e-5, 1e-5, what);
                tu_assert_close(db1, db2, OUT, 1e-5, 1e-5, what);
                tu_assert_close(din1, din2, nin, 1e-5, 1e-5, what);
                /* din = NULL: weights' gradients still right */
                memcpy(dw1, dw2, sizeof(float) * nw);
                dense_backward(NULL, dw1, NULL, dout, in, w, B, IN, OUT);
                dense_backward_ref(NULL, dw2, NULL, dout, in, w, B, IN, OUT);
                tu_assert_close(dw1, dw2, nw, 1e-5, 1e-5, what);
                free(in); free(w); free(dout); free(din1); free(din2);
                free(dw1); free(dw2); free(db1); free(db2);
            }
}
END_TEST

/* L = sum(out .* R): dL/dout = R; central differences on w, b and in. */
static double dense_probe(const float *in, const float *w, const float *b, const float *R,
                          int B, int IN, int OUT) {
    float out[64];
    dense_forward(out, in, w, b, B, IN, OUT);
    double s = 0;
    for (int j = 0; j < B * OUT; j++) s += (double)out[j] * R[j];
    return s;
}

START_TEST(test_dense_gradcheck) {
    enum { B = 3, IN = 5, OUT = 4 };
    rng_t r;
    rng_seed(&r, 13);
    float in[B * IN], w[IN * OUT], b[OUT], R[B * OUT];
    fill_uniform(in, B * IN, &r, -1, 1);
    fill_uniform(w, IN * OUT, &r, -1, 1);
    fill_uniform(b, OUT, &r, -1, 1);
    fill_uniform(R, B * OUT, &r, -1, 1);
    float din[B * IN], dw[IN * OUT] = {0}, db[OUT] = {0};
    dense_backward(din, dw, db, R, in, w, B, IN, OUT);
    const float h = 1e-2f;
    float num[IN * OUT];
    for (int j = 0; j < IN * OUT; j++) {
        float s = w[j];
        w[j] = s + h; double lp = dense_probe(in, w, b, R, B, IN, OUT);
        w[j] = s - h; double lm = dense_probe(in, w, b, R, B, IN, OUT);
        w[j] = s;
        num[j] = (float)((lp - lm) / (2 * h));
    }
    tu_assert_close(dw, num, IN * OUT, 1e-4, 1e-3, "dL/dW");
    for (int j = 0; j < OUT; j++) {
        float s = b[j];
        b[j] = s + h; double lp = dense_probe(in, w, b, R, B, IN, OUT);
        b[j] = s - h; double lm = dense_probe(in, w, b, R, B, IN, OUT);
        b[j] = s;
        num[j] = (float)((lp - lm) / (2 * h));
    }
    tu_assert_close(db, num, OUT, 1e-4, 1e-3, "dL/db");
    for (int j = 0; j < B * IN; j++) {
        float s = in[j];
        in[j] = s + h; double lp = dense_probe(in, w, b, R, B, IN, OUT);
        in[j] = s - h; double lm = dense_probe(in, w, b, R, B, IN, OUT);
        in[j] = s;
        num[j] = (float)((lp - lm) / (2 * h));
    }
    tu_assert_close(din, num, B * IN, 1e-4, 1e-3, "dL/din");
}
END_TEST

/* ---- loss ------------------------------------------------------------- */

START_TEST(test_loss_hand_values_and_stability) {
    float z[6] = {1, 2, 3, 1000, 1001, 1002};
    int32_t y[2] = {2, 0};
    float d[6];
    int correct = -1;
    /* row 0: log(e^1+e^2+e^3) - 3 = 0.40760596; row 1 (shifted by 999,
     * label 0): log(e^1+e^2+e^3) - 1 = 2.40760596; mean 1.40760596 */
    float L = loss_softmax_xent(z, y, 2, 3, d, &correct);
    ck_assert_double_eq_tol(L, 1.40760596, 1e-6);
    ck_assert_int_eq(correct, 1);
    /* softmax(1,2,3) = 0.09003057, 0.24472847, 0.66524096; / B = 2 */
    const float want[6] = {0.09003057f / 2, 0.24472847f / 2, (0.66524096f - 1) / 2,
                           (0.09003057f - 1) / 2, 0.24472847f / 2, 0.66524096f / 2};
    tu_assert_close(d, want, 6, 1e-7, 1e-6, "dlogits");
    /* without dlogits, same loss */
    ck_assert_float_eq(loss_softmax_xent(z, y, 2, 3, NULL, NULL), L);
    /* NaN propagates */
    z[1] = NAN;
    ck_assert(isnan(loss_softmax_xent(z, y, 2, 3, NULL, NULL)));
}
END_TEST

START_TEST(test_loss_gradcheck) {
    enum { B = 4, C = 6 };
    rng_t r;
    rng_seed(&r, 14);
    float z[B * C], d[B * C], num[B * C];
    int32_t y[B] = {0, 5, 2, 2};
    fill_uniform(z, B * C, &r, -3, 3);
    loss_softmax_xent(z, y, B, C, d, NULL);
    const float h = 1e-2f;
    for (int j = 0; j < B * C; j++) {
        float s = z[j];
        z[j] = s + h; double lp = loss_softmax_xent(z, y, B, C, NULL, NULL);
        z[j] = s - h; double lm = loss_softmax_xent(z, y, B, C, NULL, NULL);
        z[j] = s;
        num[j] = (float)((lp - lm) / (2 * h));
    }
    tu_assert_close(d, num, B * C, 2e-4, 1e-2, "dL/dlogits");
    /* each row of dlogits sums to 0 */
    for (int s = 0; s < B; s++) {
        double t = 0;
        for (int c = 0; c < C; c++) t += d[s * C + c];
        ck_assert_double_eq_tol(t, 0, 1e-6);
    }
}
END_TEST

/* ---- model ------------------------------------------------------------ */

START_TEST(test_model_layout_and_views) {
    layer_spec sp[5] = {spec_dense(4), spec_kind(LAYER_RELU), spec_dense(3),
                        spec_kind(LAYER_RELU), spec_dense(2)};
    snprintf(sp[2].name, sizeof sp[2].name, "hidden");
    const char *xn[2] = {"prune/thresholds", "prune/gate"};
    const long xl[2] = {3, 5};
    nl_error e = {0};
    model *m = model_create(sp, 5, 6, 8, xn, xl, 2, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->out_size, 2);
    ck_assert_str_eq(m->layers[0].name, "dense0");
    ck_assert_str_eq(m->layers[1].name, "relu0");
    ck_assert_str_eq(m->layers[2].name, "hidden");
    ck_assert_str_eq(m->layers[3].name, "relu1");
    ck_assert_str_eq(m->layers[4].name, "dense2");
    /* 6*4+4 + 4*3+3 + 3*2+2 = 51 weights, + 8 extra */
    ck_assert_int_eq(model_count_weights(m), 51);
    ck_assert_int_eq(m->n_params, 59);
    ck_assert_int_eq(m->n_views, 8);
    const param_view *v = model_find_view(m, "hidden/kernel");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->off, 28);
    ck_assert_int_eq(v->len, 12);
    ck_assert_int_eq(v->layer, 2);
    v = model_find_view(m, "dense2/bias");
    ck_assert_int_eq(v->off, 49);
    ck_assert_int_eq(v->len, 2);
    v = model_find_view(m, "prune/gate");
    ck_assert_int_eq(v->off, 54);
    ck_assert_int_eq(v->len, 5);
    ck_assert_int_eq(v->layer, -1);
    ck_assert_ptr_null(model_find_view(m, "dense1/kernel"));
    ck_assert_int_eq(m->layers[2].w_off, 28);
    ck_assert_int_eq(m->layers[2].b_off, 40);
    ck_assert_int_eq(m->layers[1].w_off, -1);
    /* He-uniform init: kernels in +-sqrt(6/fan_in), not all equal; biases 0 */
    rng_t r;
    rng_seed(&r, 1);
    model_init_params(m, &r);
    double lim0 = sqrt(6.0 / 6), s2 = 0;
    for (int j = 0; j < 24; j++) {
        ck_assert(fabs(m->params[j]) <= lim0);
        s2 += m->params[j] * m->params[j];
    }
    /* E[w^2] = lim^2 / 3 for U(-lim, lim): 24 draws land within 0.4-1.6x */
    double expect = 24 * lim0 * lim0 / 3;
    ck_assert_msg(s2 > 0.4 * expect && s2 < 1.6 * expect, "sum w^2 %.3f vs %.3f", s2, expect);
    for (int j = 24; j < 28; j++) ck_assert_float_eq(m->params[j], 0);
    for (int j = 51; j < 59; j++) ck_assert_float_eq(m->params[j], 0);
    ck_assert_int_eq(memcmp(m->params, m->weff, sizeof(float) * 59), 0);
    model_free(m);
    model_free(NULL);
}
END_TEST

START_TEST(test_model_create_errors) {
    nl_error e = {0};
    layer_spec sp[3] = {spec_dense(4), spec_kind(LAYER_RELU), spec_dense(0)};
    ck_assert_ptr_null(model_create(sp, 0, 3, 4, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "no layers"));
    ck_assert_ptr_null(model_create(sp, 3, 3, 4, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "dense1"));
    ck_assert_int_eq(e.code, NL_ERR_CONFIG);
    sp[2].units = 2;
    snprintf(sp[2].name, sizeof sp[2].name, "dense0");
    ck_assert_ptr_null(model_create(sp, 3, 3, 4, NULL, NULL, 0, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "'dense0'"));
    sp[2].name[0] = 0;
    const char *xn[1] = {"dense0/kernel"};
    const long xl[1] = {2};
    ck_assert_ptr_null(model_create(sp, 3, 3, 4, xn, xl, 1, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "dense0/kernel"));
    model *m = model_create(sp, 3, 3, 4, NULL, NULL, 0, &e);
    ck_assert_ptr_nonnull(m);
    model_free(m);
}
END_TEST

/* Mean xent loss of the model at its current weff, accumulated in double. */
static double model_loss(model *m, const float *x, const int32_t *y, int B) {
    const float *z = model_forward(m, x, B);
    return loss_softmax_xent(z, y, B, m->out_size, NULL, NULL);
}

START_TEST(test_model_gradcheck_end_to_end) {
    enum { B = 5, IN = 4 };
    layer_spec sp[5] = {spec_dense(6), spec_kind(LAYER_RELU), spec_dense(5),
                        spec_kind(LAYER_RELU), spec_dense(3)};
    const char *xn[1] = {"extra"};
    const long xl[1] = {4};
    nl_error e = {0};
    model *m = model_create(sp, 5, IN, B, xn, xl, 1, &e);
    ck_assert_ptr_nonnull(m);
    rng_t r;
    rng_seed(&r, 15);
    model_init_params(m, &r);
    /* non-zero biases so that ReLU kinks are generic */
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind == LAYER_DENSE)
            fill_uniform(m->params + m->layers[l].b_off, m->layers[l].out_size, &r, -0.3f, 0.3f);
    model_sync_weff(m);
    float x[B * IN];
    int32_t y[B] = {0, 1, 2, 1, 0};
    fill_uniform(x, B * IN, &r, -1, 1);
    /* grads are zeroed by backward: poison them first */
    for (long j = 0; j < m->n_params; j++) m->grads[j] = 77;
    const float *z = model_forward(m, x, B);
    float d[B * 3];
    loss_softmax_xent(z, y, B, 3, d, NULL);
    model_backward(m, x, d, B);
    float *num = malloc(sizeof(float) * m->n_params);
    const float h = 1e-3f;
    for (long j = 0; j < m->n_params; j++) {
        float s = m->weff[j];
        m->weff[j] = s + h; double lp = model_loss(m, x, y, B);
        m->weff[j] = s - h; double lm = model_loss(m, x, y, B);
        m->weff[j] = s;
        num[j] = (float)((lp - lm) / (2 * h));
    }
    tu_assert_close(m->grads, num, m->n_params, 3e-4, 2e-2, "dL/dweff");
    /* gradients are not trivially zero */
    double gn = 0;
    for (long j = 0; j < model_count_weights(m); j++) gn += fabs(m->grads[j]);
    ck_assert(gn > 0.1);
    for (long j = model_count_weights(m); j < m->n_params; j++) ck_assert_float_eq(m->grads[j], 0);
    free(num);
    model_free(m);
}
END_TEST

START_TEST(test_relu_layer_gradcheck) {
    /* a model made of one ReLU then a Dense: the ReLU's backward is checked
     * through dL/dx of a Dense in front (x -> dense -> relu -> dense) with
     * pre-activations kept away from 0 */
    enum { B = 3, IN = 3 };
    layer_spec sp[3] = {spec_dense(4), spec_kind(LAYER_RELU), spec_dense(2)};
    nl_error e = {0};
    model *m = model_create(sp, 3, IN, B, NULL, NULL, 0, &e);
    rng_t r;
    float x[B * IN];
    int32_t y[B] = {0, 1, 1};
    const float *z = NULL;
    /* the first seed from 16 on whose pre-activations all keep |a| > 0.02 */
    for (uint64_t seed = 16;; seed++) {
        ck_assert(seed < 100);
        rng_seed(&r, seed);
        model_init_params(m, &r);
        fill_uniform(x, B * IN, &r, -1, 1);
        z = model_forward(m, x, B);
        int near = 0;
        for (int j = 0; j < B * 4; j++) near += fabsf(m->layers[0].out[j]) <= 0.02f;
        if (!near) break;
    }
    int neg = 0, pos = 0;
    for (int j = 0; j < B * 4; j++) {
        float a = m->layers[0].out[j];
        neg += a < 0;
        pos += a > 0;
        ck_assert_float_eq(m->layers[1].out[j], a > 0 ? a : 0);
    }
    ck_assert(neg > 0 && pos > 0); /* both sides of the kink are exercised */
    float d[B * 2];
    loss_softmax_xent(z, y, B, 2, d, NULL);
    model_backward(m, x, d, B);
    const param_view *k0 = model_find_view(m, "dense0/kernel");
    const float h = 1e-3f;
    float num[12];
    for (int j = 0; j < 12; j++) {
        float *p = m->weff + k0->off + j, s = *p;
        *p = s + h; double lp = model_loss(m, x, y, B);
        *p = s - h; double lm = model_loss(m, x, y, B);
        *p = s;
        num[j] = (float)((lp - lm) / (2 * h));
    }
    tu_assert_close(m->grads + k0->off, num, 12, 2e-4, 1e-2, "dL/dW0 through relu");
    model_free(m);
}
END_TEST

/* A batch larger than the internal chunk (256 rows) against the same
 * samples one at a time: logits equal, and the gradients (linear in
 * dlogits) equal the sum of the per-sample gradients. */
static void check_big_batch(const layer_spec *sp, int ns, int IN, int B, uint64_t seed) {
    nl_error e = {0};
    model *m = model_create(sp, ns, IN, B, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, seed);
    model_init_params(m, &r);
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind == LAYER_DENSE)
            fill_uniform(m->params + m->layers[l].b_off, m->layers[l].out_size, &r, -0.3f, 0.3f);
    model_sync_weff(m);
    const int C = m->out_size;
    float *x = malloc(sizeof(float) * B * IN), *z = malloc(sizeof(float) * B * C);
    float *d = malloc(sizeof(float) * B * C), *g = malloc(sizeof(float) * m->n_params);
    double *gsum = calloc((size_t)m->n_params, sizeof(double));
    fill_uniform(x, (long)B * IN, &r, -1.5f, 1.5f);
    fill_uniform(d, (long)B * C, &r, -1, 1);
    memcpy(z, model_forward(m, x, B), sizeof(float) * B * C);
    float *dcopy = malloc(sizeof(float) * B * C);
    memcpy(dcopy, d, sizeof(float) * B * C);
    model_backward(m, x, d, B);
    ck_assert_int_eq(memcmp(d, dcopy, sizeof(float) * B * C), 0); /* dlogits is const */
    free(dcopy);
    memcpy(g, m->grads, sizeof(float) * m->n_params);
    float *zs = malloc(sizeof(float) * B * C);
    for (int s = 0; s < B; s++) {
        memcpy(zs + (long)s * C, model_forward(m, x + (long)s * IN, 1), sizeof(float) * C);
        model_backward(m, x + (long)s * IN, d + (long)s * C, 1);
        for (long j = 0; j < m->n_params; j++) gsum[j] += m->grads[j];
    }
    tu_assert_close(z, zs, (long)B * C, 1e-5, 1e-5, "chunked logits");
    float *gs = malloc(sizeof(float) * m->n_params);
    double gmax = 0;
    for (long j = 0; j < m->n_params; j++) {
        gs[j] = (float)gsum[j];
        gmax = fmax(gmax, fabs(gsum[j]));
    }
    ck_assert(gmax > 1); /* 600 samples of O(1) gradients */
    tu_assert_close(g, gs, m->n_params, 1e-4 * gmax, 1e-4, "chunked grads");
    free(x); free(z); free(d); free(g); free(gsum); free(zs); free(gs);
    model_free(m);
}

START_TEST(test_big_batch_chunks) {
    layer_spec sp[5] = {spec_dense(9), spec_kind(LAYER_RELU), spec_dense(6),
                        spec_kind(LAYER_RELU), spec_dense(3)};
    check_big_batch(sp, 5, 5, 600, 21);
}
END_TEST

/* ---- initializers (model_init_params_with) ------------------------------ */

/* Dense 50 -> 40 and Conv2D 3x3, 4 -> 8 channels (fan_in 36, Keras fan_out
 * 72): each scheme's half-width by hand; the largest |w| of a layer must be
 * within 3 % under it (2000 / 288 uniform draws) and never above; biases 0
 * except for pytorch, whose biases use the kernel's half-width. */
START_TEST(test_init_schemes_limits) {
    layer_spec sp[4];
    for (int l = 0; l < 4; l++) memset(&sp[l], 0, sizeof sp[l]);
    sp[0].kind = (layer_kind)LAYER_CONV2D; sp[0].filters = 8; sp[0].kernel[0] = 3; sp[0].kernel[1] = 3;
    sp[0].in_shape[0] = 5; sp[0].in_shape[1] = 5; sp[0].in_shape[2] = 4;  /* 3x3x8 = 72 out */
    sp[1].kind = (layer_kind)LAYER_FLATTEN;
    sp[2] = spec_dense(50);
    sp[3] = spec_dense(40);
    nl_error e = {0};
    model *m = model_create(sp, 4, 100, 2, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    const double lim[4][2] = {
        /* conv (fan_in 36, fan_out 72), dense 50 -> 40 */
        {0.40824829, 0.34641016}, /* he_uniform: sqrt(6 / fan_in) */
        {0.23570226, 0.25819889}, /* glorot_uniform: sqrt(6 / (fan_in + fan_out)) */
        {0.28867513, 0.24494897}, /* lecun_uniform: sqrt(3 / fan_in) */
        {0.16666667, 0.14142136}, /* pytorch: 1 / sqrt(fan_in) */
    };
    const int kl[2] = {0, 3};
    for (int scheme = 0; scheme < 4; scheme++) {
        rng_t r;
        rng_seed(&r, 7);
        model_init_params_with(m, &r, (nn_init)scheme);
        for (int k = 0; k < 2; k++) {
            const layer *L = &m->layers[kl[k]];
            long n = (long)layer_kernel_rows(L) * layer_kernel_cols(L);
            double mx = 0, bmx = 0;
            for (long j = 0; j < n; j++) mx = fmax(mx, fabs(m->params[L->w_off + j]));
            for (int j = 0; j < layer_kernel_cols(L); j++)
                bmx = fmax(bmx, fabs(m->params[L->b_off + j]));
            ck_assert_msg(mx <= lim[scheme][k] && mx > 0.97 * lim[scheme][k],
                          "scheme %d layer %d: max |w| %.5f, half-width %.5f", scheme, kl[k], mx,
                          lim[scheme][k]);
            if (scheme == NN_INIT_PYTORCH)
                ck_assert_msg(bmx <= lim[scheme][k] && bmx > 0.5 * lim[scheme][k],
                              "pytorch bias max %.5f", bmx);
            else
                ck_assert_float_eq(bmx, 0);
        }
    }
    /* model_init_params is he_uniform, draw for draw */
    rng_t r1, r2;
    rng_seed(&r1, 3);
    rng_seed(&r2, 3);
    model_init_params(m, &r1);
    float *copy = malloc((size_t)m->n_params * sizeof *copy);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, m->params, (size_t)m->n_params * sizeof *copy);
    model_init_params_with(m, &r2, NN_INIT_HE_UNIFORM);
    ck_assert_int_eq(memcmp(copy, m->params, (size_t)m->n_params * sizeof *copy), 0);
    free(copy);
    model_free(m);
}
END_TEST

/* ---- batch-parallel passes (model_set_threads) ------------------------ */

/* A model on (8, 7, 2) inputs from n specs, initialised from seed, with
 * its pass thread count set. */
static model *par_build(const layer_spec *sp, int n, int max_batch, int threads, uint64_t seed) {
    nl_error e = {0};
    model *m = model_create(sp, n, 8 * 7 * 2, max_batch, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, seed);
    model_init_params(m, &r);
    model_set_threads(m, threads);
    return m;
}

/* A small CNN on (8, 7, 2) inputs: conv same, relu, maxpool, conv valid,
 * tanh, avgpool, flatten, dense, relu, dense. */
static model *par_cnn(int max_batch, int threads, uint64_t seed) {
    layer_spec sp[10];
    for (int l = 0; l < 10; l++) memset(&sp[l], 0, sizeof sp[l]);
    sp[0].kind = (layer_kind)LAYER_CONV2D; sp[0].filters = 4; sp[0].kernel[0] = 3; sp[0].kernel[1] = 3;
    sp[0].padding = PAD_SAME;
    sp[0].in_shape[0] = 8; sp[0].in_shape[1] = 7; sp[0].in_shape[2] = 2;
    sp[1].kind = (layer_kind)LAYER_RELU;
    sp[2].kind = (layer_kind)LAYER_MAXPOOL2D; sp[2].pool[0] = 2; sp[2].pool[1] = 2;   /* 4x3x4 */
    sp[3].kind = (layer_kind)LAYER_CONV2D; sp[3].filters = 5; sp[3].kernel[0] = 2; sp[3].kernel[1] = 2;
    sp[4].kind = (layer_kind)LAYER_TANH;                                               /* 3x2x5 */
    sp[5].kind = (layer_kind)LAYER_AVGPOOL2D; sp[5].pool[0] = 2; sp[5].pool[1] = 2;
    sp[5].padding = PAD_SAME;                                              /* 2x1x5 */
    sp[6].kind = (layer_kind)LAYER_FLATTEN;
    sp[7] = spec_dense(6);
    sp[8].kind = (layer_kind)LAYER_RELU;
    sp[9] = spec_dense(3);
    return par_build(sp, 10, max_batch, threads, seed);
}

/* Forward + backward of B = 600 (several chunks per thread, uneven slices
 * for 3 threads) on n threads against 1 thread: equal up to summation
 * order; the same n twice: bit-identical. */
START_TEST(test_parallel_passes_match_serial) {
    enum { B = 600, IN = 8 * 7 * 2 };
    model *ref = par_cnn(B, 1, 77);
    const int C = ref->out_size;
    const long NP = ref->n_params;
    rng_t r;
    rng_seed(&r, 5);
    float *x = malloc(sizeof(float) * B * IN), *d = malloc(sizeof(float) * B * C);
    fill_uniform(x, (long)B * IN, &r, -1.5f, 1.5f);
    fill_uniform(d, (long)B * C, &r, -1, 1);
    float *z1 = malloc(sizeof(float) * B * C), *g1 = malloc(sizeof(float) * NP);
    memcpy(z1, model_forward(ref, x, B), sizeof(float) * B * C);
    model_backward(ref, x, d, B);
    memcpy(g1, ref->grads, sizeof(float) * NP);
    ck_assert(ref->pool == NULL); /* 1 thread: no pool */
    double gmax = 0;
    for (long j = 0; j < NP; j++) gmax = fmax(gmax, fabs(g1[j]));
    ck_assert(gmax > 1);
    for (int n = 2; n <= 3; n++) {
        model *m = par_cnn(B, n, 77);
        float *z = malloc(sizeof(float) * B * C), *g = malloc(sizeof(float) * NP);
        memcpy(z, model_forward(m, x, B), sizeof(float) * B * C);
        model_backward(m, x, d, B);
        ck_assert_msg(m->pool != NULL, "%d threads: the pool did not run", n);
        memcpy(g, m->grads, sizeof(float) * NP);
        tu_assert_close(z, z1, (long)B * C, 1e-6, 1e-5, "parallel logits");
        tu_assert_close(g, g1, NP, 1e-5 * gmax, 1e-5, "parallel grads");
        /* again on the same model: bit-identical */
        ck_assert_int_eq(memcmp(model_forward(m, x, B), z, sizeof(float) * B * C), 0);
        model_backward(m, x, d, B);
        ck_assert_int_eq(memcmp(m->grads, g, sizeof(float) * NP), 0);
        /* a batch too small to split runs serially and matches 1 thread */
        model_forward(ref, x, 9);
        model_backward(ref, x, d, 9);
        memcpy(g1, ref->grads, sizeof(float) * NP);
        model_forward(m, x, 9);
        model_backward(m, x, d, 9);
        ck_assert_int_eq(memcmp(m->grads, g1, sizeof(float) * NP), 0);
        model_forward(ref, x, B);
        model_backward(ref, x, d, B);
        memcpy(g1, ref->grads, sizeof(float) * NP);
        free(z); free(g);
        model_free(m);
    }
    free(x); free(d); free(z1); free(g1);
    model_free(ref);
}
END_TEST

/* par_cnn with BatchNorm after each convolution and Dropout after the first
 * and the last ReLU: the layers the pool cannot run inside a slice's pass.
 * Two Dropouts and B > NN_CHUNK check that both passes draw the masks in
 * the same order. */
static model *par_cnn_bn(int max_batch, int threads, uint64_t seed, int bn) {
    layer_spec sp[14];
    for (int l = 0; l < 14; l++) memset(&sp[l], 0, sizeof sp[l]);
    sp[0].kind = (layer_kind)LAYER_CONV2D; sp[0].filters = 4; sp[0].kernel[0] = 3; sp[0].kernel[1] = 3;
    sp[0].padding = PAD_SAME;
    sp[0].in_shape[0] = 8; sp[0].in_shape[1] = 7; sp[0].in_shape[2] = 2;
    sp[1].kind = (layer_kind)(bn ? LAYER_BATCHNORM : LAYER_RELU); sp[1].momentum = 0.9f; sp[1].epsilon = 1e-3f;
    sp[2].kind = (layer_kind)LAYER_RELU;
    sp[3].kind = (layer_kind)LAYER_DROPOUT; sp[3].rate = 0.25f;
    sp[4].kind = (layer_kind)LAYER_MAXPOOL2D; sp[4].pool[0] = 2; sp[4].pool[1] = 2;   /* 4x3x4 */
    sp[5].kind = (layer_kind)LAYER_CONV2D; sp[5].filters = 5; sp[5].kernel[0] = 2; sp[5].kernel[1] = 2;
    sp[6].kind = (layer_kind)(bn ? LAYER_BATCHNORM : LAYER_RELU); sp[6].momentum = 0.9f; sp[6].epsilon = 1e-3f;
    sp[7].kind = (layer_kind)LAYER_TANH;                                               /* 3x2x5 */
    sp[8].kind = (layer_kind)LAYER_AVGPOOL2D; sp[8].pool[0] = 2; sp[8].pool[1] = 2;
    sp[8].padding = PAD_SAME;
    sp[9].kind = (layer_kind)LAYER_FLATTEN;
    sp[10] = spec_dense(6);
    sp[11].kind = (layer_kind)LAYER_RELU;
    sp[12].kind = (layer_kind)LAYER_DROPOUT; sp[12].rate = 0.2f; /* a second mask stream user */
    sp[13] = spec_dense(3);
    return par_build(sp, 14, max_batch, threads, seed);
}

/* The BatchNorm + Dropout CNN in training mode (batch statistics, masks)
 * and in evaluation mode, on 2 and 3 threads against 1: logits, gradients
 * and the moving statistics equal up to summation order (the masks are
 * drawn in the same order; BatchNorm's sums are split over the slices),
 * the pool ran, and the same thread count twice is bit-identical. */
START_TEST(test_parallel_batchnorm_dropout_match_serial) {
    enum { B = 600, IN = 8 * 7 * 2 };
    rng_t r;
    rng_seed(&r, 6);
    float *x = malloc(sizeof(float) * B * IN), *d = malloc(sizeof(float) * B * 3);
    fill_uniform(x, (long)B * IN, &r, -1.5f, 1.5f);
    fill_uniform(d, (long)B * 3, &r, -1, 1);
    model *ref = par_cnn_bn(B, 1, 78, _i);
    const long NP = ref->n_params;
    float *z1 = malloc(sizeof(float) * B * 3), *g1 = malloc(sizeof(float) * NP);
    float *e1 = malloc(sizeof(float) * B * 3);
    ref->training = 1;
    memcpy(z1, model_forward(ref, x, B), sizeof(float) * B * 3);
    model_backward(ref, x, d, B);
    memcpy(g1, ref->grads, sizeof(float) * NP);
    ref->training = 0;
    memcpy(e1, model_forward(ref, x, B), sizeof(float) * B * 3);
    double gmax = 0;
    for (long j = 0; j < NP; j++) gmax = fmax(gmax, fabs(g1[j]));
    ck_assert(gmax > 0.1);
    for (int n = 2; n <= 3; n++) {
        model *m = par_cnn_bn(B, n, 78, _i);
        m->training = 1;
        tu_assert_close(model_forward(m, x, B), z1, (long)B * 3, 1e-6, 1e-5, "parallel logits (training)");
        model_backward(m, x, d, B);
        ck_assert_msg(m->pool != NULL, "%d threads: the pool did not run", n);
        tu_assert_close(m->grads, g1, NP, 1e-5 * gmax, 1e-5, "parallel grads (training)");
        tu_assert_close(m->state, ref->state, m->n_state, 1e-6, 1e-5, "BatchNorm moving statistics");
        /* the same thread count again, from scratch: bit-identical */
        model *m2 = par_cnn_bn(B, n, 78, _i);
        m2->training = 1;
        model_forward(m2, x, B);
        model_backward(m2, x, d, B);
        ck_assert_int_eq(memcmp(m2->grads, m->grads, sizeof(float) * NP), 0);
        ck_assert_int_eq(memcmp(m2->state, m->state, sizeof(float) * m->n_state), 0);
        model_free(m2);
        m->training = 0;
        tu_assert_close(model_forward(m, x, B), e1, (long)B * 3, 1e-6, 1e-5, "parallel logits (evaluation)");
        model_free(m);
    }
    free(x); free(d); free(z1); free(g1); free(e1);
    model_free(ref);
}
END_TEST

/* Training with Adam on 2 threads: two runs give bit-identical parameters,
 * and they stay within summation-order noise of the 1-thread run. */
START_TEST(test_parallel_training_deterministic) {
    enum { N = 300, IN = 8 * 7 * 2 };
    rng_t r;
    rng_seed(&r, 9);
    float *x = malloc(sizeof(float) * N * IN);
    int32_t *y = malloc(sizeof(int32_t) * N);
    fill_uniform(x, (long)N * IN, &r, -1, 1);
    for (int s = 0; s < N; s++) y[s] = (x[s * IN] + x[s * IN + 5] > 0) + (x[s * IN + 9] > 0.5f);
    float *p[3];
    for (int run = 0; run < 3; run++) {
        model *m = par_cnn(64, run == 2 ? 1 : 2, 31);
        nl_error e = {0};
        optim o = {0};
        o.lr = 0.01f;
        ck_assert_int_eq(optim_init(&o, OPT_ADAM, m->n_params, &e), NL_OK);
        rng_t rr;
        rng_seed(&rr, 4);
        epoch_stats st;
        ck_assert_int_eq(nn_train_epoch(m, &o, x, y, N, 64, &rr, NULL, &st, &e), NL_OK);
        ck_assert(!st.nonfinite);
        ck_assert_int_eq(o.t, 5);
        ck_assert((m->pool != NULL) == (run != 2));
        p[run] = malloc(sizeof(float) * m->n_params);
        memcpy(p[run], m->params, sizeof(float) * m->n_params);
        if (run == 2) {
            ck_assert_int_eq(memcmp(p[0], p[1], sizeof(float) * m->n_params), 0);
            /* Adam moves each weight by up to lr = 0.01 a step: a lost or
             * doubled slice of the batch would show far above 1e-3 */
            tu_assert_close(p[0], p[2], m->n_params, 1e-3, 1e-3, "2 vs 1 thread params");
        }
        optim_free(&o);
        model_free(m);
    }
    for (int run = 0; run < 3; run++) free(p[run]);
    free(x); free(y);
}
END_TEST

/* ---- optimizers ------------------------------------------------------- */

START_TEST(test_sgd_momentum_hand_steps) {
    nl_error e = {0};
    optim o = {0};
    o.lr = 0.1f;
    o.momentum = 0.9f;
    ck_assert_int_eq(optim_init(&o, OPT_SGD, 2, &e), NL_OK);
    ck_assert_float_eq(o.lr, 0.1f); /* kept across init */
    float p[2] = {1, -2}, g[2] = {0.5f, 1};
    /* p0: v = .5, p = .95; v = .95, p = .855; v = 1.355, p = .7195 */
    optim_step(&o, p, g);
    ck_assert_float_eq_tol(p[0], 0.95f, 1e-6);
    optim_step(&o, p, g);
    ck_assert_float_eq_tol(p[0], 0.855f, 1e-6);
    optim_step(&o, p, g);
    ck_assert_float_eq_tol(p[0], 0.7195f, 1e-6);
    ck_assert_float_eq_tol(p[1], -2 - 0.1f * (1 + 1.9f + 2.71f), 1e-6);
    ck_assert_int_eq(o.t, 3);
    /* weight decay 0.5 with momentum 0: p -= lr (g + wd p) = 1 - .1 (.5 + .5) */
    optim_reset(&o);
    o.momentum = 0;
    o.weight_decay = 0.5f;
    p[0] = 1;
    optim_step(&o, p, g);
    ck_assert_float_eq_tol(p[0], 0.9f, 1e-7);
    ck_assert_int_eq(o.t, 1);
    /* the copying step gives the same update and copies it */
    float c[2] = {0, 0}, p2[2] = {0.9f, p[1]};
    optim_step(&o, p, g);
    optim_step_copy(&o, p2, g, c);
    ck_assert_float_eq(p2[0], p[0]);
    ck_assert_float_eq(c[0], p[0]);
    ck_assert_float_eq(c[1], p2[1]);
    optim_free(&o);
    optim_free(&o); /* twice is safe */
}
END_TEST

START_TEST(test_adam_hand_steps) {
    nl_error e = {0};
    optim o = {0};
    o.lr = 0.01f;
    ck_assert_int_eq(optim_init(&o, OPT_ADAM, 3, &e), NL_OK);
    ck_assert_float_eq(o.beta1, 0.9f);
    ck_assert_float_eq(o.beta2, 0.999f);
    float p[3] = {1, -1, 0.5f};
    /* step 1: m-hat = g, v-hat = g^2, so p -= lr g/(|g| + eps) = lr sign(g) */
    float g1[3] = {0.2f, -3, 0};
    optim_step(&o, p, g1);
    ck_assert_float_eq_tol(p[0], 0.99f, 1e-6);
    ck_assert_float_eq_tol(p[1], -0.99f, 1e-6);
    ck_assert_float_eq(p[2], 0.5f); /* zero grad, zero update */
    /* step 2, g = (0.1, 1, 0): m = .9 m + .1 g, v = .999 v + .001 g^2;
     * p0: m = .028, v = 4.996e-5; mhat = .028/.19 = .1473684,
     * vhat = 4.996e-5/.001999 = .0249925, sqrt = .1580901;
     * update = .01 * .1473684/.1580901 = .00932180 -> .98067820 */
    float g2[3] = {0.1f, 1, 0};
    optim_step(&o, p, g2);
    ck_assert_float_eq_tol(p[0], 0.9806782f, 2e-6);
    /* p1: m = -.27 + .1 = -.17, v = .008991 + .001 = .009991;
     * mhat = -.8947368, vhat = 4.9979990, sqrt = 2.2356204;
     * update = -.01 * .4002197 -> -.99 + .0040022 = -.98599780 */
    ck_assert_float_eq_tol(p[1], -0.9859978f, 2e-6);
    /* step 3 against a double-precision transcription of torch.optim.Adam
     * with weight decay (decay added to the gradient before the moments) */
    optim_reset(&o);
    ck_assert_int_eq(o.t, 0);
    o.weight_decay = 0.1f;
    float q[3] = {0.3f, -0.7f, 2};
    double qd[3] = {0.3, -0.7, 2}, md[3] = {0}, vd[3] = {0};
    const float gs[3][3] = {{0.5f, -0.1f, 0.02f}, {-0.25f, 0.3f, 0.02f}, {0.1f, 0.1f, -1}};
    for (int t = 1; t <= 3; t++) {
        optim_step(&o, q, gs[t - 1]);
        double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
        for (int j = 0; j < 3; j++) {
            double gj = gs[t - 1][j] + 0.1 * qd[j];
            md[j] = 0.9 * md[j] + 0.1 * gj;
            vd[j] = 0.999 * vd[j] + 0.001 * gj * gj;
            qd[j] -= 0.01 / bc1 * md[j] / (sqrt(vd[j]) / sqrt(bc2) + 1e-8);
        }
        for (int j = 0; j < 3; j++) ck_assert_double_eq_tol(q[j], qd[j], 2e-6);
    }
    optim_free(&o);
}
END_TEST

/* ---- training loop ---------------------------------------------------- */

/* Two Gaussian blobs at (+-1.5, +-1.5) in 2-D: separable with a wide margin. */
static void make_toy(float *x, int32_t *y, long n, rng_t *r) {
    for (long s = 0; s < n; s++) {
        int lab = (int)(s & 1);
        float c = lab ? 1.5f : -1.5f;
        x[2 * s] = c + 0.4f * rng_normal(r);
        x[2 * s + 1] = c + 0.4f * rng_normal(r);
        y[s] = lab;
    }
}

static model *toy_train(const float *x, const int32_t *y, long n, optim_kind k, double *acc) {
    layer_spec sp[3] = {spec_dense(8), spec_kind(LAYER_RELU), spec_dense(2)};
    nl_error e = {0};
    model *m = model_create(sp, 3, 2, 32, NULL, NULL, 0, &e);
    rng_t r;
    rng_seed(&r, 123);
    model_init_params(m, &r);
    optim o = {0};
    o.lr = k == OPT_ADAM ? 0.01f : 0.05f;
    o.momentum = 0.9f;
    optim_init(&o, k, m->n_params, &e);
    epoch_stats st;
    for (int ep = 0; ep < 5; ep++) {
        ck_assert_int_eq(nn_train_epoch(m, &o, x, y, n, 32, &r, NULL, &st, &e), NL_OK);
        ck_assert_int_eq(st.samples, n);
        ck_assert(!st.nonfinite);
    }
    ck_assert_int_eq(o.t, 5 * ((n + 31) / 32));
    ck_assert_int_eq(nn_evaluate(m, x, y, n, NULL, &st, NULL, &e), NL_OK);
    *acc = st.accuracy;
    optim_free(&o);
    return m;
}

START_TEST(test_mlp_learns_deterministically) {
    enum { N = 500 };
    float x[2 * N];
    int32_t y[N];
    rng_t r;
    rng_seed(&r, 5);
    make_toy(x, y, N, &r);
    double a1, a2, a3;
    model *m1 = toy_train(x, y, N, OPT_ADAM, &a1);
    model *m2 = toy_train(x, y, N, OPT_ADAM, &a2);
    ck_assert_msg(a1 > 0.95, "adam accuracy %.3f", a1);
    ck_assert_double_eq(a1, a2);
    ck_assert_int_eq(memcmp(m1->params, m2->params, sizeof(float) * m1->n_params), 0);
    model *m3 = toy_train(x, y, N, OPT_SGD, &a3);
    ck_assert_msg(a3 > 0.95, "sgd accuracy %.3f", a3);
    model_free(m1);
    model_free(m2);
    model_free(m3);
}
END_TEST

static void sync_hook(void *ctx, model *m) {
    (void)ctx;
    model_sync_weff(m);
}

/* Plain training (the optimizer writes weff in its own pass) and training
 * through a pre_forward hook that syncs weff must give the same bits. */
START_TEST(test_plain_and_hooked_training_agree) {
    enum { N = 300 };
    float x[2 * N];
    int32_t y[N];
    rng_t r;
    rng_seed(&r, 6);
    make_toy(x, y, N, &r);
    for (int kind = 0; kind < 2; kind++) {
        layer_spec sp[3] = {spec_dense(8), spec_kind(LAYER_RELU), spec_dense(2)};
        nl_error e = {0};
        model *a = model_create(sp, 3, 2, 64, NULL, NULL, 0, &e);
        model *b = model_create(sp, 3, 2, 64, NULL, NULL, 0, &e);
        rng_t ra, rb;
        rng_seed(&ra, 8);
        rng_seed(&rb, 8);
        model_init_params(a, &ra);
        model_init_params(b, &rb);
        optim oa = {0}, ob = {0};
        oa.lr = ob.lr = 0.02f;
        oa.momentum = ob.momentum = 0.9f;
        oa.weight_decay = ob.weight_decay = 1e-3f;
        optim_init(&oa, kind ? OPT_ADAM : OPT_SGD, a->n_params, &e);
        optim_init(&ob, kind ? OPT_ADAM : OPT_SGD, b->n_params, &e);
        train_hooks h = {0};
        h.pre_forward = sync_hook;
        epoch_stats sa, sb;
        for (int ep = 0; ep < 2; ep++) {
            nn_train_epoch(a, &oa, x, y, N, 64, &ra, NULL, &sa, &e);
            nn_train_epoch(b, &ob, x, y, N, 64, &rb, &h, &sb, &e);
            ck_assert_double_eq(sa.loss, sb.loss);
        }
        ck_assert_int_eq(memcmp(a->params, b->params, sizeof(float) * a->n_params), 0);
        /* after plain training weff already equals params */
        ck_assert_int_eq(memcmp(a->params, a->weff, sizeof(float) * a->n_params), 0);
        optim_free(&oa);
        optim_free(&ob);
        model_free(a);
        model_free(b);
    }
}
END_TEST

typedef struct {
    int pre, post_bw, post_step, observed[4];
    long obs_rows;
    int bad_pairs;
} hook_log;

static void h_pre(void *ctx, model *m) {
    ((hook_log *)ctx)->pre++;
    model_sync_weff(m);
}
static float h_post_bw(void *ctx, model *m) {
    hook_log *L = ctx;
    L->post_bw++;
    (void)m;
    return 0.25f;
}
static void h_post_step(void *ctx, model *m) {
    ((hook_log *)ctx)->post_step++;
    (void)m;
}
static void h_observe(void *ctx, const model *m, int layer, const float *in, int B) {
    hook_log *L = ctx;
    L->observed[layer]++;
    if (layer == 0) {
        L->obs_rows += B;
        /* the gathered rows carry their label in feature 1 (x = (label + 10) / 16) */
        ck_assert_ptr_eq(in, m->xb);
        for (int s = 0; s < B; s++) L->bad_pairs += lrintf(in[s * 3 + 1] * 16) != m->yb[s] + 10;
    } else {
        ck_assert_ptr_eq(in, m->layers[layer - 1].out);
    }
}

START_TEST(test_train_epoch_hooks_and_batches) {
    enum { N = 10 };
    layer_spec sp[3] = {spec_dense(4), spec_kind(LAYER_RELU), spec_dense(3)};
    nl_error e = {0};
    model *m = model_create(sp, 3, 3, 4, NULL, NULL, 0, &e);
    rng_t r;
    rng_seed(&r, 9);
    model_init_params(m, &r);
    float x[N * 3];
    int32_t y[N];
    for (int s = 0; s < N; s++) {
        y[s] = s % 3;
        x[s * 3] = (float)s * 0.1f;
        x[s * 3 + 1] = (float)(y[s] + 10) / 16;
        x[s * 3 + 2] = -0.5f;
    }
    optim o = {0};
    o.lr = 0; /* weights stay put: the epoch's loss is then exact */
    optim_init(&o, OPT_ADAM, m->n_params, &e);
    hook_log log = {0};
    train_hooks h = {.ctx = &log, .pre_forward = h_pre, .post_backward = h_post_bw,
                     .post_step = h_post_step, .observe = h_observe};
    epoch_stats st, ev;
    openblas_set_num_threads(2);
    ck_assert_int_eq(nn_train_epoch(m, &o, x, y, N, 4, &r, &h, &st, &e), NL_OK);
    ck_assert_int_eq(log.pre, 3); /* 4 + 4 + 2 */
    ck_assert_int_eq(log.post_bw, 3);
    ck_assert_int_eq(log.post_step, 3);
    ck_assert_int_eq(openblas_get_num_threads(), 2); /* small-model override undone */
    ck_assert_int_eq(log.observed[0], 3);
    ck_assert_int_eq(log.observed[1], 3);
    ck_assert_int_eq(log.observed[2], 3);
    ck_assert_int_eq(log.obs_rows, N);
    ck_assert_int_eq(log.bad_pairs, 0);
    ck_assert_int_eq(o.t, 3);
    ck_assert_int_eq(st.samples, N);
    nn_evaluate(m, x, y, N, NULL, &ev, NULL, &e);
    ck_assert_msg(fabs(st.loss - (ev.loss + 0.25)) < 1e-5, "epoch loss %.6f vs eval %.6f + .25",
                  st.loss, ev.loss);
    ck_assert_double_eq_tol(st.accuracy, ev.accuracy, 1e-12);
    /* batch too large, labels out of range */
    ck_assert_int_eq(nn_train_epoch(m, &o, x, y, N, 5, &r, NULL, &st, &e), NL_ERR_INVALID);
    y[3] = 3;
    ck_assert_int_eq(nn_train_epoch(m, &o, x, y, N, 4, &r, NULL, &st, &e), NL_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(e.msg, "sample 3"));
    y[3] = 0;
    /* a NaN input stops the epoch at its batch */
    x[7 * 3] = NAN;
    ck_assert_int_eq(nn_train_epoch(m, &o, x, y, N, 4, &r, NULL, &st, &e), NL_OK);
    ck_assert_int_eq(st.nonfinite, 1);
    /* stopped at the batch holding sample 7: no step for it, none after */
    ck_assert_int_lt(o.t, 6);
    long upto = 4 * (o.t - 3) + 4;
    ck_assert_int_eq(st.samples, upto < N ? upto : N);
    ck_assert(isnan(st.loss));
    optim_free(&o);
    model_free(m);
}
END_TEST

START_TEST(test_evaluate_logits_and_batches) {
    enum { N = 11 };
    layer_spec sp[3] = {spec_dense(5), spec_kind(LAYER_RELU), spec_dense(3)};
    nl_error e = {0};
    model *m = model_create(sp, 3, 2, 4, NULL, NULL, 0, &e);
    rng_t r;
    rng_seed(&r, 10);
    model_init_params(m, &r);
    float x[N * 2], logits[N * 3], want[N * 3];
    int32_t y[N];
    fill_uniform(x, N * 2, &r, -2, 2);
    for (int s = 0; s < N; s++) y[s] = s % 3;
    /* params changed after the last sync: evaluate must sync */
    m->params[0] += 1;
    epoch_stats st;
    ck_assert_int_eq(nn_evaluate(m, x, y, N, NULL, &st, logits, &e), NL_OK);
    int hits = 0;
    double loss = 0;
    for (int s = 0; s < N; s++) {
        const float *z = model_forward(m, x + 2 * s, 1);
        memcpy(want + 3 * s, z, sizeof(float) * 3);
        int c;
        loss += loss_softmax_xent(z, y + s, 1, 3, NULL, &c);
        hits += c;
    }
    tu_assert_close(logits, want, N * 3, 1e-6, 1e-5, "eval logits");
    ck_assert_double_eq_tol(st.loss, loss / N, 1e-6);
    ck_assert_double_eq_tol(st.accuracy, (double)hits / N, 1e-12);
    ck_assert_int_eq(st.samples, N);
    /* weff was synced from the changed params */
    ck_assert_float_eq(m->weff[0], m->params[0]);
    model_free(m);
}
END_TEST

/* ---- QUANT layers ------------------------------------------------------ */

START_TEST(test_quant_layer_forward_and_ste) {
    /* ap_fixed<8,3> RND SAT: k=1, i=2, f=5, range [-4, 4 - 1/32] */
    layer_spec sp[2] = {spec_kind(LAYER_QUANT), spec_dense(1)};
    sp[0].quant = (fixed_spec){1, 2, 5, FX_SAT, FX_RND};
    nl_error e = {0};
    model *m = model_create(sp, 2, 4, 2, NULL, NULL, 0, &e);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->layers[0].name, "quant0");
    ck_assert_int_eq(m->layers[0].out_size, 4);
    ck_assert_int_eq(model_count_weights(m), 5);
    /* Dense sums its inputs: W = 1, b = 0 */
    for (int j = 0; j < 4; j++) m->params[j] = 1;
    model_sync_weff(m);
    float x[8] = {0.1f, 5.0f, -4.5f, 1.0f, -0.2f, 3.0f, 0.5f, -1.0f};
    const float *z = model_forward(m, x, 2);
    const float q[8] = {0.09375f, 3.96875f, -4.0f, 1.0f, -0.1875f, 3.0f, 0.5f, -1.0f};
    tu_assert_close(m->layers[0].out, q, 8, 0, 0, "quantized");
    const unsigned char pass[8] = {1, 0, 0, 1, 1, 1, 1, 1};
    for (int j = 0; j < 8; j++) ck_assert_int_eq(m->layers[0].pass[j], pass[j]);
    ck_assert_float_eq(z[0], 0.09375f + 3.96875f - 4.0f + 1.0f);
    /* the first parametric layer is the Dense after the quantizer, so no
     * gradient flows to the input: dW = sum_b q * dout, db = sum dout */
    float d[2] = {1.0f, -2.0f};
    model_backward(m, x, d, 2);
    for (int j = 0; j < 4; j++) ck_assert_float_eq_tol(m->grads[j], q[j] - 2 * q[4 + j], 1e-6);
    ck_assert_float_eq(m->grads[4], -1.0f);
    model_free(m);
}
END_TEST

START_TEST(test_quant_ste_between_dense) {
    /* x -> dense(3) -> quant -> dense(2): gradient at dense0 is the STE's:
     * dense1's din passed where the pre-activation was in range */
    enum { B = 4, IN = 2 };
    layer_spec sp[3] = {spec_dense(3), spec_kind(LAYER_QUANT), spec_dense(2)};
    sp[1].quant = (fixed_spec){1, 0, 6, FX_SAT, FX_RND}; /* range [-1, 1 - 1/64] */
    nl_error e = {0};
    model *m = model_create(sp, 3, IN, B, NULL, NULL, 0, &e);
    rng_t r;
    rng_seed(&r, 17);
    model_init_params(m, &r);
    float x[B * IN];
    fill_uniform(x, B * IN, &r, -1.5f, 1.5f);
    int32_t y[B] = {0, 1, 1, 0};
    const float *z = model_forward(m, x, B);
    int clipped = 0, inside = 0;
    for (int j = 0; j < B * 3; j++) {
        float a = m->layers[0].out[j];
        unsigned char p = m->layers[1].pass[j];
        ck_assert_int_eq(p, a >= -1 && a <= 1 - 1.0 / 64);
        clipped += !p;
        inside += p;
    }
    ck_assert(clipped > 0 && inside > 0);
    float d[B * 2];
    loss_softmax_xent(z, y, B, 2, d, NULL);
    model_backward(m, x, d, B);
    /* reference: din of dense1 masked by pass, then dense0's weight grads */
    const layer *L0 = &m->layers[0], *L2 = &m->layers[2];
    float g1[B * 3], dw0[IN * 3] = {0}, db0[3] = {0}, dw2[3 * 2] = {0}, db2[2] = {0};
    dense_backward_ref(g1, dw2, db2, d, m->layers[1].out, m->weff + L2->w_off, B, 3, 2);
    for (int j = 0; j < B * 3; j++) g1[j] = m->layers[1].pass[j] ? g1[j] : 0;
    dense_backward_ref(NULL, dw0, db0, g1, x, m->weff + L0->w_off, B, IN, 3);
    tu_assert_close(m->grads + L2->w_off, dw2, 6, 1e-6, 1e-5, "dW2");
    tu_assert_close(m->grads + L0->w_off, dw0, IN * 3, 1e-6, 1e-5, "dW0 (STE)");
    tu_assert_close(m->grads + L0->b_off, db0, 3, 1e-6, 1e-5, "db0 (STE)");
    model_free(m);
}
END_TEST

START_TEST(test_quant_big_batch_chunks) {
    layer_spec sp[5] = {spec_dense(9), spec_kind(LAYER_QUANT), spec_dense(6),
                        spec_kind(LAYER_RELU), spec_dense(3)};
    sp[1].quant = (fixed_spec){1, 1, 6, FX_SAT, FX_RND};
    check_big_batch(sp, 5, 5, 600, 22);
    /* a quantizer as the last layer (quantized logits): backward copies
     * dlogits once into its own buffer, never writing the caller's */
    layer_spec sq[4] = {spec_kind(LAYER_QUANT), spec_dense(7), spec_kind(LAYER_RELU),
                        spec_dense(3)};
    sq[0].quant = (fixed_spec){1, 2, 5, FX_SAT, FX_RND};
    layer_spec sl[5] = {sq[0], sq[1], sq[2], sq[3], spec_kind(LAYER_QUANT)};
    sl[4].quant = (fixed_spec){1, 1, 4, FX_SAT, FX_RND};
    check_big_batch(sl, 5, 4, 300, 23);
}
END_TEST

Suite *make_nn_suite(void) {
    Suite *s = suite_create("nn");
    TCase *k = tcase_create("kernels");
    tcase_add_test(k, test_dense_forward_matches_ref);
    tcase_add_test(k, test_dense_backward_matches_ref);
    tcase_add_test(k, test_dense_gradcheck);
    tcase_add_test(k, test_loss_hand_values_and_stability);
    tcase_add_test(k, test_loss_gradcheck);
    suite_add_tcase(s, k);
    TCase *mo = tcase_create("model");
    tcase_add_test(mo, test_model_layout_and_views);
    tcase_add_test(mo, test_model_create_errors);
    tcase_add_test(mo, test_init_schemes_limits);
    tcase_add_test(mo, test_model_gradcheck_end_to_end);
    tcase_add_test(mo, test_relu_layer_gradcheck);
    tcase_add_test(mo, test_big_batch_chunks);
    tcase_add_test(mo, test_parallel_passes_match_serial);
    tcase_add_loop_test(mo, test_parallel_batchnorm_dropout_match_serial, 0, 2); /* without, with BN */
    tcase_add_test(mo, test_parallel_training_deterministic);
    suite_add_tcase(s, mo);
    TCase *op = tcase_create("optim");
    tcase_add_test(op, test_sgd_momentum_hand_steps);
    tcase_add_test(op, test_adam_hand_steps);
    suite_add_tcase(s, op);
    TCase *tr = tcase_create("train");
    tcase_add_test(tr, test_mlp_learns_deterministically);
    tcase_add_test(tr, test_train_epoch_hooks_and_batches);
    tcase_add_test(tr, test_plain_and_hooked_training_agree);
    tcase_add_test(tr, test_evaluate_logits_and_batches);
    tcase_set_timeout(tr, 20);
    suite_add_tcase(s, tr);
    TCase *q = tcase_create("quant");
    tcase_add_test(q, test_quant_layer_forward_and_ste);
    tcase_add_test(q, test_quant_ste_between_dense);
    tcase_add_test(q, test_quant_big_batch_chunks);
    suite_add_tcase(s, q);
    return s;
}
