/* check_fixed.c — fixed_quantize against an integer reference written here
 * from the ap_fixed rules (rationals m / 2^g, floor division, explicit
 * modular wrap), hand-computed ties for every rounding mode, the
 * sign-magnitude wrap table, range bounds, parse/format and bit spans.
 * Nothing here calls the code under test to compute an expectation. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "nnlo/fixed.h"
#include "nnlo/util.h"
#include "testutil.h"

static fixed_spec spec(int k, int i, int f, fx_overflow o, fx_round r) {
    fixed_spec s = {.k = k, .i = i, .f = f, .overflow = o, .round = r};
    return s;
}

static int64_t pow2i(int e) {
    int64_t p = 1;
    for (int j = 0; j < e; j++) p *= 2;
    return p;
}

/* floor(a / b) for b > 0 with C's truncating division corrected. */
static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b != 0 && a < 0) q -= 1;
    return q;
}

/* Reference rounding of m / 2^d (d >= 0) to an integer. */
static int64_t ref_round(int64_t m, int d, fx_round mode) {
    if (d <= 0) return m * pow2i(-d);
    int64_t D = pow2i(d), q = floordiv(m, D), rem = m - q * D, half = D / 2;
    if (rem == 0) return q;
    int up = 0;
    switch (mode) {
    case FX_TRN: up = 0; break;
    case FX_TRN_ZERO: up = m < 0; break;
    case FX_RND: up = rem >= half; break;
    case FX_RND_MIN_INF: up = rem > half; break;
    case FX_RND_ZERO: up = rem > half || (rem == half && m < 0); break;
    case FX_RND_INF: up = rem > half || (rem == half && m > 0); break;
    case FX_RND_CONV: up = rem > half || (rem == half && (q % 2 != 0)); break;
    }
    return q + up;
}

/* Bit j of the two's-complement representation of n, by arithmetic. */
static int ref_bit(int64_t n, int j) {
    int64_t p = pow2i(j);
    return (int)(floordiv(n, p) - 2 * floordiv(n, 2 * p));
}

/* Reference overflow handling of the rounded integer n (fl: the truncated
 * source, needed by WRAP_SM). */
static int64_t ref_overflow(const fixed_spec *s, int64_t n, int64_t fl) {
    int W = s->k + s->i + s->f;
    int64_t lo = s->k ? -pow2i(W - 1) : 0, hi = s->k ? pow2i(W - 1) - 1 : pow2i(W) - 1;
    fx_overflow o = s->overflow;
    if (o == FX_WRAP_SM && !s->k) o = FX_SAT; /* ap_fixed: unsigned WRAP_SM saturates */
    if (o == FX_SAT_SYM && s->k) lo = -hi;
    if (o == FX_SAT || o == FX_SAT_SYM) return n < lo ? lo : n > hi ? hi : n;
    if (n >= lo && n <= hi) return n;
    int64_t span = pow2i(W);
    int64_t w = n - span * floordiv(n - lo, span); /* into [lo, lo + 2^W) */
    if (o == FX_WRAP) return w;
    /* WRAP_SM: if the kept sign bit differs from the first dropped bit of
     * the source, flip every kept bit and take that dropped bit as sign. */
    int ro = ref_bit(n, W - 1), ld = ref_bit(fl, W);
    if (ro == ld) return w;
    int64_t v = 0;
    for (int j = 0; j < W - 1; j++) v += (int64_t)(1 - ref_bit(n, j)) * pow2i(j);
    return ld ? v - pow2i(W - 1) : v;
}

static const fx_round all_rounds[] = {FX_RND, FX_TRN, FX_RND_CONV, FX_RND_ZERO,
                                      FX_RND_MIN_INF, FX_RND_INF, FX_TRN_ZERO};
static const fx_overflow all_ovf[] = {FX_SAT, FX_SAT_SYM, FX_WRAP, FX_WRAP_SM};

