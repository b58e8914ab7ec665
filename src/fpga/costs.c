/* costs.c — per-layer cost of what hls4ml generates (io_parallel, Vivado /
 * Vitis HLS): Dense in the Latency and Resource strategies, ReLU, Softmax;
 * the constant classifier (zero / shift / shift-and-add / multiplier) and
 * the scheduler model that turns combinational delays into cycles.
 * It does not model routing, timing closure or post-place-and-route
 * optimisation: the numbers are C-synthesis estimates. Every constant has a
 * comment saying where it comes from; docs/fpga.md collects them. */
#include <math.h>
#include <stdlib.h>

#include "fpga/fpga_internal.h"

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }
static long ceil_div(long a, long b) { return (a + b - 1) / b; }
static int ceil_log2(long n) {
    int k = 0;
    while ((1L << k) < n) k++;
    return k;
}

/* ---- constants ----------------------------------------------------------- */

int fpga_csd_digits(int64_t q) {
    uint64_t u = q < 0 ? (uint64_t)0 - (uint64_t)q : (uint64_t)q;
    int d = 0;
    /* Non-adjacent form: an odd remainder gives digit +1 (u = 1 mod 4) or
     * -1 (u = 3 mod 4); the NAF has the fewest nonzero signed digits. */
    while (u) {
        if (u & 1) {
            if ((u & 3) == 3) u += 1; else u -= 1;
            d++;
        }
        u >>= 1;
    }
    return d;
}

int fpga_int_span(int64_t q) {
    uint64_t u = q < 0 ? (uint64_t)0 - (uint64_t)q : (uint64_t)q;
    if (!u) return 0;
    return (63 - __builtin_clzll(u)) - __builtin_ctzll(u) + 1;
}

int64_t fpga_weight_int(const fixed_spec *s, float w) {
    double y = ldexp((double)w, s->f);
    if (isnan(y)) return 0;
    if (y > 4e18) y = 4e18;
    if (y < -4e18) y = -4e18;
    return (int64_t)llround(y);
}

fpga_const_class fpga_classify(int64_t q) {
    int d = fpga_csd_digits(q);
    if (d == 0) return FPGA_CONST_ZERO;
    if (d == 1) return FPGA_CONST_SHIFT;
    if (d <= FPGA_CSD_SHIFT_ADD_MAX) return FPGA_CONST_SHIFT_ADD;
    return FPGA_CONST_MULT;
}

int fpga_dsps_per_mult(const fpga_family *fam, int w_bits, int x_bits) {
    if (w_bits < FPGA_DSP_MIN_BITS || x_bits < FPGA_DSP_MIN_BITS) return 0;
    /* One DSP48E2 takes 27 x 18 (DSP48E1: 25 x 18); a wider product is
     * tiled, in whichever orientation needs fewer slices. */
    long o1 = ceil_div(w_bits, fam->dsp_a) * ceil_div(x_bits, fam->dsp_b);
    long o2 = ceil_div(x_bits, fam->dsp_a) * ceil_div(w_bits, fam->dsp_b);
    return (int)(o1 < o2 ? o1 : o2);
}

static int layer_has_bias(const fpga_layer *l) {
    if (!l->b) return 0;
    for (int j = 0; j < l->n_out; j++)
        if (fpga_weight_int(&l->b_spec, l->b[j]) != 0) return 1;
    return 0;
}

int fpga_accum_bits(const fpga_layer *l, const fpga_options *opt) {
    if (opt && opt->accum == FPGA_ACCUM_FIXED) return imax(1, fixed_width(&opt->accum_spec));
    /* hls4ml 'auto' (infer_precision): w + x + ceil(log2 n_in), one more bit
     * to align a bias. */
    return fixed_width(&l->w_spec) + fixed_width(&l->in_spec) + ceil_log2(l->n_in) +
           layer_has_bias(l);
}

/* ---- scheduler ----------------------------------------------------------- */

