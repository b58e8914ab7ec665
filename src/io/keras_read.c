/* keras_read.c — a Keras 2 / tf.keras HDF5 model (model.save()) with
 * QKeras layers into a keras_net: layer specs, a model whose params ==
 * weff == the (quantized) weights, per-layer formats, a final softmax.
 * Only sequential chains of Dense-like and activation layers; anything
 * else is an error naming the layer, its class and what is supported.
 * Weights are found as Keras finds them (the layer group's weight_names),
 * or, lacking that attribute, as hls4ml does (a dataset whose name holds
 * "kernel" / "bias"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "data/h5util.h"
#include "io/io_internal.h"
#include "nnlo/keras.h"

#define KR_SUPPORTED "InputLayer, Dense, QDense, Activation (relu, softmax, linear), ReLU, Softmax, " \
                     "QActivation (quantized_bits, quantized_relu), Dropout, Flatten"

/* ---- HDF5 helpers --------------------------------------------------------- */

/* Reads a string-array attribute (fixed or variable length); an empty
 * numeric array (Keras writes np.asarray([]) for layers without weights)
 * gives n = 0. *out: malloc'd array of malloc'd strings. */
static int attr_strings(hid_t obj, const char *name, char ***out, int *n) {
    *out = NULL; *n = 0;
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    hssize_t np = H5Sget_simple_extent_npoints(s);
    int rc = 0;
    if (np <= 0) goto done;
    if (H5Tget_class(t) != H5T_STRING) { rc = np == 0 ? 0 : -1; goto done; }
    char **v = calloc((size_t)np, sizeof *v);
    if (!v) { rc = -1; goto done; }
    if (H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        char **raw = calloc((size_t)np, sizeof *raw);
        if (raw && H5Aread(a, mt, raw) >= 0) {
            for (hssize_t i = 0; i < np; i++) v[i] = str_dup(raw[i] ? raw[i] : "");
            H5Dvlen_reclaim(mt, s, H5P_DEFAULT, raw);
        } else rc = -1;
        free(raw);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(t);
        char *raw = calloc((size_t)np, sz + 1);
        hid_t mt = H5Tcopy(t);
        if (raw && H5Aread(a, mt, raw) >= 0) {
            for (hssize_t i = 0; i < np; i++) {
                char *one = calloc(sz + 1, 1);
                if (one) memcpy(one, raw + (size_t)i * sz, sz);
                v[i] = one;
            }
        } else rc = -1;
        H5Tclose(mt);
        free(raw);
    }
    for (hssize_t i = 0; rc == 0 && i < np; i++) if (!v[i]) rc = -1;
    if (rc) { for (hssize_t i = 0; i < np; i++) free(v[i]); free(v); goto done; }
    *out = v; *n = (int)np;
done:
    H5Tclose(t); H5Sclose(s); H5Aclose(a);
    return rc;
}

/* A scalar string attribute, fixed (any padding, as h5py writes bytes)
 * or variable length; *out malloc'd. */
static int attr_string(hid_t obj, const char *name, char **out) {
    char **v = NULL;
    int n = 0;
    *out = NULL;
    if (attr_strings(obj, name, &v, &n) || n != 1) {
        for (int i = 0; i < n; i++) free(v[i]);
        free(v);
        return -1;
    }
    *out = v[0];
    free(v);
    return 0;
}

static void free_strings(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

typedef struct { const char *want; char found[512]; } find_ctx;

static herr_t find_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g; (void)info;
    find_ctx *c = data;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strstr(base, c->want) && !c->found[0]) { snprintf(c->found, sizeof c->found, "%s", name); return 1; }
    return 0;
}

/* Path (relative to g) of the layer's weight `what` ("kernel", "bias"), or "". */
static void weight_path(hid_t g, char **names, int n, const char *what, char *out, size_t len) {
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(names[i], '/');
        base = base ? base + 1 : names[i];
        if (!strncmp(base, what, strlen(what))) { snprintf(out, len, "%s", names[i]); return; }
    }
    if (n > 0) return;
    find_ctx c = {what, ""};
    H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, find_cb, &c);
    snprintf(out, len, "%s", c.found);
}

