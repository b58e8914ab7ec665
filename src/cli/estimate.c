/* estimate.c — `nnlo-c estimate`, `import` and `export`: argument parsing
 * and printing around keras_net_load, hls4ml_config_load,
 * hls4ml_fpga_layers + fpga_estimate_ex, keras_net_save_nnlo and
 * hls4ml_export. Flags override the hls4ml config file, which overrides
 * the `fpga:` section of the trial that wrote the model (nnlo-c files from
 * a scan or `train`), which overrides hls4ml's defaults. Prints to stdout
 * (results) and stderr (errors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cli/cli_internal.h"
#include "nnlo/hls4ml.h"
#include "nnlo/json.h"

typedef struct {
    const char *part, *clock, *strategy, *reuse, *precision;
} fpga_flags;

/* Consumes one of the shared FPGA flags at argv[*i]; 1 if it was one. */
static int take_flag(int argc, char **argv, int *i, fpga_flags *f) {
    const char *a = argv[*i];
    const char **dst = !strcmp(a, "--part") ? &f->part : !strcmp(a, "--clock-ns") ? &f->clock
                     : !strcmp(a, "--strategy") ? &f->strategy : !strcmp(a, "--reuse-factor") ? &f->reuse
                     : !strcmp(a, "--precision") ? &f->precision : NULL;
    if (!dst || *i + 1 >= argc) return 0;
    *dst = argv[++*i];
    return 1;
}

/* Applies the flags over c; returns 0 or prints why not and returns 2. */
static int apply_flags(const char *cmd, const fpga_flags *f, hls4ml_config *c) {
    if (f->part) {
        if (strlen(f->part) >= sizeof c->fpga.part) { fprintf(stderr, "nnlo-c %s: --part is too long\n", cmd); return 2; }
        snprintf(c->fpga.part, sizeof c->fpga.part, "%s", f->part);
        c->has_part = 1;
    }
    if (f->clock) {
        char *end;
        double p = strtod(f->clock, &end);
        if (end == f->clock || *end || !(p > 0 && p < 1000)) {
            fprintf(stderr, "nnlo-c %s: --clock-ns '%s' must be a period in ns (> 0)\n", cmd, f->clock);
            return 2;
        }
        c->fpga.clock_period_ns = p;
        c->has_clock = 1;
    }
    if (f->strategy) {
        if (!strcasecmp(f->strategy, "latency")) c->fpga.strategy = FPGA_STRATEGY_LATENCY;
        else if (!strcasecmp(f->strategy, "resource")) c->fpga.strategy = FPGA_STRATEGY_RESOURCE;
        else { fprintf(stderr, "nnlo-c %s: --strategy must be latency or resource\n", cmd); return 2; }
        c->has_strategy = 1;
    }
    if (f->reuse) {
        char *end;
        long r = strtol(f->reuse, &end, 10);
        if (end == f->reuse || *end || r < 1 || r > 1000000) {
            fprintf(stderr, "nnlo-c %s: --reuse-factor '%s' must be an integer >= 1\n", cmd, f->reuse);
            return 2;
        }
        c->fpga.reuse_factor = (int)r;
        c->has_reuse = 1;
    }
    if (f->precision) {
        fixed_spec s;
        if (hls4ml_parse_precision(f->precision, &s) != 0) {
            fprintf(stderr, "nnlo-c %s: --precision '%s' is not a type such as 'ap_fixed<16,6>'\n", cmd, f->precision);
            return 2;
        }
        c->precision = s;
        c->has_precision = 1;
    }
    return 0;
}

/* The `fpga:` section of the trial config stored in an nnlo-c model file
 * (root attribute trial_yaml). Returns 1 and fills *out when there is one;
 * 0 for Keras files and models without it; a config that no longer parses
 * is warned about (naming the file) and ignored. */
static int trial_fpga(const char *cmd, const char *path, const char *trial_yaml, cfg_fpga *out) {
    if (!trial_yaml) return 0;
    trial_config tc;
    nl_error e = {0};
    if (config_parse_trial(trial_yaml, path, NULL, &tc, &e) != NL_OK) {
        fprintf(stderr, "nnlo-c %s: warning: %s: its trial config does not parse (%s); using hls4ml's "
                        "FPGA defaults\n", cmd, path, e.msg);
        return 0;
    }
    *out = tc.fpga;
    config_free_trial(&tc);
    return 1;
}

