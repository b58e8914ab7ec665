/* hls4ml_export.c — `nnlo-c export MODEL --hls4ml DIR`: the Keras pair
 * (model.json, model_weights.h5), hls4ml_config.yml with every layer's
 * types as hls4ml_fpga_layers resolves them (so hls4ml builds what we
 * estimated), and hls4ml's weight text files weights/w<N>.txt, b<N>.txt
 * (values in the weight type's decimal digits, ", "-separated, C order;
 * transposed for the Resource strategy as hls4ml does: Dense (out, in),
 * Conv (Cout, KH, KW, Cin)); a fused BatchNorm is in its layer's w/b files,
 * an unfused one has s<N>.txt / b<N>.txt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/keras_internal.h"
#include "nnlo/hls4ml.h"

/* Writes n values in hls4ml's text format: "%.{f}f" joined by ", ". If
 * transpose, v is (rows, cols) and is written column by column. */
static nl_status write_txt(const char *path, const float *v, int rows, int cols, int transpose,
                           const fixed_spec *s, nl_error *e) {
    sbuf b = {0};
    int digits = s->f > 0 ? s->f : 0;
    long n = (long)rows * cols;
    for (long j = 0; j < n; j++) {
        long src = transpose ? (j % rows) * cols + j / rows : j;
        sbuf_printf(&b, "%s%.*f", j ? ", " : "", digits, (double)v[src]);
    }
    nl_status st = fs_write_atomic(path, b.s ? b.s : "", b.len, e);
    sbuf_free(&b);
    return st;
}

static void yaml_prec(sbuf *b, const char *key, const fixed_spec *s) {
    char t[96];
    sbuf_printf(b, "        %s: %s\n", key, fixed_format_hls(s, t, sizeof t));
}