/* Reads a float dataset of `count` values with the given 1-D or 2-D shape. */
static nl_status read_weights(hid_t g, const char *dpath, int rank, const long *want, float **out,
                              const char *file, const char *layer, const char *what, nl_error *e) {
    hid_t d = H5Dopen2(g, dpath, H5P_DEFAULT);
    if (d < 0) return nl_err(e, NL_ERR_DATA, "%s: layer '%s': the %s dataset '%s' cannot be opened", file, layer, what, dpath);
    hid_t s = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(s);
    hsize_t dims[8] = {0};
    if (r > 0 && r <= 8) H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    nl_status st = NL_OK;
    int ok = r == rank;
    long count = 1;
    for (int i = 0; ok && i < rank; i++) { ok = (long)dims[i] == want[i]; count *= want[i]; }
    if (!ok) {
        char got[64] = "";
        for (int i = 0, u = 0; i < r && i < 4; i++)
            u += snprintf(got + u, sizeof got - (size_t)u, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        if (rank == 2)
            st = nl_err(e, NL_ERR_DATA, "%s: layer '%s': %s '%s' has shape (%s), expected (%ld, %ld) from the "
                        "layer's input size and units", file, layer, what, dpath, got, want[0], want[1]);
        else
            st = nl_err(e, NL_ERR_DATA, "%s: layer '%s': %s '%s' has shape (%s), expected (%ld)", file, layer,
                        what, dpath, got, want[0]);
    } else {
        *out = malloc((size_t)count * sizeof **out);
        if (!*out) st = nl_err(e, NL_ERR_NOMEM, "out of memory");
        else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
            free(*out); *out = NULL;
            st = nl_err(e, NL_ERR_DATA, "%s: layer '%s': %s '%s' cannot be read as numbers", file, layer, what, dpath);
        }
    }
    H5Dclose(d);
    return st;
}

/* ---- QKeras quantizers ---------------------------------------------------- */

/* "name(a, b, k=v)" -> name and the argument texts. */
typedef struct { char name[64]; int n; char key[12][32]; char val[12][64]; } call_args;

static int parse_call(const char *s, call_args *c) {
    memset(c, 0, sizeof *c);
    while (*s == ' ') s++;
    const char *p = strchr(s, '(');
    size_t nl = p ? (size_t)(p - s) : strlen(s);
    if (nl == 0 || nl >= sizeof c->name) return -1;
    memcpy(c->name, s, nl);
    while (nl > 0 && c->name[nl - 1] == ' ') c->name[--nl] = '\0';
    if (!p) return 0;
    p++;
    const char *end = strrchr(p, ')');
    if (!end) return -1;
    while (p < end && c->n < 12) {
        const char *q = p;
        while (q < end && *q != ',') q++;
        char tok[96];
        size_t tl = (size_t)(q - p);
        if (tl >= sizeof tok) return -1;
        memcpy(tok, p, tl); tok[tl] = '\0';
        char *t = tok;
        while (*t == ' ') t++;
        char *te = t + strlen(t);
        while (te > t && te[-1] == ' ') *--te = '\0';
        if (*t) {
            char *eq = strchr(t, '=');
            if (eq) {
                *eq = '\0';
                char *k = t, *v = eq + 1;
                char *ke = k + strlen(k);
                while (ke > k && ke[-1] == ' ') *--ke = '\0';
                while (*v == ' ') v++;
                snprintf(c->key[c->n], sizeof c->key[0], "%.31s", k);
                snprintf(c->val[c->n], sizeof c->val[0], "%.63s", v);
            } else {
                snprintf(c->val[c->n], sizeof c->val[0], "%.63s", t);
            }
            c->n++;
        }
        p = q < end ? q + 1 : end;
    }
    return 0;
}

