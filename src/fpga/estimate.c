/* estimate.c — fpga_estimate: validates the network description, applies
 * hls4ml's reuse-factor rules, sums the per-layer costs (costs.c) and
 * reports utilisation of the chosen part. It does not read files or YAML
 * and never prints; errors name the layer and the fix. Invariant: on
 * success report.layers has exactly n entries, in order, and report.total
 * is their sum (latency: sum of cycles, II: the largest layer II). */
#include <stdlib.h>
#include <string.h>

#include "fpga/fpga_internal.h"

#define DEFAULT_PART "xcu250-figd2104-2L-e"
#define DEFAULT_CLOCK_NS 5.0

void fpga_options_default(fpga_options *o) {
    memset(o, 0, sizeof *o);
    o->accum = FPGA_ACCUM_AUTO;
    /* hls4ml's model-wide default precision: ap_fixed<16,6> (k=1, i=5, f=10). */
    o->accum_spec.k = 1;
    o->accum_spec.i = 5;
    o->accum_spec.f = 10;
    o->accum_spec.overflow = FX_WRAP;
    o->accum_spec.round = FX_TRN;
}

int fpga_reuse_factor_valid(int n_in, int n_out, int rf) {
    if (n_in < 1 || n_out < 1 || rf < 1) return 0;
    long n = (long)n_in * n_out;
    long multfactor = rf < n_in ? rf : n_in;
    long mult_limit = (n + multfactor - 1) / multfactor;
    int ok = (mult_limit % n_out == 0) || rf >= n_in; /* functional correctness */
    ok = ok && (rf % n_in == 0 || rf < n_in);
    ok = ok && (n % rf == 0);                          /* QoR and execution time */
    return ok;
}

int fpga_closest_reuse_factor(int n_in, int n_out, int rf) {
    long n = (long)n_in * n_out;
    if (n < 1) return 1;
    if (rf < 1) rf = 1;
    if (fpga_reuse_factor_valid(n_in, n_out, rf)) return rf;
    /* The largest valid value below rf and the smallest above; hls4ml's
     * bisect picks the one closer to rf, the smaller on a tie, and clamps to
     * the ends of the list (rf = n_in n_out is always valid). */
    long before = 0, after = 0;
    for (long r = rf - 1; r >= 1; r--)
        if (fpga_reuse_factor_valid(n_in, n_out, (int)r)) { before = r; break; }
    for (long r = rf + 1; r <= n; r++)
        if (fpga_reuse_factor_valid(n_in, n_out, (int)r)) { after = r; break; }
    if (!after) return (int)(before ? before : n);
    if (!before) return (int)after;
    return (int)(after - rf < rf - before ? after : before);
}

int fpga_parallelization_valid(long n_pixels, int pf) {
    if (n_pixels < 1 || pf < 1) return 0;
    return pf == n_pixels || (pf <= n_pixels / 2 && n_pixels % pf == 0);
}

int fpga_closest_parallelization(long n_pixels, int pf) {
    if (n_pixels < 1) return 1;
    if (pf < 1) pf = 1;
    if (fpga_parallelization_valid(n_pixels, pf)) return pf;
    if (pf > n_pixels) return (int)n_pixels;
    /* the list is sorted and always holds 1 and n_pixels: bisect as
     * get_closest_reuse_factor does, ties to the smaller */
    long before = 1, after = n_pixels;
    for (long r = pf - 1; r >= 1; r--)
        if (fpga_parallelization_valid(n_pixels, (int)r)) { before = r; break; }
    for (long r = pf + 1; r <= n_pixels; r++)
        if (fpga_parallelization_valid(n_pixels, (int)r)) { after = r; break; }
    return (int)(after - pf < pf - before ? after : before);
}

const char *fpga_layer_kind_name(fpga_layer_kind k) {
    static const char *const names[] = {"dense", "relu", "softmax", "conv1d", "conv2d", "maxpool",
                                        "avgpool", "batchnorm", "tanh", "sigmoid", "hard_tanh",
                                        "leaky_relu"};
    return (int)k >= 0 && (int)k < (int)(sizeof names / sizeof names[0]) ? names[k] : "?";
}

void fpga_report_free(fpga_report *r) {
    if (!r) return;
    free(r->layers);
    r->layers = NULL;
    r->n_layers = 0;
}

