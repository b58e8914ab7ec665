/* hls4ml_config.c — reads the hls4ml configuration YAML that `hls4ml
 * convert -c` takes: Part, ClockPeriod, HLSConfig.Model and
 * HLSConfig.LayerName. Precisions are read as HLS reads them (no modes
 * means AP_TRN/AP_WRAP). Keys we do not model are ignored, except
 * LayerType, which would silently change what hls4ml builds: refused.
 * Uses config's YAML tree (positions for messages); interprets nothing else. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/yaml_tree.h"
#include "nnlo/hls4ml.h"

void hls4ml_config_default(hls4ml_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->fpga.part, sizeof c->fpga.part, "%s", "xcvu13p-flga2577-2-e");
    c->fpga.clock_period_ns = 5.0;
    c->fpga.strategy = FPGA_STRATEGY_LATENCY;
    c->fpga.reuse_factor = 1;
    c->precision = (fixed_spec){1, 5, 10, FX_WRAP, FX_TRN};
    c->model_accum = -1;
}

void hls4ml_config_free(hls4ml_config *c) {
    if (!c) return;
    free(c->layers);
    c->layers = NULL;
    c->n_layers = 0;
}

const hls4ml_layer_cfg *hls4ml_config_layer(const hls4ml_config *c, const char *name) {
    if (!c || !name) return NULL;
    for (int i = 0; i < c->n_layers; i++)  /* hls4ml matches names case-insensitively */
        if (!strcasecmp(c->layers[i].name, name)) return &c->layers[i];
    return NULL;
}

int hls4ml_parse_precision(const char *text, fixed_spec *out) {
    if (!text) return -1;
    while (isspace((unsigned char)*text)) text++;
    if (!strcasecmp(text, "auto")) return 1;
    /* ap_int<W> / int<W> / ap_uint<W> / uint<W>: integers */
    const char *p = text;
    if (!strncmp(p, "ap_", 3)) p += 3;
    int uns = !strncmp(p, "uint<", 5);
    if (uns || !strncmp(p, "int<", 4)) {
        char *end;
        long W = strtol(p + (uns ? 5 : 4), &end, 10);
        if (end == p || *end != '>' || W < 1 || W > 64) return -1;
        *out = (fixed_spec){uns ? 0 : 1, (int)(uns ? W : W - 1), 0, FX_WRAP, FX_TRN};
        return 0;
    }
    fixed_spec s;
    if (fixed_parse(text, &s)) return -1;
    /* HLS defaults: no quantization mode = AP_TRN, no overflow mode = AP_WRAP */
    int commas = 0;
    for (const char *q = strchr(text, '<'); q && *q && *q != '>'; q++) commas += *q == ',';
    if (commas < 2) s.round = FX_TRN;
    if (commas < 3) s.overflow = FX_WRAP;
    *out = s;
    return 0;
}

static int parse_strategy(const char *s) {
    if (!strcasecmp(s, "latency")) return FPGA_STRATEGY_LATENCY;
    if (!strcasecmp(s, "resource")) return FPGA_STRATEGY_RESOURCE;
    return -1;
}

typedef struct { const char *path; nl_error *e; } ctx;

static nl_status bad(ctx *x, const ynode *n, const char *key, const char *what) {
    return nl_err(x->e, NL_ERR_CONFIG, "%s:%d:%d: %s: %s", x->path, n ? n->line : 0, n ? n->col : 0, key, what);
}

static nl_status get_int(ctx *x, const ynode *n, const char *key, int *v) {
    char *end;
    if (n->kind != YN_SCALAR) return bad(x, n, key, "expected an integer");
    long r = strtol(n->text, &end, 10);
    if (end == n->text || *end || r < 1 || r > 1000000) return bad(x, n, key, "expected an integer >= 1");
    *v = (int)r;
    return NL_OK;
}

/* A Precision value: 1 = auto, 0 = spec. */
static nl_status get_prec(ctx *x, const ynode *n, const char *key, fixed_spec *s, int *is_auto) {
    if (n->kind != YN_SCALAR) return bad(x, n, key, "expected a type such as ap_fixed<16,6> or auto");
    int r = hls4ml_parse_precision(n->text, s);
    if (r < 0) {
        char m[300];
        snprintf(m, sizeof m, "'%s' is not a fixed-point type (ap_fixed<W,I>, fixed<W,I>, ap_ufixed<W,I>, "
                 "ufixed<W,I>, ap_int<W>, ap_uint<W>, optionally with modes, or auto)", n->text);
        return bad(x, n, key, m);
    }
    *is_auto = r == 1;
    return NL_OK;
}