START_TEST(test_ties_every_rounding_mode) {
    /* f = 0: x.5 ties and non-ties, by hand. Columns: RND, TRN, RND_CONV,
     * RND_ZERO, RND_MIN_INF, RND_INF, TRN_ZERO. */
    static const struct { float x; int r[7]; } t[] = {
        {2.5f, {3, 2, 2, 2, 2, 3, 2}},
        {-2.5f, {-2, -3, -2, -2, -3, -3, -2}},
        {3.5f, {4, 3, 4, 3, 3, 4, 3}},
        {-3.5f, {-3, -4, -4, -3, -4, -4, -3}},
        {0.5f, {1, 0, 0, 0, 0, 1, 0}},
        {-0.5f, {0, -1, 0, 0, -1, -1, 0}},
        {2.25f, {2, 2, 2, 2, 2, 2, 2}},
        {-2.25f, {-2, -3, -2, -2, -2, -2, -2}},
        {2.75f, {3, 2, 3, 3, 3, 3, 2}},
        {-2.75f, {-3, -3, -3, -3, -3, -3, -2}},
    };
    for (size_t a = 0; a < sizeof t / sizeof t[0]; a++)
        for (int r = 0; r < 7; r++) {
            fixed_spec s = spec(1, 6, 0, FX_SAT, all_rounds[r]);
            float q = fixed_quantize(&s, t[a].x);
            ck_assert_msg(q == (float)t[a].r[r], "x=%g mode %d: got %g want %d", t[a].x,
                          r, q, t[a].r[r]);
        }
    /* Same ties one quantum finer: f = 2, x = 0.625 = 2.5 quanta. */
    fixed_spec s = spec(1, 2, 2, FX_SAT, FX_RND_CONV);
    ck_assert_float_eq(fixed_quantize(&s, 0.625f), 0.5f);
    ck_assert_float_eq(fixed_quantize(&s, 0.875f), 1.0f);
    s.round = FX_RND;
    ck_assert_float_eq(fixed_quantize(&s, -0.625f), -0.5f);
}
END_TEST

START_TEST(test_against_integer_reference) {
    rng_t r;
    rng_seed(&r, 11);
    long checked = 0, clipped = 0, wrapped = 0;
    for (int k = 0; k <= 1; k++)
        for (int i = -2; i <= 4; i++)
            for (int f = -2; f <= 6; f++) {
                int W = k + i + f;
                if (W < 1 || (k && W < 2)) continue;
                for (int o = 0; o < 4; o++)
                    for (int rm = 0; rm < 7; rm++) {
                        fixed_spec s = spec(k, i, f, all_ovf[o], all_rounds[rm]);
                        for (int t = 0; t < 300; t++) {
                            /* x = m / 2^g, with 3 extra fraction bits (ties
                             * and near-ties) or exact (g <= f). */
                            int g = (t % 3 == 0) ? f - 1 : f + 3;
                            int64_t range = pow2i(W + 3) * (g > f ? pow2i(g - f) : 1);
                            int64_t m = (int64_t)rng_below(&r, (uint64_t)(2 * range + 1)) - range;
                            float x = (float)ldexp((double)m, -g);
                            int d = g - f;
                            int64_t n = ref_round(m, d, all_rounds[rm]);
                            int64_t fl = ref_round(m, d, FX_TRN);
                            int64_t want = ref_overflow(&s, n, fl);
                            float q = fixed_quantize(&s, x);
                            int64_t got = fixed_to_int(&s, q);
                            ck_assert_msg(got == want,
                                          "k=%d i=%d f=%d o=%d r=%d x=%.9g: got %lld want %lld",
                                          k, i, f, o, rm, x, (long long)got, (long long)want);
                            ck_assert_msg(ldexp((double)q, f) == (double)got,
                                          "result not on the grid");
                            checked++;
                            clipped += want != n && o < 2;
                            wrapped += want != n && o >= 2;
                        }
                    }
            }
    ck_assert_int_gt(checked, 100000);
    ck_assert_int_gt(clipped, 1000); /* the values really exercised overflow */
    ck_assert_int_gt(wrapped, 1000);
}
END_TEST

