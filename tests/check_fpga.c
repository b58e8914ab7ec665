/* check_fpga.c — the hls4ml cost model pinned with exact numbers: CSD digit
 * counts against a minimal-signed-digit reference, zero / shift /
 * shift-and-add / multiplier rules, the Latency multiplier cap, hls4ml's
 * valid reuse factors on hand-checked shapes, BRAM and latency of the
 * Resource strategy, utilisation and fit, monotonicity in pruning and bit
 * width, the ordering of two jet-tagging MLPs, and the part table; for
 * conv/pool/BatchNorm/activations: an all-zero conv kernel is free, conv
 * DSPs scale with the parallel output pixels (hls4ml's valid
 * ParallelizationFactors), power-of-two kernels take no DSP, pooling no DSP,
 * table activations one BRAM18 per two elements, pruned CNN < unpruned. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fpga/fpga_internal.h"
#include "nnlo/fpga.h"
#include "nnlo/util.h"
#include "testutil.h"

static fixed_spec fx(int W, int I) {
    fixed_spec s = {1, I - 1, W - I, FX_WRAP, FX_TRN};
    return s;
}
static fixed_spec ufx(int W, int I) {
    fixed_spec s = {0, I, W - I, FX_WRAP, FX_TRN};
    return s;
}
static float quant(float v, const fixed_spec *s) {
    return ldexpf(rintf(ldexpf(v, s->f)), -s->f);
}

static fpga_layer dense(const char *name, int n_in, int n_out, const float *w, const float *b,
                        fixed_spec ws, fixed_spec xs) {
    fpga_layer l;
    memset(&l, 0, sizeof l);
    l.kind = FPGA_LAYER_DENSE;
    snprintf(l.name, sizeof l.name, "%s", name);
    l.n_in = n_in;
    l.n_out = n_out;
    l.w = w;
    l.b = b;
    l.w_spec = ws;
    l.b_spec = fx(16, 6);
    l.in_spec = xs;
    l.out_spec = fx(16, 6);
    return l;
}
static fpga_layer act(fpga_layer_kind k, const char *name, int n, fixed_spec xs) {
    fpga_layer l;
    memset(&l, 0, sizeof l);
    l.kind = k;
    snprintf(l.name, sizeof l.name, "%s", name);
    l.n_in = l.n_out = n;
    l.in_spec = xs;
    l.out_spec = k == FPGA_LAYER_SOFTMAX ? ufx(16, 0) : xs;
    return l;
}
static cfg_fpga config(const char *part, fpga_strategy st, int rf) {
    cfg_fpga c;
    memset(&c, 0, sizeof c);
    snprintf(c.part, sizeof c.part, "%s", part);
    c.clock_period_ns = 5;
    c.strategy = st;
    c.reuse_factor = rf;
    return c;
}
static fpga_options acc_fixed16(void) {
    fpga_options o;
    fpga_options_default(&o);
    o.accum = FPGA_ACCUM_FIXED;
    return o;
}
static fpga_report est(const fpga_layer *l, int n, cfg_fpga c, const fpga_options *o) {
    fpga_report r;
    nl_error e = {0};
    nl_status st = fpga_estimate_ex(l, n, &c, o, &r, &e);
    ck_assert_msg(st == NL_OK, "fpga_estimate: %s", e.msg);
    return r;
}

/* Minimal number of signed powers of two summing to q (independent of the
 * NAF loop): f(0)=0, f(2m)=f(m), f(odd)=1+min(f((q-1)/2), f((q+1)/2)). */
static int ref_min_digits(long q) {
    if (q < 0) q = -q;
    if (q == 0) return 0;
    if (q == 1) return 1;
    if (q % 2 == 0) return ref_min_digits(q / 2);
    int a = ref_min_digits((q - 1) / 2), b = ref_min_digits((q + 1) / 2);
    return 1 + (a < b ? a : b);
}

START_TEST(test_csd_digits_and_span) {
    ck_assert_int_eq(fpga_csd_digits(0), 0);
    ck_assert_int_eq(fpga_csd_digits(1), 1);
    ck_assert_int_eq(fpga_csd_digits(7), 2);   /* 8 - 1 */
    ck_assert_int_eq(fpga_csd_digits(11), 3);  /* 16 - 4 - 1 */
    ck_assert_int_eq(fpga_csd_digits(-7), 2);
    ck_assert_int_eq(fpga_csd_digits(85), 4);  /* 1010101 */
    ck_assert_int_eq(fpga_csd_digits(768), 2); /* 1024 - 256 */
    for (long q = -5000; q <= 5000; q++)
        ck_assert_msg(fpga_csd_digits(q) == ref_min_digits(q), "q=%ld: %d vs %d", q,
                      fpga_csd_digits(q), ref_min_digits(q));
    ck_assert_int_eq(fpga_int_span(0), 0);
    ck_assert_int_eq(fpga_int_span(12), 2);
    ck_assert_int_eq(fpga_int_span(-40), 3);
    ck_assert_int_eq(fpga_int_span(704), 4);
    ck_assert_int_eq(fpga_classify(0), FPGA_CONST_ZERO);
    ck_assert_int_eq(fpga_classify(-512), FPGA_CONST_SHIFT);
    ck_assert_int_eq(fpga_classify(768), FPGA_CONST_SHIFT_ADD);
    ck_assert_int_eq(fpga_classify(704), FPGA_CONST_MULT);
}
END_TEST

