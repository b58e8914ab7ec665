/* check_quant.c — quantization in the loop (quant.c), HGQ (hgq.c) and
 * distillation (distill.c).
 *
 * Hand-computed per_tensor / per_channel / per_weight quantization,
 * layer_specific overrides through the real YAML parser, a bit-exact
 * comparison of the float forward of quantized models (Dense and Conv)
 * with an int64 fixed-point reference (every rounding and overflow mode),
 * HGQ's surrogate gradients, zero-bit pruning and losses by hand, HGQ on
 * conv models (segments, EBOPs against the report, gradients against
 * central differences, training), the distillation loss against central
 * differences, and a student that learns more from a teacher than alone. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"
#include "compress/quant_internal.h"
#include "nnlo/compress.h"
#include "nnlo/config.h"
#include "compress_fixtures.h"
#include "testutil.h"

static fixed_spec fxm(int k, int i, int f, fx_overflow o, fx_round r) {
    fixed_spec s = {.k = k, .i = i, .f = f, .overflow = o, .round = r};
    return s;
}
static fixed_spec fx(int k, int i, int f) { return fxm(k, i, f, FX_SAT, FX_RND); }

static cfg_training tr_default(void) {
    cfg_training t;
    memset(&t, 0, sizeof t);
    t.epochs = 1;
    t.rounds = 1;
    t.save_weights_epoch = -1;
    t.pruning_first = 1;
    t.batch_size = 32;
    t.learning_rate = 1e-2;
    t.gamma = 0.1;
    return t;
}

static cfg_pruning pr_off(void) {
    cfg_pruning p;
    memset(&p, 0, sizeof p);
    return p;
}

static cfg_quant q_on(fixed_spec w, fixed_spec data) {
    cfg_quant q;
    memset(&q, 0, sizeof q);
    q.enable_quantization = 1;
    q.weight = q.bias = w;
    q.data = data;
    q.quantize_input = 1;
    q.hgq_beta = 1e-5;
    q.hgq_gamma = 3e-4;
    q.hgq_heterogeneous = 1;
    return q;
}

/* ---- static bit groups ------------------------------------------------------ */

START_TEST(test_dynamic_bits) {
    fixed_spec s = fx(1, 0, 7); /* 8 bits */
    int i, f;
    cq_dynamic_bits(&s, 0.3, &i, &f);
    ck_assert(i == 0 && f == 7);
    cq_dynamic_bits(&s, 1.0, &i, &f); /* log2(1 + 1e-6) > 0: one integer bit */
    ck_assert(i == 1 && f == 6);
    cq_dynamic_bits(&s, 5.2, &i, &f);
    ck_assert(i == 3 && f == 4);
    cq_dynamic_bits(&s, 1000, &i, &f); /* clamped to b - k */
    ck_assert(i == 7 && f == 0);
    cq_dynamic_bits(&s, 0, &i, &f);
    ck_assert(i == 0 && f == 7);
}
END_TEST

/* One Dense (in 2, out 3), no data quantizer. */
typedef struct { model *m; compress *c; } one;

static void one_make(one *o, const cfg_quant *q) {
    layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = LAYER_DENSE;
    s.units = 3;
    snprintf(s.name, sizeof s.name, "fc");
    nl_error e = {0};
    char **names; long *lens; int n;
    cfg_pruning p = pr_off();
    ck_assert_msg(compress_plan_all_params(&s, 1, 2, &p, q, &names, &lens, &n, &e) == NL_OK,
                  "%s", e.msg);
    o->m = model_create(&s, 1, 2, 8, (const char *const *)names, lens, n, &e);
    ck_assert_msg(o->m != NULL, "%s", e.msg);
    for (int j = 0; j < n; j++) free(names[j]);
    free(names);
    free(lens);
    cfg_training t = tr_default();
    o->c = compress_create(o->m, &p, q, &t, &e);
    ck_assert_msg(o->c != NULL, "%s", e.msg);
}

static void one_free(one *o) {
    compress_free(o->c);
    model_free(o->m);
}

static const float W6[6] = {0.3f, 1.5f, -5.2f, -0.2f, 0.1f, 3.0f}; /* (in 2, out 3) */

static void run_granularity(quant_granularity g, const float *expect, fixed_spec uni) {
    cfg_quant q = q_on(fx(1, 0, 7), fx(1, 3, 4));
    q.quantize_input = 0;
    q.granularity = g;
    one o;
    one_make(&o, &q);
    const param_view *k = model_find_view(o.m, "fc/kernel");
    memcpy(o.m->params + k->off, W6, sizeof W6);
    train_hooks h = compress_hooks(o.c);
    h.pre_forward(h.ctx, o.m);
    for (int j = 0; j < 6; j++)
        ck_assert_msg(o.m->weff[k->off + j] == expect[j], "granularity %d, w[%d]: %.9g vs %.9g",
                      (int)g, j, o.m->weff[k->off + j], expect[j]);
    fixed_spec w;
    compress_layer_formats(o.c, 0, &w, NULL, NULL, NULL);
    ck_assert_msg(w.k == uni.k && w.i == uni.i && w.f == uni.f, "format (%d,%d,%d)", w.k, w.i, w.f);
    one_free(&o);
}

START_TEST(test_granularity) {
    /* per tensor (1,0,7) SAT RND: range [-1, 127/128] */
    const float t[6] = {38 / 128.f, 127 / 128.f, -1.f, -26 / 128.f, 13 / 128.f, 127 / 128.f};
    run_granularity(GRAN_PER_TENSOR, t, fx(1, 0, 7));
    /* per channel (output unit o = j % 3): maxima 0.3, 1.5, 5.2 -> (i, f) =
     * (0, 7), (1, 6), (3, 4) */
    const float c[6] = {38 / 128.f, 1.5f, -83 / 16.f, -26 / 128.f, 6 / 64.f, 3.f};
    run_granularity(GRAN_PER_CHANNEL, c, fx(1, 3, 7));
    /* per weight: 0.3 (0,7), 1.5 (1,6), 5.2 (3,4), 0.2 (0,7), 0.1 (0,7), 3 (2,5) */
    const float w[6] = {38 / 128.f, 1.5f, -83 / 16.f, -26 / 128.f, 13 / 128.f, 3.f};
    run_granularity(GRAN_PER_WEIGHT, w, fx(1, 3, 7));
}
END_TEST

/* The weight quantizer's modes: WRAP trains clipped (the gradient window is
 * the range), TRN floors, SAT_SYM is symmetric. */
START_TEST(test_weight_modes) {
    cfg_quant q = q_on(fxm(1, 0, 2, FX_WRAP, FX_TRN), fx(1, 3, 4));
    q.quantize_input = 0;
    one o;
    one_make(&o, &q);
    const param_view *k = model_find_view(o.m, "fc/kernel");
    const float w[6] = {0.3f, 1.5f, -5.2f, -0.2f, -1.0f, 0.76f};
    memcpy(o.m->params + k->off, w, sizeof w);
    train_hooks h = compress_hooks(o.c);
    h.pre_forward(h.ctx, o.m);
    const float e1[6] = {0.25f, 0.75f, -1.f, -0.25f, -1.f, 0.75f};
    tu_assert_close(o.m->weff + k->off, e1, 6, 0, 0, "WRAP/TRN trains as SAT/TRN");
    for (int j = 0; j < 6; j++) o.m->grads[k->off + j] = 1.0f;
    h.post_backward(h.ctx, o.m);
    const float g1[6] = {1, 0, 0, 1, 1, 0}; /* 0.76 > 0.75: outside */
    tu_assert_close(o.m->grads + k->off, g1, 6, 0, 0, "STE window");
    fixed_spec ws;
    compress_layer_formats(o.c, 0, &ws, NULL, NULL, NULL);
    ck_assert(ws.overflow == FX_WRAP && ws.round == FX_TRN); /* reported as configured */
    one_free(&o);
    q = q_on(fxm(1, 0, 2, FX_SAT, FX_RND), fx(1, 3, 4));
    q.quantize_input = 0;
    q.use_symmetric_quantization = 1; /* SAT -> SAT_SYM: -1 is out of range */
    one_make(&o, &q);
    k = model_find_view(o.m, "fc/kernel");
    memcpy(o.m->params + k->off, w, sizeof w);
    h = compress_hooks(o.c);
    h.pre_forward(h.ctx, o.m);
    const float e2[6] = {0.25f, 0.75f, -0.75f, -0.25f, -0.75f, 0.75f};
    tu_assert_close(o.m->weff + k->off, e2, 6, 0, 0, "SAT_SYM");
    one_free(&o);
}
END_TEST

/* ---- layer_specific through the YAML parser ----------------------------------- */

