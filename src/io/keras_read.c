/* keras_read.c — a Keras 2 / tf.keras HDF5 model (model.save()) with
 * QKeras layers into a keras_net: layer specs, a model whose params ==
 * weff == the (quantized) weights, per-layer formats, a final softmax.
 * Only sequential chains (Dense, Conv1D/2D, pooling, BatchNorm, Flatten,
 * activations; channels_last); anything else is an error naming the layer,
 * its class and what is supported.
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

#define KR_SUPPORTED "InputLayer, Dense, QDense, Conv1D, Conv2D, QConv1D, QConv2D, MaxPooling1D/2D, " \
                     "AveragePooling1D/2D, BatchNormalization, QBatchNormalization, Activation (relu, softmax, " \
                     "linear, tanh, sigmoid, hard_tanh, leaky_relu), ReLU, LeakyReLU, Softmax, QActivation " \
                     "(quantized_bits, quantized_relu), Dropout, Flatten"

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
        char exp[96] = "";
        for (int i = 0, u = 0; i < rank && i < 4; i++)
            u += snprintf(exp + u, sizeof exp - (size_t)u, "%s%ld", i ? ", " : "", want[i]);
        st = nl_err(e, NL_ERR_DATA, "%s: layer '%s': %s '%s' has shape (%s), expected (%s) from the layer's "
                    "input shape and config", file, layer, what, dpath, got, exp);
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
    if (!strcmp(c.name, "quantized_tanh")) {
        /* QKeras: round(t(x) 2^(bits-1)) / 2^(bits-1) clipped to [-1, 1 - 2^-(bits-1)], t = hard_tanh
         * (2 hard_sigmoid(x) - 1 = clip(x, -1, 1); hls4ml builds a HardActivation) or tanh with
         * use_real_tanh. With integer > 0 the input is scaled: not a plain activation. */
        bits_s = call_get(&c, "bits", 0);
        int_s = call_get(&c, "integer", 1);
        const char *sym = call_get(&c, "symmetric", 2), *real = call_get(&c, "use_real_tanh", 4);
        int bits = bits_s ? atoi(bits_s) : 8, integer = int_s ? atoi(int_s) : 0;
        if (bits < 2 || bits > 32 || integer != 0)
            return nl_err(e, NL_ERR_DATA, "quantized_tanh(bits=%d, integer=%d) is not supported (bits 2..32, "
                          "integer 0)", bits, integer);
        *out = (fixed_spec){1, 0, bits - 1, truthy(sym) ? FX_SAT_SYM : FX_SAT, FX_RND_CONV};
        *relu = truthy(real) ? 3 : 2;
        return NL_OK;
    }
    return nl_err(e, NL_ERR_DATA, "quantizer '%s' is not supported (quantized_bits, quantized_relu, quantized_tanh)",
                  c.name);
}

/* ---- the model ------------------------------------------------------------ */