START_TEST(test_all_zero_weights_are_free) {
    float w[16 * 8] = {0};
    fpga_layer l = dense("fc", 16, 8, w, NULL, fx(16, 6), fx(16, 6));
    fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_eq(r.layers[0].lut, 0);
    ck_assert_int_eq(r.layers[0].multipliers, 0);
    ck_assert_int_eq(r.layers[0].nonzero_weights, 0);
    ck_assert_double_eq(r.layers[0].ebops, 0);
    ck_assert_int_eq(r.layers[0].latency_cycles, 0);
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_power_of_two_weights_use_no_dsp) {
    /* 4 inputs x 2 outputs, all +-2^k: no multiplier; only the adder tree,
     * 2 adders at level 1 and 1 at level 2 per output. */
    const float w[8] = {0.5f, -0.25f, 1.0f, 2.0f, -0.125f, 0.0625f, -1.0f, 0.5f};
    fpga_layer l = dense("fc", 4, 2, w, NULL, fx(16, 6), fx(16, 6));
    cfg_fpga c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    fpga_report r = est(&l, 1, c, NULL);
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_eq(r.layers[0].multipliers, 0);
    ck_assert_int_eq(r.layers[0].nonzero_weights, 8);
    /* auto accumulator: 16 + 16 + ceil(log2 4) = 34 bits; products 32 bits:
     * widths 33 (x2) and 34 per output -> 2 * (2*33 + 34) = 200. */
    ck_assert_int_eq(r.layers[0].lut, 200);
    fpga_report_free(&r);
    fpga_options o = acc_fixed16();
    r = est(&l, 1, c, &o);
    ck_assert_int_eq(r.layers[0].lut, 2 * 3 * 16); /* accumulator ap_fixed<16,6> */
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_shift_add_and_multiplier_classes) {
    /* 1 input, 4 outputs: zero, shift (0.5), shift-and-add (0.75 = 1 - 1/4),
     * multiplier (0.6875 = 11/16: three CSD digits). */
    const float w[4] = {0.0f, 0.5f, 0.75f, 0.6875f};
    fpga_layer l = dense("fc", 1, 4, w, NULL, fx(16, 6), fx(16, 6));
    fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.layers[0].dsp, 1);
    ck_assert_int_eq(r.layers[0].multipliers, 1);
    ck_assert_int_eq(r.layers[0].nonzero_weights, 3);
    /* 0.75 -> q = 768, span 2: one adder of 16 + 2 bits; no accumulation
     * (one term per output). */
    ck_assert_int_eq(r.layers[0].lut, 18);
    /* EBOPs = x_bits * span: 16 * (1 + 2 + 4). */
    ck_assert_double_eq(r.layers[0].ebops, 112);
    ck_assert_double_eq(r.total.ebops, 112);
    fpga_report_free(&r);
}
END_TEST

/* Fills w with 16-bit-grid values in (-1, 1), about `zero_frac` zeros. */
static void random_weights(float *w, int n, const fixed_spec *s, double zero_frac, uint64_t seed) {
    rng_t g;
    rng_seed(&g, seed);
    for (int i = 0; i < n; i++) {
        float v = (float)(rng_uniform(&g) * 2 - 1);
        w[i] = rng_uniform(&g) < zero_frac ? 0.0f : quant(v, s);
    }
}