static const char *LS_YAML =
    "data: {train: x.h5}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: dense, units: 4, name: fc1}\n"
    "    - {type: relu}\n"
    "    - {type: dense, units: 3, name: out}\n"
    "quantization_parameters:\n"
    "  default_data_keep_negatives: 1\n"
    "  default_data_integer_bits: 2\n"
    "  default_data_fractional_bits: 3\n"
    "  quantize_relu: true\n"
    "  layer_specific:\n"
    "    fc1:\n"
    "      input: {integer_bits: 4, overflow: WRAP}\n"
    "      weight: {fractional_bits: 3, round_mode: TRN}\n"
    "    relu0: {output: {quantize: true, fractional_bits: 2}}\n"
    "    out: {input: {quantize: false}, integer_bits: 1}\n";

START_TEST(test_layer_specific) {
    trial_config tc;
    nl_error e = {0};
    ck_assert_msg(config_parse_trial(LS_YAML, "ls.yaml", NULL, &tc, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(tc.quant.n_layers_specific, 3);
    layer_spec *s;
    int n;
    ck_assert_msg(compress_model_specs(tc.layers, tc.n_layers, 3, &tc.quant, &s, &n, &e) == NL_OK,
                  "%s", e.msg);
    const char *names[6] = {"fc1_qin", "fc1", "relu0_qin", "relu0", "relu0_qout", "out"};
    ck_assert_int_eq(n, 6);
    for (int j = 0; j < 6; j++) ck_assert_str_eq(s[j].name, names[j]);
    /* fc1 input: data (1, 2, 3) with i = 4 and WRAP */
    ck_assert(s[0].quant.k == 1 && s[0].quant.i == 4 && s[0].quant.f == 3 &&
              s[0].quant.overflow == FX_WRAP);
    /* PQuant's ReLU quantizer: unsigned, data i, data f + 1 */
    ck_assert(s[2].quant.k == 0 && s[2].quant.i == 2 && s[2].quant.f == 4);
    ck_assert(s[4].quant.k == 0 && s[4].quant.i == 2 && s[4].quant.f == 2);
    model *m = model_create(s, n, 5, 4, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    cfg_training t = tr_default();
    compress *c = compress_create(m, &tc.prune, &tc.quant, &t, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    fixed_spec w, b, in;
    compress_layer_formats(c, 1, &w, &b, &in, NULL);
    ck_assert(w.k == 1 && w.i == 0 && w.f == 3 && w.round == FX_TRN);
    ck_assert(b.k == 1 && b.i == 0 && b.f == 7 && b.round == FX_RND); /* default bias */
    ck_assert(in.i == 4);
    compress_layer_formats(c, 5, &w, &b, &in, NULL);
    ck_assert(w.i == 1 && b.i == 1 && w.f == 7); /* layer-wide key */
    ck_assert(in.k == 0 && in.f == 2);            /* fed by relu0_qout */
    compress_free(c);
    model_free(m);
    free(s);
    config_free_trial(&tc);

    /* an unknown layer and a misspelt section */
    char bad[1024];
    snprintf(bad, sizeof bad, "%s    nope: {weight: {integer_bits: 1}}\n", LS_YAML);
    ck_assert_int_eq(config_parse_trial(bad, "ls.yaml", NULL, &tc, &e), NL_OK);
    ck_assert_int_eq(compress_model_specs(tc.layers, tc.n_layers, 3, &tc.quant, &s, &n, &e),
                     NL_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, "'nope'") && strstr(e.msg, "relu0"), "%s", e.msg);
    config_free_trial(&tc);
    snprintf(bad, sizeof bad, "%s    fc1b: {weigth: {integer_bits: 1}}\n", LS_YAML);
    ck_assert_int_eq(config_parse_trial(bad, "ls.yaml", NULL, &tc, &e), NL_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, "did you mean 'weight'") && strstr(e.msg, "ls.yaml:18"), "%s",
                  e.msg);
    snprintf(bad, sizeof bad, "%s    fc1b: {weight: {quantize: false}}\n", LS_YAML);
    ck_assert_int_eq(config_parse_trial(bad, "ls.yaml", NULL, &tc, &e), NL_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, "only input and output"), "%s", e.msg);
}
END_TEST

/* ---- bit-exact inference ---------------------------------------------------- */

static int64_t floor_shift(int64_t a, int s) { /* floor(a / 2^s) */
    return a >= 0 ? a >> s : -((-a + ((int64_t)1 << s) - 1) >> s);
}

/* Integer reference of a quantizer: the value a 2^-F into format s, with
 * integer arithmetic only (the ap_fixed rules, written out independently
 * of fixed.c). Returns the integer at s->f. */
static int64_t ref_requant(int64_t a, int F, const fixed_spec *s) {
    int64_t n, fl;
    if (s->f >= F) {
        n = fl = a * ((int64_t)1 << (s->f - F));
    } else {
        int sh = F - s->f;
        fl = floor_shift(a, sh);
        int64_t rem = a - fl * ((int64_t)1 << sh), half = (int64_t)1 << (sh - 1);
        int up = 0;
        if (rem != 0) switch (s->round) {
            case FX_TRN: up = 0; break;
            case FX_TRN_ZERO: up = a < 0; break;
            case FX_RND: up = rem >= half; break;
            case FX_RND_MIN_INF: up = rem > half; break;
            case FX_RND_ZERO: up = rem > half || (rem == half && a < 0); break;
            case FX_RND_INF: up = rem > half || (rem == half && a > 0); break;
            case FX_RND_CONV: up = rem > half || (rem == half && (fl & 1)); break;
            }
        n = fl + up;
    }
    int W = s->k + s->i + s->f;
    int64_t lo = s->k ? -((int64_t)1 << (W - 1)) : 0;
    int64_t hi = s->k ? ((int64_t)1 << (W - 1)) - 1 : ((int64_t)1 << W) - 1;
    if (s->overflow == FX_SAT || (s->overflow == FX_WRAP_SM && !s->k))
        return n < lo ? lo : n > hi ? hi : n;
    if (s->overflow == FX_SAT_SYM) {
        int64_t l = s->k ? -hi : 0;
        return n < l ? l : n > hi ? hi : n;
    }
    if (n >= lo && n <= hi) return n;
    uint64_t mask = ((uint64_t)1 << W) - 1, v = (uint64_t)n & mask;
    if (s->overflow == FX_WRAP_SM) {
        int ro = (int)((v >> (W - 1)) & 1), ld = (int)(((uint64_t)fl >> W) & 1);
        if (ro != ld) v = (~v & mask & ~((uint64_t)1 << (W - 1))) | ((uint64_t)ld << (W - 1));
    }
    if (s->k && ((v >> (W - 1)) & 1)) return (int64_t)(v | ~mask);
    return (int64_t)v;
}

/* The int64 reference forward of a Dense/Conv/ReLU/QUANT/MaxPool/Flatten
 * chain for one sample: values are integers a at scale F (value a 2^-F);
 * Dense and Conv (channels-last, the kernel (kh, kw, cin, cout) as nn.h
 * says, zero padding) multiply exactly and align the bias; ReLU is
 * max(a, 0); MaxPool compares integers over the in-range window; Flatten
 * and Dropout (evaluation) leave the data alone; QUANT requantizes with
 * ref_requant. Weights come from weff at the formats compress reports
 * (asserted exact). Returns the outputs as doubles in out. */
static void ref_forward(const model *m, const compress *c, const float *x, double *out) {
    enum { MAXW = 1024 };
    int64_t a[MAXW], b2[MAXW];
    int F = 40, n = m->in_size;
    ck_assert(n <= MAXW);
    for (int i = 0; i < n; i++) {
        double xs = ldexp((double)x[i], F);
        ck_assert(xs == floor(xs) && fabs(xs) < 0x1p62);
        a[i] = (int64_t)xs;
    }
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        int kind = (int)L->kind;
        const conv_geom *g = &L->geom;
        ck_assert(L->out_size <= MAXW);
        if (kind == LAYER_QUANT) {
            for (int i = 0; i < n; i++) a[i] = ref_requant(a[i], F, &L->quant);
            F = L->quant.f;
        } else if (kind == LAYER_RELU) {
            for (int i = 0; i < n; i++) a[i] = a[i] > 0 ? a[i] : 0;
        } else if (kind == LAYER_FLATTEN || kind == LAYER_DROPOUT) {
            continue;
        } else if (kind == LAYER_MAXPOOL1D || kind == LAYER_MAXPOOL2D) {
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++)
                    for (int ch = 0; ch < g->c; ch++) {
                        int64_t best = INT64_MIN;
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = oy * g->sh - g->pt + ky, ix = ox * g->sw - g->pl + kx;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                int64_t v = a[((long)iy * g->w + ix) * g->c + ch];
                                if (v > best) best = v;
                            }
                        b2[((long)oy * g->ow + ox) * g->c + ch] = best;
                    }
            n = L->out_size;
            memcpy(a, b2, (size_t)n * sizeof *a);
        } else {
            ck_assert_msg(layer_has_kernel(kind), "reference: layer %s of kind %d", L->name, kind);
            int conv = kind != LAYER_DENSE;
            int cols = layer_kernel_cols(L);
            fixed_spec ws, bs;
            compress_layer_formats(c, l, &ws, &bs, NULL, NULL);
            int Fo = F + ws.f > bs.f ? F + ws.f : bs.f;
            ck_assert(Fo - F - ws.f < 40 && Fo - bs.f < 40);
            long P = conv ? (long)g->oh * g->ow : 1;
            for (long pos = 0; pos < P; pos++)
                for (int o = 0; o < cols; o++) {
                    int64_t acc = 0;
                    if (!conv) {
                        for (int i = 0; i < n; i++) {
                            float wv = m->weff[L->w_off + (long)i * cols + o];
                            int64_t wi = fixed_to_int(&ws, wv);
                            ck_assert(ldexp((double)wi, -ws.f) == (double)wv);
                            acc += a[i] * wi;
                        }
                    } else {
                        int oy = (int)(pos / g->ow), ox = (int)(pos % g->ow);
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = oy * g->sh - g->pt + ky, ix = ox * g->sw - g->pl + kx;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                for (int ci = 0; ci < g->c; ci++) {
                                    long r = ((long)ky * g->kw + kx) * g->c + ci;
                                    float wv = m->weff[L->w_off + r * cols + o];
                                    int64_t wi = fixed_to_int(&ws, wv);
                                    ck_assert(ldexp((double)wi, -ws.f) == (double)wv);
                                    acc += a[((long)iy * g->w + ix) * g->c + ci] * wi;
                                }
                            }
                    }
                    float bv = m->weff[L->b_off + o];
                    int64_t bi = fixed_to_int(&bs, bv);
                    ck_assert(ldexp((double)bi, -bs.f) == (double)bv);
                    int64_t v = acc * ((int64_t)1 << (Fo - F - ws.f)) +
                                bi * ((int64_t)1 << (Fo - bs.f));
                    /* float32 is exact while every partial sum fits 24 bits */
                    ck_assert_msg(llabs(v) < (1LL << 24), "layer %s: accumulator %lld is wider "
                                  "than float's 24 bits", L->name, (long long)v);
                    b2[pos * cols + o] = v;
                }
            n = L->out_size;
            memcpy(a, b2, (size_t)n * sizeof *a);
            F = Fo;
        }
    }
    for (int i = 0; i < n; i++) out[i] = ldexp((double)a[i], -F);
}