/* The value of parameter `key` at position `pos`: from kwargs or positional. */
static const char *call_get(const call_args *c, const char *key, int pos) {
    for (int i = 0; i < c->n; i++) if (c->key[i][0] && !strcmp(c->key[i], key)) return c->val[i];
    if (pos < c->n && !c->key[pos][0]) return c->val[pos];
    return NULL;
}

static int truthy(const char *v) {
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || (atof(v) != 0 && strcasecmp(v, "false")));
}

static int alpha_ok(const char *v) {
    if (!v || !*v || !strcmp(v, "None") || !strcmp(v, "null")) return 1;
    char *end;
    double a = strtod(v, &end);
    return end != v && !*end && a == 1.0;
}

nl_status keras_parse_quantizer(const json *q, fixed_spec *out, int *relu, nl_error *e) {
    call_args c;
    *relu = 0;
    if (!q) return nl_err(e, NL_ERR_DATA, "no quantizer");
    if (q->type == JSON_STR) {
        if (parse_call(q->str, &c)) return nl_err(e, NL_ERR_DATA, "cannot read the quantizer '%s'", q->str);
    } else if (q->type == JSON_OBJ) {
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "%s", json_str(q, "class_name", ""));
        const json *cfg = json_get(q, "config");
        for (const json *m = cfg ? cfg->child : NULL; m && c.n < 12; m = m->next) {
            char *v = c.val[c.n];
            size_t vl = sizeof c.val[0];
            snprintf(c.key[c.n], sizeof c.key[0], "%s", m->key ? m->key : "");
            if (m->type == JSON_NUM) snprintf(v, vl, "%.17g", m->num);
            else if (m->type == JSON_BOOL) snprintf(v, vl, "%s", m->num ? "true" : "false");
            else if (m->type == JSON_STR) snprintf(v, vl, "%.63s", m->str);
            else snprintf(v, vl, "None");
            c.n++;
        }
    } else {
        return nl_err(e, NL_ERR_DATA, "a quantizer must be a string or {class_name, config}");
    }
    const char *bits_s, *int_s;
    if (!strcmp(c.name, "quantized_bits")) {
        bits_s = call_get(&c, "bits", 0);
        int_s = call_get(&c, "integer", 1);
        const char *sym = call_get(&c, "symmetric", 2), *kn = call_get(&c, "keep_negative", 3);
        const char *alpha = call_get(&c, "alpha", 4);
        if (!alpha_ok(alpha))
            return nl_err(e, NL_ERR_DATA, "quantized_bits with alpha=%s is not supported (the scale is not a "
                          "fixed-point format); retrain with alpha=1", alpha);
        int bits = bits_s ? atoi(bits_s) : 8, integer = int_s ? atoi(int_s) : 0;
        int k = kn ? truthy(kn) : 1;
        if (bits < 1 || bits > 32 || bits - k - integer < -32)
            return nl_err(e, NL_ERR_DATA, "quantized_bits(bits=%d, integer=%d) is out of range", bits, integer);
        if (bits - k < 1)
            return nl_err(e, NL_ERR_DATA, "quantized_bits with %d bit%s is a binary quantizer; not supported", bits,
                          bits == 1 ? "" : "s");
        *out = (fixed_spec){k, integer, bits - k - integer, truthy(sym) && k ? FX_SAT_SYM : FX_SAT, FX_RND_CONV};
        return NL_OK;
    }
    if (!strcmp(c.name, "quantized_relu")) {
        bits_s = call_get(&c, "bits", 0);
        int_s = call_get(&c, "integer", 1);
        const char *sig = call_get(&c, "use_sigmoid", 2), *ns = call_get(&c, "negative_slope", 3);
        const char *ub = call_get(&c, "relu_upper_bound", 5);
        if (truthy(sig)) return nl_err(e, NL_ERR_DATA, "quantized_relu with use_sigmoid is not supported");
        if (ns && atof(ns) != 0) return nl_err(e, NL_ERR_DATA, "quantized_relu with negative_slope=%s (leaky) is not supported", ns);
        if (ub && strcmp(ub, "None") && strcmp(ub, "null"))
            return nl_err(e, NL_ERR_DATA, "quantized_relu with relu_upper_bound=%s is not supported", ub);
        int bits = bits_s ? atoi(bits_s) : 8, integer = int_s ? atoi(int_s) : 0;
        if (bits < 1 || bits > 32)
            return nl_err(e, NL_ERR_DATA, "quantized_relu(bits=%d) is out of range", bits);
        *out = (fixed_spec){0, integer, bits - integer, FX_SAT, FX_RND_CONV};
        *relu = 1;
        return NL_OK;
    }
    return nl_err(e, NL_ERR_DATA, "quantizer '%s' is not supported (quantized_bits, quantized_relu)", c.name);
}