/* The array path (a separate fast loop for saturating modes) gives the
 * same bits as the scalar path for every format and mode. */
START_TEST(test_array_matches_scalar) {
    enum { N = 400 };
    static float x[N], a[N];
    rng_t r;
    rng_seed(&r, 13);
    for (int j = 0; j < N; j++) {
        double v = rng_normal(&r) * 6;
        if (j % 4 == 0) v = ldexp(floor(v * 64) + 0.5, -6); /* ties at f <= 6 */
        x[j] = (float)v;
    }
    x[0] = INFINITY; x[1] = -INFINITY; x[2] = NAN; x[3] = 1e30f;
    long checked = 0;
    for (int k = 0; k <= 1; k++)
        for (int i = -1; i <= 4; i++)
            for (int f = -2; f <= 7; f++) {
                if (k + i + f < 1) continue;
                for (int o = 0; o < 4; o++)
                    for (int rm = 0; rm < 7; rm++) {
                        fixed_spec s = spec(k, i, f, all_ovf[o], all_rounds[rm]);
                        fixed_quantize_array(&s, x, a, NULL, N);
                        for (int j = 0; j < N; j++) {
                            float q = fixed_quantize(&s, x[j]);
                            ck_assert_msg((isnan(q) && isnan(a[j])) || q == a[j],
                                          "k=%d i=%d f=%d o=%d r=%d x=%.9g: array %g scalar %g",
                                          k, i, f, o, rm, x[j], a[j], q);
                            checked++;
                        }
                    }
            }
    ck_assert_int_gt(checked, 500000);
}
END_TEST

START_TEST(test_wrap_tables) {
    /* ap_fixed<4,4>: integers -8..7. */
    fixed_spec w = spec(1, 3, 0, FX_WRAP, FX_RND);
    ck_assert_float_eq(fixed_quantize(&w, 8.0f), -8.0f);
    ck_assert_float_eq(fixed_quantize(&w, 19.0f), 3.0f);
    ck_assert_float_eq(fixed_quantize(&w, -9.0f), 7.0f);
    ck_assert_float_eq(fixed_quantize(&w, 7.5f), -8.0f); /* rounds up, then wraps */
    /* Sign-magnitude wrap, by hand from the ap_fixed bit rule. */
    static const int sm[][2] = {{8, 7}, {9, 6}, {15, 0}, {16, -1}, {19, -4}, {23, -8},
                                {24, -8}, {25, -7}, {-9, -8}, {-10, -7}, {-19, 2}, {7, 7},
                                {-8, -8}};
    fixed_spec s = spec(1, 3, 0, FX_WRAP_SM, FX_RND);
    for (size_t a = 0; a < sizeof sm / sizeof sm[0]; a++)
        ck_assert_msg(fixed_quantize(&s, (float)sm[a][0]) == (float)sm[a][1],
                      "WRAP_SM %d -> %g, want %d", sm[a][0], fixed_quantize(&s, (float)sm[a][0]),
                      sm[a][1]);
    /* Unsigned: ap_ufixed<8,0> wraps modulo 1. */
    fixed_spec u = spec(0, 0, 8, FX_WRAP, FX_TRN);
    ck_assert_float_eq(fixed_quantize(&u, -1.0f / 256), 255.0f / 256);
    ck_assert_float_eq(fixed_quantize(&u, 1.25f), 0.25f);
    u.overflow = FX_SAT;
    ck_assert_float_eq(fixed_quantize(&u, -0.3f), 0.0f);
    ck_assert_float_eq(fixed_quantize(&u, 3.0f), 255.0f / 256);
    /* Huge values wrap by their low bits: 2^70 + 0 -> 0; -inf saturates. */
    ck_assert_float_eq(fixed_quantize(&w, 0x1p70f), 0.0f);
    ck_assert_float_eq(fixed_quantize(&w, -INFINITY), -8.0f);
    ck_assert(isnan(fixed_quantize(&w, NAN)));
}
END_TEST