static int spec_ok(const fixed_spec *s) { return fixed_width(s) >= 1 && fixed_width(s) <= 64; }

static nl_status check_layer(const fpga_layer *l, int idx, const fpga_layer *prev, nl_error *e) {
    const char *nm = l->name[0] ? l->name : "(unnamed)";
    if (l->n_in < 1 || l->n_out < 1)
        return nl_err(e, NL_ERR_INVALID, "fpga: layer %d '%s': n_in=%d, n_out=%d; both must be >= 1",
                      idx, nm, l->n_in, l->n_out);
    if (!spec_ok(&l->in_spec))
        return nl_err(e, NL_ERR_INVALID,
                      "fpga: layer %d '%s': input format has width %d; give the layer's input "
                      "precision (1..64 bits)", idx, nm, fixed_width(&l->in_spec));
    if (prev && prev->n_out != l->n_in)
        return nl_err(e, NL_ERR_INVALID,
                      "fpga: layer %d '%s' takes %d inputs but layer %d '%s' gives %d", idx, nm,
                      l->n_in, idx - 1, prev->name[0] ? prev->name : "(unnamed)", prev->n_out);
    switch (l->kind) {
    case FPGA_LAYER_DENSE:
        if (!l->w)
            return nl_err(e, NL_ERR_INVALID, "fpga: dense layer %d '%s' has no weights", idx, nm);
        if (!spec_ok(&l->w_spec) || !spec_ok(&l->out_spec) || (l->b && !spec_ok(&l->b_spec)))
            return nl_err(e, NL_ERR_INVALID,
                          "fpga: dense layer %d '%s': weight/bias/result format width must be "
                          "1..64 bits (weights %d, result %d)", idx, nm, fixed_width(&l->w_spec),
                          fixed_width(&l->out_spec));
        break;
    case FPGA_LAYER_CONV1D:
    case FPGA_LAYER_CONV2D:
    case FPGA_LAYER_MAXPOOL:
    case FPGA_LAYER_AVGPOOL: {
        int conv = l->kind == FPGA_LAYER_CONV1D || l->kind == FPGA_LAYER_CONV2D;
        if (l->in_h < 1 || l->in_w < 1 || l->in_c < 1 || l->out_h < 1 || l->out_w < 1 || l->out_c < 1 ||
            l->kh < 1 || l->kw < 1)
            return nl_err(e, NL_ERR_INVALID,
                          "fpga: %s layer %d '%s': give the input (%d, %d, %d), output (%d, %d, %d) and "
                          "window (%d, %d) shapes, all >= 1", fpga_layer_kind_name(l->kind), idx, nm,
                          l->in_h, l->in_w, l->in_c, l->out_h, l->out_w, l->out_c, l->kh, l->kw);
        if ((long)l->in_h * l->in_w * l->in_c != l->n_in || (long)l->out_h * l->out_w * l->out_c != l->n_out)
            return nl_err(e, NL_ERR_INVALID,
                          "fpga: %s layer %d '%s': n_in=%d, n_out=%d do not match the shapes (%d, %d, %d) -> "
                          "(%d, %d, %d)", fpga_layer_kind_name(l->kind), idx, nm, l->n_in, l->n_out, l->in_h,
                          l->in_w, l->in_c, l->out_h, l->out_w, l->out_c);
        if (!conv && l->in_c != l->out_c)
            return nl_err(e, NL_ERR_INVALID, "fpga: pooling layer %d '%s' changes the channels (%d -> %d)", idx,
                          nm, l->in_c, l->out_c);
        if (conv && (!l->w || !spec_ok(&l->w_spec) || !spec_ok(&l->out_spec) || (l->b && !spec_ok(&l->b_spec))))
            return nl_err(e, NL_ERR_INVALID,
                          "fpga: conv layer %d '%s' needs weights and weight/bias/result formats of 1..64 bits",
                          idx, nm);
        if (l->parallelization < 0)
            return nl_err(e, NL_ERR_INVALID, "fpga: layer %d '%s': ParallelizationFactor %d; use >= 1 (0 = 1)",
                          idx, nm, l->parallelization);
        break;
    }
    case FPGA_LAYER_BATCHNORM:
        if (l->n_in != l->n_out || !l->w || !spec_ok(&l->w_spec) || !spec_ok(&l->out_spec) ||
            (l->b && !spec_ok(&l->b_spec)))
            return nl_err(e, NL_ERR_INVALID,
                          "fpga: batchnorm layer %d '%s' needs n_in == n_out, a scale array and scale/bias/"
                          "result formats of 1..64 bits", idx, nm);
        if (l->in_c > 0 && l->n_in % l->in_c != 0)
            return nl_err(e, NL_ERR_INVALID, "fpga: batchnorm layer %d '%s': %d channels do not divide %d inputs",
                          idx, nm, l->in_c, l->n_in);
        break;
    case FPGA_LAYER_TANH:
    case FPGA_LAYER_SIGMOID:
    case FPGA_LAYER_HARD_TANH:
    case FPGA_LAYER_LEAKY_RELU:
    case FPGA_LAYER_RELU:
    case FPGA_LAYER_SOFTMAX:
        if (l->n_in != l->n_out)
            return nl_err(e, NL_ERR_INVALID, "fpga: activation layer %d '%s' has n_in=%d != n_out=%d",
                          idx, nm, l->n_in, l->n_out);
        if (l->kind == FPGA_LAYER_SOFTMAX && !spec_ok(&l->out_spec))
            return nl_err(e, NL_ERR_INVALID, "fpga: softmax layer %d '%s': result format width %d",
                          idx, nm, fixed_width(&l->out_spec));
        break;
    default:
        return nl_err(e, NL_ERR_INVALID, "fpga: layer %d '%s' has unknown kind %d", idx, nm,
                      (int)l->kind);
    }
    if (l->reuse_factor < 0)
        return nl_err(e, NL_ERR_INVALID, "fpga: layer %d '%s': reuse factor %d; use >= 1 (0 = global)",
                      idx, nm, l->reuse_factor);
    return NL_OK;
}