/* ---- the model ------------------------------------------------------------ */

typedef struct {
    const char *file;
    hid_t wroot;            /* model_weights, or the root for weights-only layouts */
    layer_spec *specs; modelio_layer_info *info;
    float **kern, **bias;   /* per spec, DENSE only */
    int n, cap;
    int size;               /* features flowing out of the last layer */
    int in_size;            /* the model input's features */
    int softmax;
    char softmax_name[64];
} builder;

static layer_spec *push(builder *b, layer_kind k, const char *name, const char *suffix) {
    NL_ASSERT(b->n < b->cap);
    layer_spec *s = &b->specs[b->n++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    snprintf(s->name, sizeof s->name, "%s%s", name, suffix ? suffix : "");
    return s;
}

static nl_status add_quant(builder *b, const char *lname, const json *q, const char *suffix, nl_error *e) {
    fixed_spec s;
    int relu;
    if (keras_parse_quantizer(q, &s, &relu, e)) return nl_err_prefix(e, "%s: layer '%s'", b->file, lname);
    if (relu) push(b, LAYER_RELU, lname, suffix ? suffix : NULL);
    layer_spec *ls = push(b, LAYER_QUANT, lname, relu ? "_q" : suffix);
    ls->quant = s;
    return NL_OK;
}

/* A Keras activation (string or QKeras quantizer) after layer lname. */
static nl_status add_activation(builder *b, const char *lname, const char *cls, const json *act, int own_layer,
                                nl_error *e) {
    if (!act || act->type == JSON_NULL) return NL_OK;
    if (act->type == JSON_OBJ || (act->type == JSON_STR && strchr(act->str, '(')))
        return add_quant(b, lname, act, own_layer ? NULL : "_act", e);
    if (act->type != JSON_STR)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): 'activation' must be a string", b->file, lname, cls);
    const char *a = act->str;
    if (!strcmp(a, "linear")) return NL_OK;
    if (!strcmp(a, "relu")) { push(b, LAYER_RELU, lname, own_layer ? NULL : "_relu"); return NL_OK; }
    if (!strcmp(a, "softmax")) {
        b->softmax = 1;
        snprintf(b->softmax_name, sizeof b->softmax_name, "%s%s", lname, own_layer ? "" : "_softmax");
        return NL_OK;
    }
    return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): activation '%s' is not supported (relu, softmax, linear)",
                  b->file, lname, cls, a);
}