typedef struct {
    const char *file;
    hid_t wroot;            /* model_weights, or the root for weights-only layouts */
    layer_spec *specs; modelio_layer_info *info;
    float **kern, **bias;   /* per spec: DENSE/CONV kernel and bias; BATCHNORM gamma and beta */
    float **stat;           /* per spec, BATCHNORM: moving mean (C) then moving variance (C) */
    int n, cap;
    int size;               /* features flowing out of the last layer */
    int h, w, c;            /* their shape (channels last; flat: 1, 1, size; 1-D: 1, steps, C) */
    int spatial;            /* 1: the Keras tensor has more than one axis (a Flatten is real) */
    int in_size;            /* the model input's features */
    int in_h, in_w, in_c, in_spatial;
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

static void set_flat(builder *b, int n) {
    b->size = n;
    b->h = b->w = 1;
    b->c = n;
    b->spatial = 0;
}

static nl_status add_quant(builder *b, const char *lname, const json *q, const char *suffix, nl_error *e) {
    fixed_spec s;
    int relu;
    if (keras_parse_quantizer(q, &s, &relu, e)) return nl_err_prefix(e, "%s: layer '%s'", b->file, lname);
    /* quantized_relu: RELU + QUANT; quantized_tanh: HARD_TANH (TANH with use_real_tanh) + QUANT */
    if (relu) push(b, relu == 1 ? LAYER_RELU : relu == 2 ? (layer_kind)LAYER_HARD_TANH : (layer_kind)LAYER_TANH, lname,
                   suffix ? suffix : NULL);
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
    static const struct { const char *name; int kind; } acts[] = {
        {"relu", LAYER_RELU}, {"tanh", LAYER_TANH}, {"sigmoid", LAYER_SIGMOID},
        {"hard_tanh", LAYER_HARD_TANH}, {"leaky_relu", LAYER_LEAKY_RELU}};
    if (!strcmp(a, "linear")) return NL_OK;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        if (strcmp(a, acts[i].name)) continue;
        char suf[16];
        snprintf(suf, sizeof suf, "_%s", a);
        layer_spec *s = push(b, (layer_kind)acts[i].kind, lname, own_layer ? NULL : suf);
        s->alpha = 0.2f;  /* keras.activations.leaky_relu's default negative_slope */
        return NL_OK;
    }
    if (!strcmp(a, "softmax")) {
        b->softmax = 1;
        snprintf(b->softmax_name, sizeof b->softmax_name, "%s%s", lname, own_layer ? "" : "_softmax");
        return NL_OK;
    }
    return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): activation '%s' is not supported (relu, softmax, linear, "
                  "tanh, sigmoid, hard_tanh, leaky_relu)", b->file, lname, cls, a);
}

/* data_format must be channels_last (nnlo-c and hls4ml's io_parallel default). */
static nl_status channels_last(builder *b, const char *lname, const char *cls, const json *cfg, nl_error *e) {
    const char *df = json_str(cfg, "data_format", NULL);
    if (df && strcmp(df, "channels_last"))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): data_format '%s' is not supported; nnlo-c reads "
                      "channels_last models only (rebuild the model with data_format='channels_last')",
                      b->file, lname, cls, df);
    return NL_OK;
}

/* A number or a list of `dims` numbers (kernel_size, strides, pool_size). */
static int get_pair(const json *cfg, const char *key, int dims, int dflt, int out[2]) {
    const json *v = json_get(cfg, key);
    out[0] = out[1] = dflt;
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type == JSON_NUM) { out[0] = out[1] = (int)v->num; return 0; }
    if (v->type != JSON_ARR) return -1;
    int i = 0;
    for (const json *d = v->child; d; d = d->next, i++) {
        if (i >= dims || d->type != JSON_NUM) return -1;
        out[i] = (int)d->num;
    }
    return i == dims ? 0 : -1;
}

/* padding "valid" / "same" into *p; anything else is an error. */
static nl_status get_padding(builder *b, const char *lname, const char *cls, const json *cfg, pad_mode *p,
                             nl_error *e) {
    const char *pd = json_str(cfg, "padding", "valid");
    if (!strcmp(pd, "valid")) *p = PAD_VALID;
    else if (!strcmp(pd, "same")) *p = PAD_SAME;
    else return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): padding '%s' is not supported (valid, same)", b->file,
                       lname, cls, pd);
    return NL_OK;
}

/* The spatial shape the layer receives: 1-D layers need (1, steps, C). */
static nl_status need_shape(builder *b, const char *lname, const char *cls, int d1, nl_error *e) {
    if (b->size < 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the input shape is unknown (no InputLayer or "
                      "batch_input_shape before it)", b->file, lname, cls);
    if (d1 && b->h != 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s) needs (steps, channels) input but receives (%d, %d, %d)",
                      b->file, lname, cls, b->h, b->w, b->c);
    if (!b->spatial)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s) needs (rows, cols, channels) input but receives a flat "
                      "vector of %d", b->file, lname, cls, b->size);
    return NL_OK;
}