static double pct(long used, long avail) { return avail > 0 ? 100.0 * (double)used / (double)avail : 0; }

nl_status fpga_estimate_ex(const fpga_layer *layers, int n, const cfg_fpga *cfg,
                           const fpga_options *opt, fpga_report *out, nl_error *e) {
    if (!out) return nl_err(e, NL_ERR_INVALID, "fpga_estimate: no report to fill");
    memset(out, 0, sizeof *out);
    if (!cfg) return nl_err(e, NL_ERR_INVALID, "fpga_estimate: no fpga configuration");
    if (n < 0 || (n > 0 && !layers))
        return nl_err(e, NL_ERR_INVALID, "fpga_estimate: %d layers but no layer array", n);
    fpga_options defaults;
    if (!opt) { fpga_options_default(&defaults); opt = &defaults; }

    const char *pname = cfg->part[0] ? cfg->part : DEFAULT_PART;
    const fpga_part *part = fpga_part_find(pname);
    if (!part) {
        const fpga_part *s = fpga_part_suggest(pname);
        return nl_err(e, NL_ERR_CONFIG,
                      "fpga.part '%s' is not in the part table; did you mean '%s'? "
                      "(docs/fpga.md lists the part table)", pname, s ? s->name : "?");
    }
    double clock = cfg->clock_period_ns > 0 ? cfg->clock_period_ns : DEFAULT_CLOCK_NS;
    int grf = cfg->reuse_factor > 0 ? cfg->reuse_factor : 1;
    if (cfg->strategy != FPGA_STRATEGY_LATENCY && cfg->strategy != FPGA_STRATEGY_RESOURCE)
        return nl_err(e, NL_ERR_CONFIG, "fpga.strategy %d is neither latency nor resource",
                      (int)cfg->strategy);
    for (int i = 0; i < n; i++) {
        nl_status st = check_layer(&layers[i], i, i ? &layers[i - 1] : NULL, e);
        if (st != NL_OK) return st;
    }

    out->layers = n ? calloc((size_t)n, sizeof *out->layers) : NULL;
    if (n && !out->layers) return nl_err(e, NL_ERR_NOMEM, "fpga_estimate: out of memory (%d layers)", n);
    out->n_layers = n;
    strncpy(out->part, part->name, sizeof out->part - 1);
    strncpy(out->total.name, "total", sizeof out->total.name - 1);

    const fpga_family *fam = fpga_family_of(part);
    fpga_sched s;
    fpga_sched_init(&s, clock);
    fpga_cost *t = &out->total;
    t->ii = 1;
    for (int i = 0; i < n; i++) {
        const fpga_layer *l = &layers[i];
        fpga_cost *c = &out->layers[i];
        memcpy(c->name, l->name, sizeof c->name);
        c->name[sizeof c->name - 1] = '\0';
        int rf = l->reuse_factor > 0 ? l->reuse_factor : grf;
        switch (l->kind) {
        case FPGA_LAYER_DENSE:
            if (cfg->strategy == FPGA_STRATEGY_RESOURCE) {
                /* hls4ml rounds the RF to a valid one (set_closest_reuse_factor);
                 * at RF 1 the Resource strategy is like Latency
                 * (vivado_objectives.py). */
                rf = fpga_closest_reuse_factor(l->n_in, l->n_out, rf);
                if (rf > 1) fpga_cost_dense_resource(l, fam, opt, rf, &s, c);
                else fpga_cost_dense_latency(l, fam, opt, 1, &s, c);
            } else {
                long nw = (long)l->n_in * l->n_out;
                if (rf > nw) rf = (int)nw; /* more reuse than products is pointless */
                fpga_cost_dense_latency(l, fam, opt, rf, &s, c);
            }
            break;
        case FPGA_LAYER_CONV1D:
        case FPGA_LAYER_CONV2D: {
            int rows = l->kh * l->kw * l->in_c, resource = 0;
            long pixels = (long)l->out_h * l->out_w;
            int pf = fpga_closest_parallelization(pixels, l->parallelization > 0 ? l->parallelization : 1);
            if (cfg->strategy == FPGA_STRATEGY_RESOURCE) {
                /* get_layer_mult_size: the kernel matrix (kh kw Cin, Cout) */
                rf = fpga_closest_reuse_factor(rows, l->out_c, rf);
                resource = rf > 1;
            } else {
                long nw = (long)rows * l->out_c;
                if (rf > nw) rf = (int)nw;
            }
            fpga_cost_conv(l, fam, opt, rf, pf, resource, &s, c);
            break;
        }
        case FPGA_LAYER_MAXPOOL:
        case FPGA_LAYER_AVGPOOL: fpga_cost_pool(l, fam, &s, c); break;
        case FPGA_LAYER_BATCHNORM:
            if (rf > l->n_in) rf = l->n_in;
            fpga_cost_batchnorm(l, fam, rf, &s, c);
            break;
        case FPGA_LAYER_TANH:
        case FPGA_LAYER_SIGMOID: fpga_cost_table_act(l, fam, &s, c); break;
        case FPGA_LAYER_HARD_TANH: fpga_cost_hard_tanh(l, fam, &s, c); break;
        case FPGA_LAYER_LEAKY_RELU: fpga_cost_leaky_relu(l, fam, &s, c); break;
        case FPGA_LAYER_RELU: fpga_cost_relu(l, fam, &s, c); break;
        case FPGA_LAYER_SOFTMAX: fpga_cost_softmax(l, fam, &s, c); break;
        }
        t->dsp += c->dsp;
        t->lut += c->lut;
        t->ff += c->ff;
        t->bram18 += c->bram18;
        t->multipliers += c->multipliers;
        t->nonzero_weights += c->nonzero_weights;
        t->latency_cycles += c->latency_cycles;
        t->ebops += c->ebops;
        if (c->ii > t->ii) t->ii = c->ii;
    }
    out->latency_ns = t->latency_cycles * clock;
    out->util_lut = pct(t->lut, part->lut);
    out->util_ff = pct(t->ff, part->ff);
    out->util_dsp = pct(t->dsp, part->dsp);
    out->util_bram = pct(t->bram18, part->bram18);
    out->fits = out->util_lut <= 100.0 && out->util_ff <= 100.0 && out->util_dsp <= 100.0 &&
                out->util_bram <= 100.0;
    return NL_OK;
}

nl_status fpga_estimate(const fpga_layer *layers, int n, const cfg_fpga *cfg, fpga_report *out,
                        nl_error *e) {
    return fpga_estimate_ex(layers, n, cfg, NULL, out, e);
}