static nl_status get_strategy(ctx *x, const ynode *n, const char *key, int *out) {
    int s = n->kind == YN_SCALAR ? parse_strategy(n->text) : -1;
    if (s < 0)
        return bad(x, n, key, "expected Latency or Resource (resource_unrolled and distributed_arithmetic "
                              "are not modelled)");
    *out = s;
    return NL_OK;
}

static nl_status read_model(ctx *x, const ynode *m, hls4ml_config *c) {
    if (m->kind != YN_MAP) return bad(x, m, "HLSConfig.Model", "expected a map");
    for (int i = 0; i < m->n; i++) {
        const char *k = m->keys[i]->text;
        const ynode *v = m->vals[i];
        nl_status st = NL_OK;
        int a = 0;
        if (!strcmp(k, "Precision")) {
            if (v->kind == YN_SCALAR) {
                st = get_prec(x, v, "HLSConfig.Model.Precision", &c->precision, &a);
                if (!st && a) st = bad(x, v, "HLSConfig.Model.Precision", "the model default cannot be auto");
                c->has_precision = 1;
            } else if (v->kind == YN_MAP) {
                for (int j = 0; !st && j < v->n; j++) {
                    const char *pk = v->keys[j]->text;
                    fixed_spec s;
                    if (!strcmp(pk, "maximum")) continue;  /* only bounds 'auto' types; not modelled */
                    st = get_prec(x, v->vals[j], "HLSConfig.Model.Precision", &s, &a);
                    if (st) break;
                    if (!strcmp(pk, "default")) {
                        if (a) st = bad(x, v->vals[j], "HLSConfig.Model.Precision.default", "cannot be auto");
                        c->precision = s;
                        c->has_precision = 1;
                    } else if (!strcmp(pk, "accum")) {
                        c->model_accum = a ? 0 : 1;
                        c->model_accum_spec = s;
                    }
                }
            } else {
                st = bad(x, v, "HLSConfig.Model.Precision", "expected a type or a map");
            }
        } else if (!strcmp(k, "ReuseFactor")) {
            st = get_int(x, v, "HLSConfig.Model.ReuseFactor", &c->fpga.reuse_factor);
            c->has_reuse = 1;
        } else if (!strcmp(k, "Strategy")) {
            int s = 0;
            st = get_strategy(x, v, "HLSConfig.Model.Strategy", &s);
            c->fpga.strategy = (fpga_strategy)s;
            c->has_strategy = 1;
        }
        if (st) return st;
    }
    return NL_OK;
}

static nl_status read_layer(ctx *x, const char *name, const ynode *m, hls4ml_layer_cfg *L) {
    char key[160];
    memset(L, 0, sizeof *L);
    L->strategy = -1;
    if (strlen(name) >= sizeof L->name) return bad(x, m, name, "layer name longer than 63 characters");
    snprintf(L->name, sizeof L->name, "%s", name);
    if (m->kind != YN_MAP) {
        snprintf(key, sizeof key, "HLSConfig.LayerName.%s", name);
        return bad(x, m, key, "expected a map");
    }
    for (int i = 0; i < m->n; i++) {
        const char *k = m->keys[i]->text;
        const ynode *v = m->vals[i];
        snprintf(key, sizeof key, "HLSConfig.LayerName.%s.%s", name, k);
        nl_status st = NL_OK;
        if (!strcmp(k, "Precision")) {
            if (v->kind == YN_SCALAR) {  /* one type for every variable of the layer */
                int a;
                fixed_spec s;
                st = get_prec(x, v, key, &s, &a);
                L->w = L->b = L->result = L->accum = s;
                L->has_w = L->has_b = L->has_result = L->has_accum = 1;
                L->w_auto = L->b_auto = L->result_auto = L->accum_auto = a;
            } else if (v->kind == YN_MAP) {
                for (int j = 0; !st && j < v->n; j++) {
                    const char *pk = v->keys[j]->text;
                    char k2[200];
                    snprintf(k2, sizeof k2, "%s.%s", key, pk);
                    fixed_spec s;
                    int a = 0;
                    if (strcmp(pk, "weight") && strcmp(pk, "scale") && strcmp(pk, "bias") && strcmp(pk, "result") &&
                        strcmp(pk, "accum"))
                        continue;  /* table_t etc. of activations: not modelled */
                    st = get_prec(x, v->vals[j], k2, &s, &a);
                    if (st) break;
                    if (!strcmp(pk, "weight") || !strcmp(pk, "scale")) { L->w = s; L->has_w = 1; L->w_auto = a; }
                    else if (!strcmp(pk, "bias")) { L->b = s; L->has_b = 1; L->b_auto = a; }
                    else if (!strcmp(pk, "result")) { L->result = s; L->has_result = 1; L->result_auto = a; }
                    else { L->accum = s; L->has_accum = 1; L->accum_auto = a; }
                }
            } else {
                st = bad(x, v, key, "expected a type or a map");
            }
        } else if (!strcmp(k, "ReuseFactor")) {
            st = get_int(x, v, key, &L->reuse_factor);
        } else if (!strcmp(k, "ParallelizationFactor")) {
            st = get_int(x, v, key, &L->parallelization);
        } else if (!strcmp(k, "Strategy")) {
            st = get_strategy(x, v, key, &L->strategy);
        }
        if (st) return st;
    }
    return NL_OK;
}

