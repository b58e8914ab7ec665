/* model_load.c — modelio_load / modelio_free: a model file back into a
 * layer_spec list, a model (params == weff == stored values), per-layer
 * masks and formats, the trial config and the metrics.
 * Every missing or mis-shaped item is an error naming the file and the
 * HDF5 object; a format_version newer than this build reads is refused.
 * Never guesses: sizes stored in the file must match the rebuilt model. */
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
    if (!strcmp(kind, "dense")) {
        sp->kind = LAYER_DENSE;
        sp->units = *out_size;
        int q = 0;
        if (mio_has(g, "quantized")) st = mio_get_int(g, "quantized", &q, file, where, e);
        info->quantized = q != 0;
        if (!st && q) st = get_format(g, "weight", &info->w, file, where, e);
        if (!st && q) st = get_format(g, "bias", &info->b, file, where, e);
        if (!st && q) st = get_format(g, "input", &info->in, file, where, e);
        if (!st && q) st = get_format(g, "output", &info->out, file, where, e);
    } else if (!strcmp(kind, "relu")) {
        sp->kind = LAYER_RELU;
    } else if (!strcmp(kind, "quant")) {
        sp->kind = LAYER_QUANT;
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
    } else {
        st = nl_err(e, NL_ERR_DATA, "%s: %s: unknown layer kind '%s' (this nnlo-c knows dense, relu, "
                    "quant); a newer nnlo-c may read it", file, where, kind);
    }
done:
    free(kind); free(name);
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
    if (!out->specs || !out->info || !ins || !outs || !gn) {
        free(ins); free(outs); free(gn);
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
        H5Gclose(g);
    }
    if (!st) {
        out->m = model_create(out->specs, n_layers, out->in_size, max_batch, NULL, NULL, 0, e);
        if (!out->m) { nl_err_prefix(e, "%s", path); st = e ? e->code : NL_ERR_DATA; }
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
    for (int l = 0; !st && l < n_layers; l++) {
        const layer *L = &out->m->layers[l];
        if (L->kind != LAYER_DENSE) continue;
        hid_t g = H5Gopen2(f, gn[l], H5P_DEFAULT);
        hsize_t kd[2] = {(hsize_t)L->in_size, (hsize_t)L->out_size}, bd[1] = {(hsize_t)L->out_size};
        st = get_array(g, "kernel", 2, kd, out->m->params + L->w_off, path, gn[l], e);
        if (!st) st = get_array(g, "bias", 1, bd, out->m->params + L->b_off, path, gn[l], e);
        if (!st && H5Lexists(g, "mask", H5P_DEFAULT) > 0) {
            float *mask = malloc((size_t)kd[0] * (size_t)kd[1] * sizeof *mask);
            if (!mask) st = nl_err(e, NL_ERR_NOMEM, "out of memory");
            else {
                out->info[l].mask = mask;
                st = get_array(g, "mask", 2, kd, mask, path, gn[l], e);
            }
        }
        H5Gclose(g);
    }
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