/* Dense, QDense, Conv1D/2D, QConv1D/2D: spec s (already pushed at index
 * idx), kernel of rank krank and shape kd, bias of cols; quantizers and
 * the exact types an nnlo-c export carries. */
static nl_status read_kernel_layer(builder *b, const char *lname, const char *cls, const json *cfg, int idx,
                                   int krank, const long *kd, int cols, nl_error *e) {
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
    long bd[1] = {cols}, nk = 1;
    for (int i = 0; i < krank; i++) nk *= kd[i];
    if (!kp[0])
        st = nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the kernel is missing (no weight named '*kernel*' in "
                    "model_weights/%s)", b->file, lname, cls, lname);
    if (!st) st = read_weights(g, kp, krank, kd, &b->kern[idx], b->file, lname, "kernel", e);
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
        if (kq && kq->type != JSON_NULL) fixed_quantize_array(&wq, b->kern[idx], b->kern[idx], NULL, nk);
        if (bq && bq->type != JSON_NULL && b->bias[idx]) fixed_quantize_array(&bqs, b->bias[idx], b->bias[idx], NULL, cols);
    }
    return NL_OK;
}

static nl_status add_dense(builder *b, const char *lname, const char *cls, const json *cfg, nl_error *e) {
    int units = (int)json_num(cfg, "units", -1);
    if (units < 1) return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): config lacks 'units' (>= 1)", b->file, lname, cls);
    if (b->size < 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the input size is unknown (no InputLayer or "
                      "batch_input_shape before it)", b->file, lname, cls);
    if (b->spatial)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s) receives a (%d, %d, %d) tensor: Keras applies it to the "
                      "last axis only, which nnlo-c does not model; add a Flatten before it", b->file, lname, cls,
                      b->h, b->w, b->c);
    int idx = b->n;
    layer_spec *s = push(b, LAYER_DENSE, lname, NULL);
    s->units = units;
    long kd[2] = {b->size, units};
    nl_status st = read_kernel_layer(b, lname, cls, cfg, idx, 2, kd, units, e);
    if (st) return st;
    set_flat(b, units);
    return add_activation(b, lname, cls, json_get(cfg, "activation"), 0, e);
}

static nl_status add_conv(builder *b, const char *lname, const char *cls, const json *cfg, int d1, nl_error *e) {
    nl_status st = channels_last(b, lname, cls, cfg, e);
    if (!st) st = need_shape(b, lname, cls, d1, e);
    if (st) return st;
    int dims = d1 ? 1 : 2, ks[2], sd[2], dil[2];
    int filters = (int)json_num(cfg, "filters", -1);
    if (filters < 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): config lacks 'filters' (>= 1)", b->file, lname, cls);
    if (get_pair(cfg, "kernel_size", dims, -1, ks) || ks[0] < 1 || (!d1 && ks[1] < 1) ||
        get_pair(cfg, "strides", dims, 1, sd) || sd[0] < 1 || (!d1 && sd[1] < 1))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): kernel_size and strides must be %d positive number%s",
                      b->file, lname, cls, dims, d1 ? "" : "s");
    if (get_pair(cfg, "dilation_rate", dims, 1, dil) || dil[0] != 1 || (!d1 && dil[1] != 1))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): dilation_rate other than 1 is not supported", b->file,
                      lname, cls);
    if (json_num(cfg, "groups", 1) != 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): groups other than 1 is not supported", b->file, lname, cls);
    pad_mode pad;
    if ((st = get_padding(b, lname, cls, cfg, &pad, e))) return st;
    int kh = d1 ? 1 : ks[0], kw = d1 ? ks[0] : ks[1], sh = d1 ? 1 : sd[0], sw = d1 ? sd[0] : sd[1];
    conv_geom g;
    if (conv_geom_init(&g, b->h, b->w, b->c, filters, kh, kw, sh, sw, pad))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): a %d x %d window with valid padding does not fit the "
                      "(%d, %d, %d) input", b->file, lname, cls, kh, kw, b->h, b->w, b->c);
    int idx = b->n;
    layer_spec *s = push(b, d1 ? (layer_kind)LAYER_CONV1D : (layer_kind)LAYER_CONV2D, lname, NULL);
    s->filters = filters;
    s->kernel[0] = ks[0]; s->kernel[1] = d1 ? 0 : ks[1];
    s->strides[0] = sd[0]; s->strides[1] = d1 ? 0 : sd[1];
    s->padding = pad;
    long kd4[4] = {kh, kw, b->c, filters}, kd3[3] = {kw, b->c, filters};
    st = read_kernel_layer(b, lname, cls, cfg, idx, d1 ? 3 : 4, d1 ? kd3 : kd4, filters, e);
    if (st) return st;
    b->h = g.oh; b->w = g.ow; b->c = filters;
    b->size = g.oh * g.ow * filters;
    b->spatial = 1;
    return add_activation(b, lname, cls, json_get(cfg, "activation"), 0, e);
}

