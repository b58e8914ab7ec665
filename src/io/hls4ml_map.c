/* hls4ml_map.c — the one place that decides what hls4ml builds from an
 * nnlo-c network: fpga_layers for the estimator (estimate, the scan) and
 * the per-layer types the export writes. A QUANT layer becomes the result
 * type of the layer before it (or the input type); every layer's input
 * type is the previous result type; weights are quantized to their type.
 * Conv/pool layers carry their geometry, Flatten/Dropout make no layer, a
 * BatchNorm is fused into the Dense/Conv before it where hls4ml fuses it.
 * Allocates the layer array and the quantized values; never prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/hls4ml.h"

fixed_spec hls4ml_auto_accum(const fixed_spec *in, const fixed_spec *w, const fixed_spec *b, int n_in) {
    int lg = 0;
    while ((1L << lg) < n_in) lg++;                    /* ceil(log2 n_in) */
    int bw = fixed_width(w) + fixed_width(in) + lg;     /* hls4ml 'integer' counts the sign */
    int ints = (w->k + w->i) + (in->k + in->i) + lg;
    int sgn = w->k || in->k;
    int frac = bw - ints;
    int bi = b->k + b->i, bf = b->f;
    int a = ints + (b->k && !sgn), c = bi + (sgn && !b->k);
    ints = (a > c ? a : c) + 1;                          /* bias alignment (infer_no_bias is off) */
    bw = ints + (frac > bf ? frac : bf);
    sgn = sgn || b->k;
    return (fixed_spec){sgn, ints - sgn, bw - ints, FX_WRAP, FX_TRN};
}

void hls4ml_net_free(hls4ml_net *n) {
    if (!n) return;
    free(n->layers);
    free(n->of_layer);
    free(n->values);
    free(n->fused);
    memset(n, 0, sizeof *n);
}

static nl_status strategy_check(const hls4ml_layer_cfg *lc, const cfg_fpga *f, nl_error *e) {
    if (lc && lc->strategy >= 0 && lc->strategy != (int)f->strategy)
        return nl_err(e, NL_ERR_CONFIG, "HLSConfig.LayerName.%s.Strategy differs from the model's Strategy; "
                      "the estimator models one strategy per network (set it in HLSConfig.Model)", lc->name);
    return NL_OK;
}

/* Whether hls4ml fuses BatchNorm layer l into the Dense/Conv before it
 * (bn_fuse.py: the previous layer is Dense/Conv with an unspecified
 * ('auto') result type, and not both it and the BatchNorm quantized: our
 * BatchNorm is never quantized, so the Dense/Conv must not be either). */
static int bn_fuses(const model *m, const modelio_layer_info *info, const hls4ml_config *hc, int l) {
    if (l < 1 || l >= m->n_layers || (int)m->layers[l].kind != LAYER_BATCHNORM || !layer_has_kernel((int)m->layers[l - 1].kind))
        return 0;
    if (info && info[l - 1].quantized) return 0;
    /* no config, or one without LayerName settings and with 'auto'
     * accumulators (what `estimate` uses without a config file): the
     * export's settings, which write result: auto for that layer */
    if (!hc || (hc->n_layers == 0 && hc->model_accum == 0)) return 1;
    const hls4ml_layer_cfg *lc = hls4ml_config_layer(hc, m->layers[l - 1].name);
    return lc && lc->has_result && lc->result_auto;
}