void fpga_sched_init(fpga_sched *s, double clock_ns) {
    s->t_eff = clock_ns * (1.0 - FPGA_CLOCK_UNCERTAINTY);
    s->t_acc = 0;
    s->cycles = 0;
    s->ff = 0;
}

void fpga_sched_op(fpga_sched *s, double d, long live_bits) {
    if (d <= 0) return;
    if (s->t_acc > 0 && s->t_acc + d > s->t_eff) {
        s->cycles++;
        s->ff += live_bits;
        s->t_acc = 0;
    }
    /* Longer than a cycle: HLS pipelines the operator (DSP M/P registers,
     * a multi-stage adder) — cycles without fabric registers counted here. */
    while (d > s->t_eff) {
        s->cycles++;
        d -= s->t_eff;
    }
    s->t_acc += d;
}

void fpga_sched_boundary(fpga_sched *s, long live_bits) {
    if (s->t_acc > 0) {
        s->cycles++;
        s->ff += live_bits;
    }
    s->t_acc = 0;
}

static double t_add(const fpga_family *fam, int bits) { return fam->t_add0 + fam->t_add_bit * bits; }

/* Output cast accum -> result: rounding other than truncation is one adder,
 * saturation a compare-and-select, each ~1 LUT per result bit; truncation
 * and wrap are free (wiring). */
static long cast_luts(const fixed_spec *out, int acc_bits) {
    int ob = fixed_width(out);
    if (acc_bits <= ob) return 0;
    long l = 0;
    if (out->round != FX_TRN && out->round != FX_TRN_ZERO) l += ob;
    if (out->overflow == FX_SAT || out->overflow == FX_SAT_SYM) l += ob;
    return l;
}

/* ---- Dense, Latency strategy ------------------------------------------- */

#define MAX_LEVELS 64

