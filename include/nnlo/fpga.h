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

typedef enum { FPGA_LAYER_DENSE = 0, FPGA_LAYER_RELU = 1, FPGA_LAYER_SOFTMAX = 2 } fpga_layer_kind;

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
} fpga_layer;

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

#endif