START_TEST(test_random_16bit_dsp_count) {
    enum { NI = 12, NO = 10 };
    float w[NI * NO];
    fixed_spec ws = fx(16, 6);
    random_weights(w, NI * NO, &ws, 0.2, 11);
    long zeros = 0, cheap = 0;
    for (int i = 0; i < NI * NO; i++) {
        long q = lrintf(ldexpf(w[i], ws.f));
        int d = ref_min_digits(q);
        zeros += d == 0;
        cheap += d == 1 || d == 2;
    }
    ck_assert_int_gt(zeros, 0);
    ck_assert_int_gt(cheap, 0);
    fpga_layer l = dense("fc", NI, NO, w, NULL, ws, fx(16, 6));
    fpga_report r = est(&l, 1, config("xcvu9p-flga2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.layers[0].dsp, NI * NO - zeros - cheap);
    ck_assert_int_eq(r.layers[0].multipliers, NI * NO - zeros - cheap);
    ck_assert_int_eq(r.layers[0].nonzero_weights, NI * NO - zeros);
    fpga_report_free(&r);

    /* The same values on an 8-bit weight grid: no DSP at all (hls4ml's
     * objective: none below 9-bit weights), multipliers in LUTs. */
    fixed_spec w8 = fx(8, 2);
    for (int i = 0; i < NI * NO; i++) w[i] = quant(w[i], &w8);
    l.w_spec = w8;
    r = est(&l, 1, config("xcvu9p-flga2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_gt(r.layers[0].lut, 0);
    fpga_report_free(&r);
    /* 8-bit inputs with 16-bit weights: no DSP either. */
    ck_assert_int_eq(fpga_dsps_per_mult(fpga_family_of(fpga_part_find("xcu250-figd2104-2L-e")), 16, 8), 0);
}
END_TEST

START_TEST(test_dsp_tiling) {
    const fpga_family *us = fpga_family_of(fpga_part_find("xcu250-figd2104-2L-e"));
    const fpga_family *z7 = fpga_family_of(fpga_part_find("xc7z020clg400-1"));
    ck_assert_int_eq(fpga_dsps_per_mult(us, 8, 16), 0);
    ck_assert_int_eq(fpga_dsps_per_mult(us, 9, 9), 1);
    ck_assert_int_eq(fpga_dsps_per_mult(us, 27, 18), 1);
    ck_assert_int_eq(fpga_dsps_per_mult(us, 18, 27), 1);
    ck_assert_int_eq(fpga_dsps_per_mult(us, 20, 20), 2);
    ck_assert_int_eq(fpga_dsps_per_mult(us, 32, 32), 4);
    ck_assert_int_eq(fpga_dsps_per_mult(z7, 26, 18), 2); /* DSP48E1 is 25 x 18 */
    ck_assert_int_eq(fpga_dsps_per_mult(us, 26, 18), 1);
}
END_TEST

/* Weights that all need a real multiplier (>= 3 CSD digits). */
static void mult_only_weights(float *w, int n, const fixed_spec *s) {
    static const int q[] = {11, 13, 19, 21, 23, 27, 37, 43, 45, 53, 75, 83, 85, 91, 101, 107};
    for (int i = 0; i < n; i++) w[i] = ldexpf((float)q[i % 16] * (i % 3 == 1 ? -1 : 1), -s->f);
}

START_TEST(test_latency_reuse_factor_caps_multipliers) {
    enum { NI = 8, NO = 8 };
    float w[NI * NO];
    fixed_spec ws = fx(16, 6);
    mult_only_weights(w, NI * NO, &ws);
    for (int i = 0; i < NI * NO; i++)
        ck_assert_int_ge(ref_min_digits(lrintf(ldexpf(w[i], ws.f))), 3);
    fpga_layer l = dense("fc", NI, NO, w, NULL, ws, fx(16, 6));
    fpga_report r1 = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    fpga_report r2 = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 2), NULL);
    ck_assert_int_eq(r1.layers[0].dsp, 64);
    ck_assert_int_eq(r2.layers[0].multipliers, 32); /* ceil(64/2) - 0 */
    ck_assert_int_eq(r2.layers[0].dsp, 32);
    ck_assert_int_eq(r2.layers[0].ii, 2);
    ck_assert_int_eq(r2.total.ii, 2);
    ck_assert_int_eq(r2.layers[0].latency_cycles, r1.layers[0].latency_cycles + 1);
    fpga_report_free(&r1);
    fpga_report_free(&r2);

    /* 16 zeros: cap = ceil(64/2) - floor(16/2) = 24 of 48 multipliers. */
    for (int i = 0; i < 16; i++) w[i * 4] = 0;
    r2 = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 2), NULL);
    ck_assert_int_eq(r2.layers[0].multipliers, 24);
    ck_assert_int_eq(r2.layers[0].dsp, 24);
    fpga_report_free(&r2);

    /* Half shifts: 32 multipliers under a cap of 32 -> RF 2 keeps the DSPs. */
    mult_only_weights(w, NI * NO, &ws);
    for (int i = 0; i < 32; i++) w[2 * i] = 0.25f;
    r1 = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    r2 = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 2), NULL);
    ck_assert_int_eq(r1.layers[0].dsp, 32);
    ck_assert_int_eq(r2.layers[0].dsp, 32);
    ck_assert_int_eq(r2.layers[0].multipliers, 32);
    fpga_report_free(&r1);
    fpga_report_free(&r2);
}
END_TEST

