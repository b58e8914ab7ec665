/* check_shrink.c — the structured shrink (src/io/shrink.c): dead units
 * (zero kernel column, zero bias) leave the model with the inputs they fed,
 * sizes are exactly the expected ones and the forward pass is bit-identical
 * on random inputs; units that are not exactly dead downstream stay
 * (nonzero bias, sigmoid, BatchNorm shift, the class outputs); structured
 * PDP training zeroes the removed units' biases so the export shrinks, with
 * the same accuracy and a smaller FPGA estimate; the export writes it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/compress.h"
#include "nnlo/hls4ml.h"
#include "nnlo/modelio.h"
#include "testutil.h"

static layer_spec sp(int kind, int units) {
    layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = (layer_kind)kind;
    s.units = units;
    return s;
}

static layer_spec conv(int filters, int k, pad_mode pad) {
    layer_spec s = sp(LAYER_CONV2D, 0);
    s.filters = filters;
    s.kernel[0] = s.kernel[1] = k;
    s.padding = pad;
    return s;
}

/* A modelio_file over specs: random kernels and biases in [-0.5, 0.5), on
 * the grid of 1/16 as in a quantized model (so that, with inputs on a grid
 * too, every sum of the forward pass is exact whatever order BLAS adds in). */
static void mf_make(modelio_file *f, const layer_spec *specs, int n, int in_size, uint64_t seed) {
    memset(f, 0, sizeof *f);
    nl_error e = {0};
    f->specs = malloc((size_t)n * sizeof *f->specs);
    memcpy(f->specs, specs, (size_t)n * sizeof *specs);
    f->n_specs = n;
    f->info = calloc((size_t)n, sizeof *f->info);
    f->m = model_create(specs, n, in_size, 64, NULL, NULL, 0, &e);
    ck_assert_msg(f->m != NULL, "%s", e.msg);
    f->in_size = in_size;
    f->out_size = f->m->out_size;
    rng_t r;
    rng_seed(&r, seed);
    model_init_params(f->m, &r);
    for (int l = 0; l < n; l++) {
        const layer *L = &f->m->layers[l];
        if (!layer_has_kernel((int)L->kind)) continue;
        long nw = (long)layer_kernel_rows(L) * layer_kernel_cols(L);
        for (long j = 0; j < nw; j++)
            f->m->params[L->w_off + j] = roundf(f->m->params[L->w_off + j] * 16.0f) / 16.0f;
        for (int o = 0; o < layer_kernel_cols(L); o++)
            f->m->params[L->b_off + o] = roundf(((float)rng_uniform(&r) - 0.5f) * 16.0f) / 16.0f;
    }
    model_sync_weff(f->m);
}

/* Unit o of layer l: zero kernel column, bias b. */
static void kill(modelio_file *f, int l, int o, float b) {
    const layer *L = &f->m->layers[l];
    int rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
    for (int i = 0; i < rows; i++) f->m->params[L->w_off + (long)i * cols + o] = 0.0f;
    f->m->params[L->b_off + o] = b;
    model_sync_weff(f->m);
}

/* Forward of both models on the same random inputs. exact: inputs on the
 * grid of 1/4 in [-4, 4] and every output bit equal; else inputs N(0, 4)
 * and outputs within 1e-5 relative (float sums in another order). */