nl_status hls4ml_fpga_layers(const model *m, const modelio_layer_info *info, const char *softmax_name,
                             const char *input_name, const hls4ml_config *hc, const cfg_fpga *base_fpga,
                             hls4ml_net *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    hls4ml_config dflt;
    hls4ml_config_default(&dflt);
    const hls4ml_config *c = hc ? hc : &dflt;
    out->fpga = base_fpga ? *base_fpga : dflt.fpga;
    if (hc) {
        if (hc->has_part) snprintf(out->fpga.part, sizeof out->fpga.part, "%s", hc->fpga.part);
        if (hc->has_clock) out->fpga.clock_period_ns = hc->fpga.clock_period_ns;
        if (hc->has_strategy) out->fpga.strategy = hc->fpga.strategy;
        if (hc->has_reuse) out->fpga.reuse_factor = hc->fpga.reuse_factor;
    }
    const fixed_spec P = c->precision;
    fpga_options_default(&out->opt);  /* AUTO: what the export writes */
    int accum_decided = hc == NULL;

    NL_ASSERT(m->n_layers > 0);
    size_t nl = (size_t)m->n_layers;
    long nvals = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        if (layer_has_kernel((int)L->kind))
            nvals += (long)layer_kernel_rows(L) * layer_kernel_cols(L) + layer_kernel_cols(L);
        else if ((int)L->kind == LAYER_BATCHNORM)
            nvals += 2L * L->out_c;
    }
    out->layers = calloc(nl + 1, sizeof *out->layers);
    out->of_layer = calloc(nl, sizeof *out->of_layer);
    out->fused = calloc(nl, 1);
    out->values = malloc((size_t)(nvals > 0 ? nvals : 1) * sizeof *out->values);
    if (!out->layers || !out->of_layer || !out->fused || !out->values) {
        hls4ml_net_free(out);
        return nl_err(e, NL_ERR_NOMEM, "out of memory mapping %d layers", m->n_layers);
    }
    nl_status st = NL_OK;
    fixed_spec cur = P;
    const hls4ml_layer_cfg *ic = hls4ml_config_layer(hc, input_name);
    if (ic && ic->has_result && !ic->result_auto) cur = ic->result;
    long vo = 0;
    for (int l = 0; !st && l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        const int kind = (int)L->kind;
        const hls4ml_layer_cfg *lc = hls4ml_config_layer(hc, L->name);
        out->of_layer[l] = -1;
        if ((st = strategy_check(lc, &out->fpga, e))) break;
        if (kind == LAYER_QUANT) {
            fixed_spec s = L->quant;
            if (lc && lc->has_result && !lc->result_auto) s = lc->result;
            if (out->n > 0) out->layers[out->n - 1].out_spec = s;
            cur = s;
            continue;
        }
        if (kind == LAYER_FLATTEN || kind == LAYER_DROPOUT) continue;  /* a free reshape; removed */
        if (out->fused[l]) { out->of_layer[l] = out->n - 1; continue; }
        fpga_layer *f = &out->layers[out->n];
        out->of_layer[l] = out->n++;
        snprintf(f->name, sizeof f->name, "%s", L->name);
        f->n_in = L->in_size;
        f->n_out = L->out_size;
        f->in_spec = cur;
        f->out_spec = P;
        f->w_spec = f->b_spec = P;
        f->in_h = L->in_h; f->in_w = L->in_w; f->in_c = L->in_c;
        f->out_h = L->out_h; f->out_w = L->out_w; f->out_c = L->out_c;
        if (lc && lc->reuse_factor > 0) f->reuse_factor = lc->reuse_factor;
        if (!layer_has_kernel(kind) && kind != LAYER_BATCHNORM) {
            switch (kind) {
            case LAYER_RELU: f->kind = FPGA_LAYER_RELU; break;
            case LAYER_TANH: f->kind = FPGA_LAYER_TANH; break;
            case LAYER_SIGMOID: f->kind = FPGA_LAYER_SIGMOID; break;
            case LAYER_HARD_TANH: f->kind = FPGA_LAYER_HARD_TANH; break;
            case LAYER_LEAKY_RELU: f->kind = FPGA_LAYER_LEAKY_RELU; f->alpha = L->alpha; f->param_spec = P; break;
            case LAYER_MAXPOOL1D: case LAYER_MAXPOOL2D:
            case LAYER_AVGPOOL1D: case LAYER_AVGPOOL2D:
                f->kind = kind == LAYER_MAXPOOL1D || kind == LAYER_MAXPOOL2D ? FPGA_LAYER_MAXPOOL : FPGA_LAYER_AVGPOOL;
                f->kh = L->geom.kh;
                f->kw = L->geom.kw;
                break;
            default:
                st = nl_err(e, NL_ERR_INVALID, "layer '%s': kind %d (%s) has no hls4ml mapping", L->name, kind,
                            layer_kind_name(kind) ? layer_kind_name(kind) : "?");
                continue;
            }
            if (lc && lc->has_result && !lc->result_auto) f->out_spec = lc->result;
            else if (lc && lc->has_result) f->out_spec = cur;  /* 'auto' result of an activation: its input */
            cur = f->out_spec;
            continue;
        }
        if (kind == LAYER_BATCHNORM) {
            /* hls4ml's BatchNormalization: scale = gamma / sqrt(var + eps),
             * bias = beta - mean scale (converters/keras/core.py), per channel */
            int C = L->out_c;
            float *sc = out->values + vo, *bi = sc + C;
            const float *gamma = m->weff + L->w_off, *beta = m->weff + L->b_off;
            const float *mean = m->state + L->s_off, *var = mean + C;
            for (int ch = 0; ch < C; ch++) {
                double s = gamma[ch] / sqrt((double)var[ch] + L->epsilon);
                sc[ch] = (float)s;
                bi[ch] = (float)(beta[ch] - mean[ch] * s);
            }
            f->kind = FPGA_LAYER_BATCHNORM;
            if (lc && lc->has_w && !lc->w_auto) f->w_spec = lc->w;
            if (lc && lc->has_b && !lc->b_auto) f->b_spec = lc->b;
            if (lc && lc->has_result && !lc->result_auto) f->out_spec = lc->result;
            fixed_quantize_array(&f->w_spec, sc, sc, NULL, C);
            fixed_quantize_array(&f->b_spec, bi, bi, NULL, C);
            f->w = sc;
            f->b = bi;
            vo += 2L * C;
            cur = f->out_spec;
            continue;
        }
        /* Dense / Conv1D / Conv2D */
        f->kind = kind == LAYER_DENSE ? FPGA_LAYER_DENSE : kind == LAYER_CONV1D ? FPGA_LAYER_CONV1D : FPGA_LAYER_CONV2D;
        if (kind != LAYER_DENSE) {
            f->kh = L->geom.kh;
            f->kw = L->geom.kw;
            f->parallelization = lc && lc->parallelization > 0 ? lc->parallelization : 1;
        }
        int q = info && info[l].quantized;
        f->w_spec = q ? info[l].w : P;
        f->b_spec = q ? info[l].b : P;
        if (q) f->out_spec = info[l].out;
        if (lc && lc->has_w && !lc->w_auto) f->w_spec = lc->w;
        if (lc && lc->has_b && !lc->b_auto) f->b_spec = lc->b;
        int rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
        int fuse = bn_fuses(m, info, hc, l + 1);
        if (!accum_decided) {
            /* hls4ml: the layer's accum, else the model's, else the model precision */
            accum_decided = 1;
            if (lc && lc->has_accum) {
                out->opt.accum = lc->accum_auto ? FPGA_ACCUM_AUTO : FPGA_ACCUM_FIXED;
                out->opt.accum_spec = lc->accum;
            } else if (c->model_accum >= 0) {
                out->opt.accum = c->model_accum ? FPGA_ACCUM_FIXED : FPGA_ACCUM_AUTO;
                out->opt.accum_spec = c->model_accum_spec;
            } else {
                out->opt.accum = FPGA_ACCUM_FIXED;
                out->opt.accum_spec = P;
            }
        }
        long nw = (long)rows * cols;
        float *w = out->values + vo, *b = w + nw;
        if (fuse) {
            st = model_fold_batchnorm(m, l + 1, w, b, e);
            if (st) break;
            out->fused[l + 1] = 1;
            fixed_quantize_array(&f->w_spec, w, w, NULL, nw);
            fixed_quantize_array(&f->b_spec, b, b, NULL, cols);
        } else {
            fixed_quantize_array(&f->w_spec, m->weff + L->w_off, w, NULL, nw);
            if (L->b_off >= 0) fixed_quantize_array(&f->b_spec, m->weff + L->b_off, b, NULL, cols);
            else memset(b, 0, (size_t)cols * sizeof *b);
        }
        vo += nw + cols;
        f->w = w;
        f->b = b;
        /* the fused layer's result is 'auto' (hls4ml infers the accumulator
         * type); a result type configured for the BatchNorm is lost with it */
        if (fuse) f->out_spec = hls4ml_auto_accum(&f->in_spec, &f->w_spec, &f->b_spec, rows);
        else if (lc && lc->has_result)
            f->out_spec = lc->result_auto ? hls4ml_auto_accum(&f->in_spec, &f->w_spec, &f->b_spec, rows) : lc->result;
        cur = f->out_spec;
    }
    if (!st && softmax_name) {
        fpga_layer *f = &out->layers[out->n++];
        f->kind = FPGA_LAYER_SOFTMAX;
        snprintf(f->name, sizeof f->name, "%s", softmax_name);
        f->n_in = f->n_out = m->out_size;
        f->in_spec = cur;
        f->w_spec = f->b_spec = f->out_spec = P;
        const hls4ml_layer_cfg *lc = hls4ml_config_layer(hc, softmax_name);
        if (lc && lc->has_result && !lc->result_auto) f->out_spec = lc->result;
        if (lc && lc->reuse_factor > 0) f->reuse_factor = lc->reuse_factor;
        st = strategy_check(lc, &out->fpga, e);
    }
    if (st) { hls4ml_net_free(out); return st; }
    out->input_spec = out->n > 0 ? out->layers[0].in_spec : cur;
    return NL_OK;
}