static nl_status add_dense(builder *b, const char *lname, const char *cls, const json *cfg, nl_error *e) {
    int units = (int)json_num(cfg, "units", -1);
    if (units < 1) return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): config lacks 'units' (>= 1)", b->file, lname, cls);
    if (b->size < 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the input size is unknown (no InputLayer or "
                      "batch_input_shape before it)", b->file, lname, cls);
    const json *ub = json_get(cfg, "use_bias");
    int use_bias = !ub || ub->type != JSON_BOOL || ub->num != 0;
    if (H5Lexists(b->wroot, lname, H5P_DEFAULT) <= 0)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): no weights (the group model_weights/%s is missing)",
                      b->file, lname, cls, lname);
    hid_t g = H5Gopen2(b->wroot, lname, H5P_DEFAULT);
    char **names = NULL;
    int nn = 0;
    attr_strings(g, "weight_names", &names, &nn);
    char kp[512], bp[512];
    weight_path(g, names, nn, "kernel", kp, sizeof kp);
    weight_path(g, names, nn, "bias", bp, sizeof bp);
    free_strings(names, nn);
    nl_status st = NL_OK;
    int idx = b->n;
    layer_spec *s = push(b, LAYER_DENSE, lname, NULL);
    s->units = units;
    long kd[2] = {b->size, units}, bd[1] = {units};
    if (!kp[0])
        st = nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the kernel is missing (no weight named '*kernel*' in "
                    "model_weights/%s)", b->file, lname, cls, lname);
    if (!st) st = read_weights(g, kp, 2, kd, &b->kern[idx], b->file, lname, "kernel", e);
    if (!st && use_bias && !bp[0])
        st = nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): use_bias is true but the bias is missing (no weight "
                    "named '*bias*' in model_weights/%s)", b->file, lname, cls, lname);
    if (!st && use_bias) st = read_weights(g, bp, 1, bd, &b->bias[idx], b->file, lname, "bias", e);
    /* exact formats written by nnlo-c's export (QKeras cannot spell every mode) */
    modelio_layer_info *in = &b->info[idx];
    const json *kq = json_get(cfg, "kernel_quantizer"), *bq = json_get(cfg, "bias_quantizer");
    fixed_spec dflt = {1, 5, 10, FX_WRAP, FX_TRN};   /* hls4ml's ap_fixed<16,6> */
    in->w = in->b = in->in = in->out = dflt;
    int relu;
    if (!st && kq && kq->type != JSON_NULL) {
        in->quantized = 1;
        if (keras_parse_quantizer(kq, &in->w, &relu, e))
            st = nl_err_prefix(e, "%s: layer '%s' (%s): kernel_quantizer", b->file, lname, cls);
    }
    if (!st && bq && bq->type != JSON_NULL) {
        in->quantized = 1;
        if (keras_parse_quantizer(bq, &in->b, &relu, e))
            st = nl_err_prefix(e, "%s: layer '%s' (%s): bias_quantizer", b->file, lname, cls);
    }
    char *t = NULL;
    fixed_spec x;
    if (!st && mio_has(g, "nnlo_kernel_type") && !mio_get_str(g, "nnlo_kernel_type", &t, b->file, lname, NULL) &&
        !fixed_parse(t, &x) && in->quantized && x.i == in->w.i && x.f == in->w.f)
        in->w = x;
    free(t); t = NULL;
    if (!st && mio_has(g, "nnlo_bias_type") && !mio_get_str(g, "nnlo_bias_type", &t, b->file, lname, NULL) &&
        !fixed_parse(t, &x) && in->quantized && x.i == in->b.i && x.f == in->b.f)
        in->b = x;
    free(t);
    H5Gclose(g);
    if (st) return st;
    /* QKeras quantizes at inference: store what the layer computes with */
    if (in->quantized) {
        fixed_spec wq = in->w, bqs = in->b;
        if (kq && kq->type != JSON_NULL)
            fixed_quantize_array(&wq, b->kern[idx], b->kern[idx], NULL, (long)b->size * units);
        if (bq && bq->type != JSON_NULL && b->bias[idx]) fixed_quantize_array(&bqs, b->bias[idx], b->bias[idx], NULL, units);
    }
    b->size = units;
    return add_activation(b, lname, cls, json_get(cfg, "activation"), 0, e);
}

static int shape_size(const json *shape) {
    if (!shape || shape->type != JSON_ARR) return -1;
    long n = 1;
    int first = 1;
    for (const json *d = shape->child; d; d = d->next) {
        if (first) { first = 0; continue; }    /* the batch dimension */
        if (d->type != JSON_NUM || d->num < 1) return -1;
        n *= (long)d->num;
    }
    return first || n > 100000000 ? -1 : (int)n;
}