static void assert_same_outputs(modelio_file *a, modelio_file *b, uint64_t seed, int exact) {
    ck_assert_int_eq(a->m->in_size, b->m->in_size);
    ck_assert_int_eq(a->m->out_size, b->m->out_size);
    const int B = a->m->max_batch < b->m->max_batch ? a->m->max_batch : b->m->max_batch;
    const int in = a->m->in_size, out = a->m->out_size;
    float *x = malloc((size_t)B * in * sizeof *x), *ya = malloc((size_t)B * out * sizeof *ya);
    rng_t r;
    rng_seed(&r, seed);
    for (int rep = 0; rep < 3; rep++) {
        for (long j = 0; j < (long)B * in; j++) {
            x[j] = 2.0f * rng_normal(&r);
            if (exact) x[j] = fminf(4.0f, fmaxf(-4.0f, roundf(x[j] * 4.0f) / 4.0f));
        }
        memcpy(ya, model_forward(a->m, x, B), (size_t)B * out * sizeof *ya);
        const float *yb = model_forward(b->m, x, B);
        if (!exact) {
            tu_assert_close(yb, ya, (long)B * out, 1e-6, 1e-5, "shrunk outputs");
            continue;
        }
        long diff = 0;
        for (long j = 0; j < (long)B * out; j++)
            if (memcmp(&ya[j], &yb[j], sizeof(float))) {
                if (diff < 5) fprintf(stderr, "output %ld: %.9g vs %.9g\n", j, ya[j], yb[j]);
                diff++;
            }
        ck_assert_msg(diff == 0, "%ld of %d outputs differ after the shrink", diff, B * out);
    }
    free(x);
    free(ya);
}

static int cols_of(const modelio_file *f, int l) { return layer_kernel_cols(&f->m->layers[l]); }
static int rows_of(const modelio_file *f, int l) { return layer_kernel_rows(&f->m->layers[l]); }

