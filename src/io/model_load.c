/* model_load.c — modelio_load / modelio_free: a model file back into a
 * layer_spec list (every kind nn has, the input shape and reshapes), a
 * model (params == weff == stored values, state == stored BatchNorm moving
 * statistics), per-layer masks and formats, the trial config and metrics.
 * Every missing or mis-shaped item is an error naming the file and the
 * HDF5 object; a format_version newer than this build reads is refused.
 * Never guesses: sizes and shapes stored in the file must match the
 * rebuilt model. Files from before the spatial kinds (no shapes) load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/h5util.h"
#include "io/io_internal.h"
#include "nnlo/modelio.h"

typedef struct {
    char **names;   /* group names under /layers */
    int n, cap;
} name_list;

static herr_t collect_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g; (void)info;
    name_list *l = data;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->names, (size_t)cap * sizeof *p);
        if (!p) return -1;
        l->names = p; l->cap = cap;
    }
    l->names[l->n] = str_dup(name);
    if (!l->names[l->n]) return -1;
    l->n++;
    return 0;
}

static void free_names(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
}

static nl_status get_format(hid_t g, const char *pre, fixed_spec *s, const char *file,
                            const char *where, nl_error *e) {
    char n[64];
    char *ov = NULL, *rd = NULL;
    nl_status st;
    snprintf(n, sizeof n, "%s_k", pre);
    if ((st = mio_get_int(g, n, &s->k, file, where, e))) return st;
    snprintf(n, sizeof n, "%s_i", pre);
    if ((st = mio_get_int(g, n, &s->i, file, where, e))) return st;
    snprintf(n, sizeof n, "%s_f", pre);
    if ((st = mio_get_int(g, n, &s->f, file, where, e))) return st;
    snprintf(n, sizeof n, "%s_overflow", pre);
    if ((st = mio_get_str(g, n, &ov, file, where, e))) return st;
    snprintf(n, sizeof n, "%s_rounding", pre);
    if ((st = mio_get_str(g, n, &rd, file, where, e))) { free(ov); return st; }
    if (mio_overflow_parse(ov, &s->overflow))
        st = nl_err(e, NL_ERR_DATA, "%s: %s: %s_overflow is '%s'; expected SAT, SAT_SYM, WRAP or WRAP_SM",
                    file, where, pre, ov);
    else if (mio_round_parse(rd, &s->round))
        st = nl_err(e, NL_ERR_DATA, "%s: %s: %s_rounding is '%s'; expected RND, TRN, RND_CONV, "
                    "RND_ZERO, RND_MIN_INF, RND_INF or TRN_ZERO", file, where, pre, rd);
    else if (s->k < 0 || s->k > 1)
        st = nl_err(e, NL_ERR_DATA, "%s: %s: %s_k is %d; the sign bit must be 0 or 1", file, where, pre, s->k);
    free(ov); free(rd);
    return st;
}

/* Reads a float dataset of exactly the given shape into dst. */
static nl_status get_array(hid_t g, const char *name, int rank, const hsize_t *want, float *dst,
                           const char *file, const char *where, nl_error *e) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0)
        return nl_err(e, NL_ERR_DATA, "%s: %s lacks the dataset '%s'", file, where, name);
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return nl_err(e, NL_ERR_DATA, "%s: %s/%s is not a dataset", file, where, name);
    hid_t s = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(s);
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (r > 0 && r <= H5S_MAX_RANK) H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    int ok = r == rank;
    for (int i = 0; ok && i < rank; i++) ok = dims[i] == want[i];
    nl_status st = NL_OK;
    if (!ok) {
        char got[96] = "", exp[96] = "";
        for (int i = 0, u = 0; i < r && i < 4; i++)
            u += snprintf(got + u, sizeof got - (size_t)u, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        for (int i = 0, u = 0; i < rank; i++)
            u += snprintf(exp + u, sizeof exp - (size_t)u, "%s%llu", i ? ", " : "", (unsigned long long)want[i]);
        st = nl_err(e, NL_ERR_DATA, "%s: %s/%s has shape (%s), expected (%s)", file, where, name, got, exp);
    } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        char he[300];
        h5u_errstr(he, sizeof he);
        st = nl_err(e, NL_ERR_DATA, "%s: %s/%s cannot be read as float32 numbers%s%s", file, where,
                    name, he[0] ? ": " : "", he);
    }
    H5Dclose(d);
    return st;
}