void fpga_cost_dense_latency(const fpga_layer *l, const fpga_family *fam, const fpga_options *opt,
                             int rf, fpga_sched *s, fpga_cost *c) {
    const int xb = fixed_width(&l->in_spec), wb = fixed_width(&l->w_spec);
    const int acc = fpga_accum_bits(l, opt);
    const int prod = wb + xb;
    const int dsp_per = fpga_dsps_per_mult(fam, wb, xb);
    const long n_w = (long)l->n_in * l->n_out;
    long zeros = 0, mults = 0, mult_dsp_units = 0;
    long lut_mult = 0;        /* LUTs of real multipliers built in fabric */
    long lut_shift_add = 0;   /* LUTs of shift-and-add constants */
    long lut_acc = 0, lut_cast = 0;
    double t_mult = 0;
    long live[MAX_LEVELS + 1] = {0};
    int levels = 0;

    for (int j = 0; j < l->n_out; j++) {
        long terms = 0;
        for (int i = 0; i < l->n_in; i++) {
            float wv = l->w[(long)i * l->n_out + j];
            int64_t q = fpga_weight_int(&l->w_spec, wv);
            fpga_const_class k = fpga_classify(q);
            if (k == FPGA_CONST_ZERO) { zeros++; continue; }
            terms++;
            c->nonzero_weights++;
            c->ebops += (double)xb * fixed_bit_span(&l->w_spec, wv);
            int span = fpga_int_span(q), d = fpga_csd_digits(q);
            if (k == FPGA_CONST_SHIFT) continue; /* wiring; the sign goes to the adder */
            /* Shift-and-add: (d - 1) adders of the shifted input's width,
             * x_bits + span, in a tree of ceil(log2 d) levels. A constant
             * multiplier built in fabric is the same adder tree (what logic
             * synthesis makes of a constant coefficient). */
            long luts = (long)(d - 1) * (xb + span);
            double t = ceil_log2(d) * t_add(fam, xb + span);
            if (k == FPGA_CONST_SHIFT_ADD) {
                lut_shift_add += luts;
                if (t > t_mult) t_mult = t;
                continue;
            }
            mults++;
            if (dsp_per > 0) {
                mult_dsp_units += dsp_per;
                if (fam->t_mul_dsp > t_mult) t_mult = fam->t_mul_dsp;
            } else {
                lut_mult += luts;
                if (t > t_mult) t_mult = t;
            }
        }
        int has_b = l->b && fpga_weight_int(&l->b_spec, l->b[j]) != 0;
        terms += has_b;
        if (terms == 0) continue; /* a constant-zero output: no logic */
        /* Balanced adder tree: level k holds ceil(t / 2^k) partial sums of
         * width min(acc, prod + k) (one bit of growth per level, capped by
         * the accumulator type). */
        long t = terms;
        int k = 0;
        live[0] += t * imin(acc, prod);
        while (t > 1 && k < MAX_LEVELS) {
            k++;
            long adders = t / 2;
            t = t - adders;
            int wk = imin(acc, prod + k);
            lut_acc += adders * wk;
            live[k] += t * wk;
        }
        if (k > levels) levels = k;
        lut_cast += cast_luts(&l->out_spec, acc);
    }

    /* hls4ml's cap on multipliers in the Latency strategy
     * (nnet_dense_latency.h: ceil(n_in n_out / RF) - floor(n_zeros / RF),
     * passed to #pragma HLS ALLOCATION for mul). It binds only the real
     * multipliers: shifts and shift-and-add are not mul operations. */
    long cap = ceil_div(n_w, rf) - zeros / rf;
    if (cap < 0) cap = 0;
    long inst = mults < cap ? mults : cap;
    long dsp = mult_dsp_units, lut_mux = 0;
    if (mults > 0 && inst < mults) {
        /* Shared: each instance serves k = ceil(mults / inst) products over
         * the RF cycles behind a k:1 mux on the data operand: a LUT6_2 holds
         * two 2:1 mux bits, a LUT6 one 4:1, so ~ceil((k-1)/3) LUT per bit
         * (half a LUT at k = 2). The constant operand is a function of the
         * select only: free at k = 2 (a wire or its inverse), one LUT per
         * weight bit beyond. */
        long share = ceil_div(mults, inst > 0 ? inst : 1);
        dsp = ceil_div(mult_dsp_units * inst, mults);
        lut_mult = ceil_div(lut_mult * inst, mults);
        long per = share <= 2 ? ceil_div(xb, 2) : (long)xb * ceil_div(share - 1, 3) + wb;
        lut_mux = inst * per;
    }
    c->multipliers = inst;
    c->dsp = dsp;
    c->lut = lut_mult + lut_shift_add + lut_acc + lut_cast + lut_mux;
    c->bram18 = 0; /* weights are constants folded into the logic */

    long c0 = s->cycles, f0 = s->ff;
    fpga_sched_op(s, t_mult, (long)l->n_in * xb);
    for (int k = 1; k <= levels; k++) fpga_sched_op(s, t_add(fam, imin(acc, prod + k)), live[k - 1]);
    if (lut_cast > 0) fpga_sched_op(s, t_add(fam, fixed_width(&l->out_spec)), live[levels]);
    /* II = RF: the multiplications spread over RF cycles (issue #1013:
     * latency ~ RF + the layer's own pipeline). */
    if (rf > 1) s->cycles += rf - 1;
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = rf;
}

/* ---- Dense, Resource strategy (RF > 1) --------------------------------- */

/* BRAM18 words of a given width at a given depth: 512 x 36, 1K x 18,
 * 2K x 9, 4K x 4, 8K x 2, 16K x 1 (UG573 / UG473, simple dual port). */
static long bram18_for(long depth, long width) {
    static const long depths[] = {512, 1024, 2048, 4096, 8192, 16384};
    static const long widths[] = {36, 18, 9, 4, 2, 1};
    for (int i = 0; i < 6; i++)
        if (depth <= depths[i]) return ceil_div(width, widths[i]);
    return ceil_div(width, 1) * ceil_div(depth, 16384);
}