static void cost_json(sbuf *b, const fpga_cost *c) {
    sbuf_printf(b, "\"dsp\": %ld, \"lut\": %ld, \"ff\": %ld, \"bram18\": %ld, \"latency_cycles\": %d, \"ii\": %d, "
                   "\"multipliers\": %ld, \"nonzero_weights\": %ld, \"ebops\": ",
                c->dsp, c->lut, c->ff, c->bram18, c->latency_cycles, c->ii, c->multipliers, c->nonzero_weights);
    json_write_num(b, c->ebops);
}

static void print_json(const char *model, const hls4ml_net *hn, const fpga_report *r) {
    sbuf b = {0};
    char t[96];
    sbuf_printf(&b, "{\"model\": ");
    json_write_str(&b, model);
    sbuf_printf(&b, ", \"part\": ");
    json_write_str(&b, r->part);
    sbuf_printf(&b, ", \"clock_ns\": ");
    json_write_num(&b, hn->fpga.clock_period_ns);
    sbuf_printf(&b, ", \"strategy\": \"%s\", \"reuse_factor\": %d, \"accumulator\": ",
                hn->fpga.strategy == FPGA_STRATEGY_RESOURCE ? "resource" : "latency", hn->fpga.reuse_factor);
    json_write_str(&b, hn->opt.accum == FPGA_ACCUM_AUTO ? "auto" : fixed_format_hls(&hn->opt.accum_spec, t, sizeof t));
    sbuf_printf(&b, ",\n \"total\": {");
    cost_json(&b, &r->total);
    sbuf_printf(&b, ", \"latency_ns\": ");
    json_write_num(&b, r->latency_ns);
    sbuf_printf(&b, "},\n \"utilisation\": {\"lut\": ");
    json_write_num(&b, r->util_lut);
    sbuf_printf(&b, ", \"ff\": ");
    json_write_num(&b, r->util_ff);
    sbuf_printf(&b, ", \"dsp\": ");
    json_write_num(&b, r->util_dsp);
    sbuf_printf(&b, ", \"bram18\": ");
    json_write_num(&b, r->util_bram);
    sbuf_printf(&b, "},\n \"fits\": %s,\n \"layers\": [", r->fits ? "true" : "false");
    for (int i = 0; i < r->n_layers; i++) {
        const fpga_layer *L = &hn->layers[i];
        sbuf_printf(&b, "%s\n  {\"name\": ", i ? "," : "");
        json_write_str(&b, r->layers[i].name);
        sbuf_printf(&b, ", \"kind\": \"%s\", \"n_in\": %d, \"n_out\": %d, ", fpga_layer_kind_name(L->kind), L->n_in, L->n_out);
        cost_json(&b, &r->layers[i]);
        sbuf_printf(&b, ", \"input\": \"%s\"", fixed_format_hls(&L->in_spec, t, sizeof t));
        sbuf_printf(&b, ", \"result\": \"%s\"", fixed_format_hls(&L->out_spec, t, sizeof t));
        if (L->kind == FPGA_LAYER_DENSE || L->kind == FPGA_LAYER_CONV1D || L->kind == FPGA_LAYER_CONV2D ||
            L->kind == FPGA_LAYER_BATCHNORM) {
            sbuf_printf(&b, ", \"%s\": \"%s\"", L->kind == FPGA_LAYER_BATCHNORM ? "scale" : "weight",
                        fixed_format_hls(&L->w_spec, t, sizeof t));
            sbuf_printf(&b, ", \"bias\": \"%s\"", fixed_format_hls(&L->b_spec, t, sizeof t));
        }
        sbuf_printf(&b, "}");
    }
    sbuf_printf(&b, "\n]}\n");
    fputs(b.s, stdout);
    sbuf_free(&b);
}