/* Compares the float forward of m (weff from c) on B random rows with the
 * integer reference, bit for bit. */
static void check_bit_exact(model *m, compress *c, int B, float scale, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * (size_t)B * m->in_size);
    for (long j = 0; j < (long)B * m->in_size; j++) /* on a 2^-20 grid: exact at F = 40 */
        x[j] = (float)ldexp(nearbyint(ldexp(scale * rng_normal(&r), 20)), -20);
    const float *y = model_forward(m, x, B);
    double ref[1024];
    long mism = 0;
    for (int bb = 0; bb < B; bb++) {
        ref_forward(m, c, x + (long)bb * m->in_size, ref);
        for (int o = 0; o < m->out_size; o++)
            if ((float)ref[o] != y[bb * m->out_size + o]) {
                if (mism < 5)
                    fprintf(stderr, "bit-exact: sample %d out %d: float %.9g, integer %.9g\n", bb,
                            o, y[bb * m->out_size + o], ref[o]);
                mism++;
            }
    }
    ck_assert_msg(mism == 0, "%ld of %d outputs differ from the integer reference", mism,
                  B * m->out_size);
    free(x);
}

/* x (B, IN) -> QUANT qin -> Dense(H) -> ReLU -> QUANT qmid -> Dense(C)
 * [-> QUANT qout], weights and biases quantized with w/b. */