void fpga_cost_dense_resource(const fpga_layer *l, const fpga_family *fam,
                              const fpga_options *opt, int rf, fpga_sched *s, fpga_cost *c) {
    const int xb = fixed_width(&l->in_spec), wb = fixed_width(&l->w_spec);
    const int acc = fpga_accum_bits(l, opt);
    const long n_w = (long)l->n_in * l->n_out;
    const long bf = ceil_div(n_w, rf); /* block_factor: multipliers (nnet_dense_resource.h) */
    const int dsp_per = fpga_dsps_per_mult(fam, wb, xb);

    for (long idx = 0; idx < n_w; idx++) {
        float wv = l->w[idx];
        if (fpga_weight_int(&l->w_spec, wv) == 0) continue;
        c->nonzero_weights++;
        c->ebops += (double)xb * fixed_bit_span(&l->w_spec, wv);
    }
    /* The weights sit in a ROM the multipliers read: HLS cannot fold them,
     * zeros are not removed, every multiplier is generic. */
    c->multipliers = bf;
    c->dsp = bf * dsp_per;
    /* A generic w x x multiplier in fabric: ~1.2 LUT per partial-product
     * bit (hls4ml issue #99: an 18x18 LUT multiplier is 365-411 LUTs). */
    long lut_mult = dsp_per > 0 ? 0 : bf * (long)ceil(1.2 * wb * xb);
    /* One accumulate adder per multiplier per cycle, accumulator wide. */
    long lut_acc = bf * acc;
    /* Each multiplier reads min(RF, n_in) different inputs over the RF
     * iterations: a k:1 mux per input bit (a LUT6 is a 4:1 mux). */
    long k_in = rf < l->n_in ? rf : l->n_in;
    long lut_mux = k_in > 1 ? bf * (long)xb * ceil_div(k_in, 4) : 0;
    long lut_cast = (long)l->n_out * cast_luts(&l->out_spec, acc);
    /* Loop control, index counters: a few tens of LUTs (small). */
    long lut_ctrl = 32;
    c->lut = lut_mult + lut_acc + lut_mux + lut_cast + lut_ctrl;
    /* Weights: ARRAY_RESHAPE block factor=block_factor -> a ROM of depth RF
     * and width block_factor x w_bits; hls4ml's own BRAM objective
     * (vivado_objectives.py): n_in n_out w_bits / (RF 36) BRAM18. */
    c->bram18 = bram18_for(rf, bf * wb);
    /* Registers: the accumulators, and the operands each pipelined
     * iteration latches (mux output and ROM word). */
    c->ff = (long)l->n_out * acc + bf * (long)(xb + wb);

    /* The ReuseLoop runs RF iterations at II=1: latency ~ RF + 2
     * (FPGA.md; hls4ml issue #1013: "RF cycles + ~2 overhead"). */
    long c0 = s->cycles;
    s->cycles += rf + 2;
    s->t_acc = 0;
    c->latency_cycles = (int)(s->cycles - c0);
    c->ii = rf;
}

/* ---- activations --------------------------------------------------------- */

void fpga_cost_relu(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c) {
    const int b = fixed_width(&l->in_spec);
    /* ReLU: compare with zero + select, ~2.4 LUT per input bit in HLS's
     * estimate: hls4ml's Dense(1->64)+ReLU baselines (ap_fixed<16,6>, 61 of
     * 64 products in DSPs, zero bias) report 2224 LUT (Vivado 2020.1) and
     * 2840 (Vitis 2023.1): 35-44 LUT per element, i.e. 2.2-2.7 per bit. */
    c->lut = (long)l->n_in * (long)ceil(2.4 * b);
    long c0 = s->cycles, f0 = s->ff;
    fpga_sched_op(s, fam->t_relu, (long)l->n_in * b);
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = 1;
}

/* A table lookup (BRAM ROM): registered address, one cycle read. */
static void sched_bram_read(fpga_sched *s, const fpga_family *fam, long addr_bits) {
    fpga_sched_boundary(s, addr_bits);
    s->cycles++;
    s->t_acc = fam->t_bram;
}