static void print_table(const char *model, const hls4ml_net *hn, const fpga_report *r) {
    char t[96];
    printf("%s on %s at %g ns, %s strategy, reuse factor %d, accumulator %s\n\n", model, r->part,
           hn->fpga.clock_period_ns, hn->fpga.strategy == FPGA_STRATEGY_RESOURCE ? "Resource" : "Latency",
           hn->fpga.reuse_factor, hn->opt.accum == FPGA_ACCUM_AUTO ? "auto" : fixed_format_hls(&hn->opt.accum_spec, t, sizeof t));
    printf("%-20s %-7s %9s %7s %9s %9s %7s %8s %4s %11s %12s\n", "layer", "kind", "in->out", "DSP", "LUT", "FF",
           "BRAM18", "latency", "II", "multipliers", "EBOPs");
    for (int i = 0; i < r->n_layers; i++) {
        const fpga_cost *c = &r->layers[i];
        char io[32];
        snprintf(io, sizeof io, "%d->%d", hn->layers[i].n_in, hn->layers[i].n_out);
        printf("%-20.20s %-7s %9s %7ld %9ld %9ld %7ld %8d %4d %11ld %12.0f\n", c->name, fpga_layer_kind_name(hn->layers[i].kind),
               io, c->dsp, c->lut, c->ff, c->bram18, c->latency_cycles, c->ii, c->multipliers, c->ebops);
    }
    const fpga_cost *c = &r->total;
    printf("%-20s %-7s %9s %7ld %9ld %9ld %7ld %8d %4d %11ld %12.0f\n", "total", "", "", c->dsp, c->lut, c->ff,
           c->bram18, c->latency_cycles, c->ii, c->multipliers, c->ebops);
    printf("\nlatency %d cycles = %.1f ns; utilisation of %s: DSP %.2f %%, LUT %.2f %%, FF %.2f %%, BRAM18 %.2f %%; %s\n",
           c->latency_cycles, r->latency_ns, r->part, r->util_dsp, r->util_lut, r->util_ff, r->util_bram,
           r->fits ? "fits" : "DOES NOT FIT");
}

int cmd_estimate(int argc, char **argv) {
    const char *model = NULL, *cfg = NULL;
    int as_json = 0;
    fpga_flags fl = {0};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--hls4ml-config") && i + 1 < argc) cfg = argv[++i];
        else if (!strcmp(argv[i], "--json")) as_json = 1;
        else if (take_flag(argc, argv, &i, &fl)) continue;
        else if (argv[i][0] == '-') { fprintf(stderr, "nnlo-c estimate: unknown option %s (or it lacks its value)\n", argv[i]); return 2; }
        else if (!model) model = argv[i];
        else { fprintf(stderr, "nnlo-c estimate: one model at a time (got %s and %s)\n", model, argv[i]); return 2; }
    }
    if (!model) {
        fprintf(stderr, "usage: nnlo-c estimate MODEL [--hls4ml-config FILE] [--part NAME] [--clock-ns NS] "
                        "[--strategy latency|resource] [--reuse-factor N] [--precision 'ap_fixed<W,I>'] [--json]\n");
        return 2;
    }
    nl_error e = {0};
    hls4ml_config hc;
    if (cfg) {
        if (hls4ml_config_load(cfg, &hc, &e)) { fprintf(stderr, "nnlo-c: %s\n", e.msg); return 2; }
    } else {
        hls4ml_config_default(&hc);
        hc.model_accum = 0;  /* accumulators 'auto', as the export writes them */
    }
    int rc = apply_flags("estimate", &fl, &hc);
    if (rc) { hls4ml_config_free(&hc); return rc; }
    keras_net net;
    if (keras_net_load(model, 1, &net, &e)) {
        fprintf(stderr, "nnlo-c: %s\n", e.msg);
        hls4ml_config_free(&hc);
        return e.code == NL_ERR_IO ? 1 : 2;
    }
    /* What the export builds: structurally dead units removed (exact). */
    if (modelio_shrink_file(&net.f, NULL, &e)) {
        fprintf(stderr, "nnlo-c: %s: %s\n", model, e.msg);
        keras_net_free(&net);
        hls4ml_config_free(&hc);
        return 1;
    }
    cfg_fpga from_trial;
    int have_trial = !net.from_keras && trial_fpga("estimate", model, net.f.trial_yaml, &from_trial);
    hls4ml_net hn;
    fpga_report rep;
    nl_status st = hls4ml_fpga_layers(net.f.m, net.f.info, net.softmax ? net.softmax_name : NULL, net.input_name,
                                      &hc, have_trial ? &from_trial : NULL, &hn, &e);
    if (!st) st = fpga_estimate_ex(hn.layers, hn.n, &hn.fpga, &hn.opt, &rep, &e);
    if (st) fprintf(stderr, "nnlo-c: %s: %s\n", model, e.msg);
    else {
        if (as_json) print_json(model, &hn, &rep);
        else print_table(model, &hn, &rep);
        fpga_report_free(&rep);
    }
    hls4ml_net_free(&hn);
    keras_net_free(&net);
    hls4ml_config_free(&hc);
    return st == NL_OK ? 0 : (st == NL_ERR_CONFIG || st == NL_ERR_INVALID) ? 2 : 1;
}

