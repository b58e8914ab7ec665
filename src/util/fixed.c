/* fixed.c — fixed-point quantization with hls4ml / Vivado ap_fixed semantics.
 *
 * The one place the rounding and overflow rules live: a value becomes the
 * integer n = round(x 2^f) (7 rounding modes), n is brought into the W-bit
 * range (SAT, SAT_SYM, WRAP, WRAP_SM), the result is n 2^-f. Integer math in
 * int64 on exactly scaled doubles, so widths up to 60 bits are exact here
 * (float results are exact up to 24 bits). No allocation, no state.
 * Deliberately not: AP_SAT_ZERO and saturation bits N > 0 (hls4ml never
 * emits them); fixed_parse rejects them. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/fixed.h"

#define FX_MAX_WIDTH 60

/* Integer range of the format: [lo, hi] for W = k + i + f bits. W <= 0 (or
 * a signed format without room for the sign) holds only 0. */
static void int_range(const fixed_spec *s, int64_t *lo, int64_t *hi) {
    int w = fixed_width(s);
    if (w > FX_MAX_WIDTH) w = FX_MAX_WIDTH;
    if (w <= 0 || (s->k && w < 1)) { *lo = *hi = 0; return; }
    if (s->k) {
        *lo = -((int64_t)1 << (w - 1));
        *hi = ((int64_t)1 << (w - 1)) - 1;
    } else {
        *lo = 0;
        *hi = ((int64_t)1 << w) - 1;
    }
}

double fixed_max(const fixed_spec *s) {
    int64_t lo, hi;
    int_range(s, &lo, &hi);
    return ldexp((double)hi, -s->f);
}

double fixed_min(const fixed_spec *s) {
    int64_t lo, hi;
    int_range(s, &lo, &hi);
    return ldexp((double)lo, -s->f);
}

/* Lower clip bound of the overflow mode (SAT_SYM is symmetric). */
static int64_t mode_lo(const fixed_spec *s, int64_t lo, int64_t hi) {
    return (s->overflow == FX_SAT_SYM && s->k) ? -hi : lo;
}

/* Rounds y (already scaled by 2^f) to an integer; *fl receives floor(y).
 * |y| < 2^62 here, so floor(y) and y - floor(y) are exact. */
static int64_t round_scaled(fx_round mode, double y, int64_t *fl) {
    double fy = floor(y);
    double frac = y - fy;          /* exact, in [0, 1) */
    int64_t n = (int64_t)fy;
    int neg = y < 0;
    *fl = n;
    if (frac == 0) return n;
    int half = frac == 0.5, above = frac > 0.5;
    switch (mode) {
    case FX_TRN: return n;
    case FX_TRN_ZERO: return neg ? n + 1 : n;
    case FX_RND: return (above || half) ? n + 1 : n;
    case FX_RND_MIN_INF: return above ? n + 1 : n;
    case FX_RND_ZERO: return (above || (half && neg)) ? n + 1 : n;
    case FX_RND_INF: return (above || (half && !neg)) ? n + 1 : n;
    case FX_RND_CONV: return (above || (half && (n & 1))) ? n + 1 : n;
    }
    return n;
}

/* The low w bits of n as a w-bit two's-complement (signed) or unsigned
 * integer. */
static int64_t wrap_bits(int64_t n, int w, int is_signed) {
    uint64_t mask = (w >= 64) ? ~(uint64_t)0 : (((uint64_t)1 << w) - 1);
    uint64_t u = (uint64_t)n & mask;
    if (is_signed && w > 0 && (u >> (w - 1)) & 1) return (int64_t)(u | ~mask);
    return (int64_t)u;
}

/* Integer result of quantizing x (not NaN). */
static int64_t quantize_int(const fixed_spec *s, double x) {
    int64_t lo, hi;
    int_range(s, &lo, &hi);
    int w = fixed_width(s);
    if (w <= 0 || lo == hi) return 0;
    int sat = s->overflow == FX_SAT || s->overflow == FX_SAT_SYM ||
              (s->overflow == FX_WRAP_SM && !s->k); /* ap_fixed saturates unsigned WRAP_SM */
    double y = ldexp(x, s->f);
    if (isinf(y)) return y > 0 ? hi : mode_lo(s, lo, hi); /* infinities saturate in every mode */
    int64_t fl, n;
    if (fabs(y) >= 0x1p62) {
        if (sat) return y > 0 ? hi : mode_lo(s, lo, hi);
        /* y is an integer; fmod is exact and keeps bits 0..w (w <= 60). */
        y = fmod(y, ldexp(1.0, w + 1));
        n = fl = (int64_t)y;
    } else {
        n = round_scaled(s->round, y, &fl);
    }
    if (sat) {
        int64_t l = mode_lo(s, lo, hi);
        return n > hi ? hi : n < l ? l : n;
    }
    if (n >= lo && n <= hi) return n;
    if (s->overflow == FX_WRAP || !s->k) return wrap_bits(n, w, s->k);
    /* FX_WRAP_SM, signed: as ap_fixed with N = 0. After the two's-complement
     * wrap, if the kept sign bit Ro differs from the first deleted bit lD
     * (bit w of the truncated source), invert the bits and set the sign to
     * lD. E.g. ap_fixed<4,4,AP_RND,AP_WRAP_SM>: 19 -> -4, -19 -> 2. */
    uint64_t mask = (((uint64_t)1 << w) - 1);
    uint64_t v = (uint64_t)n & mask;
    int ro = (int)((v >> (w - 1)) & 1);
    int ld = (int)(((uint64_t)fl >> w) & 1);
    if (ld != ro) {
        v = ~v & mask;
        v = (v & ~((uint64_t)1 << (w - 1))) | ((uint64_t)ld << (w - 1));
    }
    return wrap_bits((int64_t)v, w, 1);
}