START_TEST(test_mlp_dead_units) {
    /* 0 dense 16, 1 relu, 2 dense 12, 3 relu, 4 dense 4 */
    layer_spec s[5] = {sp(LAYER_DENSE, 16), sp(LAYER_RELU, 0), sp(LAYER_DENSE, 12),
                       sp(LAYER_RELU, 0), sp(LAYER_DENSE, 4)};
    modelio_file f, g;
    mf_make(&f, s, 5, 8, 1);
    kill(&f, 0, 1, 0.0f);
    kill(&f, 0, 5, 0.0f);
    kill(&f, 0, 6, 0.0f);
    kill(&f, 0, 9, 0.25f);  /* a dead kernel column with a bias is a live unit */
    kill(&f, 2, 0, 0.0f);
    kill(&f, 2, 11, 0.0f);
    kill(&f, 4, 2, 0.0f);   /* a class output: never removed */
    /* dense2 unit 3 reads only the removed inputs 1 and 5: dead too */
    {
        const layer *L = &f.m->layers[2];
        for (int i = 0; i < 16; i++)
            f.m->params[L->w_off + i * 12 + 3] = i == 1 || i == 5 ? 0.75f : 0.0f;
        f.m->params[L->b_off + 3] = 0.0f;
        model_sync_weff(f.m);
    }
    /* masks are cut with the kernels */
    float *mask = malloc(16 * 12 * sizeof *mask);
    for (int j = 0; j < 16 * 12; j++) mask[j] = (float)(j % 7);
    f.info[2].mask = mask;
    f.info[2].quantized = 1;
    f.info[2].w = (fixed_spec){1, 2, 5, FX_SAT, FX_RND};
    nl_error e = {0};
    long removed = -1;
    ck_assert_msg(modelio_shrink(&f, 32, &g, &removed, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(removed, 3 + 3);
    ck_assert_int_eq(cols_of(&g, 0), 13);
    ck_assert_int_eq(rows_of(&g, 2), 13);
    ck_assert_int_eq(cols_of(&g, 2), 9);
    ck_assert_int_eq(rows_of(&g, 4), 9);
    ck_assert_int_eq(cols_of(&g, 4), 4);
    ck_assert_int_eq(g.m->max_batch, 32);
    ck_assert_str_eq(g.m->layers[2].name, f.m->layers[2].name);
    /* kept kernel entries in order: dense2 row 2 (old 3), column 1 (old 2) */
    const layer *L = &f.m->layers[2], *N = &g.m->layers[2];
    ck_assert(g.m->weff[N->w_off + 2 * 9 + 1] == f.m->weff[L->w_off + 3 * 12 + 2]);
    ck_assert(g.info[2].mask[2 * 9 + 1] == mask[3 * 12 + 2]);
    ck_assert_int_eq(g.info[2].quantized, 1);
    ck_assert_int_eq(g.info[2].w.f, 5);
    ck_assert_ptr_null(g.info[0].mask);
    assert_same_outputs(&f, &g, 2, 1);
    sbuf t = {0};
    modelio_shrink_describe(&f, &g, &t);
    ck_assert_ptr_nonnull(strstr(t.s, "dense0: 16 -> 13 units (kernel 8 x 16 -> 8 x 13)"));
    ck_assert_ptr_nonnull(strstr(t.s, "dense1: 12 -> 9 units (kernel 16 x 12 -> 13 x 9)"));
    ck_assert_ptr_nonnull(strstr(t.s, "dense2: 4 -> 4 units"));
    /* 8*16+16 + 16*12+12 + 12*4+4 = 400 -> 8*13+13 + 13*9+9 + 9*4+4 = 283 */
    ck_assert_ptr_nonnull(strstr(t.s, "weights and biases: 400 -> 283"));
    sbuf_free(&t);
    modelio_free(&g);
    modelio_free(&f);
}
END_TEST

START_TEST(test_nonzero_constants_stay) {
    /* 0 dense 6, 1 quant, 2 tanh, 3 dropout, 4 dense 5, 5 sigmoid, 6 dense 4,
     * 7 batchnorm, 8 leaky_relu, 9 dense 3 */
    layer_spec s[10] = {sp(LAYER_DENSE, 6), sp(LAYER_QUANT, 0),   sp(LAYER_TANH, 0),
                        sp(LAYER_DROPOUT, 0), sp(LAYER_DENSE, 5), sp(LAYER_SIGMOID, 0),
                        sp(LAYER_DENSE, 4), sp(LAYER_BATCHNORM, 0), sp(LAYER_LEAKY_RELU, 0),
                        sp(LAYER_DENSE, 3)};
    s[1].quant = (fixed_spec){1, 3, 4, FX_SAT, FX_RND};
    s[3].rate = 0.5f;
    s[7].epsilon = 1e-3f;
    s[7].momentum = 0.9f;
    s[8].alpha = 0.1f;
    modelio_file f, g;
    mf_make(&f, s, 10, 5, 3);
    const layer *BN = &f.m->layers[7];
    for (int c = 0; c < 4; c++) {
        f.m->params[BN->w_off + c] = 0.5f + 0.25f * (float)c;  /* gamma */
        f.m->params[BN->b_off + c] = 0.125f * (float)c;        /* beta */
        f.m->state[BN->s_off + c] = 0.5f;                      /* moving mean */
        f.m->state[BN->s_off + 4 + c] = 2.0f + (float)c;       /* moving variance */
    }
    model_sync_weff(f.m);
    kill(&f, 0, 2, 0.0f);  /* through quant, tanh, dropout: removed */
    kill(&f, 4, 1, 0.0f);  /* sigmoid(0) = 0.5 reaches dense 6: stays */
    kill(&f, 6, 0, 0.0f);  /* batch norm: -0.5 s + 0 < 0, leaky relu -> -0.05 s: stays */
    kill(&f, 6, 2, 0.0f);
    f.m->params[BN->b_off + 2] = 0.0f;  /* beta 0, mean 0: batch norm keeps 0 exactly */
    f.m->state[BN->s_off + 2] = 0.0f;
    model_sync_weff(f.m);
    nl_error e = {0};
    long removed = -1;
    ck_assert_msg(modelio_shrink(&f, 8, &g, &removed, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(cols_of(&g, 0), 5);
    ck_assert_int_eq(rows_of(&g, 4), 5);
    ck_assert_int_eq(cols_of(&g, 4), 5);
    ck_assert_int_eq(cols_of(&g, 6), 3);  /* channel 2 only */
    ck_assert_int_eq(removed, 2);
    const layer *BN2 = &g.m->layers[7];
    ck_assert_int_eq(BN2->out_c, 3);
    /* channels 0, 1, 3 kept: their gamma, beta, mean, variance moved along */
    ck_assert(g.m->weff[BN2->w_off + 2] == 1.25f);
    ck_assert(g.m->weff[BN2->b_off + 2] == 0.375f);
    ck_assert(g.m->state[BN2->s_off + 2] == 0.5f);
    ck_assert(g.m->state[BN2->s_off + 3 + 2] == 5.0f);
    assert_same_outputs(&f, &g, 4, 0); /* tanh, batch norm: values off the grid */
    modelio_free(&g);
    modelio_free(&f);
}
END_TEST

START_TEST(test_cnn_dead_channels) {
    /* (8, 8, 2): 0 conv 6 3x3 same, 1 relu, 2 maxpool 2x2 -> (4, 4, 6), 3 conv 5 3x3 valid
     * -> (2, 2, 5), 4 relu, 5 flatten (20), 6 dense 3 */
    layer_spec s[7] = {conv(6, 3, PAD_SAME), sp(LAYER_RELU, 0), sp(LAYER_MAXPOOL2D, 0),
                       conv(5, 3, PAD_VALID), sp(LAYER_RELU, 0), sp(LAYER_FLATTEN, 0),
                       sp(LAYER_DENSE, 3)};
    s[0].in_shape[0] = 8; s[0].in_shape[1] = 8; s[0].in_shape[2] = 2;
    s[2].pool[0] = s[2].pool[1] = 2;
    s[3].in_shape[0] = s[3].in_shape[1] = 4; s[3].in_shape[2] = 6; /* restated shapes follow */
    s[6].in_shape[0] = s[6].in_shape[1] = 1; s[6].in_shape[2] = 20;
    modelio_file f, g;
    mf_make(&f, s, 7, 128, 5);
    kill(&f, 0, 2, 0.0f);
    kill(&f, 0, 4, 0.0f);
    kill(&f, 3, 1, 0.0f);
    kill(&f, 3, 3, -0.5f); /* its relu output is 0 but the bias is not: stays */
    float *mask = malloc(9 * 6 * 5 * sizeof *mask);
    for (int j = 0; j < 9 * 6 * 5; j++) mask[j] = (float)j;
    f.info[3].mask = mask;
    nl_error e = {0};
    long removed = -1;
    ck_assert_msg(modelio_shrink(&f, 16, &g, &removed, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(removed, 3);
    ck_assert_int_eq(cols_of(&g, 0), 4);
    ck_assert_int_eq(rows_of(&g, 3), 9 * 4);
    ck_assert_int_eq(g.m->layers[3].in_c, 4);
    ck_assert_int_eq(cols_of(&g, 3), 4);
    ck_assert_int_eq(g.m->layers[5].out_size, 16);
    ck_assert_int_eq(rows_of(&g, 6), 16);
    ck_assert_int_eq(cols_of(&g, 6), 3);
    ck_assert_int_eq(g.specs[3].in_shape[2], 4);
    ck_assert_int_eq(g.specs[6].in_shape[2], 16);
    ck_assert_int_eq(g.specs[0].in_shape[2], 2);
    /* conv1 kernel row (ky 1, kx 2, c 3) -> old row (1 3 + 2) 6 + 5 (channel 5 is
     * the 4th kept), new row (1 3 + 2) 4 + 3; column 1 (old 2) */
    const layer *L = &f.m->layers[3], *N = &g.m->layers[3];
    ck_assert(g.m->weff[N->w_off + (5 * 4 + 3) * 4 + 1] == f.m->weff[L->w_off + (5 * 6 + 5) * 5 + 2]);
    ck_assert(g.info[3].mask[(5 * 4 + 3) * 4 + 1] == mask[(5 * 6 + 5) * 5 + 2]);
    /* dense row (position 3, channel 3 -> old channel 4) */
    ck_assert(g.m->weff[g.m->layers[6].w_off + (3 * 4 + 3) * 3 + 1] ==
              f.m->weff[f.m->layers[6].w_off + (3 * 5 + 4) * 3 + 1]);
    assert_same_outputs(&f, &g, 6, 1);
    assert_same_outputs(&f, &g, 7, 0);
    modelio_free(&g);
    modelio_free(&f);
}
END_TEST

START_TEST(test_last_layer_and_all_dead) {
    /* 0 dense 3, 1 relu, 2 dense 4: every hidden unit dead; the class layer too */
    layer_spec s[3] = {sp(LAYER_DENSE, 3), sp(LAYER_RELU, 0), sp(LAYER_DENSE, 4)};
    modelio_file f, g;
    mf_make(&f, s, 3, 5, 7);
    for (int o = 0; o < 3; o++) kill(&f, 0, o, 0.0f);
    for (int o = 0; o < 4; o++) kill(&f, 2, o, 0.0f);
    nl_error e = {0};
    long removed = -1;
    ck_assert_msg(modelio_shrink(&f, 4, &g, &removed, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(removed, 2);          /* a layer keeps one unit */
    ck_assert_int_eq(cols_of(&g, 0), 1);
    ck_assert_int_eq(cols_of(&g, 2), 4);   /* class outputs stay */
    assert_same_outputs(&f, &g, 8, 1);
    /* nothing dead: an identical copy */
    modelio_file h;
    modelio_free(&f);
    mf_make(&f, s, 3, 5, 9);
    ck_assert_int_eq(modelio_shrink(&f, 4, &h, &removed, &e), NL_OK);
    ck_assert_int_eq(removed, 0);
    ck_assert_int_eq(h.m->n_params, f.m->n_params);
    ck_assert_int_eq(memcmp(h.m->weff, f.m->weff, (size_t)f.m->n_params * sizeof(float)), 0);
    modelio_free(&h);
    modelio_free(&g);
    modelio_free(&f);
}
END_TEST

START_TEST(test_reshape_blocks) {
    /* 0 dense 16, 1 relu, 2 conv 2 3x3 on (4, 4, 1): dense units are pixels, not channels */
    layer_spec s[5] = {sp(LAYER_DENSE, 16), sp(LAYER_RELU, 0), conv(2, 3, PAD_SAME),
                       sp(LAYER_FLATTEN, 0), sp(LAYER_DENSE, 3)};
    s[2].in_shape[0] = s[2].in_shape[1] = 4; s[2].in_shape[2] = 1;
    modelio_file f, g;
    mf_make(&f, s, 5, 6, 15);
    kill(&f, 0, 5, 0.0f);
    nl_error e = {0};
    long removed = -1;
    ck_assert_msg(modelio_shrink(&f, 8, &g, &removed, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(removed, 0);
    ck_assert_int_eq(cols_of(&g, 0), 16);
    assert_same_outputs(&f, &g, 16, 1);
    modelio_free(&g);
    modelio_free(&f);
}
END_TEST

/* ---- training: structured PDP leaves units the export can remove ------------- */

enum { D = 8, NC = 3, NTR = 480, NVA = 300 };

typedef struct {
    float xtr[NTR * D], xva[NVA * D];
    int32_t ytr[NTR], yva[NVA];
} toy_data;

/* Three Gaussian blobs in 8 dimensions (values within the data format). */
static void toy_make(toy_data *t, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed);
    for (int s = 0; s < NTR + NVA; s++) {
        int y = s % NC;
        float *x = s < NTR ? t->xtr + s * D : t->xva + (s - NTR) * D;
        for (int d = 0; d < D; d++) x[d] = 0.7f * rng_normal(&r) + (d % NC == y ? 1.5f : 0.0f);
        if (s < NTR) t->ytr[s] = y;
        else t->yva[s - NTR] = y;
    }
}

static fixed_spec fx(int k, int i, int f) {
    fixed_spec s = {.k = k, .i = i, .f = f, .overflow = FX_SAT, .round = FX_RND};
    return s;
}

/* Trains dense(32) relu dense(3) with the given pruning, quantized (8-bit
 * weights, data <1,3,4>), and checks what the shrink makes of it. Returns
 * the removed units. */
static long train_and_shrink(const cfg_pruning *p, int want_dead, uint64_t seed) {
    static toy_data td;
    toy_make(&td, seed);
    cfg_layer ly[3];
    memset(ly, 0, sizeof ly);
    ly[0].type = CFG_LAYER_DENSE; ly[0].units = 32;
    ly[1].type = CFG_LAYER_RELU;
    ly[2].type = CFG_LAYER_DENSE;
    cfg_quant q;
    memset(&q, 0, sizeof q);
    q.enable_quantization = 1;
    q.weight = fx(1, 0, 7);
    q.bias = fx(1, 0, 7);
    q.data = fx(1, 3, 4);
    q.quantize_input = 1;
    cfg_training t;
    memset(&t, 0, sizeof t);
    t.batch_size = 32;
    t.pretraining_epochs = 1;
    t.epochs = 3;
    t.rounds = 1;
    t.fine_tuning_epochs = 2;
    t.save_weights_epoch = -1;
    t.rewind = REWIND_NEVER;
    t.pruning_first = 1;
    t.learning_rate = 1e-2;
    t.schedule = LR_CONSTANT;
    layer_spec *specs;
    int ns;
    nl_error e = {0};
    ck_assert_msg(compress_model_specs(ly, 3, NC, &q, &specs, &ns, &e) == NL_OK, "%s", e.msg);
    model *m = model_create(specs, ns, D, 64, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, seed + 1);
    model_init_params(m, &r);
    optim o;
    memset(&o, 0, sizeof o);
    ck_assert_int_eq(optim_init(&o, OPT_ADAM, m->n_params, &e), NL_OK);
    o.lr = (float)t.learning_rate;
    compress *c = compress_create(m, p, &q, &t, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    train_data d = {td.xtr, td.ytr, NTR, td.xva, td.yva, NVA};
    ck_assert_msg(compress_train(c, m, &o, &t, &d, &r, NULL, NULL, &e) == NL_OK, "%s", e.msg);

    /* the hidden layer (model layer 1, after dense0_qin): dead units have a zero bias */
    int h = 1;
    const layer *L = &m->layers[h];
    ck_assert_int_eq(L->kind, LAYER_DENSE);
    int dead = 0;
    for (int u = 0; u < L->out_size; u++) {
        int zeros = 0;
        for (int i = 0; i < L->in_size; i++) zeros += m->weff[L->w_off + (long)i * L->out_size + u] == 0.0f;
        if (zeros < L->in_size) continue;
        dead++;
        ck_assert_msg(m->weff[L->b_off + u] == 0.0f && m->params[L->b_off + u] == 0.0f,
                      "dead unit %d keeps bias %g (param %g)", u, m->weff[L->b_off + u],
                      m->params[L->b_off + u]);
    }
    if (want_dead >= 0) ck_assert_int_eq(dead, want_dead);
    else ck_assert_msg(dead > 0 && dead < 32, "%d dead units", dead);

    /* the model as the export sees it */
    modelio_file f;
    memset(&f, 0, sizeof f);
    f.specs = specs;
    f.n_specs = ns;
    f.m = m;
    f.in_size = D;
    f.out_size = NC;
    modelio_layer_info *info = calloc((size_t)ns, sizeof *info);
    for (int l = 0; l < ns; l++) {
        if (!layer_has_kernel((int)m->layers[l].kind)) continue;
        info[l].mask = compress_mask(c, l);
        info[l].quantized = 1;
        compress_layer_formats(c, l, &info[l].w, &info[l].b, &info[l].in, &info[l].out);
    }
    f.info = info;
    modelio_file g;
    long removed = -1;
    ck_assert_msg(modelio_shrink(&f, 64, &g, &removed, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(removed, dead);
    ck_assert_int_eq(g.m->layers[h].out_size, 32 - dead);
    ck_assert_int_eq(g.m->layers[h + 3].in_size, 32 - dead);

    /* same logits bit for bit on the validation set, so the same accuracy:
     * exact by construction (testutil.h's rule), since inputs <1,3,4> times
     * weights <1,0,7> are multiples of 2^-11 below 8 in size, and a sum of
     * 32 of them needs 19 significant bits: float32 holds every partial sum
     * exactly, in any order and on any kernel */
    epoch_stats sa, sb;
    float *la = malloc((size_t)NVA * NC * sizeof *la), *lb = malloc((size_t)NVA * NC * sizeof *lb);
    train_hooks hk = compress_hooks(c); /* weff as trained (without hooks: params) */
    ck_assert_int_eq(nn_evaluate(m, td.xva, td.yva, NVA, &hk, &sa, la, &e), NL_OK);
    ck_assert_int_eq(nn_evaluate(g.m, td.xva, td.yva, NVA, NULL, &sb, lb, &e), NL_OK);
    ck_assert_int_eq(memcmp(la, lb, (size_t)NVA * NC * sizeof *la), 0);
    ck_assert(sa.accuracy == sb.accuracy);
    ck_assert_msg(sa.accuracy > 0.8, "val accuracy %g", sa.accuracy);

    /* the FPGA estimate of the shrunk network is smaller */
    hls4ml_net na, nb;
    fpga_report ra, rb;
    ck_assert_msg(hls4ml_fpga_layers(m, info, NULL, NULL, NULL, NULL, &na, &e) == NL_OK, "%s", e.msg);
    ck_assert_msg(hls4ml_fpga_layers(g.m, g.info, NULL, NULL, NULL, NULL, &nb, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(fpga_estimate_ex(na.layers, na.n, &na.fpga, &na.opt, &ra, &e), NL_OK);
    ck_assert_int_eq(fpga_estimate_ex(nb.layers, nb.n, &nb.fpga, &nb.opt, &rb, &e), NL_OK);
    fprintf(stderr, "shrink (%s): %d dead of 32, accuracy %.4f, LUT %ld -> %ld, FF %ld -> %ld, "
            "DSP %ld -> %ld\n", p->method == PRUNE_PDP ? "pdp structured" : "activation_pruning",
            dead, sa.accuracy, ra.total.lut, rb.total.lut, ra.total.ff, rb.total.ff,
            ra.total.dsp, rb.total.dsp);
    if (dead > 0) {
        ck_assert_int_lt(rb.total.lut + rb.total.ff, ra.total.lut + ra.total.ff);
        ck_assert_int_le(rb.total.dsp, ra.total.dsp);
    }
    fpga_report_free(&ra);
    fpga_report_free(&rb);
    hls4ml_net_free(&na);
    hls4ml_net_free(&nb);
    free(la);
    free(lb);
    modelio_free(&g);
    free(info);
    compress_free(c);
    optim_free(&o);
    model_free(m);
    free(specs);
    return removed;
}

static cfg_pruning pr_default(prune_method pm) {
    cfg_pruning p;
    memset(&p, 0, sizeof p);
    p.enable_pruning = 1;
    p.method = pm;
    p.sparsity = 0.5;
    p.epsilon = 0.5;
    p.temperature = 1e-5;
    p.end_epoch = -1;
    p.power = 3;
    return p;
}

START_TEST(test_pdp_structured_shrinks) {
    cfg_pruning p = pr_default(PRUNE_PDP);
    p.structured_pruning = 1;
    static char *dis[1] = {"dense1"}; /* keep every class output */
    p.disable_layers = dis;
    p.n_disable = 1;
    /* half the hidden units (global budget over the prunable layer) */
    ck_assert_int_eq(train_and_shrink(&p, 16, 11), 16);
}
END_TEST

START_TEST(test_activation_pruning_shrinks) {
    cfg_pruning p = pr_default(PRUNE_ACTIVATION);
    p.t_start_collecting_batch = 2;
    p.t_delta = 5;
    p.threshold = 0.3; /* units positive on <= 30 % of the samples go */
    ck_assert_int_gt(train_and_shrink(&p, -1, 21), 0);
}
END_TEST

/* ---- the export shrinks ----------------------------------------------------- */

static long count_values(const char *path) {
    char *s = NULL;
    size_t len = 0;
    nl_error e = {0};
    ck_assert_msg(fs_read_all(path, &s, &len, &e) == NL_OK, "%s", e.msg);
    long n = len > 0;
    for (size_t j = 0; j < len; j++) n += s[j] == ',';
    free(s);
    return n;
}

START_TEST(test_export_shrinks) {
    layer_spec s[3] = {sp(LAYER_DENSE, 6), sp(LAYER_RELU, 0), sp(LAYER_DENSE, 3)};
    modelio_file f;
    mf_make(&f, s, 3, 4, 13);
    kill(&f, 0, 0, 0.0f);
    kill(&f, 0, 4, 0.0f);
    const char *tmp = tu_tmpdir();
    char path[600], dir[600], txt[700];
    snprintf(path, sizeof path, "%s/model.h5", tmp);
    snprintf(dir, sizeof dir, "%s/hls4ml", tmp);
    nl_error e = {0};
    ck_assert_msg(modelio_save(path, f.m, f.info, NULL, &e) == NL_OK, "%s", e.msg);
    ck_assert_msg(hls4ml_export_file(path, NULL, dir, &e) == NL_OK, "%s", e.msg);
    snprintf(txt, sizeof txt, "%s/shrink.txt", dir);
    char *log = NULL;
    size_t len;
    ck_assert_int_eq(fs_read_all(txt, &log, &len, &e), NL_OK);
    ck_assert_ptr_nonnull(strstr(log, "removed 2 units"));
    ck_assert_ptr_nonnull(strstr(log, "dense0: 6 -> 4 units (kernel 4 x 6 -> 4 x 4)"));
    ck_assert_ptr_nonnull(strstr(log, "dense1: 3 -> 3 units (kernel 6 x 3 -> 4 x 3)"));
    free(log);
    /* hls4ml's weight files hold the smaller kernels: w2 (4, 4), w4 (4, 3) */
    snprintf(txt, sizeof txt, "%s/weights/w2.txt", dir);
    ck_assert_int_eq(count_values(txt), 16);
    snprintf(txt, sizeof txt, "%s/weights/b2.txt", dir);
    ck_assert_int_eq(count_values(txt), 4);
    snprintf(txt, sizeof txt, "%s/weights/w4.txt", dir);
    ck_assert_int_eq(count_values(txt), 12);
    modelio_free(&f);
    fs_remove_tree(tmp, &e);
}
END_TEST

Suite *make_shrink_suite(void) {
    Suite *s = suite_create("shrink");
    TCase *tc = tcase_create("shrink");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mlp_dead_units);
    tcase_add_test(tc, test_nonzero_constants_stay);
    tcase_add_test(tc, test_cnn_dead_channels);
    tcase_add_test(tc, test_last_layer_and_all_dead);
    tcase_add_test(tc, test_reshape_blocks);
    tcase_add_test(tc, test_pdp_structured_shrinks);
    tcase_add_test(tc, test_activation_pruning_shrinks);
    tcase_add_test(tc, test_export_shrinks);
    suite_add_tcase(s, tc);
    return s;
}