nl_status hls4ml_config_load(const char *path, hls4ml_config *c, nl_error *e) {
    hls4ml_config_default(c);
    char *text = NULL;
    nl_status st = fs_read_all(path, &text, NULL, e);
    if (st) return st;
    ynode *root = NULL;
    st = yn_parse(text, path, &root, e);
    free(text);
    if (st) return st;
    ctx x = {path, e};
    for (int i = 0; !st && i < root->n; i++) {
        const char *k = root->keys[i]->text;
        const ynode *v = root->vals[i];
        if (!strcmp(k, "Part")) {
            if (v->kind != YN_SCALAR || !v->text[0] || strlen(v->text) >= sizeof c->fpga.part)
                st = bad(&x, v, "Part", "expected a part name such as xcvu13p-flga2577-2-e");
            else {
                snprintf(c->fpga.part, sizeof c->fpga.part, "%s", v->text);
                c->has_part = 1;
            }
        } else if (!strcmp(k, "ClockPeriod")) {
            char *end;
            double p = v->kind == YN_SCALAR ? strtod(v->text, &end) : 0;
            if (v->kind != YN_SCALAR || end == v->text || *end || !(p > 0 && p < 1000))
                st = bad(&x, v, "ClockPeriod", "expected a clock period in ns (> 0)");
            else {
                c->fpga.clock_period_ns = p;
                c->has_clock = 1;
            }
        } else if (!strcmp(k, "HLSConfig")) {
            if (v->kind != YN_MAP) { st = bad(&x, v, "HLSConfig", "expected a map"); break; }
            const ynode *m = yn_map_get(v, "Model", NULL);
            if (m) st = read_model(&x, m, c);
            const ynode *lt = yn_map_get(v, "LayerType", NULL);
            if (!st && lt && !yn_is_null(lt))
                st = bad(&x, lt, "HLSConfig.LayerType", "per-type settings are not supported; use LayerName "
                                                      "with each layer's name");
            const ynode *ln = yn_map_get(v, "LayerName", NULL);
            if (!st && ln && !yn_is_null(ln)) {
                if (ln->kind != YN_MAP) { st = bad(&x, ln, "HLSConfig.LayerName", "expected a map"); break; }
                c->layers = calloc((size_t)ln->n + 1, sizeof *c->layers);
                if (!c->layers) { st = nl_err(e, NL_ERR_NOMEM, "out of memory"); break; }
                for (int j = 0; !st && j < ln->n; j++) {
                    st = read_layer(&x, ln->keys[j]->text, ln->vals[j], &c->layers[j]);
                    if (!st) c->n_layers++;
                }
            }
        } else if (!strcmp(k, "IOType")) {
            if (v->kind == YN_SCALAR && strcmp(v->text, "io_parallel"))
                st = bad(&x, v, "IOType", "only io_parallel is modelled");
        }
        /* KerasJson, KerasH5, OutputDir, ProjectName, Backend, ...: not ours */
    }
    yn_free(root);
    if (st) hls4ml_config_free(c);
    return st;
}