/* The QUANT layer of an nnlo-c export carries its exact type. */
static void exact_quant_type(builder *b, const char *lname) {
    if (b->n < 1 || b->specs[b->n - 1].kind != LAYER_QUANT) return;
    if (H5Lexists(b->wroot, lname, H5P_DEFAULT) <= 0) return;
    hid_t g = H5Gopen2(b->wroot, lname, H5P_DEFAULT);
    char *t = NULL;
    fixed_spec x, *q = &b->specs[b->n - 1].quant;
    if (mio_has(g, "nnlo_quant_type") && !mio_get_str(g, "nnlo_quant_type", &t, b->file, lname, NULL) &&
        !fixed_parse(t, &x) && x.k == q->k && x.i == q->i && x.f == q->f)
        *q = x;
    free(t);
    H5Gclose(g);
}

static nl_status add_layer(builder *b, const json *L, int index, char *input_name, nl_error *e) {
    const char *cls = json_str(L, "class_name", NULL);
    const json *cfg = json_get(L, "config");
    if (!cls || !cfg || cfg->type != JSON_OBJ)
        return nl_err(e, NL_ERR_DATA, "%s: model_config: layer %d lacks 'class_name' or 'config'", b->file, index);
    const char *lname = json_str(cfg, "name", json_str(L, "name", NULL));
    if (!lname || !lname[0] || strlen(lname) > 56)
        return nl_err(e, NL_ERR_DATA, "%s: model_config: layer %d (%s) has no name or one longer than 56 characters",
                      b->file, index, cls);
    if (b->softmax)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s) follows the softmax '%s'; nnlo-c supports softmax only "
                      "as the last layer", b->file, lname, cls, b->softmax_name);
    int sz = shape_size(json_get(cfg, "batch_input_shape"));
    if (sz < 0) sz = shape_size(json_get(cfg, "batch_shape"));
    if (sz > 0 && b->size < 1) b->size = b->in_size = sz;
    if (!strcmp(cls, "InputLayer")) {
        if (sz < 1)
            return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (InputLayer): config lacks batch_input_shape", b->file, lname);
        snprintf(input_name, 64, "%s", lname);
        return NL_OK;
    }
    if (!strcmp(cls, "Dropout") || !strcmp(cls, "Flatten")) return NL_OK;  /* identity at inference */
    if (!strcmp(cls, "Dense")) return add_dense(b, lname, cls, cfg, e);
    if (!strcmp(cls, "QDense")) return add_dense(b, lname, cls, cfg, e);
    if (b->size < 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the input size is unknown (no InputLayer or "
                      "batch_input_shape before it)", b->file, lname, cls);
    if (!strcmp(cls, "Activation")) return add_activation(b, lname, cls, json_get(cfg, "activation"), 1, e);
    if (!strcmp(cls, "Softmax")) {
        b->softmax = 1;
        snprintf(b->softmax_name, sizeof b->softmax_name, "%s", lname);
        return NL_OK;
    }
    if (!strcmp(cls, "ReLU")) {
        const json *mv = json_get(cfg, "max_value");
        if ((mv && mv->type != JSON_NULL) || json_num(cfg, "negative_slope", 0) != 0 ||
            json_num(cfg, "threshold", 0) != 0)
            return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (ReLU): max_value, negative_slope and threshold must be "
                          "unset (plain relu only)", b->file, lname);
        push(b, LAYER_RELU, lname, NULL);
        return NL_OK;
    }
    if (!strcmp(cls, "QActivation")) {
        const json *a = json_get(cfg, "activation");
        if (!a) return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (QActivation): config lacks 'activation'", b->file, lname);
        if (a->type == JSON_STR && !strchr(a->str, '(')) return add_activation(b, lname, cls, a, 1, e);
        nl_status st = add_quant(b, lname, a, NULL, e);
        if (!st) exact_quant_type(b, lname);
        return st;
    }
    return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s) is not supported; nnlo-c reads " KR_SUPPORTED, b->file, lname, cls);
}

int keras_is_keras_file(const char *path) {
    h5u_quiet();
    if (!fs_exists(path) || H5Fis_hdf5(path) <= 0) return 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    int r = H5Aexists(f, "model_config") > 0;
    H5Fclose(f);
    return r;
}