/* A 1-D integer attribute of exactly n values into v. */
static nl_status get_ints(hid_t g, const char *name, int n, int *v, const char *file,
                          const char *where, nl_error *e) {
    if (H5Aexists(g, name) <= 0)
        return nl_err(e, NL_ERR_DATA, "%s: %s lacks the attribute '%s'", file, where, name);
    hid_t a = H5Aopen(g, name, H5P_DEFAULT);
    if (a < 0) return nl_err(e, NL_ERR_DATA, "%s: %s: cannot open the attribute '%s'", file, where, name);
    hid_t s = H5Aget_space(a), t = H5Aget_type(a);
    hssize_t np = H5Sget_simple_extent_npoints(s);
    H5T_class_t c = H5Tget_class(t);
    H5Sclose(s);
    H5Tclose(t);
    nl_status st = NL_OK;
    if (np != n)
        st = nl_err(e, NL_ERR_DATA, "%s: %s: attribute '%s' holds %lld values, expected %d", file,
                    where, name, (long long)np, n);
    else if (c != H5T_INTEGER || H5Aread(a, H5T_NATIVE_INT, v) < 0)
        st = nl_err(e, NL_ERR_DATA, "%s: %s: attribute '%s' is not %d integer(s)", file, where, name, n);
    H5Aclose(a);
    return st;
}

/* A float hyperparameter stored as a number. */
static nl_status get_float(hid_t g, const char *name, float *v, const char *file, const char *where,
                           nl_error *e) {
    double d;
    nl_status st = mio_get_double(g, name, &d, file, where, e);
    if (!st) *v = (float)d;
    return st;
}

static int kind_from_name(const char *s) {
    for (int k = 0; k < LAYER_KIND_COUNT; k++)
        if (layer_kind_name(k) && !strcmp(s, layer_kind_name(k))) return k;
    return -1;
}

static int is_1d(int kind) {
    return kind == LAYER_CONV1D || kind == LAYER_MAXPOOL1D || kind == LAYER_AVGPOOL1D;
}

/* kernel_size / pool_size, strides and padding of a CONV or POOL layer. */
static nl_status get_window(hid_t g, int kind, const char *win_name, int *win, layer_spec *sp,
                            const char *file, const char *where, nl_error *e) {
    int n = is_1d(kind) ? 1 : 2;
    char *pad = NULL;
    nl_status st = get_ints(g, win_name, n, win, file, where, e);
    if (!st) st = get_ints(g, "strides", n, sp->strides, file, where, e);
    if (!st) st = mio_get_str(g, "padding", &pad, file, where, e);
    if (st) return st;
    if (!strcmp(pad, "valid")) sp->padding = PAD_VALID;
    else if (!strcmp(pad, "same")) sp->padding = PAD_SAME;
    else st = nl_err(e, NL_ERR_DATA, "%s: %s: padding is '%s'; expected valid or same", file, where, pad);
    free(pad);
    return st;
}

static nl_status get_formats(hid_t g, modelio_layer_info *info, const char *file, const char *where,
                             nl_error *e) {
    int q = 0;
    nl_status st = NL_OK;
    if (mio_has(g, "quantized")) st = mio_get_int(g, "quantized", &q, file, where, e);
    info->quantized = q != 0;
    if (!st && q) st = get_format(g, "weight", &info->w, file, where, e);
    if (!st && q) st = get_format(g, "bias", &info->b, file, where, e);
    if (!st && q) st = get_format(g, "input", &info->in, file, where, e);
    if (!st && q) st = get_format(g, "output", &info->out, file, where, e);
    return st;
}