void fpga_cost_softmax(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c) {
    const int n = l->n_in, w = fixed_width(&l->in_spec), ob = fixed_width(&l->out_spec);
    /* hls4ml's softmax ('stable', the default): max, x - max, exp table,
     * sum, 1/sum table, n products. Tables are 1024 x ap_fixed<18,8>
     * (fpga_backend.py defaults): one BRAM18 each (1024 x 18 = 18 Kb), two
     * lookups per BRAM18 (dual port); the Dense(1->64)+sigmoid baseline uses
     * exactly 32 BRAM18 for 64 lookups. */
    const int tw = 18, idx = 10;
    c->bram18 = ceil_div(n, 2) + 1;
    c->dsp = (long)n * fpga_dsps_per_mult(fam, tw, tw);
    c->multipliers = n;
    long lut = 0;
    lut += (long)(n - 1) * (long)ceil(1.5 * w); /* max tree: compare + select */
    lut += (long)n * w;                         /* x - max */
    lut += (long)n * 2 * w;                     /* table index: slice + clamp */
    lut += (long)(n - 1) * tw;                  /* sum of exponentials */
    lut += 2L * tw;                             /* 1/sum index */
    lut += (long)n * ob;                        /* result cast */
    c->lut = lut;
    long c0 = s->cycles, f0 = s->ff;
    int lv = ceil_log2(n);
    for (int k = 0; k < lv; k++) fpga_sched_op(s, t_add(fam, w) + fam->t_relu, (long)n * w);
    fpga_sched_op(s, t_add(fam, w), (long)n * w);
    sched_bram_read(s, fam, (long)n * idx);
    for (int k = 0; k < lv; k++) fpga_sched_op(s, t_add(fam, tw), (long)n * tw);
    sched_bram_read(s, fam, (long)n * tw + idx);
    fpga_sched_op(s, fam->t_mul_dsp, (long)n * tw + tw);
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = 1;
}

/* ---- Conv1D / Conv2D (io_parallel) ------------------------------------- */

void fpga_cost_conv(const fpga_layer *l, const fpga_family *fam, const fpga_options *opt, int rf, int pf,
                    int resource, fpga_sched *s, fpga_cost *c) {
    /* nnet_conv2d_latency.h (conv_2d_latency_cl): a generated fill_buffer
     * (im2col, wiring) feeds n_pixels = pf rows of kh kw Cin values to an
     * unrolled kernel-matrix multiply per pixel; the PartitionLoop over
     * out_pixels / pf partitions is pipelined at II = RF. The kernel is
     * the Dense of (kh kw Cin, Cout) that hls4ml's mult config describes
     * (convolution_templates.py: n_in = filt kh kw n_chan, n_out = n_filt). */
    fpga_layer k = *l;
    k.n_in = l->kh * l->kw * l->in_c;
    k.n_out = l->out_c;
    const long pixels = (long)l->out_h * l->out_w;
    const long parts = pixels / pf;
    fpga_sched_boundary(s, (long)l->n_in * fixed_width(&l->in_spec)); /* a pipelined loop starts */
    long c0 = s->cycles;
    if (resource) fpga_cost_dense_resource(&k, fam, opt, rf, s, c);
    else fpga_cost_dense_latency(&k, fam, opt, rf, s, c);
    /* pf copies of the per-pixel logic. hls4ml's multiplier_limit is written
     * for one pixel (ceil(n_in n_out / RF) - n_zeros / RF); we apply it per
     * pixel (assumption: with pf > 1 the cap would otherwise force II > RF,
     * which HLS resolves by relaxing the cap, not the II). */
    c->dsp *= pf;
    c->lut *= pf;
    c->ff *= pf;
    c->multipliers *= pf;
    /* the ROM of the Resource strategy is shared by the pixels: BRAM once */
    c->ebops *= (double)pixels;  /* every weight multiplies once per output position */
    /* the remaining partitions issue every RF cycles behind the first */
    s->cycles += (parts - 1) * (long)rf;
    fpga_sched_boundary(s, (long)l->n_out * fixed_width(&l->out_spec));
    c->latency_cycles = (int)(s->cycles - c0);
    c->ii = (int)(parts * rf > 1 ? parts * rf : 1);
}

