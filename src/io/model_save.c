/* model_save.c — modelio_save: a model's effective weights, masks,
 * fixed-point formats, BatchNorm moving statistics, every layer kind's
 * hyperparameters, trial config and metrics into one HDF5 file (layout in
 * docs/model-format.md). Written as path.tmp, fsynced and renamed: a killed
 * job leaves the old file or none, never half of one. No timestamps are
 * stored, so the same model gives the same bytes. Kind strings are
 * layer_kind_name()'s, which are stored in files and never change. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "data/h5util.h"
#include "io/io_internal.h"
#include "nnlo/modelio.h"

#define NNLO_VERSION_STRING "0.1.0"

/* A 1-D int32 attribute of n values (shapes, windows, strides). */
static herr_t put_ints(hid_t g, const char *name, int n, const int *v) {
    hsize_t d[1] = {(hsize_t)n};
    hid_t s = H5Screate_simple(1, d, NULL);
    hid_t a = H5Acreate2(g, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT, v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return r;
}

static herr_t put_format(hid_t g, const char *pre, const fixed_spec *s) {
    char n[64], t[96];
    herr_t r = 0;
    snprintf(n, sizeof n, "%s_k", pre); r |= mio_put_int(g, n, s->k);
    snprintf(n, sizeof n, "%s_i", pre); r |= mio_put_int(g, n, s->i);
    snprintf(n, sizeof n, "%s_f", pre); r |= mio_put_int(g, n, s->f);
    snprintf(n, sizeof n, "%s_overflow", pre); r |= mio_put_str(g, n, mio_overflow_name(s->overflow));
    snprintf(n, sizeof n, "%s_rounding", pre); r |= mio_put_str(g, n, mio_round_name(s->round));
    snprintf(n, sizeof n, "%s_type", pre); r |= mio_put_str(g, n, fixed_format_hls(s, t, sizeof t));
    return r < 0 ? -1 : 0;
}

static herr_t put_array(hid_t g, const char *name, int rank, const hsize_t *dims,
                        const float *v, hid_t dcpl) {
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t r = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    return r;
}

/* A float hyperparameter as a float32 scalar (the exact value nn uses;
 * h5py shows 0.001, not 0.0010000000474974513). */
static herr_t put_float(hid_t g, const char *name, float v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_FLOAT, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return r;
}

static int is_1d(int kind) {
    return kind == LAYER_CONV1D || kind == LAYER_MAXPOOL1D || kind == LAYER_AVGPOOL1D;
}

/* Window, strides and padding of a CONV or POOL layer, resolved (strides
 * that defaulted in the spec are written as the values used); 1-D layers
 * store one value per array (the steps axis), 2-D layers (rows, cols). */
static herr_t put_window(hid_t g, const layer *L, const char *win_name) {
    const conv_geom *G = &L->geom;
    int d1 = is_1d((int)L->kind);
    int win[2] = {d1 ? G->kw : G->kh, G->kw}, str[2] = {d1 ? G->sw : G->sh, G->sw};
    /* SAME and VALID differ only in the padding they add; the geometry
     * with padding 0 everywhere is VALID (nn computes it that way too). */
    conv_geom v;
    int valid = conv_geom_init(&v, G->h, G->w, G->c, G->oc, G->kh, G->kw, G->sh, G->sw, PAD_VALID) == 0 &&
                v.oh == G->oh && v.ow == G->ow && G->pt == 0 && G->pl == 0;
    herr_t r = 0;
    r |= put_ints(g, win_name, d1 ? 1 : 2, win);
    r |= put_ints(g, "strides", d1 ? 1 : 2, str);
    r |= mio_put_str(g, "padding", valid ? "valid" : "same");
    return r < 0 ? -1 : 0;
}

/* Kernel (Keras order: (K, Cin, Cout) or (KH, KW, Cin, Cout), which is
 * the (rows, cols) matrix nn uses), bias, mask and formats of a DENSE or
 * CONV layer. */
static herr_t put_weights(hid_t g, const model *m, int l, const modelio_layer_info *info,
                          hid_t dcpl) {
    const layer *L = &m->layers[l];
    const int kind = (int)L->kind;
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
    herr_t r = 0;
    if (kind != LAYER_DENSE) {
        r |= mio_put_int(g, "filters", cols);
        r |= put_window(g, L, "kernel_size");
    }
    r |= put_array(g, "kernel", rank, kd, m->weff + L->w_off, dcpl);
    r |= put_array(g, "bias", 1, bd, m->weff + L->b_off, dcpl);
    if (info && info[l].mask) r |= put_array(g, "mask", rank, kd, info[l].mask, dcpl);
    int q = info && info[l].quantized;
    r |= mio_put_int(g, "quantized", q);
    if (q) {
        r |= put_format(g, "weight", &info[l].w);
        r |= put_format(g, "bias", &info[l].b);
        r |= put_format(g, "input", &info[l].in);
        r |= put_format(g, "output", &info[l].out);
    }
    return r < 0 ? -1 : 0;
}

/* Writes one layer group; returns < 0 on HDF5 failure. */
static herr_t put_layer(hid_t layers, const model *m, int l, const modelio_layer_info *info,
                        hid_t gcpl, hid_t dcpl) {
    const layer *L = &m->layers[l];
    const int kind = (int)L->kind;
    const char *kname = layer_kind_name(kind);
    NL_ASSERT(kname); /* model_create accepts known kinds only */
    char gname[96];
    snprintf(gname, sizeof gname, "%03d_%s", l, L->name);
    hid_t g = H5Gcreate2(layers, gname, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0) return -1;
    herr_t r = 0;
    r |= mio_put_str(g, "kind", kname);
    r |= mio_put_str(g, "name", L->name);
    r |= mio_put_int(g, "in_size", L->in_size);
    r |= mio_put_int(g, "out_size", L->out_size);
    const int ish[3] = {L->in_h, L->in_w, L->in_c}, osh[3] = {L->out_h, L->out_w, L->out_c};
    r |= put_ints(g, "in_shape", 3, ish);
    r |= put_ints(g, "out_shape", 3, osh);
    if (layer_has_kernel(kind)) {
        r |= put_weights(g, m, l, info, dcpl);
    } else if (kind == LAYER_QUANT) {
        char t[96];
        r |= mio_put_int(g, "k", L->quant.k);
        r |= mio_put_int(g, "i", L->quant.i);
        r |= mio_put_int(g, "f", L->quant.f);
        r |= mio_put_str(g, "overflow", mio_overflow_name(L->quant.overflow));
        r |= mio_put_str(g, "rounding", mio_round_name(L->quant.round));
        r |= mio_put_str(g, "type", fixed_format_hls(&L->quant, t, sizeof t));
    } else if (kind == LAYER_MAXPOOL1D || kind == LAYER_MAXPOOL2D || kind == LAYER_AVGPOOL1D ||
               kind == LAYER_AVGPOOL2D) {
        r |= put_window(g, L, "pool_size");
    } else if (kind == LAYER_BATCHNORM) {
        hsize_t cd[1] = {(hsize_t)L->out_c};
        r |= put_float(g, "momentum", L->momentum);
        r |= put_float(g, "epsilon", L->epsilon);
        r |= put_array(g, "gamma", 1, cd, m->weff + L->w_off, dcpl);
        r |= put_array(g, "beta", 1, cd, m->weff + L->b_off, dcpl);
        r |= put_array(g, "moving_mean", 1, cd, m->state + L->s_off, dcpl);
        r |= put_array(g, "moving_variance", 1, cd, m->state + L->s_off + L->out_c, dcpl);
    } else if (kind == LAYER_DROPOUT) {
        r |= put_float(g, "rate", L->rate);
    } else if (kind == LAYER_LEAKY_RELU) {
        r |= put_float(g, "alpha", L->alpha);
    }
    H5Gclose(g);
    return r < 0 ? -1 : 0;
}

nl_status modelio_save(const char *path, const model *m, const modelio_layer_info *info,
                       const modelio_meta *meta, nl_error *e) {
    h5u_quiet();
    NL_ASSERT(m);
    char tmp[4200];
    nl_status st = h5u_tmpname(tmp, sizeof tmp, path, e);
    if (st) return st;
    if (meta) {
        for (int i = 0; i < meta->n_metrics; i++)
            if (!meta->metric_names[i][0] || strlen(meta->metric_names[i]) >= 64)
                return nl_err(e, NL_ERR_INVALID, "%s: metric name '%s' must have 1 to 63 characters",
                              path, meta->metric_names[i]);
    }
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        char he[400];
        h5u_errstr(he, sizeof he);
        return nl_err(e, NL_ERR_IO, "%s: cannot create%s%s (does the folder exist and is it writable?)",
                      tmp, he[0] ? ": " : "", he);
    }
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(gcpl, 0);
    H5Pset_obj_track_times(dcpl, 0);
    herr_t r = 0;
    r |= mio_put_int(f, "format_version", MODELIO_FORMAT_VERSION);
    r |= mio_put_str(f, "nnlo_version", NNLO_VERSION_STRING);
    r |= mio_put_int(f, "in_size", m->in_size);
    r |= mio_put_int(f, "out_size", m->out_size);
    r |= mio_put_int(f, "in_h", m->in_h);
    r |= mio_put_int(f, "in_w", m->in_w);
    r |= mio_put_int(f, "in_c", m->in_c);
    r |= mio_put_int(f, "n_layers", m->n_layers);
    r |= mio_put_str(f, "trial_id", meta && meta->trial_id ? meta->trial_id : "");
    if (meta && meta->trial_yaml) r |= mio_put_str(f, "trial_yaml", meta->trial_yaml);
    hid_t mcpl = H5Pcopy(gcpl); /* metrics keep the order they were given in */
    H5Pset_attr_creation_order(mcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g = H5Gcreate2(f, "metrics", H5P_DEFAULT, mcpl, H5P_DEFAULT);
    H5Pclose(mcpl);
    if (g < 0) r = -1;
    for (int i = 0; g >= 0 && meta && i < meta->n_metrics; i++)
        r |= mio_put_double(g, meta->metric_names[i], meta->metric_values[i]);
    if (g >= 0) H5Gclose(g);
    g = H5Gcreate2(f, "layers", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0) r = -1;
    for (int l = 0; g >= 0 && l < m->n_layers && r >= 0; l++)
        r |= put_layer(g, m, l, info, gcpl, dcpl);
    if (g >= 0) H5Gclose(g);
    H5Pclose(gcpl); H5Pclose(dcpl);
    if (r < 0) {
        char he[400];
        h5u_errstr(he, sizeof he);
        H5Fclose(f);
        unlink(tmp);
        return nl_err(e, NL_ERR_IO, "%s: cannot write the model%s%s", tmp, he[0] ? ": " : "", he);
    }
    if (H5Fclose(f) < 0) {
        unlink(tmp);
        return nl_err(e, NL_ERR_IO, "%s: cannot close (disk full?)", tmp);
    }
    return h5u_commit(tmp, path, e);
}