/* Layer l's group, its spec and its stored sizes. */
static nl_status read_spec(hid_t g, const char *file, const char *where, layer_spec *sp,
                           modelio_layer_info *info, int *in_size, int *out_size, nl_error *e) {
    char *kind = NULL, *name = NULL;
    nl_status st = mio_get_str(g, "kind", &kind, file, where, e);
    if (!st) st = mio_get_str(g, "name", &name, file, where, e);
    if (!st) st = mio_get_int(g, "in_size", in_size, file, where, e);
    if (!st) st = mio_get_int(g, "out_size", out_size, file, where, e);
    if (st) goto done;
    if (strlen(name) >= sizeof sp->name) {
        st = nl_err(e, NL_ERR_DATA, "%s: %s: layer name '%s' is longer than 63 characters", file, where, name);
        goto done;
    }
    if (*in_size < 1 || *out_size < 1) {
        st = nl_err(e, NL_ERR_DATA, "%s: %s: in_size %d / out_size %d must be >= 1", file, where,
                    *in_size, *out_size);
        goto done;
    }
    strcpy(sp->name, name);
    const int k = kind_from_name(kind);
    sp->kind = (layer_kind)(k < 0 ? 0 : k);
    if (k == LAYER_DENSE) {
        sp->units = *out_size;
        st = get_formats(g, info, file, where, e);
    } else if (k == LAYER_CONV1D || k == LAYER_CONV2D) {
        st = mio_get_int(g, "filters", &sp->filters, file, where, e);
        if (!st) st = get_window(g, k, "kernel_size", sp->kernel, sp, file, where, e);
        if (!st) st = get_formats(g, info, file, where, e);
    } else if (k == LAYER_MAXPOOL1D || k == LAYER_MAXPOOL2D || k == LAYER_AVGPOOL1D ||
               k == LAYER_AVGPOOL2D) {
        st = get_window(g, k, "pool_size", sp->pool, sp, file, where, e);
    } else if (k == LAYER_BATCHNORM) {
        st = get_float(g, "momentum", &sp->momentum, file, where, e);
        if (!st) st = get_float(g, "epsilon", &sp->epsilon, file, where, e);
    } else if (k == LAYER_DROPOUT) {
        st = get_float(g, "rate", &sp->rate, file, where, e);
    } else if (k == LAYER_LEAKY_RELU) {
        st = get_float(g, "alpha", &sp->alpha, file, where, e);
    } else if (k == LAYER_QUANT) {
        char *ov = NULL, *rd = NULL;
        fixed_spec *q = &sp->quant;
        st = mio_get_int(g, "k", &q->k, file, where, e);
        if (!st) st = mio_get_int(g, "i", &q->i, file, where, e);
        if (!st) st = mio_get_int(g, "f", &q->f, file, where, e);
        if (!st) st = mio_get_str(g, "overflow", &ov, file, where, e);
        if (!st) st = mio_get_str(g, "rounding", &rd, file, where, e);
        if (!st && mio_overflow_parse(ov, &q->overflow))
            st = nl_err(e, NL_ERR_DATA, "%s: %s: overflow is '%s'; expected SAT, SAT_SYM, WRAP or WRAP_SM",
                        file, where, ov);
        if (!st && mio_round_parse(rd, &q->round))
            st = nl_err(e, NL_ERR_DATA, "%s: %s: rounding is '%s'; expected RND, TRN, RND_CONV, "
                        "RND_ZERO, RND_MIN_INF, RND_INF or TRN_ZERO", file, where, rd);
        free(ov); free(rd);
    } else if (k < 0) {
        char known[400] = "";
        for (int j = 0, u = 0; j < LAYER_KIND_COUNT && u < (int)sizeof known; j++)
            u += snprintf(known + u, sizeof known - (size_t)u, "%s%s", j ? ", " : "", layer_kind_name(j));
        st = nl_err(e, NL_ERR_DATA, "%s: %s: unknown layer kind '%s' (this nnlo-c knows %s); a newer "
                    "nnlo-c may read it", file, where, kind, known);
    } /* relu, flatten, tanh, sigmoid, hard_tanh: nothing more */
done:
    free(kind); free(name);
    return st;
}