float fixed_quantize(const fixed_spec *s, float x) {
    if (isnan(x)) return x;
    return (float)ldexp((double)quantize_int(s, (double)x), -s->f);
}

/* Saturating modes on the hot path (activation quantizers): the same rules
 * as quantize_int in double, without the int64 detour. y is pre-clipped to
 * [lo - 1, hi + 1], so rounding stays exact and infinities need no case. */
static void quantize_sat_array(const fixed_spec *s, double lo, double hi, const float *x,
                               float *out, long n) {
    double scale = ldexp(1.0, s->f), inv = ldexp(1.0, -s->f);
    if (s->round == FX_RND || s->round == FX_TRN) {
        /* floor(y + 1/2) and floor(y) are exact for |y| <= hi + 1 < 2^61;
         * NaN passes through the clamps (comparisons are false). */
        double add = s->round == FX_RND ? 0.5 : 0.0;
        for (long j = 0; j < n; j++) {
            double y = (double)x[j] * scale;
            y = y < lo - 1 ? lo - 1 : y;
            y = y > hi + 1 ? hi + 1 : y;
            double r = floor(y + add);
            r = r < lo ? lo : r;
            r = r > hi ? hi : r;
            out[j] = (float)(r * inv);
        }
        return;
    }
    for (long j = 0; j < n; j++) {
        float v = x[j];
        if (isnan(v)) { out[j] = v; continue; }
        double y = (double)v * scale;
        y = y < lo - 1 ? lo - 1 : y > hi + 1 ? hi + 1 : y;
        double fl = floor(y), frac = y - fl, r = fl;
        if (frac != 0) {
            int neg = y < 0, half = frac == 0.5, above = frac > 0.5;
            switch (s->round) {
            case FX_TRN: break;
            case FX_TRN_ZERO: r = neg ? fl + 1 : fl; break;
            case FX_RND: r = (above || half) ? fl + 1 : fl; break;
            case FX_RND_MIN_INF: r = above ? fl + 1 : fl; break;
            case FX_RND_ZERO: r = (above || (half && neg)) ? fl + 1 : fl; break;
            case FX_RND_INF: r = (above || (half && !neg)) ? fl + 1 : fl; break;
            case FX_RND_CONV: r = (above || (half && fmod(fl, 2.0) != 0)) ? fl + 1 : fl; break;
            }
        }
        r = r < lo ? lo : r > hi ? hi : r;
        out[j] = (float)(r * inv);
    }
}

void fixed_quantize_array(const fixed_spec *s, const float *x, float *out,
                          unsigned char *inrange, long n) {
    int64_t lo, hi;
    int_range(s, &lo, &hi);
    double vmax = ldexp((double)hi, -s->f);
    double vmin = ldexp((double)mode_lo(s, lo, hi), -s->f);
    if (inrange)
        for (long j = 0; j < n; j++) inrange[j] = (unsigned char)(x[j] >= vmin && x[j] <= vmax);
    int sat = s->overflow == FX_SAT || s->overflow == FX_SAT_SYM ||
              (s->overflow == FX_WRAP_SM && !s->k);
    if (sat && fixed_width(s) > 0 && fixed_width(s) <= FX_MAX_WIDTH && lo != hi) {
        quantize_sat_array(s, (double)mode_lo(s, lo, hi), (double)hi, x, out, n);
        return;
    }
    for (long j = 0; j < n; j++) out[j] = fixed_quantize(s, x[j]);
}

int64_t fixed_to_int(const fixed_spec *s, float q) {
    return (int64_t)llround(ldexp((double)q, s->f));
}