void keras_net_free(keras_net *n) {
    if (!n) return;
    modelio_free(&n->f);
    memset(n, 0, sizeof *n);
}

nl_status keras_load(const char *path, int max_batch, keras_net *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    h5u_quiet();
    if (!fs_exists(path)) return nl_err(e, NL_ERR_IO, "%s: file not found", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return nl_err(e, NL_ERR_IO, "%s: cannot open as HDF5", path);
    char *cfgtext = NULL;
    json *root = NULL;
    builder b = {0};
    b.file = path;
    b.wroot = H5I_INVALID_HID;
    nl_status st = NL_OK;
    if (!mio_has(f, "model_config")) {
        st = nl_err(e, NL_ERR_DATA, "%s: not a Keras model file (no root attribute 'model_config'; a file from "
                    "save_weights() has no architecture: save with model.save('x.h5'))", path);
        goto done;
    }
    if (attr_string(f, "model_config", &cfgtext)) {
        st = nl_err(e, NL_ERR_DATA, "%s: the root attribute 'model_config' is not one string", path);
        goto done;
    }
    root = json_parse(cfgtext, e);
    if (!root) { st = nl_err_prefix(e, "%s: model_config is not valid JSON", path); goto done; }
    const char *mcls = json_str(root, "class_name", "");
    const json *mcfg = json_get(root, "config");
    const json *layers = mcfg && mcfg->type == JSON_ARR ? mcfg : json_get(mcfg, "layers");
    if (strcmp(mcls, "Sequential") && strcmp(mcls, "Functional") && strcmp(mcls, "Model")) {
        st = nl_err(e, NL_ERR_DATA, "%s: model_config: class_name '%s' is not supported (Sequential, Functional, Model)",
                    path, mcls);
        goto done;
    }
    if (!layers || layers->type != JSON_ARR || !layers->child) {
        st = nl_err(e, NL_ERR_DATA, "%s: model_config: config.layers is missing or empty", path);
        goto done;
    }
    int nk = 0;
    for (const json *L = layers->child; L; L = L->next) nk++;
    b.cap = 2 * nk + 2;
    b.specs = calloc((size_t)b.cap, sizeof *b.specs);
    b.info = calloc((size_t)b.cap, sizeof *b.info);
    b.kern = calloc((size_t)b.cap, sizeof *b.kern);
    b.bias = calloc((size_t)b.cap, sizeof *b.bias);
    if (!b.specs || !b.info || !b.kern || !b.bias) { st = nl_err(e, NL_ERR_NOMEM, "out of memory"); goto done; }
    b.wroot = H5Lexists(f, "model_weights", H5P_DEFAULT) > 0 ? H5Gopen2(f, "model_weights", H5P_DEFAULT) : H5Gopen2(f, "/", H5P_DEFAULT);
    snprintf(out->input_name, sizeof out->input_name, "%s", "input_1");
    int functional = strcmp(mcls, "Sequential") != 0;
    const char *prev = NULL;
    int index = 0;
    for (const json *L = layers->child; !st && L; L = L->next, index++) {
        if (functional) {  /* a chain: each layer's one input is the layer before */
            const json *ib = json_get(L, "inbound_nodes");
            const json *n0 = ib && ib->type == JSON_ARR ? ib->child : NULL;
            const char *lname = json_str(json_get(L, "config"), "name", json_str(L, "name", "?"));
            if (prev && n0 && n0->type == JSON_ARR) {
                const json *in0 = n0->child;
                const char *src = in0 && in0->type == JSON_ARR && in0->child && in0->child->type == JSON_STR
                                      ? in0->child->str : NULL;
                if ((ib->child->next) || (in0 && in0->next) || !src || strcmp(src, prev))
                    st = nl_err(e, NL_ERR_DATA, "%s: layer '%s': only a chain of layers is supported (each layer's "
                                "single input is the layer before it, here '%s')", path, lname, prev);
            }
            prev = lname;
        }
        if (!st) st = add_layer(&b, L, index, out->input_name, e);
    }
    if (st) goto done;
    int has_dense = 0;
    for (int i = 0; i < b.n; i++) has_dense |= b.specs[i].kind == LAYER_DENSE;
    if (!has_dense) { st = nl_err(e, NL_ERR_DATA, "%s: the model has no Dense layer", path); goto done; }
    out->f.m = model_create(b.specs, b.n, b.in_size, max_batch, NULL, NULL, 0, e);
    if (!out->f.m) { st = nl_err_prefix(e, "%s", path); st = e ? e->code : NL_ERR_DATA; goto done; }
    model *m = out->f.m;
    for (int l = 0; l < b.n; l++) {
        const layer *L = &m->layers[l];
        if (L->kind != LAYER_DENSE) continue;
        memcpy(m->params + L->w_off, b.kern[l], (size_t)L->in_size * L->out_size * sizeof(float));
        if (b.bias[l]) memcpy(m->params + L->b_off, b.bias[l], (size_t)L->out_size * sizeof(float));
        else memset(m->params + L->b_off, 0, (size_t)L->out_size * sizeof(float));
    }
    memcpy(m->weff, m->params, (size_t)m->n_params * sizeof(float));
    /* input/output formats along the chain, as hls4ml_fpga_layers sees them */
    fixed_spec cur = {1, 5, 10, FX_WRAP, FX_TRN};
    for (int l = 0; l < b.n; l++) {
        if (b.specs[l].kind == LAYER_QUANT) { cur = b.specs[l].quant; continue; }
        if (b.specs[l].kind != LAYER_DENSE) continue;
        b.info[l].in = cur;
        b.info[l].out = (fixed_spec){1, 5, 10, FX_WRAP, FX_TRN};
        if (l + 1 < b.n && b.specs[l + 1].kind == LAYER_QUANT) b.info[l].out = b.specs[l + 1].quant;
        cur = b.info[l].out;
    }
    out->f.specs = b.specs; b.specs = NULL;
    out->f.n_specs = b.n;
    out->f.info = b.info; b.info = NULL;
    out->f.in_size = b.in_size;
    out->f.out_size = m->out_size;
    out->softmax = b.softmax;
    snprintf(out->softmax_name, sizeof out->softmax_name, "%s", b.softmax_name);
    out->from_keras = 1;
done:
    for (int i = 0; i < b.cap; i++) { if (b.kern) free(b.kern[i]); if (b.bias) free(b.bias[i]); }
    free(b.kern); free(b.bias); free(b.specs); free(b.info);
    free(cfgtext);
    json_free(root);
    if (b.wroot >= 0) H5Gclose(b.wroot);
    H5Fclose(f);
    if (st) keras_net_free(out);
    return st;
}

nl_status keras_net_load(const char *path, int max_batch, keras_net *out, nl_error *e) {
    if (keras_is_keras_file(path)) return keras_load(path, max_batch, out, e);
    memset(out, 0, sizeof *out);
    nl_status st = modelio_load(path, max_batch, &out->f, e);
    if (st) return st;
    snprintf(out->input_name, sizeof out->input_name, "%s", "input_1");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        char *a = NULL;
        if (mio_has(f, "output_activation") && !mio_get_str(f, "output_activation", &a, path, "/", NULL) &&
            !strcmp(a, "softmax")) {
            out->softmax = 1;
            snprintf(out->softmax_name, sizeof out->softmax_name, "%s", "softmax");
            if (mio_has(f, "output_activation_name")) {
                char *nm = NULL;
                if (!mio_get_str(f, "output_activation_name", &nm, path, "/", NULL) && strlen(nm) < 64)
                    snprintf(out->softmax_name, sizeof out->softmax_name, "%s", nm);
                free(nm);
            }
        }
        free(a);
        if (mio_has(f, "input_name")) {
            char *nm = NULL;
            if (!mio_get_str(f, "input_name", &nm, path, "/", NULL) && strlen(nm) < 64 && nm[0])
                snprintf(out->input_name, sizeof out->input_name, "%s", nm);
            free(nm);
        }
        H5Fclose(f);
    }
    return NL_OK;
}