/* The stored arrays of a DENSE, CONV or BATCHNORM layer l into m->params
 * (kernel, bias / gamma, beta), m->state (moving mean, moving variance)
 * and info->mask (malloc'd, kernel-shaped, optional). */
static nl_status get_layer_arrays(hid_t g, model *m, int l, modelio_layer_info *info,
                                  const char *file, const char *where, nl_error *e) {
    const layer *L = &m->layers[l];
    const int kind = (int)L->kind;
    if (kind == LAYER_BATCHNORM) {
        hsize_t cd[1] = {(hsize_t)L->out_c};
        nl_status st = get_array(g, "gamma", 1, cd, m->params + L->w_off, file, where, e);
        if (!st) st = get_array(g, "beta", 1, cd, m->params + L->b_off, file, where, e);
        if (!st) st = get_array(g, "moving_mean", 1, cd, m->state + L->s_off, file, where, e);
        if (!st) st = get_array(g, "moving_variance", 1, cd, m->state + L->s_off + L->out_c, file, where, e);
        return st;
    }
    const conv_geom *G = &L->geom;
    int cols = layer_kernel_cols(L);
    hsize_t kd[4], bd[1] = {(hsize_t)cols};
    int rank;
    if (kind == LAYER_DENSE) {
        rank = 2; kd[0] = (hsize_t)L->in_size; kd[1] = (hsize_t)cols;
    } else if (kind == LAYER_CONV1D) {
        rank = 3; kd[0] = (hsize_t)G->kw; kd[1] = (hsize_t)G->c; kd[2] = (hsize_t)cols;
    } else {
        rank = 4; kd[0] = (hsize_t)G->kh; kd[1] = (hsize_t)G->kw; kd[2] = (hsize_t)G->c;
        kd[3] = (hsize_t)cols;
    }
    nl_status st = get_array(g, "kernel", rank, kd, m->params + L->w_off, file, where, e);
    if (!st) st = get_array(g, "bias", 1, bd, m->params + L->b_off, file, where, e);
    if (!st && H5Lexists(g, "mask", H5P_DEFAULT) > 0) {
        float *mask = malloc((size_t)layer_kernel_rows(L) * (size_t)cols * sizeof *mask);
        if (!mask) return nl_err(e, NL_ERR_NOMEM, "out of memory");
        info->mask = mask;
        st = get_array(g, "mask", rank, kd, mask, file, where, e);
    }
    return st;
}

typedef struct { modelio_file *f; const char *file; nl_error *e; nl_status st; } metric_ctx;

static herr_t metric_cb(hid_t obj, const char *name, const H5A_info_t *ai, void *data) {
    (void)ai;
    metric_ctx *c = data;
    modelio_file *f = c->f;
    if (strlen(name) >= 64) return 0; /* not one of ours: skip */
    double v;
    c->st = mio_get_double(obj, name, &v, c->file, "/metrics", c->e);
    if (c->st) return -1;
    char (*nn)[64] = realloc(f->metric_names, (size_t)(f->n_metrics + 1) * sizeof *nn);
    if (nn) f->metric_names = nn;
    double *nv = realloc(f->metric_values, (size_t)(f->n_metrics + 1) * sizeof *nv);
    if (nv) f->metric_values = nv;
    if (!nn || !nv) { c->st = nl_err(c->e, NL_ERR_NOMEM, "out of memory"); return -1; }
    snprintf(f->metric_names[f->n_metrics], 64, "%s", name);
    f->metric_values[f->n_metrics++] = v;
    return 0;
}