int fixed_bit_span(const fixed_spec *s, float q) {
    double y = fabs(ldexp((double)q, s->f));
    if (y == 0 || isnan(y) || isinf(y)) return 0;
    /* A value off the grid (not an integer after scaling) is a caller bug;
     * count it as its rounded integer. */
    uint64_t u = (uint64_t)llround(y);
    if (u == 0) return 0;
    int msb = 63 - __builtin_clzll(u);
    int lsb = __builtin_ctzll(u);
    return msb - lsb + 1;
}

/* ---- text ---------------------------------------------------------------- */

static const char *const round_names[] = {"RND", "TRN", "RND_CONV", "RND_ZERO",
                                          "RND_MIN_INF", "RND_INF", "TRN_ZERO"};
static const char *const overflow_names[] = {"SAT", "SAT_SYM", "WRAP", "WRAP_SM"};

static const char *skip_ws(const char *p) {
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}

/* Reads one mode token ("AP_RND_CONV" or "rnd_conv") into tok (upper case,
 * without "AP_"). Returns the position after it. */
static const char *read_token(const char *p, char *tok, int len) {
    int n = 0;
    p = skip_ws(p);
    if ((p[0] == 'A' || p[0] == 'a') && (p[1] == 'P' || p[1] == 'p') && p[2] == '_') p += 3;
    while (*p && (isalnum((unsigned char)*p) || *p == '_')) {
        if (n < len - 1) tok[n++] = (char)toupper((unsigned char)*p);
        p++;
    }
    tok[n] = 0;
    return skip_ws(p);
}

static int lookup(const char *tok, const char *const *names, int n) {
    for (int j = 0; j < n; j++)
        if (strcmp(tok, names[j]) == 0) return j;
    return -1;
}

int fixed_parse(const char *text, fixed_spec *out) {
    if (!text || !out) return -1;
    const char *p = skip_ws(text);
    int is_signed;
    if (strncmp(p, "ap_", 3) == 0) p += 3;
    if (strncmp(p, "ufixed", 6) == 0) { is_signed = 0; p += 6; }
    else if (strncmp(p, "fixed", 5) == 0) { is_signed = 1; p += 5; }
    else return -1;
    p = skip_ws(p);
    if (*p++ != '<') return -1;
    char *end;
    long W = strtol(p, &end, 10);
    if (end == p) return -1;
    p = skip_ws(end);
    if (*p++ != ',') return -1;
    long I = strtol(p, &end, 10);
    if (end == p) return -1;
    p = skip_ws(end);
    if (W < 1 || W > FX_MAX_WIDTH || I < -FX_MAX_WIDTH || I > FX_MAX_WIDTH) return -1;
    fixed_spec s = {.k = is_signed, .i = (int)(is_signed ? I - 1 : I), .f = (int)(W - I),
                    .overflow = FX_SAT, .round = FX_RND};
    /* Optional quantization mode, overflow mode, saturation bits (0 only). */
    char tok[32];
    if (*p == ',') {
        p = read_token(p + 1, tok, sizeof tok);
        int r = lookup(tok, round_names, 7);
        if (r < 0) return -1;
        s.round = (fx_round)r;
        if (*p == ',') {
            p = read_token(p + 1, tok, sizeof tok);
            int o = lookup(tok, overflow_names, 4);
            if (o < 0) return -1;
            s.overflow = (fx_overflow)o;
            if (*p == ',') {
                p = skip_ws(p + 1);
                long N = strtol(p, &end, 10);
                if (end == p || N != 0) return -1;
                p = skip_ws(end);
            }
        }
    }
    if (*p++ != '>') return -1;
    if (*skip_ws(p)) return -1;
    *out = s;
    return 0;
}

static void format_spec(const fixed_spec *s, char *buf, int len, int modes) {
    int W = fixed_width(s), I = s->k + s->i;
    const char *t = s->k ? "ap_fixed" : "ap_ufixed";
    int r = (int)s->round, o = (int)s->overflow;
    if (r < 0 || r > 6) r = 0;
    if (o < 0 || o > 3) o = 0;
    if (modes)
        snprintf(buf, (size_t)len, "%s<%d,%d,AP_%s,AP_%s>", t, W, I, round_names[r],
                 overflow_names[o]);
    else
        snprintf(buf, (size_t)len, "%s<%d,%d>", t, W, I);
}

char *fixed_format(const fixed_spec *s, char *buf, int len) {
    if (buf && len > 0)
        format_spec(s, buf, len, s->round != FX_RND || s->overflow != FX_SAT);
    return buf;
}

char *fixed_format_hls(const fixed_spec *s, char *buf, int len) {
    if (!buf || len <= 0) return buf;
    format_spec(s, buf, len, s->round != FX_TRN || s->overflow != FX_WRAP);
    return buf;
}
