/* check_quant.c — quantization in the loop (quant.c), HGQ (hgq.c) and
 * distillation (distill.c).
 *
 * Hand-computed per_tensor / per_channel / per_weight quantization,
 * layer_specific overrides through the real YAML parser, a bit-exact
 * comparison of the float forward of quantized models with an int64
 * fixed-point reference (every rounding and overflow mode), HGQ's
 * surrogate gradients, zero-bit pruning and losses by hand, the
 * distillation loss against central differences, and a student that learns
 * more from a teacher than alone. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"
#include "compress/quant_internal.h"
#include "nnlo/compress.h"
#include "nnlo/config.h"
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

/* The int64 reference forward of a Dense/ReLU/QUANT chain for one sample:
 * values are integers a at scale F (value a 2^-F); Dense multiplies exactly
 * and aligns the bias; ReLU is max(a, 0); QUANT requantizes with
 * ref_requant. Weights come from weff at the formats compress reports
 * (asserted exact). Returns the outputs as doubles in out. */
static void ref_forward(const model *m, const compress *c, const float *x, double *out) {
    enum { MAXW = 256 };
    int64_t a[MAXW], b2[MAXW];
    int F = 40, n = m->in_size;
    for (int i = 0; i < n; i++) {
        double xs = ldexp((double)x[i], F);
        ck_assert(xs == floor(xs) && fabs(xs) < 0x1p62);
        a[i] = (int64_t)xs;
    }
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        if (L->kind == LAYER_QUANT) {
            for (int i = 0; i < n; i++) a[i] = ref_requant(a[i], F, &L->quant);
            F = L->quant.f;
        } else if (L->kind == LAYER_RELU) {
            for (int i = 0; i < n; i++) a[i] = a[i] > 0 ? a[i] : 0;
        } else {
            ck_assert_int_eq(L->kind, LAYER_DENSE);
            fixed_spec ws, bs;
            compress_layer_formats(c, l, &ws, &bs, NULL, NULL);
            int Fo = F + ws.f > bs.f ? F + ws.f : bs.f;
            ck_assert(L->out_size <= MAXW && Fo - F - ws.f < 40 && Fo - bs.f < 40);
            for (int o = 0; o < L->out_size; o++) {
                int64_t acc = 0;
                for (int i = 0; i < n; i++) {
                    float wv = m->weff[L->w_off + (long)i * L->out_size + o];
                    int64_t wi = fixed_to_int(&ws, wv);
                    ck_assert(ldexp((double)wi, -ws.f) == (double)wv);
                    acc += a[i] * wi;
                }
                float bv = m->weff[L->b_off + o];
                int64_t bi = fixed_to_int(&bs, bv);
                ck_assert(ldexp((double)bi, -bs.f) == (double)bv);
                b2[o] = acc * ((int64_t)1 << (Fo - F - ws.f)) + bi * ((int64_t)1 << (Fo - bs.f));
                /* float32 is exact while every partial sum fits 24 bits */
                ck_assert_msg(llabs(b2[o]) < (1LL << 24), "layer %s: accumulator %lld is wider "
                              "than float's 24 bits", L->name, (long long)b2[o]);
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
    double ref[256];
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
    /* precomputed logits of the same rows train the very same student */
    float *tl = malloc(sizeof(float) * 4 * NS);
    ck_assert_int_eq(nn_evaluate(tm, xb, yb, NS, NULL, &st, tl, &e), NL_OK);
    student_run(xb, yb, NS, xt, yt, NTEST, NULL, tl, 60, pb);
    model *probe = mlp(16, 32);
    for (long j = 0; j < probe->n_params; j++)
        ck_assert_msg(pa[j] == pb[j], "param %ld: teacher model %.9g vs logits %.9g", j, pa[j], pb[j]);
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
    tcase_add_test(tc, test_distill_gradient);
    tcase_add_test(tc, test_distill_helps);
    suite_add_tcase(s, tc);
    return s;
}
