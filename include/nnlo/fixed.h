/* fixed.h — fixed-point numbers with hls4ml ap_fixed semantics.
 *
 * A format is (k, i, f): sign bit k in {0,1}, integer bits i (without the
 * sign), fractional bits f; width = k + i + f. ap_fixed<W,I> is k=1,
 * i=I-1, f=W-I; ap_ufixed<W,I> is k=0, i=I, f=W-I. Values are carried in
 * float (exact for widths up to 24 bits); fixed_quantize() is the single
 * place the rounding and overflow rules live. Pure functions, no state.
 * i and f may be negative (hls4ml allows I > W, i.e. f < 0). */
#ifndef NNLO_FIXED_H
#define NNLO_FIXED_H

#include <stdint.h>

/* Overflow modes: values are stored in files; append only. */
typedef enum {
    FX_SAT = 0,      /* clip to [-k 2^i, 2^i - 2^-f] */
    FX_SAT_SYM = 1,  /* clip to +-(2^i - 2^-f) */
    FX_WRAP = 2,     /* two's-complement wrap */
    FX_WRAP_SM = 3   /* sign-magnitude wrap */
} fx_overflow;

/* Rounding modes (ap_fixed's set); append only. */
typedef enum {
    FX_RND = 0,         /* floor(x 2^f + 1/2) 2^-f: half up */
    FX_TRN = 1,         /* floor */
    FX_RND_CONV = 2,    /* half to even */
    FX_RND_ZERO = 3,    /* half towards zero */
    FX_RND_MIN_INF = 4, /* half towards -inf */
    FX_RND_INF = 5,     /* half away from zero */
    FX_TRN_ZERO = 6     /* towards zero */
} fx_round;

typedef struct {
    int k, i, f;          /* sign, integer, fractional bits */
    fx_overflow overflow;
    fx_round round;
} fixed_spec;

static inline int fixed_width(const fixed_spec *s) { return s->k + s->i + s->f; }
/* Largest and smallest representable values under SAT. */
double fixed_max(const fixed_spec *s);
double fixed_min(const fixed_spec *s);
/* Quantizes one value. NaN stays NaN. */
float fixed_quantize(const fixed_spec *s, float x);
/* Quantizes n values; if inrange is not NULL, inrange[j] = 1 when x[j] was
 * inside [min, max] (the straight-through estimator passes the gradient only
 * there under SAT; under WRAP training clips, so the same rule applies). */
void fixed_quantize_array(const fixed_spec *s, const float *x, float *out,
                          unsigned char *inrange, long n);
/* The integer a quantized value stands for: q * 2^f (exact). */
int64_t fixed_to_int(const fixed_spec *s, float q);
/* Parses "ap_fixed<W,I>", "fixed<W,I>", "ap_ufixed<W,I>", "ufixed<W,I>",
 * optionally with ",AP_RND,AP_SAT" style modes. Returns 0 on success. */
int fixed_parse(const char *text, fixed_spec *out);
/* Formats as "ap_fixed<W,I>" / "ap_ufixed<W,I>" (plus modes if not RND/SAT). */
char *fixed_format(const fixed_spec *s, char *buf, int len);
/* Formats for an hls4ml config / HLS source: the modes are written out
 * unless they are the C++ type's own defaults (AP_TRN, AP_WRAP), so the
 * string means in Vivado/Vitis HLS exactly what s means here, e.g.
 * "ap_fixed<8,1,AP_RND,AP_SAT>". (fixed_format omits RND/SAT, our default,
 * which HLS would read as TRN/WRAP.) Returns buf. */
char *fixed_format_hls(const fixed_spec *s, char *buf, int len);
/* Number of bits between the highest and lowest set bit of |q| 2^f, i.e. the
 * bits a constant multiplier really needs (0 for zero). Used by EBOPs. */
int fixed_bit_span(const fixed_spec *s, float q);

#endif