/* ---- pooling -------------------------------------------------------------- */

void fpga_cost_pool(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c) {
    const int w = fixed_width(&l->in_spec), ob = fixed_width(&l->out_spec);
    const long k = (long)l->kh * l->kw, n = l->n_out;
    long c0 = s->cycles, f0 = s->ff;
    if (l->kind == FPGA_LAYER_MAXPOOL) {
        /* nnet_pooling.h max(): y = x[i] > y ? x[i] : y, a chain of k - 1
         * compare-and-selects (the same 1.5 LUT per bit as softmax's max). */
        c->lut = n * (k - 1) * (long)ceil(1.5 * w);
        for (long i = 1; i < k; i++) fpga_sched_op(s, t_add(fam, w) + fam->t_relu, n * w);
    } else {
        /* avg(): k - 1 additions in a tree (one bit of growth per level),
         * then y /= k: a shift when k is a power of two, else a constant
         * multiply of the sum's width in LUTs (2 CSD digits assumed). */
        int lv = ceil_log2(k), aw = w + lv;
        long lut = 0, t = k;
        for (int j = 1; t > 1; j++) {
            long adders = t / 2;
            t -= adders;
            lut += adders * (w + j);
        }
        int pow2 = (k & (k - 1)) == 0;
        if (!pow2) lut += aw;
        lut += cast_luts(&l->out_spec, aw);
        c->lut = n * lut;
        for (int j = 1; j <= lv; j++) fpga_sched_op(s, t_add(fam, w + j), n * (w + j));
        if (!pow2) fpga_sched_op(s, t_add(fam, aw), n * aw);
    }
    (void)ob;
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = 1;
}

/* ---- BatchNorm (not fused) ------------------------------------------------ */

void fpga_cost_batchnorm(const fpga_layer *l, const fpga_family *fam, int rf, fpga_sched *s, fpga_cost *c) {
    /* nnet_batchnorm.h normalize(): res = x * scale[c] + bias[c] per element,
     * pipelined at II = RF, mul instances capped at ceil(n_in / RF). The
     * scale is a constant: the Dense constant classes apply. */
    const int xb = fixed_width(&l->in_spec), wb = fixed_width(&l->w_spec);
    const int C = l->in_c > 0 ? l->in_c : l->n_in;
    const int dsp_per = fpga_dsps_per_mult(fam, wb, xb);
    const int acc = wb + xb + 1;
    long mults = 0, dsp_units = 0, lut_mult = 0, lut_add = 0, lut_cast = 0;
    double t_mult = 0;
    for (long i = 0; i < l->n_in; i++) {
        int ch = (int)(i % C);
        float sv = l->w[ch];
        int64_t q = fpga_weight_int(&l->w_spec, sv);
        fpga_const_class k = fpga_classify(q);
        int has_b = l->b && fpga_weight_int(&l->b_spec, l->b[ch]) != 0;
        if (has_b) lut_add += acc;
        if (k == FPGA_CONST_ZERO) continue;
        c->nonzero_weights++;
        c->ebops += (double)xb * fixed_bit_span(&l->w_spec, sv);
        int span = fpga_int_span(q), d = fpga_csd_digits(q);
        lut_cast += cast_luts(&l->out_spec, acc);
        if (k == FPGA_CONST_SHIFT) continue;
        long luts = (long)(d - 1) * (xb + span);
        double t = ceil_log2(d) * t_add(fam, xb + span);
        if (k == FPGA_CONST_MULT) mults++;
        if (k == FPGA_CONST_MULT && dsp_per > 0) {
            dsp_units += dsp_per;
            if (fam->t_mul_dsp > t_mult) t_mult = fam->t_mul_dsp;
        } else {
            lut_mult += luts;
            if (t > t_mult) t_mult = t;
        }
    }
    long cap = ceil_div(l->n_in, rf);
    long inst = mults < cap ? mults : cap;
    c->multipliers = inst;
    c->dsp = mults ? ceil_div(dsp_units * inst, mults) : 0;
    c->lut = lut_mult + lut_add + lut_cast;
    long c0 = s->cycles, f0 = s->ff;
    fpga_sched_op(s, t_mult, (long)l->n_in * xb);
    if (lut_add) fpga_sched_op(s, t_add(fam, acc), (long)l->n_in * acc);
    if (rf > 1) s->cycles += rf - 1;
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = rf;
}