START_TEST(test_ranges_and_negative_f) {
    fixed_spec s = spec(1, 0, 7, FX_SAT, FX_RND); /* ap_fixed<8,1> */
    ck_assert_double_eq(fixed_max(&s), 127.0 / 128);
    ck_assert_double_eq(fixed_min(&s), -1.0);
    ck_assert_float_eq(fixed_quantize(&s, 5.0f), 127.0f / 128);
    ck_assert_float_eq(fixed_quantize(&s, -5.0f), -1.0f);
    s.overflow = FX_SAT_SYM;
    ck_assert_float_eq(fixed_quantize(&s, -5.0f), -127.0f / 128);
    ck_assert_float_eq(fixed_quantize(&s, -1.0f), -127.0f / 128);
    /* ap_fixed<4,6>: k=1, i=5, f=-2: quantum 4, range [-32, 28]. */
    fixed_spec n = spec(1, 5, -2, FX_SAT, FX_RND);
    ck_assert_double_eq(fixed_max(&n), 28.0);
    ck_assert_double_eq(fixed_min(&n), -32.0);
    ck_assert_float_eq(fixed_quantize(&n, 5.0f), 4.0f);
    ck_assert_float_eq(fixed_quantize(&n, 6.0f), 8.0f);
    ck_assert_float_eq(fixed_quantize(&n, 100.0f), 28.0f);
    ck_assert_int_eq(fixed_to_int(&n, 8.0f), 2);
    /* Negative i: ap_ufixed<4,-2>: values k / 64, k < 16. */
    fixed_spec ni = spec(0, -2, 6, FX_SAT, FX_TRN);
    ck_assert_double_eq(fixed_max(&ni), 15.0 / 64);
    ck_assert_float_eq(fixed_quantize(&ni, 0.1f), 6.0f / 64);
    /* inrange: the STE window of the mode. */
    float x[5] = {-1.5f, -1.0f, 0.3f, 0.995f, 1.0f}, q[5];
    unsigned char in[5];
    s.overflow = FX_SAT;
    fixed_quantize_array(&s, x, q, in, 5);
    ck_assert_int_eq(in[0], 0); ck_assert_int_eq(in[1], 1); ck_assert_int_eq(in[2], 1);
    ck_assert_int_eq(in[3], 0); ck_assert_int_eq(in[4], 0);
    ck_assert_float_eq(q[2], 38.0f / 128); /* 0.3 * 128 = 38.4 */
    s.overflow = FX_SAT_SYM;
    fixed_quantize_array(&s, x, q, in, 5);
    ck_assert_int_eq(in[1], 0);
}
END_TEST

