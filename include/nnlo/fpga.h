/* fpga.h — what hls4ml would build: DSP, LUT, FF, BRAM18, latency.
 *
 * The estimator sees the actual quantized weights (a zero costs nothing, a
 * power of two is a shift, a constant with few CSD digits is shift-and-add
 * in LUTs) because that is what separates two trials with the same
 * architecture. It knows nothing of HDF5, YAML or MPI: callers describe the
 * network as an array of fpga_layer. Every constant in the model has a
 * comment saying where it comes from (FPGA.md). Runs in microseconds. */
#ifndef NNLO_FPGA_H
#define NNLO_FPGA_H

#include "nnlo/config.h"
#include "nnlo/fixed.h"
#include "nnlo/util.h"

/* Layer kinds hls4ml builds (io_parallel). Values are appended only. A
 * Flatten is no layer (a reshape is free in io_parallel), Dropout is
 * removed, a BatchNorm that hls4ml fuses into the Dense/Conv before it is
 * part of that layer's weights (hls4ml_fpga_layers decides). */
typedef enum {
    FPGA_LAYER_DENSE = 0,
    FPGA_LAYER_RELU = 1,
    FPGA_LAYER_SOFTMAX = 2,
    FPGA_LAYER_CONV1D = 3,     /* w: (K Cin, Cout), in (1, W, Cin) -> (1, OW, Cout) */
    FPGA_LAYER_CONV2D = 4,     /* w: (KH KW Cin, Cout), in (H, W, Cin) -> (OH, OW, Cout) */
    FPGA_LAYER_MAXPOOL = 5,    /* 1-D (in_h = 1) or 2-D, window kh x kw */
    FPGA_LAYER_AVGPOOL = 6,
    FPGA_LAYER_BATCHNORM = 7,  /* unfused: x scale[c] + bias[c]; w = scale (C), b = bias (C) */
    FPGA_LAYER_TANH = 8,       /* lookup table */
    FPGA_LAYER_SIGMOID = 9,    /* lookup table */
    FPGA_LAYER_HARD_TANH = 10, /* clip(x, -1, 1): compares in LUTs */
    FPGA_LAYER_LEAKY_RELU = 11 /* x > 0 ? x : alpha x (alpha a constant in param_spec) */
} fpga_layer_kind;

typedef struct {
    fpga_layer_kind kind;
    char name[64];
    int n_in, n_out;
    const float *w;        /* DENSE: (n_in, n_out) quantized values, exact zeros where pruned */
    const float *b;        /* DENSE: (n_out) or NULL */
    fixed_spec w_spec, b_spec;
    fixed_spec in_spec;    /* format of the layer's input */
    fixed_spec out_spec;   /* result format */
    int reuse_factor;      /* 0 = the config's */
    /* appended for the spatial layers and the other activations (zero for
     * the kinds above; a memset layer plus the fields of its kind is valid): */
    int in_h, in_w, in_c;  /* CONV, POOL, BATCHNORM: input (H, W, C), channels last; 1-D: in_h = 1.
                              n_in must equal in_h in_w in_c (BATCHNORM: 0 = (1, 1, n_in)) */
    int out_h, out_w, out_c; /* CONV, POOL: output; n_out = out_h out_w out_c */
    int kh, kw;            /* CONV, POOL: window (1-D: kh = 1) */
    int parallelization;   /* CONV: hls4ml's ParallelizationFactor, output pixels computed in
                              parallel; 0 = 1 (hls4ml's default); rounded to a valid value as
                              hls4ml does (fpga_closest_parallelization) */
    float alpha;           /* LEAKY_RELU: slope below 0 */
    fixed_spec param_spec; /* LEAKY_RELU: the type of alpha (hls4ml's param_t; zero width = ap_fixed<16,6>) */
} fpga_layer;

/* "dense", "relu", "softmax", "conv1d", "conv2d", "maxpool", "avgpool",
 * "batchnorm", "tanh", "sigmoid", "hard_tanh", "leaky_relu"; "?" for an
 * unknown kind. For reports (estimate --json, layers.csv). */
const char *fpga_layer_kind_name(fpga_layer_kind k);

typedef struct {
    const char *name;      /* as hls4ml spells it, e.g. "xcu250-figd2104-2L-e" */
    long lut, ff, dsp, bram18;
} fpga_part;

/* Case-insensitive lookup; NULL if unknown. */
const fpga_part *fpga_part_find(const char *name);
/* The table, for listings and did-you-mean. */
const fpga_part *fpga_parts(int *n);

typedef struct {
    char name[64];
    long dsp, lut, ff, bram18;
    long multipliers;      /* multiplications that remain after constant folding */
    long nonzero_weights;
    int latency_cycles, ii;
    double ebops;
} fpga_cost;

typedef struct {
    fpga_cost total;
    fpga_cost *layers; int n_layers;   /* malloc'd; fpga_report_free */
    double latency_ns;
    double util_lut, util_ff, util_dsp, util_bram;  /* percent of the part */
    int fits;                            /* every utilisation <= 100 % */
    char part[64];
} fpga_report;

nl_status fpga_estimate(const fpga_layer *layers, int n, const cfg_fpga *cfg,
                        fpga_report *out, nl_error *e);
void fpga_report_free(fpga_report *r);

/* ---- additions (estimator options, reuse-factor rules) ------------------ */

/* How hls4ml types the accumulator of a Dense layer. AUTO (hls4ml's
 * 'auto' precision, the default for per-layer configs): w_bits + x_bits +
 * ceil(log2 n_in), +1 when the layer has a nonzero bias. FIXED: accum_spec
 * (e.g. the model default ap_fixed<16,6>). Values are appended only. */
typedef enum { FPGA_ACCUM_AUTO = 0, FPGA_ACCUM_FIXED = 1 } fpga_accum_mode;

typedef struct {
    fpga_accum_mode accum;
    fixed_spec accum_spec;   /* used when accum == FPGA_ACCUM_FIXED */
} fpga_options;

/* AUTO accumulator, accum_spec = ap_fixed<16,6>. */
void fpga_options_default(fpga_options *o);

/* fpga_estimate with explicit options (opt NULL = defaults). Same contract:
 * on success *out owns a malloc'd per-layer array (fpga_report_free); on
 * error *out is zeroed and e names the layer or key at fault. */
nl_status fpga_estimate_ex(const fpga_layer *layers, int n, const cfg_fpga *cfg,
                           const fpga_options *opt, fpga_report *out, nl_error *e);

/* hls4ml's Resource-strategy rule (fpga_backend._validate_reuse_factor):
 * rf is valid for an (n_in, n_out) layer when ceil(n_in n_out / min(n_in, rf))
 * is a multiple of n_out or rf >= n_in; and rf is a multiple of n_in or
 * rf < n_in; and rf divides n_in n_out. Returns 1 if valid. */
int fpga_reuse_factor_valid(int n_in, int n_out, int rf);
/* The valid reuse factor hls4ml substitutes for rf: the closest valid value,
 * the smaller one on a tie (get_closest_reuse_factor). n_in, n_out >= 1. */
int fpga_closest_reuse_factor(int n_in, int n_out, int rf);

/* hls4ml's valid ParallelizationFactors of a conv layer with n_pixels output
 * pixels (get_valid_conv_partition_splits: the divisors of n_pixels up to
 * n_pixels / 2, and n_pixels) and the one substituted for pf (the closest,
 * the smaller on a tie). n_pixels >= 1. */
int fpga_parallelization_valid(long n_pixels, int pf);
int fpga_closest_parallelization(long n_pixels, int pf);

#endif