/* ---- other activations ---------------------------------------------------- */

void fpga_cost_table_act(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c) {
    /* nnet_activation.h sigmoid() / tanh(): index = x table_size / 16 (8 for
     * tanh) + offset, clamped, into a 1024-entry ap_fixed<18,8> table
     * (hls4ml defaults): one BRAM18, two lookups per BRAM18 (dual port);
     * the Dense(1->64)+sigmoid baseline uses exactly 32 BRAM18 for 64. */
    const long n = l->n_in;
    const int w = fixed_width(&l->in_spec), ob = fixed_width(&l->out_spec), idx = 10;
    c->bram18 = ceil_div(n, 2);
    c->lut = n * (2L * w + ob);  /* index: shift + offset + clamp; result cast */
    long c0 = s->cycles, f0 = s->ff;
    fpga_sched_op(s, t_add(fam, w) + fam->t_relu, n * w);
    sched_bram_read(s, fam, n * idx);
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = 1;
}

void fpga_cost_hard_tanh(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c) {
    /* nnet_activation.h hard_tanh(): y = 0.5 x + 0.5 (a shift and an add),
     * clipped to [0, 1] (two compare-and-selects, ReLU's 2.4 LUT per bit
     * each), 2 y - 1 (a shift and a subtract). */
    const int w = fixed_width(&l->in_spec);
    c->lut = (long)l->n_in * ((long)ceil(2 * 2.4 * w) + 2L * w);
    long c0 = s->cycles, f0 = s->ff;
    fpga_sched_op(s, t_add(fam, w), (long)l->n_in * w);
    fpga_sched_op(s, 2 * fam->t_relu, (long)l->n_in * w);
    fpga_sched_op(s, t_add(fam, w), (long)l->n_in * w);
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = 1;
}

void fpga_cost_leaky_relu(const fpga_layer *l, const fpga_family *fam, fpga_sched *s, fpga_cost *c) {
    /* nnet_activation.h leaky_relu(): x > 0 ? x : alpha x, alpha a
     * constant of param_t (ap_fixed<16,6> by default): compare and select
     * as ReLU, and alpha x as a constant product in LUTs (shift-and-add of
     * its CSD digits; a power of two is wiring). */
    const int w = fixed_width(&l->in_spec);
    fixed_spec ps = l->param_spec;
    if (fixed_width(&ps) < 1) ps = (fixed_spec){1, 5, 10, FX_WRAP, FX_TRN};
    int64_t q = fpga_weight_int(&ps, l->alpha);
    int d = fpga_csd_digits(q), span = fpga_int_span(q);
    long per = (long)ceil(2.4 * w) + (d > 1 ? (long)(d - 1) * (w + span) : 0);
    c->lut = (long)l->n_in * per;
    long c0 = s->cycles, f0 = s->ff;
    double t = fam->t_relu + (d > 1 ? ceil_log2(d) * t_add(fam, w + span) : 0);
    fpga_sched_op(s, t, (long)l->n_in * w);
    c->latency_cycles = (int)(s->cycles - c0);
    c->ff = s->ff - f0;
    c->ii = 1;
}