nl_status hls4ml_export(const keras_net *n, const cfg_fpga *fpga, const char *dir, nl_error *e) {
    const model *m = n->f.m;
    hls4ml_net hn;
    nl_status st = hls4ml_fpga_layers(m, n->f.info, n->softmax ? n->softmax_name : NULL, n->input_name, NULL,
                                      fpga, &hn, e);
    if (st) return st;
    kx_layer *xs = calloc((size_t)KX_MAX_LAYERS(m->n_layers), sizeof *xs);
    if (!xs) { hls4ml_net_free(&hn); return nl_err(e, NL_ERR_NOMEM, "out of memory"); }
    int nx = keras_export_layers(n, xs);
    char path[4096], wdir[4096];
    fs_join(wdir, sizeof wdir, dir, "weights");
    st = fs_mkdir_p(wdir, e);
    sbuf js = {0};
    if (!st) {
        keras_model_json(n, &js);
        sbuf_printf(&js, "\n");
        st = fs_write_atomic(fs_join(path, sizeof path, dir, "model.json"), js.s, js.len, e);
    }
    if (!st) st = keras_save(n, fs_join(path, sizeof path, dir, "model_weights.h5"), e);
    const int resource = hn.fpga.strategy == FPGA_STRATEGY_RESOURCE;
    const char *strat = resource ? "Resource" : "Latency";
    char t[96];
    sbuf y = {0};
    sbuf_printf(&y, "# Written by nnlo-c export. Run from this folder: hls4ml convert -c hls4ml_config.yml\n"
                    "# then hls4ml build -p hls4ml_prj -s (or python: hls4ml.converters.convert_from_config).\n"
                    "KerasJson: model.json\nKerasH5: model_weights.h5\nOutputDir: hls4ml_prj\n"
                    "ProjectName: myproject\nBackend: Vivado\nPart: %s\nClockPeriod: %g\nIOType: io_parallel\n"
                    "HLSConfig:\n  Model:\n    Precision: %s\n    ReuseFactor: %d\n    Strategy: %s\n"
                    "  LayerName:\n",
                hn.fpga.part, hn.fpga.clock_period_ns, fixed_format_hls(&(fixed_spec){1, 5, 10, FX_WRAP, FX_TRN}, t, sizeof t),
                hn.fpga.reuse_factor, strat);
    for (int i = 0; !st && i < nx; i++) {
        const kx_layer *x = &xs[i];
        /* Flatten (a free reshape), Dropout (skipped by hls4ml) and a
         * BatchNorm hls4ml fuses into the layer before have no settings */
        if (x->kind == KX_FLATTEN || x->kind == KX_DROPOUT) continue;
        if (x->layer >= 0 && hn.fused[x->layer]) continue;
        sbuf_printf(&y, "    %s:\n      Precision:\n", x->name);
        if (x->kind == KX_INPUT) { yaml_prec(&y, "result", &hn.input_spec); continue; }
        if (x->kind == KX_SOFTMAX) { yaml_prec(&y, "result", &hn.layers[hn.n - 1].out_spec); continue; }
        if (x->kind == KX_QUANT) { yaml_prec(&y, "result", &m->layers[x->layer].quant); continue; }
        const fpga_layer *f = &hn.layers[hn.of_layer[x->layer]];
        const int kernel = x->kind == KX_DENSE || x->kind == KX_CONV;
        const int fuses = kernel && x->layer + 1 < m->n_layers && hn.fused[x->layer + 1];
        if (kernel) {
            yaml_prec(&y, "weight", &f->w_spec);
            yaml_prec(&y, "bias", &f->b_spec);
        } else if (x->kind == KX_BATCHNORM) {
            yaml_prec(&y, "scale", &f->w_spec);
            yaml_prec(&y, "bias", &f->b_spec);
        }
        /* a layer that absorbs a BatchNorm keeps hls4ml's 'auto' result
         * (FuseBatchNormalization only fuses into an unspecified type) */
        if (fuses) sbuf_printf(&y, "        result: auto\n");
        else yaml_prec(&y, "result", &f->out_spec);
        if (!kernel && x->kind != KX_BATCHNORM) continue;
        if (kernel) sbuf_printf(&y, "        accum: auto\n");
        sbuf_printf(&y, "      ReuseFactor: %d\n      Strategy: %s\n", hn.fpga.reuse_factor, strat);
        if (x->kind == KX_CONV)
            sbuf_printf(&y, "      ParallelizationFactor: %d\n", f->parallelization > 0 ? f->parallelization : 1);
        char nm[64];
        if (kernel) {
            int rows = f->kh > 0 ? f->kh * f->kw * f->in_c : f->n_in, cols = f->kh > 0 ? f->out_c : f->n_out;
            snprintf(nm, sizeof nm, "w%d.txt", x->hls_index);
            st = write_txt(fs_join(path, sizeof path, wdir, nm), f->w, rows, cols, resource, &f->w_spec, e);
            snprintf(nm, sizeof nm, "b%d.txt", x->hls_index);
            if (!st) st = write_txt(fs_join(path, sizeof path, wdir, nm), f->b, 1, cols, 0, &f->b_spec, e);
        } else {  /* hls4ml's BatchNormalization variables: s<N> (scale), b<N> (bias) */
            int C = f->in_c > 0 ? f->in_c : f->n_in;
            snprintf(nm, sizeof nm, "s%d.txt", x->hls_index);
            st = write_txt(fs_join(path, sizeof path, wdir, nm), f->w, 1, C, 0, &f->w_spec, e);
            snprintf(nm, sizeof nm, "b%d.txt", x->hls_index);
            if (!st) st = write_txt(fs_join(path, sizeof path, wdir, nm), f->b, 1, C, 0, &f->b_spec, e);
        }
    }
    if (!st) st = fs_write_atomic(fs_join(path, sizeof path, dir, "hls4ml_config.yml"), y.s, y.len, e);
    sbuf_free(&y);
    sbuf_free(&js);
    free(xs);
    hls4ml_net_free(&hn);
    return st;
}

nl_status hls4ml_export_file(const char *model_path, const cfg_fpga *fpga, const char *dir, nl_error *e) {
    keras_net n;
    nl_status st = keras_net_load(model_path, 1, &n, e);
    if (st) return st;
    st = modelio_shrink_file(&n.f, dir, e); /* structured pruning: dead units leave (DIR/shrink.txt) */
    if (!st) st = hls4ml_export(&n, fpga, dir, e);
    keras_net_free(&n);
    return st;
}