static nl_status add_pool(builder *b, const char *lname, const char *cls, const json *cfg, int d1, int avg,
                          nl_error *e) {
    nl_status st = channels_last(b, lname, cls, cfg, e);
    if (!st) st = need_shape(b, lname, cls, d1, e);
    if (st) return st;
    int dims = d1 ? 1 : 2, ps[2], sd[2];
    if (get_pair(cfg, "pool_size", dims, 2, ps) || ps[0] < 1 || (!d1 && ps[1] < 1))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): pool_size must be %d positive number%s", b->file, lname,
                      cls, dims, d1 ? "" : "s");
    if (get_pair(cfg, "strides", dims, 0, sd) || sd[0] < 0 || (!d1 && sd[1] < 0))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): strides must be null or %d positive number%s", b->file,
                      lname, cls, dims, d1 ? "" : "s");
    if (sd[0] == 0) { sd[0] = ps[0]; sd[1] = ps[1]; }  /* Keras: strides default to pool_size */
    pad_mode pad;
    if ((st = get_padding(b, lname, cls, cfg, &pad, e))) return st;
    int kh = d1 ? 1 : ps[0], kw = d1 ? ps[0] : ps[1], sh = d1 ? 1 : sd[0], sw = d1 ? sd[0] : sd[1];
    conv_geom g;
    if (conv_geom_init(&g, b->h, b->w, b->c, b->c, kh, kw, sh, sw, pad))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): a %d x %d window with valid padding does not fit the "
                      "(%d, %d, %d) input", b->file, lname, cls, kh, kw, b->h, b->w, b->c);
    int kind = d1 ? (avg ? LAYER_AVGPOOL1D : LAYER_MAXPOOL1D) : (avg ? LAYER_AVGPOOL2D : LAYER_MAXPOOL2D);
    layer_spec *s = push(b, (layer_kind)kind, lname, NULL);
    s->pool[0] = ps[0]; s->pool[1] = d1 ? 0 : ps[1];
    s->strides[0] = sd[0]; s->strides[1] = d1 ? 0 : sd[1];
    s->padding = pad;
    b->h = g.oh; b->w = g.ow;
    b->size = g.oh * g.ow * b->c;
    b->spatial = 1;
    return NL_OK;
}

/* BatchNormalization / QBatchNormalization over the last axis. QKeras's
 * gamma/beta/mean/variance quantizers are applied to the values on import
 * (what QKeras computes with); the layer itself stays a float BatchNorm. */