START_TEST(test_parse_format) {
    fixed_spec s;
    ck_assert_int_eq(fixed_parse("ap_fixed<6,1>", &s), 0);
    ck_assert_int_eq(s.k, 1); ck_assert_int_eq(s.i, 0); ck_assert_int_eq(s.f, 5);
    ck_assert_int_eq(s.round, FX_RND); ck_assert_int_eq(s.overflow, FX_SAT);
    ck_assert_int_eq(fixed_parse("fixed<16,6>", &s), 0);
    ck_assert_int_eq(s.k, 1); ck_assert_int_eq(s.i, 5); ck_assert_int_eq(s.f, 10);
    ck_assert_int_eq(fixed_parse("ap_ufixed<8,0>", &s), 0);
    ck_assert_int_eq(s.k, 0); ck_assert_int_eq(s.i, 0); ck_assert_int_eq(s.f, 8);
    ck_assert_int_eq(fixed_parse(" ufixed< 8 , 3 > ", &s), 0);
    ck_assert_int_eq(s.k, 0); ck_assert_int_eq(s.i, 3); ck_assert_int_eq(s.f, 5);
    ck_assert_int_eq(fixed_parse("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", &s), 0);
    ck_assert_int_eq(s.round, FX_RND_CONV); ck_assert_int_eq(s.overflow, FX_SAT);
    ck_assert_int_eq(fixed_parse("ap_fixed<8,3,AP_TRN_ZERO,AP_WRAP_SM,0>", &s), 0);
    ck_assert_int_eq(s.round, FX_TRN_ZERO); ck_assert_int_eq(s.overflow, FX_WRAP_SM);
    ck_assert_int_eq(fixed_parse("ap_fixed<4,6>", &s), 0);
    ck_assert_int_eq(s.i, 5); ck_assert_int_eq(s.f, -2);
    ck_assert_int_ne(fixed_parse("ap_fixed<8>", &s), 0);
    ck_assert_int_ne(fixed_parse("ap_fixed<0,0>", &s), 0);
    ck_assert_int_ne(fixed_parse("ap_fixed<8,3,AP_FOO>", &s), 0);
    ck_assert_int_ne(fixed_parse("ap_fixed<8,3,AP_RND,AP_SAT_ZERO>", &s), 0);
    ck_assert_int_ne(fixed_parse("ap_fixed<8,3,AP_RND,AP_SAT,2>", &s), 0);
    ck_assert_int_ne(fixed_parse("ap_fixed<8,3>x", &s), 0);
    ck_assert_int_ne(fixed_parse("int<8>", &s), 0);
    char buf[64];
    fixed_spec a = spec(1, 0, 7, FX_SAT, FX_RND);
    ck_assert_str_eq(fixed_format(&a, buf, sizeof buf), "ap_fixed<8,1>");
    ck_assert_str_eq(fixed_format_hls(&a, buf, sizeof buf), "ap_fixed<8,1,AP_RND,AP_SAT>");
    fixed_spec b = spec(0, 2, 6, FX_WRAP, FX_TRN);
    ck_assert_str_eq(fixed_format(&b, buf, sizeof buf), "ap_ufixed<8,2,AP_TRN,AP_WRAP>");
    ck_assert_str_eq(fixed_format_hls(&b, buf, sizeof buf), "ap_ufixed<8,2>");
    /* Round trip over every mode. */
    for (int r = 0; r < 7; r++)
        for (int o = 0; o < 4; o++) {
            fixed_spec c = spec(1, 2, 5, all_ovf[o], all_rounds[r]), d;
            ck_assert_int_eq(fixed_parse(fixed_format(&c, buf, sizeof buf), &d), 0);
            ck_assert(d.k == c.k && d.i == c.i && d.f == c.f && d.round == c.round &&
                      d.overflow == c.overflow);
        }
}
END_TEST

START_TEST(test_bit_span) {
    fixed_spec s = spec(1, 2, 4, FX_SAT, FX_RND);
    ck_assert_int_eq(fixed_bit_span(&s, 0.0f), 0);
    ck_assert_int_eq(fixed_bit_span(&s, 0.75f), 2);     /* 12 = 1100b -> bits 2..3 */
    ck_assert_int_eq(fixed_bit_span(&s, 0.625f), 3);    /* 10 = 1010b -> bits 1..3 */
    ck_assert_int_eq(fixed_bit_span(&s, -0.5f), 1);
    ck_assert_int_eq(fixed_bit_span(&s, 2.0625f), 6);   /* 33 = 100001b */
    ck_assert_int_eq(fixed_bit_span(&s, -3.9375f), 6);  /* 63 */
    fixed_spec n = spec(1, 5, -1, FX_SAT, FX_RND);
    ck_assert_int_eq(fixed_bit_span(&n, 6.0f), 2);      /* 3 = 11b */
}
END_TEST

Suite *make_fixed_suite(void) {
    Suite *s = suite_create("fixed");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_ties_every_rounding_mode);
    tcase_add_test(tc, test_against_integer_reference);
    tcase_add_test(tc, test_array_matches_scalar);
    tcase_add_test(tc, test_wrap_tables);
    tcase_add_test(tc, test_ranges_and_negative_f);
    tcase_add_test(tc, test_parse_format);
    tcase_add_test(tc, test_bit_span);
    suite_add_tcase(s, tc);
    return s;
}
