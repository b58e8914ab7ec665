/* fpga_internal.h — internal to src/fpga: part families, the constant
 * classifier and the per-layer cost functions, exposed so that the tests
 * can pin each rule with exact numbers. Not a public API: nothing outside
 * src/fpga and tests/check_fpga.c includes it. Pure functions, no state. */
#ifndef NNLO_FPGA_INTERNAL_H
#define NNLO_FPGA_INTERNAL_H

#include <stdint.h>

#include "nnlo/fpga.h"

typedef enum { FPGA_FAM_USPLUS = 0, FPGA_FAM_ULTRASCALE = 1, FPGA_FAM_7SERIES = 2 } fpga_family_id;

typedef struct {
    int dsp_a, dsp_b;      /* one DSP slice multiplies dsp_a x dsp_b signed bits */
    double t_mul_dsp;      /* ns, DSP multiply, combinational */
    double t_relu;         /* ns, compare + select */
    double t_add0, t_add_bit; /* ns, adder of w bits: t_add0 + w t_add_bit */
    double t_bram;         /* ns, BRAM clock-to-out */
    double scale;          /* fabric speed relative to UltraScale+ -2 */
} fpga_family;

extern const fpga_part fpga_part_table[];
const fpga_family *fpga_family_of(const fpga_part *p);
/* Closest known part name by edit distance (for did-you-mean). */
const fpga_part *fpga_part_suggest(const char *name);

/* ---- model constants (each justified in estimate.c and docs/fpga.md) --- */

/* Neither operand narrower than this -> DSP (hls4ml's DSP-aware pruning
 * objective: no DSP below 9-bit weights; applied to the data operand too). */
#define FPGA_DSP_MIN_BITS 9
/* Constants with at most this many nonzero CSD digits become shift-and-add
 * in LUTs instead of a multiplier. */
#define FPGA_CSD_SHIFT_ADD_MAX 2
/* Vivado HLS default clock uncertainty: 12.5 % of the period. */
#define FPGA_CLOCK_UNCERTAINTY 0.125

/* ---- constant classification ------------------------------------------- */

typedef enum {
    FPGA_CONST_ZERO = 0,      /* free */
    FPGA_CONST_SHIFT = 1,     /* one CSD digit: wiring (sign goes to the adder) */
    FPGA_CONST_SHIFT_ADD = 2, /* <= FPGA_CSD_SHIFT_ADD_MAX digits: adders in LUTs */
    FPGA_CONST_MULT = 3       /* a real multiplier (DSP or LUT) */
} fpga_const_class;

/* Nonzero digits of the canonical signed-digit (non-adjacent) form of |q|. */
int fpga_csd_digits(int64_t q);
/* Bits between the highest and lowest set bit of |q| (0 for 0). */
int fpga_int_span(int64_t q);
/* The integer a weight stands for in spec s: round(w 2^f). */
int64_t fpga_weight_int(const fixed_spec *s, float w);
fpga_const_class fpga_classify(int64_t q);

/* DSP slices for one w_bits x x_bits multiplication (0 below the DSP
 * threshold). */
int fpga_dsps_per_mult(const fpga_family *fam, int w_bits, int x_bits);

/* Accumulator width of a Dense layer under the options. */
int fpga_accum_bits(const fpga_layer *l, const fpga_options *opt);

/* ---- the HLS scheduler model (operation chaining within a clock) ------- */

typedef struct {
    double t_eff;   /* usable ns per cycle (period minus uncertainty) */
    double t_acc;   /* ns already used in the current cycle */
    long cycles;    /* register boundaries so far */
    long ff;        /* bits registered at those boundaries */
} fpga_sched;

void fpga_sched_init(fpga_sched *s, double clock_ns);
/* Chains an operation of delay d after the current ones; when it does not
 * fit in the cycle, a register boundary is inserted before it, holding
 * live_bits. An operation longer than a cycle is pipelined internally. */
void fpga_sched_op(fpga_sched *s, double d, long live_bits);
/* Forces a register boundary (a BRAM address, a pipelined loop). */
void fpga_sched_boundary(fpga_sched *s, long live_bits);

/* ---- per-layer costs (fill c; the scheduler carries latency across
 * layers). rf is the layer's reuse factor after hls4ml's rounding. ------- */

void fpga_cost_dense_latency(const fpga_layer *l, const fpga_family *fam, const fpga_options *opt,
                             int rf, fpga_sched *s, fpga_cost *c);
void fpga_cost_dense_resource(const fpga_layer *l, const fpga_family *fam,
                              const fpga_options *opt, int rf, fpga_sched *s, fpga_cost *c);
void fpga_cost_relu(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c);
void fpga_cost_softmax(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c);

/* Conv1D/Conv2D (io_parallel, im2col): the kernel matrix as a Dense of
 * kh kw in_c -> out_c, built pf times (pf = the layer's ParallelizationFactor
 * after rounding, output pixels in parallel) and run out_pixels / pf times
 * at II = rf. EBOPs count every output position. resource = Resource strategy
 * (rf already rounded for the kernel matrix). */
void fpga_cost_conv(const fpga_layer *l, const fpga_family *fam, const fpga_options *opt, int rf, int pf,
                    int resource, fpga_sched *s, fpga_cost *c);
/* Max / average pooling: per output element a chain of window-1 compares
 * (max) or an adder tree and a constant division (avg). No DSP. */
void fpga_cost_pool(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c);
/* Unfused BatchNorm: per element one constant product (scale of its
 * channel, classified as Dense weights are) and one bias add. */
void fpga_cost_batchnorm(const fpga_layer *l, const fpga_family *fam, int rf, fpga_sched *s, fpga_cost *c);
/* tanh / sigmoid: one lookup table (BRAM18) per two elements. */
void fpga_cost_table_act(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c);
/* hard_tanh and leaky_relu: compares, selects and constant shifts in LUTs. */
void fpga_cost_hard_tanh(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c);
void fpga_cost_leaky_relu(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c);

#endif