static nl_status add_batchnorm(builder *b, const char *lname, const char *cls, const json *cfg, nl_error *e) {
    if (b->size < 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the input shape is unknown (no InputLayer or "
                      "batch_input_shape before it)", b->file, lname, cls);
    const json *ax = json_get(cfg, "axis");
    const json *a0 = ax && ax->type == JSON_ARR ? ax->child : ax;
    int rank = b->h > 1 ? 3 : b->w > 1 ? 2 : 1;  /* rank of the Keras tensor without the batch */
    if (a0 && (a0->type != JSON_NUM || (a0->num != -1 && a0->num != rank) || (ax->type == JSON_ARR && a0->next)))
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): only axis -1 (the channels, last) is supported", b->file,
                      lname, cls);
    const json *jc = json_get(cfg, "center"), *js = json_get(cfg, "scale");
    int center = !jc || jc->type != JSON_BOOL || jc->num != 0, scale = !js || js->type != JSON_BOOL || js->num != 0;
    int C = b->c;
    int idx = b->n;
    layer_spec *s = push(b, (layer_kind)LAYER_BATCHNORM, lname, NULL);
    s->epsilon = (float)json_num(cfg, "epsilon", 1e-3);
    s->momentum = (float)json_num(cfg, "momentum", 0.99);
    if (H5Lexists(b->wroot, lname, H5P_DEFAULT) <= 0)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): no weights (the group model_weights/%s is missing)",
                      b->file, lname, cls, lname);
    hid_t g = H5Gopen2(b->wroot, lname, H5P_DEFAULT);
    char **names = NULL;
    int nn = 0;
    attr_strings(g, "weight_names", &names, &nn);
    static const char *const what[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    static const char *const qname[4] = {"gamma_quantizer", "beta_quantizer", "mean_quantizer", "variance_quantizer"};
    float *v[4] = {NULL, NULL, NULL, NULL};
    long cd[1] = {C};
    nl_status st = NL_OK;
    for (int k = 0; !st && k < 4; k++) {
        if ((k == 0 && !scale) || (k == 1 && !center)) continue;
        char wp[512];
        weight_path(g, names, nn, what[k], wp, sizeof wp);
        if (!wp[0])
            st = nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the %s is missing (no weight named '%s*' in "
                        "model_weights/%s)", b->file, lname, cls, what[k], what[k], lname);
        else
            st = read_weights(g, wp, 1, cd, &v[k], b->file, lname, what[k], e);
        const json *q = json_get(cfg, qname[k]);
        if (!st && q && q->type != JSON_NULL) {
            fixed_spec fs;
            int relu;
            if (keras_parse_quantizer(q, &fs, &relu, e))
                st = nl_err_prefix(e, "%s: layer '%s' (%s): %s", b->file, lname, cls, qname[k]);
            else
                fixed_quantize_array(&fs, v[k], v[k], NULL, C);
        }
    }
    free_strings(names, nn);
    H5Gclose(g);
    if (!st) {
        b->kern[idx] = v[0] ? v[0] : malloc((size_t)C * sizeof(float));
        b->bias[idx] = v[1] ? v[1] : calloc((size_t)C, sizeof(float));
        b->stat[idx] = malloc((size_t)2 * C * sizeof(float));
        v[0] = v[1] = NULL;
        if (!b->kern[idx] || !b->bias[idx] || !b->stat[idx]) st = nl_err(e, NL_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        if (!scale) for (int ch = 0; ch < C; ch++) b->kern[idx][ch] = 1.0f;
        memcpy(b->stat[idx], v[2], (size_t)C * sizeof(float));
        memcpy(b->stat[idx] + C, v[3], (size_t)C * sizeof(float));
    }
    for (int k = 0; k < 4; k++) free(v[k]);
    return st;
}

/* batch_input_shape / batch_shape [null, d...] -> (h, w, c); 0 if absent, -1 if malformed. */
static int shape_dims(const json *shape, int *h, int *w, int *c, int *nd) {
    if (!shape || shape->type != JSON_ARR) return 0;
    long d[4];
    int n = 0;
    const json *x = shape->child;
    if (!x) return -1;
    for (x = x->next; x; x = x->next) {
        if (n >= 3 || x->type != JSON_NUM || x->num < 1 || x->num > 1e8) return -1;
        d[n++] = (long)x->num;
    }
    if (n == 0) return -1;
    *h = n == 3 ? (int)d[0] : 1;
    *w = n == 3 ? (int)d[1] : n == 2 ? (int)d[0] : 1;
    *c = (int)d[n - 1];
    *nd = n;
    return (long)*h * *w * *c > 100000000 ? -1 : 1;
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
    if (!lname || !lname[0] || strlen(lname) > 52)
        return nl_err(e, NL_ERR_DATA, "%s: model_config: layer %d (%s) has no name or one longer than 52 characters",
                      b->file, index, cls);
    if (b->softmax)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s) follows the softmax '%s'; nnlo-c supports softmax only "
                      "as the last layer", b->file, lname, cls, b->softmax_name);
    int h = 1, w = 1, c = 0, nd = 0;
    int sr = shape_dims(json_get(cfg, "batch_input_shape"), &h, &w, &c, &nd);
    if (sr == 0) sr = shape_dims(json_get(cfg, "batch_shape"), &h, &w, &c, &nd);
    if (sr < 0)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): batch_input_shape must be [null, d1, ...] with 1 to 3 "
                      "positive sizes", b->file, lname, cls);
    if (sr > 0 && b->size < 1) {
        b->h = b->in_h = h; b->w = b->in_w = w; b->c = b->in_c = c;
        b->size = b->in_size = h * w * c;
        b->spatial = b->in_spatial = nd > 1;
    }
    if (!strcmp(cls, "InputLayer")) {
        if (sr < 1)
            return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (InputLayer): config lacks batch_input_shape", b->file, lname);
        snprintf(input_name, 64, "%s", lname);
        return NL_OK;
    }
    if (!strcmp(cls, "Dropout")) return NL_OK;  /* identity at inference; hls4ml skips it too */
    if (!strcmp(cls, "Dense") || !strcmp(cls, "QDense")) return add_dense(b, lname, cls, cfg, e);
    if (!strcmp(cls, "Conv1D") || !strcmp(cls, "QConv1D")) return add_conv(b, lname, cls, cfg, 1, e);
    if (!strcmp(cls, "Conv2D") || !strcmp(cls, "QConv2D")) return add_conv(b, lname, cls, cfg, 0, e);
    if (!strcmp(cls, "MaxPooling1D") || !strcmp(cls, "MaxPool1D")) return add_pool(b, lname, cls, cfg, 1, 0, e);
    if (!strcmp(cls, "MaxPooling2D") || !strcmp(cls, "MaxPool2D")) return add_pool(b, lname, cls, cfg, 0, 0, e);
    if (!strcmp(cls, "AveragePooling1D") || !strcmp(cls, "AvgPool1D")) return add_pool(b, lname, cls, cfg, 1, 1, e);
    if (!strcmp(cls, "AveragePooling2D") || !strcmp(cls, "AvgPool2D")) return add_pool(b, lname, cls, cfg, 0, 1, e);
    if (!strcmp(cls, "BatchNormalization") || !strcmp(cls, "QBatchNormalization")) return add_batchnorm(b, lname, cls, cfg, e);
    if (b->size < 1)
        return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (%s): the input size is unknown (no InputLayer or "
                      "batch_input_shape before it)", b->file, lname, cls);
    if (!strcmp(cls, "Flatten")) {
        nl_status st = channels_last(b, lname, cls, cfg, e);
        if (st) return st;
        if (b->spatial) push(b, (layer_kind)LAYER_FLATTEN, lname, NULL);  /* flat already: nothing */
        set_flat(b, b->size);
        return NL_OK;
    }
    if (!strcmp(cls, "Activation")) return add_activation(b, lname, cls, json_get(cfg, "activation"), 1, e);
    if (!strcmp(cls, "Softmax")) {
        b->softmax = 1;
        snprintf(b->softmax_name, sizeof b->softmax_name, "%s", lname);
        return NL_OK;
    }
    if (!strcmp(cls, "LeakyReLU")) {
        /* Keras 2: alpha (default 0.3); Keras 3: negative_slope (default 0.3) */
        layer_spec *s = push(b, (layer_kind)LAYER_LEAKY_RELU, lname, NULL);
        s->alpha = (float)json_num(cfg, "alpha", json_num(cfg, "negative_slope", 0.3));
        return NL_OK;
    }
    if (!strcmp(cls, "ReLU")) {
        const json *mv = json_get(cfg, "max_value");
        if ((mv && mv->type != JSON_NULL) || json_num(cfg, "threshold", 0) != 0)
            return nl_err(e, NL_ERR_DATA, "%s: layer '%s' (ReLU): max_value and threshold must be unset (plain or "
                          "leaky relu only)", b->file, lname);
        double ns = json_num(cfg, "negative_slope", 0);
        layer_spec *s = push(b, ns != 0 ? (layer_kind)LAYER_LEAKY_RELU : LAYER_RELU, lname, NULL);
        s->alpha = (float)ns;
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
    b.cap = 3 * nk + 2;  /* a Keras layer gives at most 3 specs (QDense + quantized_relu: dense, relu, quant) */
    b.specs = calloc((size_t)b.cap, sizeof *b.specs);
    b.info = calloc((size_t)b.cap, sizeof *b.info);
    b.kern = calloc((size_t)b.cap, sizeof *b.kern);
    b.bias = calloc((size_t)b.cap, sizeof *b.bias);
    b.stat = calloc((size_t)b.cap, sizeof *b.stat);
    if (!b.specs || !b.info || !b.kern || !b.bias || !b.stat) { st = nl_err(e, NL_ERR_NOMEM, "out of memory"); goto done; }
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
    for (int i = 0; i < b.n; i++) has_dense |= layer_has_kernel((int)b.specs[i].kind);
    if (!has_dense) { st = nl_err(e, NL_ERR_DATA, "%s: the model has no Dense or Conv layer", path); goto done; }
    if (b.in_h > 1 || b.in_w > 1 || b.in_spatial) {  /* a spatial input: the first layer carries its shape */
        b.specs[0].in_shape[0] = b.in_h;
        b.specs[0].in_shape[1] = b.in_w;
        b.specs[0].in_shape[2] = b.in_c;
    }
    out->f.m = model_create(b.specs, b.n, b.in_size, max_batch, NULL, NULL, 0, e);
    if (!out->f.m) { st = nl_err_prefix(e, "%s", path); st = e ? e->code : NL_ERR_DATA; goto done; }
    model *m = out->f.m;
    for (int l = 0; l < b.n; l++) {
        const layer *L = &m->layers[l];
        if ((int)L->kind == LAYER_BATCHNORM) {
            int C = L->out_c;
            memcpy(m->params + L->w_off, b.kern[l], (size_t)C * sizeof(float));
            memcpy(m->params + L->b_off, b.bias[l], (size_t)C * sizeof(float));
            memcpy(m->state + L->s_off, b.stat[l], (size_t)2 * C * sizeof(float));
            continue;
        }
        if (!layer_has_kernel((int)L->kind)) continue;
        int rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
        memcpy(m->params + L->w_off, b.kern[l], (size_t)rows * cols * sizeof(float));
        if (b.bias[l]) memcpy(m->params + L->b_off, b.bias[l], (size_t)cols * sizeof(float));
        else memset(m->params + L->b_off, 0, (size_t)cols * sizeof(float));
    }
    memcpy(m->weff, m->params, (size_t)m->n_params * sizeof(float));
    /* input/output formats along the chain, as hls4ml_fpga_layers sees them */
    fixed_spec cur = {1, 5, 10, FX_WRAP, FX_TRN};
    for (int l = 0; l < b.n; l++) {
        if (b.specs[l].kind == LAYER_QUANT) { cur = b.specs[l].quant; continue; }
        if (!layer_has_kernel((int)b.specs[l].kind)) continue;
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
    for (int i = 0; i < b.cap; i++) {
        if (b.kern) free(b.kern[i]);
        if (b.bias) free(b.bias[i]);
        if (b.stat) free(b.stat[i]);
    }
    free(b.kern); free(b.bias); free(b.stat); free(b.specs); free(b.info);
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