int cmd_import(int argc, char **argv) {
    if (argc != 2 || argv[0][0] == '-' || argv[1][0] == '-') {
        fprintf(stderr, "usage: nnlo-c import KERAS_MODEL.h5 OUT.h5\n");
        return 2;
    }
    nl_error e = {0};
    keras_net net;
    if (keras_load(argv[0], 1, &net, &e)) { fprintf(stderr, "nnlo-c: %s\n", e.msg); return e.code == NL_ERR_IO ? 1 : 2; }
    nl_status st = keras_net_save_nnlo(&net, argv[1], &e);
    if (st) fprintf(stderr, "nnlo-c: %s\n", e.msg);
    else {
        int nd = 0, nq = 0;
        for (int l = 0; l < net.f.n_specs; l++) {
            nd += net.f.specs[l].kind == LAYER_DENSE;
            nq += net.f.specs[l].kind == LAYER_QUANT;
        }
        printf("wrote %s: %d layers (%d dense, %d activation quantizers), %d inputs, %d outputs%s\n", argv[1],
               net.f.n_specs, nd, nq, net.f.in_size, net.f.out_size, net.softmax ? ", softmax output" : "");
    }
    keras_net_free(&net);
    return st ? 1 : 0;
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *dir = NULL;
    fpga_flags fl = {0};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--hls4ml") && i + 1 < argc) dir = argv[++i];
        else if (take_flag(argc, argv, &i, &fl)) continue;
        else if (argv[i][0] == '-') { fprintf(stderr, "nnlo-c export: unknown option %s (or it lacks its value)\n", argv[i]); return 2; }
        else if (!model) model = argv[i];
        else { fprintf(stderr, "nnlo-c export: one model at a time\n"); return 2; }
    }
    if (!model || !dir) {
        fprintf(stderr, "usage: nnlo-c export MODEL --hls4ml DIR [--part NAME] [--clock-ns NS] "
                        "[--strategy latency|resource] [--reuse-factor N]\n");
        return 2;
    }
    if (fl.precision) { fprintf(stderr, "nnlo-c export: --precision is not an export option (types come from the model)\n"); return 2; }
    hls4ml_config hc;
    hls4ml_config_default(&hc);
    nl_error e = {0};
    if (!keras_is_keras_file(model)) { /* start from the trial's fpga: section, if any */
        modelio_file mf;
        if (modelio_load(model, 1, &mf, &e) != NL_OK) { fprintf(stderr, "nnlo-c: %s\n", e.msg); return e.code == NL_ERR_IO ? 1 : 2; }
        trial_fpga("export", model, mf.trial_yaml, &hc.fpga);
        modelio_free(&mf);
    }
    int rc = apply_flags("export", &fl, &hc);
    if (rc) return rc;
    if (!fpga_part_find(hc.fpga.part)) {
        fprintf(stderr, "nnlo-c export: unknown part '%s' (see docs/fpga.md for the table)\n", hc.fpga.part);
        return 2;
    }
    nl_status st = hls4ml_export_file(model, &hc.fpga, dir, &e);
    if (st) { fprintf(stderr, "nnlo-c: %s\n", e.msg); return st == NL_ERR_DATA || st == NL_ERR_CONFIG ? 2 : 1; }
    printf("wrote %s/model.json, model_weights.h5, hls4ml_config.yml, weights/w<N>.txt, b<N>.txt\n"
           "build: cd %s && hls4ml convert -c hls4ml_config.yml && hls4ml build -p hls4ml_prj -s\n", dir, dir);
    return 0;
}