static void bit_exact_case(fixed_spec qin, fixed_spec w, fixed_spec b, fixed_spec qmid,
                           const fixed_spec *qout, uint64_t seed) {
    enum { IN = 8, H = 16, C = 5, B = 64 };
    layer_spec s[6];
    memset(s, 0, sizeof s);
    s[0].kind = LAYER_QUANT; s[0].quant = qin;
    s[1].kind = LAYER_DENSE; s[1].units = H;
    s[2].kind = LAYER_RELU;
    s[3].kind = LAYER_QUANT; s[3].quant = qmid;
    s[4].kind = LAYER_DENSE; s[4].units = C;
    if (qout) { s[5].kind = LAYER_QUANT; s[5].quant = *qout; }
    int ns = qout ? 6 : 5;
    nl_error e = {0};
    model *m = model_create(s, ns, IN, B, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, seed);
    for (long j = 0; j < m->n_params; j++) m->params[j] = 1.5f * rng_normal(&r);
    cfg_quant q = q_on(w, qin);
    q.bias = b;
    cfg_pruning p = pr_off();
    cfg_training t = tr_default();
    compress *c = compress_create(m, &p, &q, &t, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    train_hooks h = compress_hooks(c);
    h.pre_forward(h.ctx, m);
    check_bit_exact(m, c, B, 3.0f, seed + 100);
    compress_free(c);
    model_free(m);
}

/* The acceptance model: the jets MLP 16-64-32-32-5 with the formats of
 * configs/quant/jets_6bit.yaml, built from that YAML's quantization section. */
START_TEST(test_bit_exact_jets_6bit) {
    const char *yaml =
        "data: {train: x.h5}\n"
        "model:\n"
        "  layers:\n"
        "    - {type: dense, units: 64, name: fc1}\n"
        "    - {type: relu}\n"
        "    - {type: dense, units: 32, name: fc2}\n"
        "    - {type: relu}\n"
        "    - {type: dense, units: 32, name: fc3}\n"
        "    - {type: relu}\n"
        "    - {type: dense, name: output}\n"
        "quantization_parameters:\n"
        "  default_weight_keep_negatives: 1\n"
        "  default_weight_integer_bits: 0\n"
        "  default_weight_fractional_bits: 5\n"
        "  default_data_keep_negatives: 0\n"
        "  default_data_integer_bits: 1\n"
        "  default_data_fractional_bits: 5\n"
        "  layer_specific:\n"
        "    fc1: {input: {keep_negatives: 1, integer_bits: 2, fractional_bits: 3}}\n";
    trial_config tc;
    nl_error e = {0};
    ck_assert_msg(config_parse_trial(yaml, "j.yaml", NULL, &tc, &e) == NL_OK, "%s", e.msg);
    layer_spec *s;
    int n;
    ck_assert_int_eq(compress_model_specs(tc.layers, tc.n_layers, 5, &tc.quant, &s, &n, &e), NL_OK);
    model *m = model_create(s, n, 16, 128, NULL, NULL, 0, &e);
    free(s);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r;
    rng_seed(&r, 11);
    model_init_params(m, &r);
    for (long j = 0; j < m->n_params; j++) m->params[j] += 0.05f * rng_normal(&r); /* biases too */
    cfg_training t = tr_default();
    compress *c = compress_create(m, &tc.prune, &tc.quant, &t, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    train_hooks h = compress_hooks(c);
    h.pre_forward(h.ctx, m);
    check_bit_exact(m, c, 128, 1.5f, 12);
    compress_free(c);
    model_free(m);
    config_free_trial(&tc);
}
END_TEST

START_TEST(test_bit_exact) {
    /* 6-bit everywhere (the acceptance format), with an output quantizer */
    fixed_spec six = fx(1, 0, 5), six_out = fx(1, 2, 3);
    bit_exact_case(fx(1, 2, 3), six, six, six, &six_out, 1);
    /* every rounding mode and every overflow mode somewhere */
    bit_exact_case(fxm(1, 3, 4, FX_WRAP, FX_TRN), fxm(1, 1, 5, FX_SAT_SYM, FX_RND_CONV),
                   fxm(1, 2, 4, FX_SAT, FX_RND_ZERO), fxm(1, 2, 3, FX_WRAP, FX_RND_ZERO), NULL, 2);
    fixed_spec o3 = fxm(1, 1, 2, FX_WRAP_SM, FX_RND_MIN_INF);
    bit_exact_case(fxm(0, 2, 6, FX_SAT, FX_RND_INF), fxm(1, 0, 5, FX_WRAP, FX_TRN_ZERO),
                   fxm(1, 1, 5, FX_WRAP_SM, FX_RND), fxm(1, 1, 4, FX_WRAP_SM, FX_RND_MIN_INF), &o3,
                   3);
    fixed_spec o4 = fxm(0, 3, 2, FX_WRAP, FX_RND_CONV);
    bit_exact_case(fxm(1, 1, 6, FX_SAT_SYM, FX_RND_CONV), fxm(1, 1, 6, FX_SAT, FX_RND_INF),
                   fxm(1, 3, 3, FX_SAT, FX_RND_MIN_INF), fxm(0, 2, 5, FX_WRAP_SM, FX_TRN_ZERO),
                   &o4, 4);
}
END_TEST

/* The reference itself, on ap_fixed facts (fixed.h's examples). */
START_TEST(test_ref_requant) {
    fixed_spec s = fxm(1, 3, 0, FX_WRAP_SM, FX_RND); /* ap_fixed<4,4,AP_RND,AP_WRAP_SM> */
    ck_assert_int_eq(ref_requant(19, 0, &s), -4);
    ck_assert_int_eq(ref_requant(-19, 0, &s), 2);
    s = fxm(1, 3, 0, FX_WRAP, FX_RND);
    ck_assert_int_eq(ref_requant(9, 0, &s), -7);
    s = fxm(1, 3, 0, FX_SAT, FX_RND_CONV); /* 2.5 -> 2, 3.5 -> 4 */
    ck_assert_int_eq(ref_requant(5, 1, &s), 2);
    ck_assert_int_eq(ref_requant(7, 1, &s), 4);
    s.round = FX_RND_ZERO; /* -2.5 -> -2 */
    ck_assert_int_eq(ref_requant(-5, 1, &s), -2);
    s.round = FX_RND_INF; /* -2.5 -> -3 */
    ck_assert_int_eq(ref_requant(-5, 1, &s), -3);
}
END_TEST

/* ---- HGQ -------------------------------------------------------------------- */

START_TEST(test_hgq_surrogate) {
    cfg_quant q = q_on(fx(1, 0, 7), fx(1, 3, 4));
    q.quantize_input = 0;
    q.use_hgq = 1;
    q.granularity = GRAN_PER_WEIGHT;
    one o;
    one_make(&o, &q);
    const param_view *k = model_find_view(o.m, "fc/kernel");
    const param_view *vf = model_find_view(o.m, "fc/hgq_wf");
    const param_view *vi = model_find_view(o.m, "fc/hgq_wi");
    ck_assert_ptr_nonnull(vf);
    ck_assert_int_eq(vf->len, 6);
    ck_assert(o.m->params[vf->off + 3] == 7.0f && o.m->params[vi->off] == 0.0f); /* initial */
    const float w[6] = {0.3f, 0.7f, 1.6f, -0.2f, 0.1f, 0.9f};
    memcpy(o.m->params + k->off, w, sizeof w);
    /* f: 2 (0.3 -> 0.25), 3.4 -> 3 (0.7 -> 0.75), 7 (1.6 clipped at 1 - 2^-7),
     * -1.6 -> -2 (width 1 + 0 - 2 < 1: pruned), 7, 0.5 -> 0 (round half even:
     * width 1: range [-1, 0], 0.9 clipped to 0) */
    const float f[6] = {2, 3.4f, 7, -1.6f, 7, 0.5f};
    memcpy(o.m->params + vf->off, f, sizeof f);
    train_hooks h = compress_hooks(o.c);
    h.pre_forward(h.ctx, o.m);
    const float eq[6] = {0.25f, 0.75f, 127 / 128.f, 0, 13 / 128.f, 0};
    tu_assert_close(o.m->weff + k->off, eq, 6, 0, 0, "HGQ forward");
    memset(o.m->grads, 0, (size_t)o.m->n_params * sizeof(float));
    for (int j = 0; j < 6; j++) o.m->grads[k->off + j] = 2.0f;
    float extra = h.post_backward(h.ctx, o.m); /* pre-training: no bit losses */
    ck_assert(extra == 0.0f);
    const double L2 = log(2.0);
    const float gw[6] = {2, 2, 0, 0, 2, 0};
    tu_assert_close(o.m->grads + k->off, gw, 6, 0, 0, "HGQ dL/dw");
    const float gf[6] = {(float)(2 * L2 * 0.05), (float)(2 * L2 * -0.05), 0,
                         (float)(2 * L2 * -0.2), (float)(2 * L2 * (0.1 - 13 / 128.)), 0};
    tu_assert_close(o.m->grads + vf->off, gf, 6, 1e-6, 1e-5, "HGQ dL/df");
    const float gi[6] = {0, 0, (float)(2 * L2 * 127 / 128.), (float)(2 * L2 * -0.2), 0, 0};
    tu_assert_close(o.m->grads + vi->off, gi, 6, 1e-6, 1e-5, "HGQ dL/di");
    /* the report: the pruned weight and the two zeros are not remaining */
    compress_report rep;
    nl_error e = {0};
    ck_assert_int_eq(compress_report_get(o.c, &rep, &e), NL_OK);
    ck_assert_int_eq(rep.remaining, 4);
    ck_assert_int_eq(rep.layers[0].bits_max, 7); /* 127/128: 7 set bits */
    ck_assert_int_eq(rep.layers[0].bits_min, 1); /* 0.25 */
    compress_report_free(&rep);

    /* the bit losses in the main stage, by hand: input bits 32 (float input) */
    o.c->stage = STAGE_MAIN;
    memset(o.m->grads, 0, (size_t)o.m->n_params * sizeof(float));
    double lb = hgq_loss(o.c);
    /* widths k + i + f: 3, 4, 8, (pruned), 8, 1 -> 24; bit sums over kernel
     * i + f: 2 + 3 + 7 - 2 + 7 + 0 = 17, bias 3 x 7 = 21 */
    double expect = 1e-5 * 32 * 24 + 3e-4 * (17 + 21);
    ck_assert_msg(fabs(lb - expect) < 1e-6, "HGQ loss %.9g vs %.9g", lb, expect);
    ck_assert(fabsf(o.m->grads[vf->off] - (float)(1e-5 * 32 + 3e-4)) < 1e-9f);
    ck_assert(fabsf(o.m->grads[vf->off + 3] - (float)3e-4) < 1e-9f); /* pruned: gamma only */
    one_free(&o);
}
END_TEST

/* HGQ training with a strong EBOPs weight removes bits (and weights). */
START_TEST(test_hgq_trains_bits_down) {
    cfg_quant q = q_on(fx(1, 0, 7), fx(1, 3, 4));
    q.quantize_input = 0;
    q.use_hgq = 1;
    q.hgq_beta = 2e-3;
    q.hgq_gamma = 1e-3;
    one o;
    one_make(&o, &q);
    rng_t r;
    rng_seed(&r, 5);
    model_init_params(o.m, &r);
    optim opt;
    memset(&opt, 0, sizeof opt);
    nl_error e = {0};
    ck_assert_int_eq(optim_init(&opt, OPT_ADAM, o.m->n_params, &e), NL_OK);
    opt.lr = 0.05f;
    opt.beta1 = 0.9f; opt.beta2 = 0.999f; opt.eps = 1e-8f;
    float x[256 * 2];
    int32_t y[256];
    for (int j = 0; j < 256; j++) {
        x[2 * j] = rng_normal(&r);
        x[2 * j + 1] = rng_normal(&r);
        y[j] = x[2 * j] > 0 ? (x[2 * j + 1] > 0 ? 0 : 1) : 2;
    }
    train_hooks h = compress_hooks(o.c);
    o.c->stage = STAGE_MAIN;
    epoch_stats st;
    for (int ep = 0; ep < 30; ep++)
        ck_assert_int_eq(nn_train_epoch(o.m, &opt, x, y, 256, 8, &r, &h, &st, &e), NL_OK);
    compress_report rep;
    ck_assert_int_eq(compress_report_get(o.c, &rep, &e), NL_OK);
    const param_view *vf = model_find_view(o.m, "fc/hgq_wf");
    double fmean = 0;
    for (long j = 0; j < vf->len; j++) fmean += o.m->params[vf->off + j] / vf->len;
    ck_assert_msg(fmean < 5.0, "mean f %.3g did not drop from 7", fmean);
    ck_assert_msg(st.accuracy > 0.8, "accuracy %.3f", st.accuracy);
    compress_report_free(&rep);
    optim_free(&opt);
    one_free(&o);
}
END_TEST

/* ---- HGQ on convolutional models ------------------------------------------------ */

/* A model of the given specs created as the worker does (compress_plan_all_params,
 * then compress_create); pruning off, Q(P(W)). */
static void net_make(one *o, const layer_spec *s, int ns, int in_size, int max_batch,
                     const cfg_quant *q) {
    nl_error e = {0};
    char **names; long *lens; int n;
    cfg_pruning p = pr_off();
    ck_assert_msg(compress_plan_all_params(s, ns, in_size, &p, q, &names, &lens, &n, &e) == NL_OK,
                  "%s", e.msg);
    o->m = model_create(s, ns, in_size, max_batch, (const char *const *)names, lens, n, &e);
    ck_assert_msg(o->m != NULL, "%s", e.msg);
    for (int j = 0; j < n; j++) free(names[j]);
    free(names);
    free(lens);
    cfg_training t = tr_default();
    o->c = compress_create(o->m, &p, q, &t, &e);
    ck_assert_msg(o->c != NULL, "%s", e.msg);
}

static layer_spec sp_kind(int kind, const char *name) {
    layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = (layer_kind)kind;
    if (name) snprintf(s.name, sizeof s.name, "%s", name);
    return s;
}
static layer_spec sp_quant(const char *name, fixed_spec f) {
    layer_spec s = sp_kind(LAYER_QUANT, name);
    s.quant = f;
    return s;
}
static layer_spec sp_conv(int kind, const char *name, int filters, int kh, int kw) {
    layer_spec s = sp_kind(kind, name);
    s.filters = filters;
    s.kernel[0] = kh;
    s.kernel[1] = kw;
    return s;
}
static layer_spec sp_pool(int kind, int ph, int pw) {
    layer_spec s = sp_kind(kind, NULL);
    s.pool[0] = ph;
    s.pool[1] = pw;
    return s;
}
static layer_spec sp_dense(const char *name, int units) {
    layer_spec s = sp_kind(LAYER_DENSE, name);
    s.units = units;
    return s;
}

/* Segments for every kernel layer, sized from nn's shapes (through
 * BatchNorm, pooling, Dropout and Flatten); other layers have none. */
START_TEST(test_hgq_conv_plan) {
    layer_spec s[9];
    s[0] = sp_quant("in", fx(1, 2, 4));
    s[0].in_shape[0] = 6; s[0].in_shape[1] = 6; s[0].in_shape[2] = 2;
    s[1] = sp_conv(LAYER_CONV2D, "conv", 3, 3, 3);           /* 4x4x3, kernel (18, 3) */
    s[2] = sp_kind(LAYER_RELU, NULL);
    s[3] = sp_kind(LAYER_BATCHNORM, "bn");
    s[3].momentum = 0.9f; s[3].epsilon = 1e-3f;
    s[4] = sp_pool(LAYER_MAXPOOL2D, 2, 2);                    /* 2x2x3 */
    s[5] = sp_kind(LAYER_DROPOUT, NULL);
    s[5].rate = 0.25f;
    s[6] = sp_kind(LAYER_FLATTEN, NULL);                      /* 12 */
    s[7] = sp_quant("fc_in", fx(0, 2, 4));
    s[8] = sp_dense("fc", 4);                                 /* kernel (12, 4) */
    cfg_quant q = q_on(fx(1, 0, 7), fx(1, 3, 4));
    q.use_hgq = 1;
    const char *names[8] = {"conv/hgq_wf", "conv/hgq_wi", "conv/hgq_bf", "conv/hgq_bi",
                            "fc/hgq_wf",   "fc/hgq_wi",   "fc/hgq_bf",   "fc/hgq_bi"};
    const long per_weight[8] = {54, 54, 3, 3, 48, 48, 4, 4};
    const long per_channel[8] = {3, 3, 3, 3, 4, 4, 4, 4};
    const long per_tensor[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const long *expect[3] = {per_weight, per_channel, per_tensor};
    for (int v = 0; v < 3; v++) {
        q.granularity = v == 1 ? GRAN_PER_CHANNEL : GRAN_PER_WEIGHT;
        q.hgq_heterogeneous = v < 2;
        nl_error e = {0};
        char **nm; long *ln; int n;
        cfg_pruning p = pr_off();
        ck_assert_msg(compress_plan_all_params(s, 9, 72, &p, &q, &nm, &ln, &n, &e) == NL_OK, "%s",
                      e.msg);
        ck_assert_int_eq(n, 8);
        for (int j = 0; j < 8; j++) {
            ck_assert_str_eq(nm[j], names[j]);
            ck_assert_msg(ln[j] == expect[v][j], "variant %d, %s: %ld values, expected %ld", v,
                          nm[j], ln[j], expect[v][j]);
            free(nm[j]);
        }
        free(nm);
        free(ln);
        /* compress_create finds them and the forward pass runs */
        one o;
        net_make(&o, s, 9, 72, 4, &q);
        train_hooks h = compress_hooks(o.c);
        h.pre_forward(h.ctx, o.m);
        const param_view *vf = model_find_view(o.m, "conv/hgq_wf");
        ck_assert(vf && o.m->params[vf->off] == 7.0f);
        one_free(&o);
    }
    /* a geometry nn refuses: its error comes back */
    s[1].kernel[0] = s[1].kernel[1] = 7;
    nl_error e = {0};
    char **nm; long *ln; int n;
    cfg_pruning p = pr_off();
    ck_assert_int_ne(compress_plan_all_params(s, 9, 72, &p, &q, &nm, &ln, &n, &e), NL_OK);
    ck_assert_msg(strstr(e.msg, "conv") != NULL, "%s", e.msg);
}
END_TEST

/* The EBOPs part of the HGQ loss on a conv layer equals the reported EBOPs:
 * unsigned weights 2^i - 2^-f (every bit set, so the bit span is the width
 * i + f), 4-bit inputs, 16 output positions, a zero-bit weight. */
START_TEST(test_hgq_conv_ebops) {
    layer_spec s[5];
    s[0] = sp_quant("in", fx(0, 2, 2)); /* 4 bits */
    s[0].in_shape[0] = 5; s[0].in_shape[1] = 5; s[0].in_shape[2] = 1;
    s[1] = sp_conv(LAYER_CONV2D, "conv", 2, 2, 2); /* 4x4x2: 16 positions, kernel (4, 2) */
    s[2] = sp_kind(LAYER_FLATTEN, NULL);           /* 32 */
    s[3] = sp_quant("fc_in", fx(0, 3, 1));         /* 4 bits */
    s[4] = sp_dense("fc", 1);
    cfg_quant q = q_on(fx(0, 0, 7), fx(0, 2, 2));
    q.use_hgq = 1;
    q.granularity = GRAN_PER_WEIGHT;
    q.hgq_beta = 1e-3;
    q.hgq_gamma = 0;
    one o;
    net_make(&o, s, 5, 25, 4, &q);
    model *m = o.m;
    const param_view *k = model_find_view(m, "conv/kernel");
    const param_view *vf = model_find_view(m, "conv/hgq_wf"), *vi = model_find_view(m, "conv/hgq_wi");
    /* (i, f) per weight; widths 3 3 2 2 0 2 1 4 = 17 */
    const float ci[8] = {1, 0, 2, -1, 0, 1, 0, 2}, cf[8] = {2, 3, 0, 3, 0, 1, 1, 2};
    for (int j = 0; j < 8; j++) {
        m->params[vi->off + j] = ci[j];
        m->params[vf->off + j] = cf[j];
        m->params[k->off + j] = (float)(ldexp(1, (int)ci[j]) - ldexp(1, -(int)cf[j]));
    }
    m->params[k->off + 4] = 0.6f; /* no bits: q = 0, pruned */
    const param_view *fk = model_find_view(m, "fc/kernel");
    const param_view *ff = model_find_view(m, "fc/hgq_wf"), *fi = model_find_view(m, "fc/hgq_wi");
    for (int j = 0; j < 32; j++) {
        m->params[fi->off + j] = 0;
        m->params[ff->off + j] = 1;
        m->params[fk->off + j] = 0.5f; /* width 1 */
    }
    train_hooks h = compress_hooks(o.c);
    h.pre_forward(h.ctx, m);
    ck_assert(m->weff[k->off + 4] == 0.0f && m->weff[k->off + 7] == 3.75f);
    compress_report rep;
    nl_error e = {0};
    ck_assert_int_eq(compress_report_get(o.c, &rep, &e), NL_OK);
    /* conv: 4 bits x 17 x 16 positions; fc: 4 bits x 32 x 1 */
    ck_assert_msg(rep.layers[0].ebops == 1088.0, "conv EBOPs %.9g", rep.layers[0].ebops);
    ck_assert_msg(rep.layers[1].ebops == 128.0, "fc EBOPs %.9g", rep.layers[1].ebops);
    ck_assert_int_eq(rep.layers[0].remaining, 7); /* the zero-bit weight counts as pruned */
    ck_assert(fabs(rep.layers[0].sparsity - 0.125) < 1e-12);
    ck_assert(fabs(rep.layers[0].bits_mean - 17 / 7.0) < 1e-12);
    o.c->stage = STAGE_MAIN;
    memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
    double lb = hgq_loss(o.c);
    ck_assert_msg(fabs(lb / 1e-3 - rep.ebops) < 1e-6 * rep.ebops,
                  "HGQ loss / beta %.9g vs reported EBOPs %.9g", lb / 1e-3, rep.ebops);
    ck_assert(rep.ebops == 1216.0);
    /* d/df of a kept conv weight: beta x 4 bits x 16 positions; pruned: 0 */
    ck_assert(fabsf(m->grads[vf->off] - (float)(1e-3 * 64)) < 1e-9f);
    ck_assert(fabsf(m->grads[vi->off + 7] - (float)(1e-3 * 64)) < 1e-9f);
    ck_assert(m->grads[vf->off + 4] == 0.0f);
    ck_assert(fabsf(m->grads[ff->off + 5] - (float)(1e-3 * 4)) < 1e-9f);
    compress_report_free(&rep);
    one_free(&o);
}
END_TEST

/* Mean softmax cross-entropy in double (the numeric side of the check). */
static double xent_d(const float *z, const int32_t *y, int B, int C2) {
    double s = 0;
    for (int b = 0; b < B; b++) {
        const float *r = z + (long)b * C2;
        double mx = r[0], se = 0;
        for (int j = 1; j < C2; j++) if (r[j] > mx) mx = r[j];
        for (int j = 0; j < C2; j++) se += exp((double)r[j] - mx);
        s += log(se) + mx - r[y[b]];
    }
    return s / B;
}

/* The surrogate, written as a function of (f, i) of group g around the
 * current state: in range q = x - (x - q0) 2^-(f - f0) (the error halves
 * per bit), clipped q = q0 2^(i - i0) (the bound scales with 2^i), no
 * bits q = ln2 x ((f - f0) + (i - i0)). Its derivative at the current
 * point is what hgq_backward claims. */
static void relax_group(const cq_tensor *t, long g, const float *x, const float *q0,
                        const unsigned char *inr, double df, double di, float *q) {
    for (long j = 0; j < t->n; j++) {
        if (cq_group(t, j) != g) continue;
        if (inr[j] == 1) q[j] = (float)(x[j] - (x[j] - (double)q0[j]) * exp2(-df));
        else if (inr[j] == 0) q[j] = (float)(q0[j] * exp2(di));
        else q[j] = (float)(log(2.0) * x[j] * (df + di));
    }
}

/* dL/df and dL/di of data loss + HGQ losses against central differences
 * of the surrogate, on QUANT -> Conv2D -> ReLU -> MaxPool -> Flatten ->
 * Dense; values sit 0.2-0.3 away from the rounding edges. Step hh: a
 * per-channel group moves up to 18 weights at once, so it needs a small
 * step not to cross ReLU and MaxPool kinks; a single weight needs a larger
 * one to rise above float32's noise in the loss. */
static void hgq_conv_gradient_case(quant_granularity gran, double hh, uint64_t seed) {
    enum { B = 16, NC = 3 };
    layer_spec s[6];
    s[0] = sp_quant("in", fx(1, 2, 4)); /* 7 bits */
    s[0].in_shape[0] = 6; s[0].in_shape[1] = 6; s[0].in_shape[2] = 2;
    s[1] = sp_conv(LAYER_CONV2D, "conv", 2, 3, 3); /* 4x4x2: 16 positions, kernel (18, 2) */
    s[2] = sp_kind(LAYER_RELU, NULL);
    s[3] = sp_pool(LAYER_MAXPOOL2D, 2, 2); /* 2x2x2 */
    s[4] = sp_kind(LAYER_FLATTEN, NULL);   /* 8; no data quantizer: float input, 32 bits */
    s[5] = sp_dense("fc", NC);
    cfg_quant q = q_on(fx(1, 0, 7), fx(1, 2, 4));
    q.use_hgq = 1;
    q.granularity = gran;
    q.hgq_beta = 3e-5;
    q.hgq_gamma = 1e-3;
    one o;
    net_make(&o, s, 6, 72, B, &q);
    model *m = o.m;
    compress *c = o.c;
    rng_t r;
    rng_seed(&r, seed);
    model_init_params(m, &r);
    for (int li = 0; li < 2; li++) { /* biases away from 0 */
        cl_layer *L = &c->layers[li];
        for (int j = 0; j < L->out; j++) m->params[L->b_off + j] = 0.3f * rng_normal(&r);
    }
    /* bits: f = 2..5 + 0.25 or - 0.3, i = 0 + 0.2; some groups with i = -1
     * (range +-0.5: the larger weights clip), one group with no bits */
    for (int li = 0; li < 2; li++) {
        cq_layer *Q = &c->quant->layers[li];
        cq_tensor *ts[2] = {&Q->w, &Q->b};
        for (int k = 0; k < 2; k++) {
            cq_tensor *t = ts[k];
            for (long g = 0; g < t->groups; g++) {
                float fv = (float)(2 + rng_uniform(&r) * 4), iv = 0.2f;
                fv = floorf(fv) + (rng_uniform(&r) < 0.5 ? 0.25f : -0.3f);
                if (k == 0 && g % 3 == 1) iv = -0.8f;            /* rounds to -1 */
                if (k == 0 && li == 1 && g == 2) { iv = -1.2f; fv = 0.3f; } /* width 0 */
                m->params[t->f_off + g] = fv;
                m->params[t->i_off + g] = iv;
            }
        }
    }
    float x[B * 72];
    int32_t y[B];
    for (int j = 0; j < B * 72; j++) x[j] = 1.2f * rng_normal(&r);
    for (int b = 0; b < B; b++) y[b] = (int32_t)(rng_next(&r) % NC);
    /* analytic */
    c->stage = STAGE_MAIN;
    train_hooks h = compress_hooks(c);
    h.pre_forward(h.ctx, m);
    float dl[B * NC];
    const float *z = model_forward(m, x, B);
    loss_softmax_xent(z, y, B, NC, dl, NULL);
    model_backward(m, x, dl, B);
    h.post_backward(h.ctx, m);
    float *weff0 = malloc((size_t)m->n_params * sizeof *weff0);
    memcpy(weff0, m->weff, (size_t)m->n_params * sizeof *weff0);
    const double bits_pos[2] = {7.0 * 16, 32.0 * 1}; /* input bits x output positions */
    int n_checked = 0, n_clip = 0, n_zero = 0;
    double worst = 0;
    for (int li = 0; li < 2; li++) {
        cl_layer *L = &c->layers[li];
        cq_layer *Q = &c->quant->layers[li];
        for (int k = 0; k < 4; k++) {
            cq_tensor *t = k < 2 ? &Q->w : &Q->b;
            const float *xs = m->params + (k < 2 ? L->w_off : L->b_off);
            const float *q0 = weff0 + (k < 2 ? L->w_off : L->b_off);
            const unsigned char *inr = k < 2 ? L->inr : L->binr;
            long off = k % 2 == 0 ? t->f_off : t->i_off;
            for (long g = 0; g < t->groups; g++) {
                double lpm[2];
                for (int sg = 0; sg < 2; sg++) {
                    double d = sg ? -hh : hh;
                    memcpy(m->weff, weff0, (size_t)m->n_params * sizeof *weff0);
                    relax_group(t, g, xs, q0, inr, k % 2 == 0 ? d : 0, k % 2 ? d : 0,
                                m->weff + (k < 2 ? L->w_off : L->b_off));
                    lpm[sg] = xent_d(model_forward(m, x, B), y, B, NC);
                }
                double num = (lpm[0] - lpm[1]) / (2 * hh);
                /* the HGQ losses are linear in the relaxed bits: beta x input
                 * bits x positions per kept kernel entry with bits, gamma per group */
                double lin = q.hgq_gamma;
                for (long j = 0; k < 2 && j < t->n; j++)
                    if (cq_group(t, j) == g && inr[j] != 2) lin += q.hgq_beta * bits_pos[li];
                double ana = m->grads[off + g];
                double dev = fabs(num + lin - ana);
                double tol = 2e-6 + 2e-2 * fabs(num);
                ck_assert_msg(dev <= tol, "%s segment %d group %ld: analytic %.8g, numeric %.8g "
                              "+ HGQ %.8g", m->layers[L->layer].name, k, g, ana, num, lin);
                if (dev > worst) worst = dev;
                n_checked++;
            }
        }
        for (long j = 0; j < L->n; j++) {
            n_clip += L->inr[j] == 0;
            n_zero += L->inr[j] == 2;
        }
    }
    /* the cases the check must cover were there */
    ck_assert_msg(n_clip > 0 && n_zero > 0, "clipped %d, zero-bit %d", n_clip, n_zero);
    fprintf(stderr, "HGQ conv gradient (granularity %d): %d segment values, max deviation %.3g\n",
            (int)gran, n_checked, worst);
    free(weff0);
    one_free(&o);
}

START_TEST(test_hgq_conv_gradient) {
    hgq_conv_gradient_case(GRAN_PER_WEIGHT, 0.05, 21);
    hgq_conv_gradient_case(GRAN_PER_CHANNEL, 0.005, 22);
}
END_TEST

typedef struct {
    int n;
    double ebops[32], val_acc[32];
} hgq_trace;

static int hgq_trace_cb(void *ctx, const epoch_record *r) {
    hgq_trace *t = ctx;
    if (t->n < 32) {
        t->ebops[t->n] = r->ebops;
        t->val_acc[t->n] = r->val_accuracy;
        t->n++;
    }
    return 0;
}

/* A Conv1D model with HGQ learns the toy blobs (8 steps, 1 channel) through
 * compress_train; under beta the bits and EBOPs go down; the trained
 * quantized model is bit-exact against the int64 reference. */
START_TEST(test_hgq_conv_trains) {
    toy_data *td = malloc(sizeof *td);
    toy_make(td, 3);
    layer_spec s[7];
    s[0] = sp_quant("in", fx(1, 3, 4));
    s[0].in_shape[0] = 1; s[0].in_shape[1] = D; s[0].in_shape[2] = 1;
    s[1] = sp_conv(LAYER_CONV1D, "conv", 4, 3, 0); /* 6 steps x 4: kernel (3, 4) */
    s[2] = sp_kind(LAYER_RELU, NULL);
    s[3] = sp_pool(LAYER_MAXPOOL1D, 2, 0);         /* 3 x 4 */
    s[4] = sp_kind(LAYER_FLATTEN, NULL);           /* 12 */
    s[5] = sp_quant("fc_in", fx(0, 3, 4));
    s[6] = sp_dense("fc", C);
    cfg_quant q = q_on(fx(1, 0, 7), fx(1, 3, 4));
    q.use_hgq = 1;
    q.granularity = GRAN_PER_WEIGHT;
    q.hgq_beta = 1e-4;
    q.hgq_gamma = 1e-3;
    one o;
    net_make(&o, s, 7, D, 64, &q);
    rng_t r;
    rng_seed(&r, 8);
    model_init_params(o.m, &r);
    cfg_training t = tr_toy(20);
    optim opt;
    memset(&opt, 0, sizeof opt);
    nl_error e = {0};
    ck_assert_int_eq(optim_init(&opt, OPT_ADAM, o.m->n_params, &e), NL_OK);
    opt.lr = (float)t.learning_rate;
    opt.beta1 = 0.9f; opt.beta2 = 0.999f; opt.eps = 1e-8f;
    train_data d = toy_view(td);
    hgq_trace tr;
    memset(&tr, 0, sizeof tr);
    ck_assert_msg(compress_train(o.c, o.m, &opt, &t, &d, &r, hgq_trace_cb, &tr, &e) == NL_OK, "%s",
                  e.msg);
    ck_assert_int_eq(tr.n, 20);
    /* 8-bit start: conv 12 weights x 6 positions x 8 x 8 + fc 36 x 7 x 8 */
    double ebops0 = 12 * 6 * 8 * 8 + 36 * 7 * 8;
    const param_view *vf = model_find_view(o.m, "conv/hgq_wf");
    double fmean = 0;
    for (long j = 0; j < vf->len; j++) fmean += o.m->params[vf->off + j] / vf->len;
    fprintf(stderr, "HGQ Conv1D: EBOPs epoch 0 %.0f, last %.0f (8-bit %.0f), val acc %.3f, "
            "conv mean f %.2f\n", tr.ebops[0], tr.ebops[tr.n - 1], ebops0, tr.val_acc[tr.n - 1],
            fmean);
    ck_assert_msg(tr.ebops[tr.n - 1] < 0.5 * ebops0 && tr.ebops[tr.n - 1] < tr.ebops[0],
                  "EBOPs %.0f -> %.0f (8-bit: %.0f)", tr.ebops[0], tr.ebops[tr.n - 1], ebops0);
    ck_assert_msg(fmean < 6.0, "conv mean f %.2f did not drop from 7", fmean);
    ck_assert_msg(tr.val_acc[tr.n - 1] > 0.9, "val accuracy %.3f", tr.val_acc[tr.n - 1]);
    /* the float forward of the trained model is integer arithmetic */
    check_bit_exact(o.m, o.c, 64, 2.0f, 31);
    optim_free(&opt);
    one_free(&o);
    free(td);
}
END_TEST

/* The int64 reference on a static-quantized conv stack with SAME padding,
 * stride 2, per-channel formats, MaxPool and Flatten. */
START_TEST(test_bit_exact_conv) {
    layer_spec s[8];
    s[0] = sp_quant("in", fxm(1, 2, 5, FX_SAT, FX_RND_CONV));
    s[0].in_shape[0] = 7; s[0].in_shape[1] = 7; s[0].in_shape[2] = 2;
    s[1] = sp_conv(LAYER_CONV2D, "conv", 3, 3, 3);
    s[1].padding = PAD_SAME;
    s[1].strides[0] = s[1].strides[1] = 2;                      /* 4x4x3 */
    s[2] = sp_kind(LAYER_RELU, NULL);
    s[3] = sp_quant("mid", fxm(0, 2, 4, FX_WRAP, FX_TRN));
    s[4] = sp_pool(LAYER_MAXPOOL2D, 2, 2);                      /* 2x2x3 */
    s[5] = sp_kind(LAYER_FLATTEN, NULL);
    s[6] = sp_conv(LAYER_CONV1D, "c1d", 2, 1, 0);               /* (1, 1, 12): kernel (12, 2) */
    s[7] = sp_dense("fc", 4);
    cfg_quant q = q_on(fxm(1, 1, 5, FX_SAT, FX_RND), fx(1, 2, 5));
    q.granularity = GRAN_PER_CHANNEL;
    one o;
    net_make(&o, s, 8, 98, 32, &q);
    rng_t r;
    rng_seed(&r, 41);
    for (long j = 0; j < o.m->n_params; j++) o.m->params[j] = 0.8f * rng_normal(&r);
    train_hooks h = compress_hooks(o.c);
    h.pre_forward(h.ctx, o.m);
    ck_assert_int_eq(o.m->layers[1].out_size, 48);
    check_bit_exact(o.m, o.c, 32, 2.0f, 42);
    one_free(&o);
}
END_TEST

/* ---- distillation ------------------------------------------------------------- */

START_TEST(test_distill_gradient) {
    enum { B = 3, C = 4 };
    float s[B * C], t[B * C], g[B * C];
    int32_t y[B] = {0, 3, 2};
    rng_t r;
    rng_seed(&r, 9);
    for (int j = 0; j < B * C; j++) {
        s[j] = 2 * rng_normal(&r);
        t[j] = 2 * rng_normal(&r);
    }
    const double Ts[3] = {1, 2.5, 6}, As[3] = {0, 0.3, 1};
    for (int v = 0; v < 3; v++) {
        distill_loss(s, t, y, B, C, Ts[v], As[v], g, NULL);
        for (int j = 0; j < B * C; j++) {
            float keep = s[j], hh = 1e-2f;
            s[j] = keep + hh;
            double lp = distill_loss(s, t, y, B, C, Ts[v], As[v], NULL, NULL);
            s[j] = keep - hh;
            double lm = distill_loss(s, t, y, B, C, Ts[v], As[v], NULL, NULL);
            s[j] = keep;
            double num = (lp - lm) / (2 * hh);
            ck_assert_msg(fabs(num - g[j]) < 2e-3 + 1e-2 * fabs(num),
                          "T %g alpha %g: d/ds[%d] %.6g vs numeric %.6g", Ts[v], As[v], j, g[j], num);
        }
    }
    /* alpha 1: plain CE; equal logits: zero KL */
    float ce = loss_softmax_xent(s, y, B, C, NULL, NULL);
    ck_assert(fabsf(distill_loss(s, t, y, B, C, 3, 1, NULL, NULL) - ce) < 1e-5f);
    ck_assert(fabsf(distill_loss(s, s, y, B, C, 3, 0, NULL, NULL)) < 1e-6f);
}
END_TEST

/* Data: 8 features, 4 classes from a fixed random 8-32-4 "oracle" network. */
static void oracle_data(float *x, int32_t *y, long n, uint64_t seed) {
    rng_t r, ro;
    rng_seed(&r, seed);
    rng_seed(&ro, 4242);
    float w1[8 * 32], w2[32 * 4];
    for (int j = 0; j < 8 * 32; j++) w1[j] = rng_normal(&ro);
    for (int j = 0; j < 32 * 4; j++) w2[j] = rng_normal(&ro);
    for (long s = 0; s < n; s++) {
        float *xs = x + s * 8, h[32], z[4];
        for (int i = 0; i < 8; i++) xs[i] = rng_normal(&r);
        for (int o = 0; o < 32; o++) {
            h[o] = 0;
            for (int i = 0; i < 8; i++) h[o] += xs[i] * w1[i * 32 + o];
            h[o] = h[o] > 0 ? h[o] : 0;
        }
        int am = 0;
        for (int o = 0; o < 4; o++) {
            z[o] = 0;
            for (int i = 0; i < 32; i++) z[o] += h[i] * w2[i * 4 + o];
            if (z[o] > z[am]) am = o;
        }
        y[s] = am;
    }
}

static model *mlp(int hidden, int max_batch) {
    layer_spec s[3];
    memset(s, 0, sizeof s);
    s[0].kind = LAYER_DENSE; s[0].units = hidden;
    s[1].kind = LAYER_RELU;
    s[2].kind = LAYER_DENSE; s[2].units = 4;
    nl_error e = {0};
    model *m = model_create(s, 3, 8, max_batch, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    return m;
}

/* Trains a 16-unit student on nx rows for epochs, alone (teacher NULL) or
 * distilled; returns its accuracy on the test rows. If tlogits is given,
 * the teacher's outputs come from that array instead (same rows). */
static double student_run(const float *x, const int32_t *y, long nx, const float *xt,
                          const int32_t *yt, long nt, model *teacher, const float *tlogits,
                          int epochs, float *params_out) {
    model *m = mlp(16, 32);
    rng_t r;
    rng_seed(&r, 77);
    model_init_params(m, &r);
    cfg_quant q;
    memset(&q, 0, sizeof q);
    cfg_pruning p = pr_off();
    cfg_training t = tr_default();
    nl_error e = {0};
    compress *c = compress_create(m, &p, &q, &t, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    if (teacher) ck_assert_int_eq(compress_set_distillation(c, teacher, 4.0, 0.2, &e), NL_OK);
    if (tlogits)
        ck_assert_int_eq(compress_set_distillation_logits(c, tlogits, nx, 4.0, 0.2, &e), NL_OK);
    optim o;
    memset(&o, 0, sizeof o);
    ck_assert_int_eq(optim_init(&o, OPT_ADAM, m->n_params, &e), NL_OK);
    o.lr = 3e-3f; o.beta1 = 0.9f; o.beta2 = 0.999f; o.eps = 1e-8f;
    train_hooks h = compress_hooks(c);
    epoch_stats st;
    for (int ep = 0; ep < epochs; ep++)
        ck_assert_int_eq(nn_train_epoch(m, &o, x, y, nx, 16, &r, &h, &st, &e), NL_OK);
    ck_assert_int_eq(nn_evaluate(m, xt, yt, nt, &h, &st, NULL, &e), NL_OK);
    if (params_out) memcpy(params_out, m->params, (size_t)m->n_params * sizeof(float));
    optim_free(&o);
    compress_free(c);
    model_free(m);
    return st.accuracy;
}

START_TEST(test_distill_helps) {
    enum { NT = 20000, NS = 200, NTEST = 4000 };
    float *xb = malloc(sizeof(float) * 8 * NT), *xt = malloc(sizeof(float) * 8 * NTEST);
    int32_t *yb = malloc(sizeof(int32_t) * NT), *yt = malloc(sizeof(int32_t) * NTEST);
    oracle_data(xb, yb, NT, 1);
    oracle_data(xt, yt, NTEST, 2);
    /* the teacher: 64 hidden units on all NT rows */
    model *tm = mlp(64, 256);
    rng_t r;
    rng_seed(&r, 3);
    model_init_params(tm, &r);
    optim o;
    memset(&o, 0, sizeof o);
    nl_error e = {0};
    ck_assert_int_eq(optim_init(&o, OPT_ADAM, tm->n_params, &e), NL_OK);
    o.lr = 3e-3f; o.beta1 = 0.9f; o.beta2 = 0.999f; o.eps = 1e-8f;
    epoch_stats st;
    for (int ep = 0; ep < 15; ep++)
        ck_assert_int_eq(nn_train_epoch(tm, &o, xb, yb, NT, 128, &r, NULL, &st, &e), NL_OK);
    ck_assert_int_eq(nn_evaluate(tm, xt, yt, NTEST, NULL, &st, NULL, &e), NL_OK);
    double acc_teacher = st.accuracy;
    optim_free(&o);
    /* the students: the first NS rows only */
    double alone = student_run(xb, yb, NS, xt, yt, NTEST, NULL, NULL, 60, NULL);
    float *pa = malloc(sizeof(float) * 4096), *pb = malloc(sizeof(float) * 4096);
    double dist = student_run(xb, yb, NS, xt, yt, NTEST, tm, NULL, 60, pa);
    fprintf(stderr, "distillation: teacher %.4f, student alone %.4f, distilled %.4f\n",
            acc_teacher, alone, dist);
    ck_assert_msg(dist > alone + 0.02, "distilled %.4f vs alone %.4f", dist, alone);
    /* Precomputed logits of the same rows train the same student. Not bit
     * for bit: during training the teacher sees shuffled batches of 16,
     * nn_evaluate one batch of 200, and OpenBLAS picks its sgemm kernel by
     * shape and CPU, so the sums over K <= 64 terms may run in another
     * order. Float error bound of such a sum: gamma_K * sum|w x| with
     * gamma_64 = 64 * 2^-24 = 3.8e-6; the logits here are O(1), so 1e-5
     * absolute and relative covers it (measured: <= 3e-8). */
    float *tl = malloc(sizeof(float) * 4 * NS), *t16 = malloc(sizeof(float) * 4 * NS);
    ck_assert_int_eq(nn_evaluate(tm, xb, yb, NS, NULL, &st, tl, &e), NL_OK);
    for (int i = 0; i < NS; i += 16) {
        int B = NS - i < 16 ? NS - i : 16;
        memcpy(t16 + 4 * i, model_forward(tm, xb + 8 * i, B), sizeof(float) * 4 * B);
    }
    tu_assert_close(t16, tl, 4L * NS, 1e-5, 1e-5, "teacher logits, batches of 16 vs 200");
    student_run(xb, yb, NS, xt, yt, NTEST, NULL, tl, 60, pb);
    /* 60 epochs of Adam carry that last-bit noise into the parameters
     * (measured: max 3.6e-7 on Haswell and Zen, 0 on SkylakeX and Prescott);
     * logits paired with the wrong rows move them by about lr = 3e-3 a
     * step, and the control below (logits one row off) moves them by 1.3. */
    model *probe = mlp(16, 32);
    tu_assert_close(pb, pa, probe->n_params, 1e-4, 0, "student params, teacher model vs logits");
    float *shifted = malloc(sizeof(float) * 4 * NS), *pc = malloc(sizeof(float) * 4096);
    memcpy(shifted, tl + 4, sizeof(float) * 4 * (NS - 1));
    memcpy(shifted + 4 * (NS - 1), tl, sizeof(float) * 4);
    student_run(xb, yb, NS, xt, yt, NTEST, NULL, shifted, 60, pc);
    double off = 0;
    for (long j = 0; j < probe->n_params; j++) off = fmax(off, fabs((double)pc[j] - pa[j]));
    double same = 0;
    for (long j = 0; j < probe->n_params; j++) same = fmax(same, fabs((double)pb[j] - pa[j]));
    fprintf(stderr, "distillation: max |param diff| teacher vs logits %.3g, logits one row off %.3g\n",
            same, off);
    ck_assert_msg(off > 1e-2, "logits one row off change the student by only %.3g", off);
    free(shifted); free(pc); free(t16);
    model_free(probe);
    model_free(tm);
    free(tl); free(pa); free(pb);
    free(xb); free(xt); free(yb); free(yt);
}
END_TEST

Suite *make_quant_suite(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("quant");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dynamic_bits);
    tcase_add_test(tc, test_granularity);
    tcase_add_test(tc, test_weight_modes);
    tcase_add_test(tc, test_layer_specific);
    tcase_add_test(tc, test_ref_requant);
    tcase_add_test(tc, test_bit_exact);
    tcase_add_test(tc, test_bit_exact_jets_6bit);
    tcase_add_test(tc, test_hgq_surrogate);
    tcase_add_test(tc, test_hgq_trains_bits_down);
    tcase_add_test(tc, test_hgq_conv_plan);
    tcase_add_test(tc, test_hgq_conv_ebops);
    tcase_add_test(tc, test_hgq_conv_gradient);
    tcase_add_test(tc, test_hgq_conv_trains);
    tcase_add_test(tc, test_bit_exact_conv);
    tcase_add_test(tc, test_distill_gradient);
    tcase_add_test(tc, test_distill_helps);
    suite_add_tcase(s, tc);
    return s;
}
