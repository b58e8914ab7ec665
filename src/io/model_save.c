/* model_save.c — modelio_save: a model's effective weights, masks,
 * fixed-point formats, trial config and metrics into one HDF5 file
 * (layout in docs/model-format.md). Written as path.tmp, fsynced and
 * renamed: a killed job leaves the old file or none, never half of one.
 * No timestamps are stored, so the same model gives the same bytes. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "data/h5util.h"
#include "io/io_internal.h"
#include "nnlo/modelio.h"

#define NNLO_VERSION_STRING "0.1.0"

static const char *kind_str(layer_kind k) {
    switch (k) {
    case LAYER_DENSE: return "dense";
    case LAYER_RELU: return "relu";
    case LAYER_QUANT: return "quant";
    }
    return "?";
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

/* Writes one layer group; returns < 0 on HDF5 failure. */
static herr_t put_layer(hid_t layers, const model *m, int l, const modelio_layer_info *info,
                        hid_t gcpl, hid_t dcpl) {
    const layer *L = &m->layers[l];
    char gname[96];
    snprintf(gname, sizeof gname, "%03d_%s", l, L->name);
    hid_t g = H5Gcreate2(layers, gname, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0) return -1;
    herr_t r = 0;
    r |= mio_put_str(g, "kind", kind_str(L->kind));
    r |= mio_put_str(g, "name", L->name);
    r |= mio_put_int(g, "in_size", L->in_size);
    r |= mio_put_int(g, "out_size", L->out_size);
    if (L->kind == LAYER_DENSE) {
        hsize_t kd[2] = {(hsize_t)L->in_size, (hsize_t)L->out_size}, bd[1] = {(hsize_t)L->out_size};
        r |= put_array(g, "kernel", 2, kd, m->weff + L->w_off, dcpl);
        r |= put_array(g, "bias", 1, bd, m->weff + L->b_off, dcpl);
        if (info && info[l].mask) r |= put_array(g, "mask", 2, kd, info[l].mask, dcpl);
        int q = info && info[l].quantized;
        r |= mio_put_int(g, "quantized", q);
        if (q) {
            r |= put_format(g, "weight", &info[l].w);
            r |= put_format(g, "bias", &info[l].b);
            r |= put_format(g, "input", &info[l].in);
            r |= put_format(g, "output", &info[l].out);
        }
    } else if (L->kind == LAYER_QUANT) {
        char t[96];
        r |= mio_put_int(g, "k", L->quant.k);
        r |= mio_put_int(g, "i", L->quant.i);
        r |= mio_put_int(g, "f", L->quant.f);
        r |= mio_put_str(g, "overflow", mio_overflow_name(L->quant.overflow));
        r |= mio_put_str(g, "rounding", mio_round_name(L->quant.round));
        r |= mio_put_str(g, "type", fixed_format_hls(&L->quant, t, sizeof t));
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