nl_status modelio_load(const char *path, int max_batch, modelio_file *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    h5u_quiet();
    if (!fs_exists(path)) return nl_err(e, NL_ERR_IO, "%s: model file not found", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return nl_err(e, NL_ERR_IO, "%s: cannot open as HDF5 (not a model file, or truncated)", path);
    nl_status st;
    hid_t lg = H5I_INVALID_HID;
    name_list names = {0};
    char *s = NULL;
    int ver, n_layers = 0;

    if (!mio_has(f, "format_version")) {
        st = nl_err(e, NL_ERR_DATA, "%s: not an nnlo-c model file (no root attribute 'format_version')", path);
        goto fail;
    }
    if ((st = mio_get_int(f, "format_version", &ver, path, "the root group", e))) goto fail;
    if (ver > MODELIO_FORMAT_VERSION) {
        char *wv = NULL;
        if (mio_has(f, "nnlo_version")) mio_get_str(f, "nnlo_version", &wv, path, "/", NULL);
        st = nl_err(e, NL_ERR_DATA, "%s: model format version %d (written by nnlo-c %s) is newer than "
                    "this nnlo-c reads (up to %d); use a newer nnlo-c", path, ver, wv ? wv : "?",
                    MODELIO_FORMAT_VERSION);
        free(wv);
        goto fail;
    }
    if (ver < 1) {
        st = nl_err(e, NL_ERR_DATA, "%s: format_version %d is not valid (expected 1..%d)", path, ver,
                    MODELIO_FORMAT_VERSION);
        goto fail;
    }
    if ((st = mio_get_int(f, "in_size", &out->in_size, path, "the root group", e))) goto fail;
    if ((st = mio_get_int(f, "out_size", &out->out_size, path, "the root group", e))) goto fail;
    if ((st = mio_get_int(f, "n_layers", &n_layers, path, "the root group", e))) goto fail;
    if (n_layers < 1 || n_layers > 100000) {
        st = nl_err(e, NL_ERR_DATA, "%s: n_layers is %d", path, n_layers);
        goto fail;
    }
    int root_shape[3] = {0, 0, 0};
    int has_root_shape = mio_has(f, "in_h") || mio_has(f, "in_w") || mio_has(f, "in_c");
    if (has_root_shape) { /* absent in files from before the spatial layers: (1, 1, in_size) */
        if ((st = mio_get_int(f, "in_h", &root_shape[0], path, "the root group", e))) goto fail;
        if ((st = mio_get_int(f, "in_w", &root_shape[1], path, "the root group", e))) goto fail;
        if ((st = mio_get_int(f, "in_c", &root_shape[2], path, "the root group", e))) goto fail;
        if (root_shape[0] < 1 || root_shape[1] < 1 || root_shape[2] < 1 ||
            (long)root_shape[0] * root_shape[1] * root_shape[2] != out->in_size) {
            st = nl_err(e, NL_ERR_DATA, "%s: the input shape (in_h, in_w, in_c) = (%d, %d, %d) does "
                        "not hold in_size = %d values", path, root_shape[0], root_shape[1],
                        root_shape[2], out->in_size);
            goto fail;
        }
    }
    if (mio_has(f, "trial_id")) {
        if ((st = mio_get_str(f, "trial_id", &s, path, "the root group", e))) goto fail;
        snprintf(out->trial_id, sizeof out->trial_id, "%s", s);
        free(s); s = NULL;
    }
    if (mio_has(f, "trial_yaml") &&
        (st = mio_get_str(f, "trial_yaml", &out->trial_yaml, path, "the root group", e)))
        goto fail;
    if (H5Lexists(f, "metrics", H5P_DEFAULT) > 0) {
        hid_t mg = H5Gopen2(f, "metrics", H5P_DEFAULT);
        if (mg >= 0) {
            metric_ctx c = {out, path, e, NL_OK};
            /* saved order if tracked (files written by others may not) */
            herr_t r = H5Aiterate2(mg, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, metric_cb, &c);
            if (r < 0 && c.st == NL_OK && out->n_metrics == 0)
                H5Aiterate2(mg, H5_INDEX_NAME, H5_ITER_INC, NULL, metric_cb, &c);
            H5Gclose(mg);
            if ((st = c.st)) goto fail;
        }
    }

    /* layers */
    if (H5Lexists(f, "layers", H5P_DEFAULT) <= 0 || (lg = H5Gopen2(f, "layers", H5P_DEFAULT)) < 0) {
        st = nl_err(e, NL_ERR_DATA, "%s: the group '/layers' is missing", path);
        goto fail;
    }
    if (H5Literate(lg, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_cb, &names) < 0) {
        st = nl_err(e, NL_ERR_NOMEM, "%s: cannot list /layers (out of memory?)", path);
        goto fail;
    }
    out->specs = calloc((size_t)n_layers, sizeof *out->specs);
    out->info = calloc((size_t)n_layers, sizeof *out->info);
    int *ins = calloc((size_t)n_layers, sizeof *ins), *outs = calloc((size_t)n_layers, sizeof *outs);
    char (*gn)[96] = calloc((size_t)n_layers, sizeof *gn);
    int (*shp)[6] = calloc((size_t)n_layers, sizeof *shp); /* stored in_shape, out_shape */
    char *has_shp = calloc((size_t)n_layers, 1);
    if (!out->specs || !out->info || !ins || !outs || !gn || !shp || !has_shp) {
        free(ins); free(outs); free(gn); free(shp); free(has_shp);
        st = nl_err(e, NL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    out->n_specs = n_layers;
    /* group "<NNN>_<name>": index from the prefix */
    for (int j = 0; j < names.n; j++) {
        char *end;
        long idx = strtol(names.names[j], &end, 10);
        if (end == names.names[j] || *end != '_' || idx < 0 || idx >= n_layers || gn[idx][0]) {
            st = nl_err(e, NL_ERR_DATA, "%s: unexpected group '/layers/%s' (groups are named "
                        "<index>_<name>, index 0..%d, once each)", path, names.names[j], n_layers - 1);
            break;
        }
        snprintf(gn[idx], sizeof gn[idx], "/layers/%s", names.names[j]);
    }
    for (int l = 0; !st && l < n_layers; l++)
        if (!gn[l][0])
            st = nl_err(e, NL_ERR_DATA, "%s: layer %d of %d is missing (no group /layers/%03d_<name>)",
                        path, l, n_layers, l);
    for (int l = 0; !st && l < n_layers; l++) {
        hid_t g = H5Gopen2(f, gn[l], H5P_DEFAULT);
        if (g < 0) { st = nl_err(e, NL_ERR_DATA, "%s: %s is not a group", path, gn[l]); break; }
        st = read_spec(g, path, gn[l], &out->specs[l], &out->info[l], &ins[l], &outs[l], e);
        if (!st && (mio_has(g, "in_shape") || mio_has(g, "out_shape"))) {
            has_shp[l] = 1;
            st = get_ints(g, "in_shape", 3, shp[l], path, gn[l], e);
            if (!st) st = get_ints(g, "out_shape", 3, shp[l] + 3, path, gn[l], e);
        }
        H5Gclose(g);
    }
    /* Input shapes: the root's on the first spec, and a layer's stored one
     * on its spec where it differs from what the layer before outputs (a
     * reshape, e.g. Dense -> Conv). Files without shapes: all inferred. */
    if (!st) {
        int cur[3] = {1, 1, out->in_size};
        if (has_root_shape && memcmp(root_shape, cur, sizeof cur)) {
            memcpy(out->specs[0].in_shape, root_shape, sizeof root_shape);
            memcpy(cur, root_shape, sizeof cur);
        }
        for (int l = 0; l < n_layers; l++) {
            if (!has_shp[l]) { memset(cur, 0, sizeof cur); continue; } /* unknown from here */
            if (memcmp(shp[l], cur, sizeof cur)) memcpy(out->specs[l].in_shape, shp[l], sizeof cur);
            memcpy(cur, shp[l] + 3, sizeof cur);
        }
    }
    if (!st) {
        out->m = model_create(out->specs, n_layers, out->in_size, max_batch, NULL, NULL, 0, e);
        if (!out->m) { /* the file's layers do not make a model */
            nl_err_prefix(e, "%s", path);
            st = e && e->code == NL_ERR_NOMEM ? NL_ERR_NOMEM : NL_ERR_DATA;
            if (e) e->code = st;
        }
    }
    for (int l = 0; !st && l < n_layers; l++) {
        const layer *L = &out->m->layers[l];
        if (L->in_size != ins[l] || L->out_size != outs[l])
            st = nl_err(e, NL_ERR_DATA, "%s: %s stores in_size %d / out_size %d but the layers before "
                        "it give %d / %d", path, gn[l], ins[l], outs[l], L->in_size, L->out_size);
    }
    if (!st && out->m->out_size != out->out_size)
        st = nl_err(e, NL_ERR_DATA, "%s: out_size is %d but the last layer gives %d", path,
                    out->out_size, out->m->out_size);
    if (!st && has_root_shape &&
        (out->m->in_h != root_shape[0] || out->m->in_w != root_shape[1] || out->m->in_c != root_shape[2]))
        st = nl_err(e, NL_ERR_DATA, "%s: the root's input shape (in_h, in_w, in_c) = (%d, %d, %d) "
                    "contradicts the first layer's in_shape (%d, %d, %d)", path, root_shape[0],
                    root_shape[1], root_shape[2], out->m->in_h, out->m->in_w, out->m->in_c);
    for (int l = 0; !st && l < n_layers; l++) {
        const layer *L = &out->m->layers[l];
        const int got[6] = {L->in_h, L->in_w, L->in_c, L->out_h, L->out_w, L->out_c};
        if (has_shp[l] && memcmp(got, shp[l], sizeof got))
            st = nl_err(e, NL_ERR_DATA, "%s: %s stores in_shape (%d, %d, %d) and out_shape (%d, %d, %d) "
                        "but the rebuilt layer has (%d, %d, %d) -> (%d, %d, %d)", path, gn[l],
                        shp[l][0], shp[l][1], shp[l][2], shp[l][3], shp[l][4], shp[l][5], got[0],
                        got[1], got[2], got[3], got[4], got[5]);
    }
    for (int l = 0; !st && l < n_layers; l++) {
        const layer *L = &out->m->layers[l];
        const int kind = (int)L->kind;
        if (!layer_has_kernel(kind) && kind != LAYER_BATCHNORM) continue;
        hid_t g = H5Gopen2(f, gn[l], H5P_DEFAULT);
        st = get_layer_arrays(g, out->m, l, &out->info[l], path, gn[l], e);
        H5Gclose(g);
    }
    free(shp); free(has_shp);
    free(ins); free(outs); free(gn);
    if (st) goto fail;
    memcpy(out->m->weff, out->m->params, (size_t)out->m->n_params * sizeof(float));
    free_names(&names);
    H5Gclose(lg);
    H5Fclose(f);
    return NL_OK;
fail:
    free(s);
    free_names(&names);
    if (lg >= 0) H5Gclose(lg);
    H5Fclose(f);
    modelio_free(out);
    return st;
}

void modelio_free(modelio_file *f) {
    if (!f) return;
    if (f->info)
        for (int l = 0; l < f->n_specs; l++) free((void *)f->info[l].mask);
    free(f->info);
    free(f->specs);
    model_free(f->m);
    free(f->trial_yaml);
    free(f->metric_names);
    free(f->metric_values);
    memset(f, 0, sizeof *f);
}