START_TEST(test_valid_reuse_factors_hls4ml) {
    /* Hand-derived from fpga_backend._validate_reuse_factor. */
    static const int v16x64[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    int k = 0;
    for (int rf = 1; rf <= 1024; rf++)
        if (fpga_reuse_factor_valid(16, 64, rf)) {
            ck_assert_int_lt(k, 11);
            ck_assert_int_eq(rf, v16x64[k++]);
        }
    ck_assert_int_eq(k, 11);
    static const int v10x3[] = {1, 2, 5, 10, 30};
    k = 0;
    for (int rf = 1; rf <= 30; rf++)
        if (fpga_reuse_factor_valid(10, 3, rf)) {
            ck_assert_int_lt(k, 5);
            ck_assert_int_eq(rf, v10x3[k++]);
        }
    ck_assert_int_eq(k, 5);
    /* Closest, smaller on a tie, clamped to the list. */
    ck_assert_int_eq(fpga_closest_reuse_factor(16, 64, 3), 2);
    ck_assert_int_eq(fpga_closest_reuse_factor(16, 64, 6), 4);
    ck_assert_int_eq(fpga_closest_reuse_factor(16, 64, 7), 8);
    ck_assert_int_eq(fpga_closest_reuse_factor(16, 64, 20), 16);
    ck_assert_int_eq(fpga_closest_reuse_factor(10, 3, 3), 2);
    ck_assert_int_eq(fpga_closest_reuse_factor(10, 3, 4), 5);
    ck_assert_int_eq(fpga_closest_reuse_factor(10, 3, 7), 5);
    ck_assert_int_eq(fpga_closest_reuse_factor(10, 3, 20), 10);
    ck_assert_int_eq(fpga_closest_reuse_factor(10, 3, 100), 30);
    ck_assert_int_eq(fpga_closest_reuse_factor(3, 5, 2), 1);
    ck_assert_int_eq(fpga_closest_reuse_factor(3, 5, 9), 3);
}
END_TEST

START_TEST(test_resource_strategy) {
    enum { NI = 16, NO = 64 };
    static float w[NI * NO];
    fixed_spec ws = fx(16, 6);
    random_weights(w, NI * NO, &ws, 0.5, 5);
    fpga_layer l = dense("fc", NI, NO, w, NULL, ws, fx(16, 6));
    /* RF 3 is not valid for 16x64: hls4ml uses 2. */
    fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_RESOURCE, 3), NULL);
    ck_assert_int_eq(r.layers[0].ii, 2);
    ck_assert_int_eq(r.layers[0].multipliers, 512); /* zeros are not removed */
    ck_assert_int_eq(r.layers[0].dsp, 512);
    /* ROM of depth 2, width 512 x 16 bits: ceil(8192 / 36) BRAM18. */
    ck_assert_int_eq(r.layers[0].bram18, 228);
    ck_assert_int_eq(r.layers[0].latency_cycles, 2 + 2);
    fpga_report_free(&r);
    r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_RESOURCE, 16), NULL);
    ck_assert_int_eq(r.layers[0].multipliers, 64);
    ck_assert_int_eq(r.layers[0].bram18, 29); /* ceil(64*16/36) */
    ck_assert_int_eq(r.layers[0].latency_cycles, 18);
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_baseline_dense_relu_softmax) {
    /* hls4ml's Dense(1->64)+ReLU baseline shape: 16-bit everything, zero
     * bias: every product is its own output, nothing to add; 0 cycles. */
    float w[64];
    fixed_spec ws = fx(16, 6);
    mult_only_weights(w, 64, &ws);
    fpga_layer net[3] = {dense("fc", 1, 64, w, NULL, ws, fx(16, 6)),
                         act(FPGA_LAYER_RELU, "relu", 64, fx(16, 6)),
                         act(FPGA_LAYER_SOFTMAX, "softmax", 64, fx(16, 6))};
    fpga_report r = est(net, 2, config("xcvu13p-flga2577-2-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.total.dsp, 64);
    ck_assert_int_eq(r.total.latency_cycles, 0);
    ck_assert_int_eq(r.layers[1].lut, 64 * 39); /* ceil(2.4 * 16) per element */
    ck_assert_double_eq(r.latency_ns, 0);
    fpga_report_free(&r);
    /* Softmax over 5: ceil(5/2) exp BRAM18 + 1 inverse table; 5 DSPs. */
    net[2] = act(FPGA_LAYER_SOFTMAX, "softmax", 5, fx(16, 6));
    net[0].n_out = 5;
    net[1] = act(FPGA_LAYER_RELU, "relu", 5, fx(16, 6));
    r = est(net, 3, config("xcvu13p-flga2577-2-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.layers[2].bram18, 4);
    ck_assert_int_eq(r.layers[2].dsp, 5);
    ck_assert_int_ge(r.layers[2].latency_cycles, 4); /* two table reads, 2 cycles each */
    ck_assert_int_le(r.layers[2].latency_cycles, 7);
    ck_assert_double_eq(r.latency_ns, 5.0 * r.total.latency_cycles);
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_utilisation_and_fit) {
    enum { NI = 16, NO = 64 };
    static float w[NI * NO];
    fixed_spec ws = fx(16, 6);
    mult_only_weights(w, NI * NO, &ws);
    fpga_layer l = dense("fc", NI, NO, w, NULL, ws, fx(16, 6));
    fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.total.dsp, 1024);
    ck_assert_double_eq_tol(r.util_dsp, 100.0 * 1024 / 12288, 1e-9);
    ck_assert_double_eq_tol(r.util_lut, 100.0 * r.total.lut / 1728000, 1e-9);
    ck_assert_int_eq(r.fits, 1);
    ck_assert_str_eq(r.part, "xcu250-figd2104-2L-e");
    fpga_report_free(&r);
    r = est(&l, 1, config("XC7Z020CLG400-1", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_double_eq_tol(r.util_dsp, 100.0 * 1024 / 220, 1e-9);
    ck_assert_int_eq(r.fits, 0);
    ck_assert_str_eq(r.part, "xc7z020clg400-1");
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_pruning_strictly_reduces) {
    enum { NI = 16, NO = 32 };
    static float base[NI * NO], w[NI * NO];
    fixed_spec ws = fx(16, 6);
    random_weights(base, NI * NO, &ws, 0.0, 21);
    uint32_t order[NI * NO];
    for (uint32_t i = 0; i < NI * NO; i++) order[i] = i;
    rng_t g;
    rng_seed(&g, 3);
    rng_shuffle_u32(&g, order, NI * NO);
    long prev_lut = -1, prev_dsp = -1;
    for (int step = 0; step <= 4; step++) {
        memcpy(w, base, sizeof w);
        for (int k = 0; k < step * NI * NO / 5; k++) w[order[k]] = 0; /* nested masks */
        fpga_layer l = dense("fc", NI, NO, w, NULL, ws, fx(16, 6));
        fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
        if (step > 0) {
            ck_assert_msg(r.total.lut < prev_lut, "step %d: LUT %ld !< %ld", step, r.total.lut, prev_lut);
            ck_assert_msg(r.total.dsp < prev_dsp, "step %d: DSP %ld !< %ld", step, r.total.dsp, prev_dsp);
        }
        prev_lut = r.total.lut;
        prev_dsp = r.total.dsp;
        fpga_report_free(&r);
    }
}
END_TEST

START_TEST(test_monotonic_in_bit_width) {
    enum { NI = 16, NO = 16 };
    static float w[NI * NO];
    /* Fixed integer constants, wider inputs: LUT strictly grows. */
    fixed_spec ws = fx(16, 6);
    mult_only_weights(w, NI * NO, &ws);
    long prev = -1;
    for (int xb = 4; xb <= 16; xb += 2) {
        fpga_layer l = dense("fc", NI, NO, w, NULL, ws, fx(xb, 3));
        l.w_spec = fx(8, 2); /* keep every multiplier in LUTs */
        for (int i = 0; i < NI * NO; i++) w[i] = ldexpf((float)(11 + 2 * (i % 5)), -6);
        fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
        ck_assert_int_eq(r.total.dsp, 0);
        ck_assert_msg(r.total.lut > prev, "x %d bits: LUT %ld !> %ld", xb, r.total.lut, prev);
        prev = r.total.lut;
        fpga_report_free(&r);
    }
    /* The same real weights quantized ever finer (weights and inputs of W
     * bits): DSP never drops, and LUT + 55 DSP (HGQ's equivalence) grows. */
    static float real[NI * NO];
    rng_t g;
    rng_seed(&g, 8);
    for (int i = 0; i < NI * NO; i++) real[i] = (float)(rng_uniform(&g) * 2 - 1);
    long prev_dsp = -1, prev_eq = -1;
    for (int W = 4; W <= 16; W++) {
        fixed_spec s = fx(W, 2);
        for (int i = 0; i < NI * NO; i++) w[i] = quant(real[i], &s);
        fpga_layer l = dense("fc", NI, NO, w, NULL, s, fx(W, 3));
        fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
        long eq = r.total.lut + 55 * r.total.dsp;
        ck_assert_msg(r.total.dsp >= prev_dsp, "W=%d: DSP %ld < %ld", W, r.total.dsp, prev_dsp);
        ck_assert_msg(eq > prev_eq, "W=%d: LUT+55DSP %ld !> %ld", W, eq, prev_eq);
        prev_dsp = r.total.dsp;
        prev_eq = eq;
        fpga_report_free(&r);
    }
}
END_TEST

/* The jet-tagging MLP 16-64-32-32-5 (ReLU, softmax). */
static int jet_mlp(fpga_layer *net, float (*w)[64 * 64], float (*b)[64], int bits, double sparsity,
                   uint64_t seed) {
    static const int sz[5] = {16, 64, 32, 32, 5};
    rng_t g;
    rng_seed(&g, seed);
    fixed_spec ws = bits >= 16 ? fx(16, 6) : fx(bits, 2);
    fixed_spec as = bits >= 16 ? ufx(15, 5) : ufx(bits, 3);
    int k = 0;
    for (int li = 0; li < 4; li++) {
        int ni = sz[li], no = sz[li + 1];
        float sd = sqrtf(2.0f / (float)ni);
        for (int i = 0; i < ni * no; i++) {
            float v = rng_normal(&g) * sd * 0.5f;
            w[li][i] = rng_uniform(&g) < sparsity ? 0.0f : quant(v, &ws);
        }
        fixed_spec bs = fx(16, 6);
        for (int j = 0; j < no; j++) b[li][j] = quant((float)rng_uniform(&g) * 0.1f, &bs);
        net[k++] = dense("fc", ni, no, w[li], b[li], ws, li == 0 ? fx(16, 6) : as);
        if (li < 3) net[k++] = act(FPGA_LAYER_RELU, "relu", no, fx(16, 6));
        else net[k++] = act(FPGA_LAYER_SOFTMAX, "softmax", no, fx(16, 6));
    }
    return k;
}

START_TEST(test_jet_ordering) {
    static float wa[4][64 * 64], ba[4][64], wb[4][64 * 64], bb[4][64];
    fpga_layer a[8], p[8];
    int na = jet_mlp(a, wa, ba, 16, 0.0, 1);
    int np = jet_mlp(p, wb, bb, 6, 0.7, 1);
    cfg_fpga c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    fpga_report ra = est(a, na, c, NULL), rp = est(p, np, c, NULL);
    ck_assert_int_lt(rp.total.dsp, ra.total.dsp);
    ck_assert_int_lt(rp.total.lut, ra.total.lut);
    ck_assert_double_lt(rp.total.ebops, ra.total.ebops);
    ck_assert_int_le(rp.total.latency_cycles, ra.total.latency_cycles);
    /* The 16-bit model: nearly every nonzero product gets a DSP (4,256
     * products); the 6-bit one only softmax's 5. */
    ck_assert_int_gt(ra.total.dsp, 2000);
    ck_assert_int_eq(rp.total.dsp, 5);
    ck_assert_int_eq(ra.n_layers, 8);
    long sum = 0;
    for (int i = 0; i < ra.n_layers; i++) sum += ra.layers[i].latency_cycles;
    ck_assert_int_eq(sum, ra.total.latency_cycles);
    fpga_report_free(&ra);
    fpga_report_free(&rp);
}
END_TEST

START_TEST(test_part_lookup) {
    const fpga_part *p = fpga_part_find("xcu250-figd2104-2L-e");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(fpga_part_find("XCU250-FIGD2104-2L-E"), p);
    ck_assert_int_eq(p->dsp, 12288);
    ck_assert_int_eq(p->bram18, 5376);
    const fpga_part *v9 = fpga_part_find("xcvu9p-flga2104-2l-e");
    ck_assert_ptr_nonnull(v9);
    ck_assert_int_eq(v9->lut, 1182240);
    ck_assert_int_eq(v9->ff, 2364480);
    ck_assert_int_eq(v9->dsp, 6840);
    ck_assert_int_eq(v9->bram18, 4320);
    ck_assert_ptr_nonnull(fpga_part_find("xcvu13p-flga2577-2-e"));
    ck_assert_ptr_nonnull(fpga_part_find("xcku115-flvb2104-2-e"));
    ck_assert_ptr_nonnull(fpga_part_find("xczu9eg-ffvb1156-2-e"));
    ck_assert_int_eq(fpga_part_find("xc7z020clg400-1")->dsp, 220);
    ck_assert_ptr_null(fpga_part_find("xcu250"));
    ck_assert_ptr_null(fpga_part_find(""));
    ck_assert_ptr_null(fpga_part_find(NULL));
    int n = 0;
    const fpga_part *t = fpga_parts(&n);
    ck_assert_int_ge(n, 6);
    for (int i = 0; i < n; i++) {
        ck_assert_ptr_eq(fpga_part_find(t[i].name), &t[i]);
        ck_assert_int_gt(t[i].lut, 0);
        ck_assert_int_gt(t[i].bram18, 0);
    }
}
END_TEST

START_TEST(test_errors_name_the_fault) {
    float w[4] = {1, 0, 0, 1};
    fpga_layer net[2] = {dense("fc1", 2, 2, w, NULL, fx(16, 6), fx(16, 6)),
                         dense("fc2", 3, 2, w, NULL, fx(16, 6), fx(16, 6))};
    fpga_report r;
    nl_error e = {0};
    cfg_fpga c = config("xcu250-figd2104-2L", FPGA_STRATEGY_LATENCY, 1);
    ck_assert_int_eq(fpga_estimate(net, 1, &c, &r, &e), NL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "xcu250-figd2104-2L-e"));
    ck_assert_ptr_null(r.layers);
    c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    ck_assert_int_eq(fpga_estimate(net, 2, &c, &r, &e), NL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "fc2"));
    net[1].n_in = 2;
    net[1].w = NULL;
    ck_assert_int_eq(fpga_estimate(net, 2, &c, &r, &e), NL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "no weights"));
    fpga_report_free(&r);
    fpga_report_free(NULL);
}
END_TEST


/* ---- spatial layers and other activations ------------------------------ */

/* A conv2d over (h, w, cin), k x k valid, stride 1, cout filters. */
static fpga_layer conv2d(const char *name, int h, int w, int cin, int k, int cout, const float *wt,
                         const float *b, fixed_spec ws, fixed_spec xs, int pf) {
    fpga_layer l = dense(name, h * w * cin, (h - k + 1) * (w - k + 1) * cout, wt, b, ws, xs);
    l.kind = FPGA_LAYER_CONV2D;
    l.in_h = h; l.in_w = w; l.in_c = cin;
    l.out_h = h - k + 1; l.out_w = w - k + 1; l.out_c = cout;
    l.kh = l.kw = k;
    l.parallelization = pf;
    return l;
}
static fpga_layer pool(fpga_layer_kind k, const char *name, int h, int w, int c, int p, fixed_spec xs) {
    fpga_layer l = act(k, name, h * w * c, xs);
    l.n_out = (h / p) * (w / p) * c;
    l.in_h = h; l.in_w = w; l.in_c = c;
    l.out_h = h / p; l.out_w = w / p; l.out_c = c;
    l.kh = l.kw = p;
    return l;
}
/* 16-bit weights with exactly three CSD digits (multipliers), signs alternating. */
static void mult_weights(float *w, int n, const fixed_spec *s) {
    for (int i = 0; i < n; i++) {
        int64_t q = 91 + 8 * (i % 5);       /* 91, 99, 107, 115, 123 */
        while (fpga_csd_digits(q) < 3) q += 2;
        w[i] = ldexpf((float)((i & 1) ? -q : q), -s->f);
    }
}

START_TEST(test_conv_zero_kernel_is_free) {
    float w[3 * 3 * 2 * 4] = {0};
    fpga_layer l = conv2d("conv", 6, 6, 2, 3, 4, w, NULL, fx(16, 6), fx(16, 6), 1);
    fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_eq(r.layers[0].lut, 0);
    ck_assert_int_eq(r.layers[0].multipliers, 0);
    ck_assert_int_eq(r.layers[0].nonzero_weights, 0);
    ck_assert_double_eq(r.layers[0].ebops, 0);
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_conv_dsp_scales_with_parallel_pixels) {
    /* 6x6x2 -> 4x4x4 (16 output pixels), kernel (18, 4) of 72 three-digit
     * 16-bit constants: 72 DSPs per pixel built. */
    enum { K = 3 * 3 * 2 * 4 };
    fixed_spec ws = fx(16, 6);
    float w[K];
    mult_weights(w, K, &ws);
    for (int i = 0; i < K; i++) ck_assert_int_eq(fpga_classify(fpga_weight_int(&ws, w[i])), FPGA_CONST_MULT);
    cfg_fpga c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    const int pf[] = {1, 2, 4, 16, 3, 5, 12, 40};
    const long dsp[] = {72, 144, 288, 1152, 144, 288, 576, 1152};  /* 3->2, 5->4, 12->8 (ties to the smaller), 40->16 */
    long lut1 = 0;
    int lat1 = 0, lat16 = 0;
    for (int i = 0; i < 8; i++) {
        fpga_layer l = conv2d("conv", 6, 6, 2, 3, 4, w, NULL, ws, fx(16, 6), pf[i]);
        fpga_report r = est(&l, 1, c, NULL);
        ck_assert_msg(r.layers[0].dsp == dsp[i], "pf %d: %ld DSP, expected %ld", pf[i], r.layers[0].dsp, dsp[i]);
        ck_assert_int_eq(r.layers[0].multipliers, dsp[i]);
        ck_assert_int_eq(r.layers[0].nonzero_weights, K);
        /* EBOPs do not depend on the parallelism: 16 x span x 72 x 16 positions */
        double eb = 0;
        for (int j = 0; j < K; j++) eb += 16.0 * fixed_bit_span(&ws, w[j]);
        ck_assert_double_eq_tol(r.layers[0].ebops, eb * 16, 1e-6);
        if (pf[i] == 1) { lut1 = r.layers[0].lut; lat1 = r.layers[0].latency_cycles; ck_assert_int_eq(r.layers[0].ii, 16); }
        if (pf[i] == 2) ck_assert_int_eq(r.layers[0].lut, 2 * lut1);
        if (pf[i] == 16) { lat16 = r.layers[0].latency_cycles; ck_assert_int_eq(r.layers[0].ii, 1); }
        fpga_report_free(&r);
    }
    /* 16 partitions at II 1 take 15 cycles more than one */
    ck_assert_int_eq(lat1 - lat16, 15);
    ck_assert_int_eq(fpga_closest_parallelization(9, 2), 1);
    ck_assert_int_eq(fpga_closest_parallelization(9, 6), 3);
    ck_assert_int_eq(fpga_closest_parallelization(1, 4), 1);
    ck_assert(fpga_parallelization_valid(16, 8) && !fpga_parallelization_valid(16, 6));
}
END_TEST

START_TEST(test_conv_power_of_two_weights_use_no_dsp) {
    enum { K = 3 * 3 * 2 * 4 };
    float w[K];
    for (int i = 0; i < K; i++) w[i] = ldexpf((i % 3) ? 1.0f : -1.0f, -(i % 7));
    fpga_layer l = conv2d("conv", 6, 6, 2, 3, 4, w, NULL, fx(16, 6), fx(16, 6), 4);
    fpga_report r = est(&l, 1, config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1), NULL);
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_eq(r.layers[0].multipliers, 0);
    ck_assert_int_eq(r.layers[0].nonzero_weights, K);
    ck_assert_double_eq(r.layers[0].ebops, 16.0 * 1 * K * 16);  /* x bits x span 1 x weights x positions */
    /* adder trees only: 18 terms per output, auto accumulator 16+16+5 = 37
     * bits: levels of 9, 4(+1), 2, 1, 1 adders at widths 33..37 -> 9*33 +
     * 4*34 + 2*35 + 1*36 + 1*37 = 576 LUT per output channel, 4 channels,
     * 4 pixels in parallel. */
    ck_assert_int_eq(r.layers[0].lut, 576 * 4 * 4);
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_pooling_uses_no_dsp) {
    cfg_fpga c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    fpga_layer mp = pool(FPGA_LAYER_MAXPOOL, "mp", 4, 4, 4, 2, fx(16, 6));
    fpga_layer ap = pool(FPGA_LAYER_AVGPOOL, "ap", 4, 4, 4, 2, fx(16, 6));
    fpga_report r = est(&mp, 1, c, NULL);
    /* 16 outputs x 3 compare-and-selects x ceil(1.5 x 16) */
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_eq(r.layers[0].bram18, 0);
    ck_assert_int_eq(r.layers[0].lut, 16 * 3 * 24);
    ck_assert_double_eq(r.layers[0].ebops, 0);
    fpga_report_free(&r);
    r = est(&ap, 1, c, NULL);
    /* 16 outputs x (2 adders of 17 bits + 1 of 18); / 4 is a shift */
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_eq(r.layers[0].lut, 16 * (2 * 17 + 18));
    fpga_report_free(&r);
    ap = pool(FPGA_LAYER_AVGPOOL, "ap", 6, 6, 1, 3, fx(16, 6));  /* / 9: a constant multiply */
    r = est(&ap, 1, c, NULL);
    ck_assert_int_eq(r.layers[0].dsp, 0);
    /* 9 terms: 4 adders of 17, 2 of 18, 1 of 19, 1 of 20, then 20 bits for / 9 */
    ck_assert_int_eq(r.layers[0].lut, 4 * (4 * 17 + 2 * 18 + 19 + 20 + 20));
    fpga_report_free(&r);
}
END_TEST

START_TEST(test_batchnorm_and_activations) {
    cfg_fpga c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    /* unfused BatchNorm over (2, 2, 3): scales 1, 0.5 (shifts), 0.6875 (a
     * multiplier: 3 CSD digits) -> 4 elements of channel 2 take a DSP. */
    const float sc[3] = {1.0f, 0.5f, 0.6875f}, bi[3] = {0, 0, 0};
    fpga_layer bn = act(FPGA_LAYER_BATCHNORM, "bn", 12, fx(16, 6));
    bn.w = sc; bn.b = bi;
    bn.w_spec = bn.b_spec = fx(16, 6);
    bn.in_h = 2; bn.in_w = 2; bn.in_c = 3;
    fpga_report r = est(&bn, 1, c, NULL);
    ck_assert_int_eq(r.layers[0].dsp, 4);
    ck_assert_int_eq(r.layers[0].multipliers, 4);
    ck_assert_int_eq(r.layers[0].nonzero_weights, 12);
    fpga_report_free(&r);
    /* sigmoid and tanh: one BRAM18 per two elements, no DSP */
    fpga_layer sg = act(FPGA_LAYER_SIGMOID, "sig", 64, fx(16, 6));
    r = est(&sg, 1, c, NULL);
    ck_assert_int_eq(r.layers[0].bram18, 32);
    ck_assert_int_eq(r.layers[0].dsp, 0);
    ck_assert_int_eq(r.layers[0].lut, 64 * (2 * 16 + 16));
    ck_assert_int_ge(r.layers[0].latency_cycles, 1);
    fpga_report_free(&r);
    /* leaky ReLU: alpha 0.25 is wiring (as ReLU), alpha 0.1 (ap_fixed<16,6>:
     * 102 = 128 - 32 + 8 - 2, 4 digits, span 6) adds 3 adders of 16 + 6 bits */
    fpga_layer lr = act(FPGA_LAYER_LEAKY_RELU, "lr", 10, fx(16, 6));
    fpga_layer re = act(FPGA_LAYER_RELU, "re", 10, fx(16, 6));
    lr.alpha = 0.25f;
    fpga_report a = est(&lr, 1, c, NULL), b = est(&re, 1, c, NULL);
    ck_assert_int_eq(a.layers[0].lut, b.layers[0].lut);
    fpga_report_free(&a);
    lr.alpha = 0.1f;
    a = est(&lr, 1, c, NULL);
    ck_assert_int_eq(a.layers[0].lut, b.layers[0].lut + 10 * 3 * 22);
    ck_assert_int_eq(a.layers[0].dsp, 0);
    fpga_report_free(&a);
    fpga_report_free(&b);
    fpga_layer ht = act(FPGA_LAYER_HARD_TANH, "ht", 10, fx(16, 6));
    r = est(&ht, 1, c, NULL);
    ck_assert_int_eq(r.layers[0].lut, 10 * (77 + 32));
    ck_assert_int_eq(r.layers[0].dsp, 0);
    fpga_report_free(&r);
    ck_assert_str_eq(fpga_layer_kind_name(FPGA_LAYER_LEAKY_RELU), "leaky_relu");
    ck_assert_str_eq(fpga_layer_kind_name(FPGA_LAYER_CONV2D), "conv2d");
}
END_TEST

/* conv(8x8x1 -> 6x6x4) relu maxpool(2) -> 3x3x4 = 36 -> dense 36x5 */
static int small_cnn(fpga_layer *net, float *wc, float *wd, double sparsity, uint64_t seed) {
    fixed_spec ws = fx(16, 6);
    random_weights(wc, 9 * 4, &ws, sparsity, seed);
    random_weights(wd, 36 * 5, &ws, sparsity, seed + 1);
    net[0] = conv2d("conv", 8, 8, 1, 3, 4, wc, NULL, ws, fx(16, 6), 1);
    net[1] = act(FPGA_LAYER_RELU, "relu", 144, fx(16, 6));
    net[2] = pool(FPGA_LAYER_MAXPOOL, "pool", 6, 6, 4, 2, fx(16, 6));
    net[3] = dense("fc", 36, 5, wd, NULL, ws, fx(16, 6));
    return 4;
}

START_TEST(test_cnn_pruning_ordering) {
    float wa[36], da[180], wp[36], dp[180];
    fpga_layer a[4], p[4];
    int n = small_cnn(a, wa, da, 0.0, 5);
    small_cnn(p, wp, dp, 0.6, 5);
    cfg_fpga c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    fpga_report ra = est(a, n, c, NULL), rp = est(p, n, c, NULL);
    ck_assert_int_lt(rp.total.dsp, ra.total.dsp);
    ck_assert_int_lt(rp.total.lut, ra.total.lut);
    ck_assert_double_lt(rp.total.ebops, ra.total.ebops);
    ck_assert_int_lt(rp.total.nonzero_weights, ra.total.nonzero_weights);
    ck_assert_int_eq(ra.layers[2].dsp, 0);
    /* the conv's II is its 36 partitions; the network's II is the largest */
    ck_assert_int_eq(ra.layers[0].ii, 36);
    ck_assert_int_eq(ra.total.ii, 36);
    /* Resource strategy at RF 3 (valid for the 9x4 kernel): the conv's
     * block factor ceil(36 / 3) = 12 multipliers, reused */
    cfg_fpga cr = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_RESOURCE, 3);
    fpga_report rr = est(a, n, cr, NULL);
    ck_assert_int_eq(rr.layers[0].multipliers, 12);
    ck_assert_int_eq(rr.layers[0].ii, 36 * 3);
    fpga_report_free(&rr);
    fpga_report_free(&ra);
    fpga_report_free(&rp);
}
END_TEST

START_TEST(test_spatial_errors) {
    float w[36] = {0};
    fpga_layer l = conv2d("convx", 8, 8, 1, 3, 4, w, NULL, fx(16, 6), fx(16, 6), 1);
    l.out_h = 5;
    fpga_report r;
    nl_error e = {0};
    cfg_fpga c = config("xcu250-figd2104-2L-e", FPGA_STRATEGY_LATENCY, 1);
    ck_assert_int_eq(fpga_estimate(&l, 1, &c, &r, &e), NL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "convx"));
    l = conv2d("convy", 8, 8, 1, 3, 4, NULL, NULL, fx(16, 6), fx(16, 6), 1);
    ck_assert_int_eq(fpga_estimate(&l, 1, &c, &r, &e), NL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "needs weights"));
}
END_TEST

Suite *make_fpga_suite(void) {
    Suite *s = suite_create("fpga");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_csd_digits_and_span);
    tcase_add_test(tc, test_all_zero_weights_are_free);
    tcase_add_test(tc, test_power_of_two_weights_use_no_dsp);
    tcase_add_test(tc, test_shift_add_and_multiplier_classes);
    tcase_add_test(tc, test_random_16bit_dsp_count);
    tcase_add_test(tc, test_dsp_tiling);
    tcase_add_test(tc, test_latency_reuse_factor_caps_multipliers);
    tcase_add_test(tc, test_valid_reuse_factors_hls4ml);
    tcase_add_test(tc, test_resource_strategy);
    tcase_add_test(tc, test_baseline_dense_relu_softmax);
    tcase_add_test(tc, test_utilisation_and_fit);
    tcase_add_test(tc, test_pruning_strictly_reduces);
    tcase_add_test(tc, test_monotonic_in_bit_width);
    tcase_add_test(tc, test_jet_ordering);
    tcase_add_test(tc, test_part_lookup);
    tcase_add_test(tc, test_errors_name_the_fault);
    tcase_add_test(tc, test_conv_zero_kernel_is_free);
    tcase_add_test(tc, test_conv_dsp_scales_with_parallel_pixels);
    tcase_add_test(tc, test_conv_power_of_two_weights_use_no_dsp);
    tcase_add_test(tc, test_pooling_uses_no_dsp);
    tcase_add_test(tc, test_batchnorm_and_activations);
    tcase_add_test(tc, test_cnn_pruning_ordering);
    tcase_add_test(tc, test_spatial_errors);
    suite_add_tcase(s, tc);
    return s;
}
