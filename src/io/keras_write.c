/* keras_write.c — a keras_net as a Keras 2 HDF5 model (the layout
 * model.save() writes, readable by tf.keras, hls4ml and keras_load) and as
 * an nnlo-c model file with its softmax recorded. Quantized layers become
 * QDense / QConv1D / QConv2D / QActivation with quantized_bits configs
 * (alpha=1) and carry their exact nnlo-c types as extra attributes;
 * pooling, BatchNormalization, Flatten, Dropout and activations are plain
 * Keras layers (channels_last). The layer list is built
 * by keras_export_layers, shared with the hls4ml export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/h5util.h"
#include "io/io_internal.h"
#include "io/keras_internal.h"

static int is_spatial_1d(int kind) {
    return kind == LAYER_CONV1D || kind == LAYER_MAXPOOL1D || kind == LAYER_AVGPOOL1D;
}

int keras_export_layers(const keras_net *n, kx_layer *out) {
    const model *m = n->f.m;
    int k = 0;
    kx_layer *in = &out[k++];
    memset(in, 0, sizeof *in);
    in->kind = KX_INPUT;
    in->layer = -1;
    snprintf(in->name, sizeof in->name, "%s", n->input_name[0] ? n->input_name : "input_1");
    for (int l = 0; l < m->n_layers; l++)
        if (!strcmp(m->layers[l].name, in->name)) snprintf(in->name, sizeof in->name, "%s", "nnlo_input");
    /* spatial: the Keras tensor has more than one axis (after a conv or a
     * pooling, even when it is 1 x 1 x C) */
    int spatial = m->in_h > 1 || m->in_w > 1;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        const int kind = (int)L->kind;
        int sp = spatial;
        if (layer_has_kernel(kind) && kind != LAYER_DENSE) spatial = 1;
        else if (kind >= LAYER_MAXPOOL1D && kind <= LAYER_AVGPOOL2D) spatial = 1;
        else if (kind == LAYER_DENSE || kind == LAYER_FLATTEN) spatial = 0;
        if (kind == LAYER_DENSE && sp) {
            /* nnlo-c's Dense flattens its input; Keras's would act on the last axis */
            kx_layer *f = &out[k++];
            memset(f, 0, sizeof *f);
            f->kind = KX_FLATTEN;
            f->layer = -1;
            snprintf(f->name, sizeof f->name, "%.52s_flatten", L->name);
        }
        kx_layer *x = &out[k++];
        memset(x, 0, sizeof *x);
        x->layer = l;
        snprintf(x->name, sizeof x->name, "%s", L->name);
        switch (kind) {
        case LAYER_DENSE: x->kind = KX_DENSE; break;
        case LAYER_RELU: x->kind = KX_RELU; break;
        case LAYER_QUANT: x->kind = KX_QUANT; break;
        case LAYER_CONV1D: case LAYER_CONV2D: x->kind = KX_CONV; break;
        case LAYER_MAXPOOL1D: case LAYER_MAXPOOL2D: case LAYER_AVGPOOL1D: case LAYER_AVGPOOL2D: x->kind = KX_POOL; break;
        case LAYER_BATCHNORM: x->kind = KX_BATCHNORM; break;
        case LAYER_FLATTEN: x->kind = KX_FLATTEN; break;
        case LAYER_DROPOUT: x->kind = KX_DROPOUT; break;
        case LAYER_LEAKY_RELU: x->kind = KX_LEAKY; break;
        default: x->kind = KX_ACT; break;  /* tanh, sigmoid, hard_tanh */
        }
        x->quantized = (x->kind == KX_DENSE || x->kind == KX_CONV) && n->f.info && n->f.info[l].quantized;
    }
    if (n->softmax) {
        kx_layer *x = &out[k++];
        memset(x, 0, sizeof *x);
        x->kind = KX_SOFTMAX;
        x->layer = -1;
        snprintf(x->name, sizeof x->name, "%s", n->softmax_name[0] ? n->softmax_name : "softmax");
    }
    /* hls4ml numbers layers from 1 (the input) and skips Dropout */
    for (int i = 0, h = 1; i < k; i++) out[i].hls_index = out[i].kind == KX_DROPOUT ? 0 : h++;
    return k;
}

/* QKeras quantized_bits config for a format; a k = 0 weight format is
 * written signed with one more bit (hls4ml types every quantized_bits
 * signed: fixed<bits, integer+1>), which holds the same values. */
static void quantizer_json(sbuf *b, const fixed_spec *s, int force_signed) {
    int k = force_signed ? 1 : s->k;
    int bits = k + s->i + s->f;
    sbuf_printf(b, "{\"class_name\": \"quantized_bits\", \"config\": {\"bits\": %d, \"integer\": %d, "
                   "\"symmetric\": %d, \"alpha\": 1, \"keep_negative\": %s, \"use_stochastic_rounding\": false, "
                   "\"qnoise_factor\": 1.0}}",
                bits, s->i, s->overflow == FX_SAT_SYM ? 1 : 0, k ? "true" : "false");
}

void keras_model_json(const keras_net *n, sbuf *b) {
    const model *m = n->f.m;
    kx_layer *xs = calloc((size_t)KX_MAX_LAYERS(m->n_layers), sizeof *xs);
    NL_ASSERT(xs);
    int nx = keras_export_layers(n, xs);
    int d1 = 0;
    for (int l = 0; l < m->n_layers; l++) d1 |= is_spatial_1d((int)m->layers[l].kind);
    sbuf_printf(b, "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"nnlo\", \"layers\": [");
    for (int i = 0; i < nx; i++) {
        const kx_layer *x = &xs[i];
        sbuf_printf(b, "%s\n  ", i ? "," : "");
        switch (x->kind) {
        case KX_INPUT:
            if (d1) sbuf_printf(b, "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d, %d], ",
                                m->in_w, m->in_c);
            else if (m->in_h > 1 || m->in_w > 1)
                sbuf_printf(b, "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d, %d, %d], ",
                            m->in_h, m->in_w, m->in_c);
            else sbuf_printf(b, "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d], ",
                             m->in_size);
            sbuf_printf(b, "\"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": ");
            json_write_str(b, x->name);
            sbuf_printf(b, "}}");
            break;
        case KX_DENSE: {
            const layer *L = &m->layers[x->layer];
            sbuf_printf(b, "{\"class_name\": \"%s\", \"config\": {\"name\": ", x->quantized ? "QDense" : "Dense");
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\", \"units\": %d, \"activation\": \"linear\", "
                           "\"use_bias\": true, \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", "
                           "\"config\": {\"seed\": null}}, \"bias_initializer\": {\"class_name\": \"Zeros\", "
                           "\"config\": {}}, \"kernel_regularizer\": null, \"bias_regularizer\": null, "
                           "\"activity_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": null",
                        L->out_size);
            if (x->quantized) {
                sbuf_printf(b, ", \"kernel_quantizer\": ");
                quantizer_json(b, &n->f.info[x->layer].w, 1);
                sbuf_printf(b, ", \"bias_quantizer\": ");
                quantizer_json(b, &n->f.info[x->layer].b, 1);
                sbuf_printf(b, ", \"kernel_range\": null, \"bias_range\": null");
            }
            sbuf_printf(b, "}}");
            break;
        }
        case KX_RELU:
        case KX_SOFTMAX:
        case KX_ACT: {
            int k = x->layer >= 0 ? (int)m->layers[x->layer].kind : -1;
            const char *a = x->kind == KX_RELU ? "relu" : x->kind == KX_SOFTMAX ? "softmax"
                          : k == LAYER_TANH ? "tanh" : k == LAYER_SIGMOID ? "sigmoid" : "hard_tanh";
            sbuf_printf(b, "{\"class_name\": \"Activation\", \"config\": {\"name\": ");
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\", \"activation\": \"%s\"}}", a);
            break;
        }
        case KX_LEAKY:
            sbuf_printf(b, "{\"class_name\": \"LeakyReLU\", \"config\": {\"name\": ");
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\", \"alpha\": %.9g}}",
                        (double)m->layers[x->layer].alpha);
            break;
        case KX_FLATTEN:
            sbuf_printf(b, "{\"class_name\": \"Flatten\", \"config\": {\"name\": ");
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\", \"data_format\": \"channels_last\"}}");
            break;
        case KX_DROPOUT:
            sbuf_printf(b, "{\"class_name\": \"Dropout\", \"config\": {\"name\": ");
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\", \"rate\": %.9g, \"noise_shape\": null, "
                           "\"seed\": null}}", (double)m->layers[x->layer].rate);
            break;
        case KX_BATCHNORM: {
            const layer *L = &m->layers[x->layer];
            sbuf_printf(b, "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": ");
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\", \"axis\": -1, \"momentum\": %.9g, "
                           "\"epsilon\": %.9g, \"center\": true, \"scale\": true}}",
                        (double)L->momentum, (double)L->epsilon);
            break;
        }
        case KX_CONV:
        case KX_POOL: {
            const layer *L = &m->layers[x->layer];
            const int k = (int)L->kind, one = is_spatial_1d(k);
            const conv_geom *g = &L->geom;
            const char *cls = k == LAYER_CONV1D ? "Conv1D" : k == LAYER_CONV2D ? "Conv2D"
                            : k == LAYER_MAXPOOL1D ? "MaxPooling1D" : k == LAYER_MAXPOOL2D ? "MaxPooling2D"
                            : k == LAYER_AVGPOOL1D ? "AveragePooling1D" : "AveragePooling2D";
            /* valid when the output is what valid padding gives without padding, else same */
            int valid = g->pt == 0 && g->pl == 0 && g->h >= g->kh && g->w >= g->kw &&
                        g->oh == (g->h - g->kh) / g->sh + 1 && g->ow == (g->w - g->kw) / g->sw + 1;
            sbuf_printf(b, "{\"class_name\": \"%s%s\", \"config\": {\"name\": ", x->quantized ? "Q" : "", cls);
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\"");
            if (x->kind == KX_CONV) sbuf_printf(b, ", \"filters\": %d", L->out_c);
            const char *win = x->kind == KX_CONV ? "kernel_size" : "pool_size";
            if (one) sbuf_printf(b, ", \"%s\": [%d], \"strides\": [%d]", win, g->kw, g->sw);
            else sbuf_printf(b, ", \"%s\": [%d, %d], \"strides\": [%d, %d]", win, g->kh, g->kw, g->sh, g->sw);
            sbuf_printf(b, ", \"padding\": \"%s\", \"data_format\": \"channels_last\"", valid ? "valid" : "same");
            if (x->kind == KX_CONV) {
                sbuf_printf(b, ", \"dilation_rate\": %s, \"groups\": 1, \"activation\": \"linear\", \"use_bias\": true, "
                               "\"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}, "
                               "\"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}}, "
                               "\"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null, "
                               "\"kernel_constraint\": null, \"bias_constraint\": null", one ? "[1]" : "[1, 1]");
                if (x->quantized) {
                    sbuf_printf(b, ", \"kernel_quantizer\": ");
                    quantizer_json(b, &n->f.info[x->layer].w, 1);
                    sbuf_printf(b, ", \"bias_quantizer\": ");
                    quantizer_json(b, &n->f.info[x->layer].b, 1);
                    sbuf_printf(b, ", \"kernel_range\": null, \"bias_range\": null");
                }
            }
            sbuf_printf(b, "}}");
            break;
        }
        case KX_QUANT:
            sbuf_printf(b, "{\"class_name\": \"QActivation\", \"config\": {\"name\": ");
            json_write_str(b, x->name);
            sbuf_printf(b, ", \"trainable\": true, \"dtype\": \"float32\", \"activation\": ");
            quantizer_json(b, &m->layers[x->layer].quant, 0);
            sbuf_printf(b, "}}");
            break;
        }
    }
    sbuf_printf(b, "\n]}, \"keras_version\": \"%s\", \"backend\": \"tensorflow\"}", KX_KERAS_VERSION);
    free(xs);
}

/* ---- HDF5 ----------------------------------------------------------------- */

/* A scalar fixed-length ASCII string attribute (what h5py writes for bytes). */
static herr_t put_fixed_str(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    size_t n = strlen(s);
    H5Tset_size(t, n > 0 ? n : 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, t, n > 0 ? s : "");
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return r;
}

/* An array of fixed-length strings (np.asarray(list of bytes)); an empty
 * list is a (0,) float64 array, as np.asarray([]) is. */
static herr_t put_str_array(hid_t obj, const char *name, const char *const *v, int n) {
    hsize_t d[1] = {(hsize_t)n};
    if (n == 0) {
        hid_t sp = H5Screate_simple(1, d, NULL);
        hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        herr_t r = a < 0 ? -1 : 0;
        if (a >= 0) H5Aclose(a);
        H5Sclose(sp);
        return r;
    }
    size_t w = 1;
    for (int i = 0; i < n; i++) if (strlen(v[i]) > w) w = strlen(v[i]);
    char *buf = calloc((size_t)n, w);
    if (!buf) return -1;
    for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * w, v[i], strlen(v[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t sp = H5Screate_simple(1, d, NULL);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, t, buf);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    free(buf);
    return r;
}

static herr_t put_dataset(hid_t g, const char *path, int rank, const hsize_t *dims, const float *v) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, path, H5T_IEEE_F32LE, s, lcpl, dcpl, H5P_DEFAULT);
    herr_t r = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    return r;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp((*(const kx_layer *const *)a)->name, (*(const kx_layer *const *)b)->name);
}

nl_status keras_save(const keras_net *n, const char *path, nl_error *e) {
    h5u_quiet();
    const model *m = n->f.m;
    char tmp[4200];
    nl_status st = h5u_tmpname(tmp, sizeof tmp, path, e);
    if (st) return st;
    kx_layer *xs = calloc((size_t)KX_MAX_LAYERS(m->n_layers), sizeof *xs);
    kx_layer **sorted = calloc((size_t)KX_MAX_LAYERS(m->n_layers), sizeof *sorted);
    const char **names = calloc((size_t)KX_MAX_LAYERS(m->n_layers), sizeof *names);
    if (!xs || !sorted || !names) { free(xs); free(sorted); free(names); return nl_err(e, NL_ERR_NOMEM, "out of memory"); }
    int nx = keras_export_layers(n, xs);
    sbuf js = {0};
    keras_model_json(n, &js);
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = f < 0 ? -1 : 0;
    if (f >= 0) {
        r |= mio_put_str(f, "keras_version", KX_KERAS_VERSION);
        r |= mio_put_str(f, "backend", "tensorflow");
        r |= put_fixed_str(f, "model_config", js.s);
        hid_t mw = H5Gcreate2(f, "model_weights", H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (mw < 0) r = -1;
        for (int i = 0; i < nx; i++) { names[i] = xs[i].name; sorted[i] = &xs[i]; }
        if (mw >= 0) {
            r |= put_str_array(mw, "layer_names", names, nx);
            r |= put_fixed_str(mw, "backend", "tensorflow");
            r |= put_fixed_str(mw, "keras_version", KX_KERAS_VERSION);
            qsort(sorted, (size_t)nx, sizeof *sorted, cmp_names);  /* Keras writes groups in name order */
            for (int i = 0; i < nx && r >= 0; i++) {
                const kx_layer *x = sorted[i];
                hid_t g = H5Gcreate2(mw, x->name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
                if (g < 0) { r = -1; break; }
                if (x->kind == KX_BATCHNORM) {
                    const layer *L = &m->layers[x->layer];
                    static const char *const what[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
                    char wn0[4][200];
                    const char *wn[4];
                    const float *src[4] = {m->weff + L->w_off, m->weff + L->b_off, m->state + L->s_off,
                                           m->state + L->s_off + L->out_c};
                    hsize_t cd[1] = {(hsize_t)L->out_c};
                    for (int k = 0; k < 4; k++) {
                        snprintf(wn0[k], sizeof wn0[k], "%s/%s:0", x->name, what[k]);
                        wn[k] = wn0[k];
                    }
                    r |= put_str_array(g, "weight_names", wn, 4);
                    for (int k = 0; k < 4; k++) r |= put_dataset(g, wn[k], 1, cd, src[k]);
                } else if (x->kind == KX_DENSE || x->kind == KX_CONV) {
                    const layer *L = &m->layers[x->layer];
                    char kn[200], bn[200], t[96];
                    snprintf(kn, sizeof kn, "%s/kernel:0", x->name);
                    snprintf(bn, sizeof bn, "%s/bias:0", x->name);
                    const char *wn[2] = {kn, bn};
                    r |= put_str_array(g, "weight_names", wn, 2);
                    int cols = layer_kernel_cols(L);
                    hsize_t kd[4] = {(hsize_t)L->in_size, (hsize_t)cols, 0, 0}, bd[1] = {(hsize_t)cols};
                    int rank = 2;
                    if ((int)L->kind == LAYER_CONV2D) {
                        kd[0] = (hsize_t)L->geom.kh; kd[1] = (hsize_t)L->geom.kw; kd[2] = (hsize_t)L->geom.c;
                        kd[3] = (hsize_t)cols; rank = 4;
                    } else if ((int)L->kind == LAYER_CONV1D) {
                        kd[0] = (hsize_t)L->geom.kw; kd[1] = (hsize_t)L->geom.c; kd[2] = (hsize_t)cols; rank = 3;
                    }
                    r |= put_dataset(g, kn, rank, kd, m->weff + L->w_off);
                    r |= put_dataset(g, bn, 1, bd, m->weff + L->b_off);
                    if (x->quantized) {
                        r |= mio_put_str(g, "nnlo_kernel_type", fixed_format_hls(&n->f.info[x->layer].w, t, sizeof t));
                        r |= mio_put_str(g, "nnlo_bias_type", fixed_format_hls(&n->f.info[x->layer].b, t, sizeof t));
                    }
                } else {
                    r |= put_str_array(g, "weight_names", NULL, 0);
                    if (x->kind == KX_QUANT) {
                        char t[96];
                        r |= mio_put_str(g, "nnlo_quant_type", fixed_format_hls(&m->layers[x->layer].quant, t, sizeof t));
                    }
                }
                H5Gclose(g);
            }
            hid_t tg = H5Gcreate2(mw, "top_level_model_weights", H5P_DEFAULT, gcpl, H5P_DEFAULT);
            if (tg < 0) r = -1;
            else { r |= put_str_array(tg, "weight_names", NULL, 0); H5Gclose(tg); }
            H5Gclose(mw);
        }
    }
    H5Pclose(gcpl);
    sbuf_free(&js);
    free(xs); free(sorted); free(names);
    if (f < 0) return nl_err(e, NL_ERR_IO, "%s: cannot create (does the folder exist and is it writable?)", tmp);
    if (r < 0) {
        char he[300];
        h5u_errstr(he, sizeof he);
        H5Fclose(f);
        unlink(tmp);
        return nl_err(e, NL_ERR_IO, "%s: cannot write the Keras model%s%s", tmp, he[0] ? ": " : "", he);
    }
    if (H5Fclose(f) < 0) { unlink(tmp); return nl_err(e, NL_ERR_IO, "%s: cannot close (disk full?)", tmp); }
    return h5u_commit(tmp, path, e);
}

nl_status keras_net_save_nnlo(const keras_net *n, const char *path, nl_error *e) {
    const modelio_file *f = &n->f;
    const char **mn = f->n_metrics ? calloc((size_t)f->n_metrics, sizeof *mn) : NULL;
    if (f->n_metrics && !mn) return nl_err(e, NL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < f->n_metrics; i++) mn[i] = f->metric_names[i];
    modelio_meta meta = {f->trial_yaml, f->trial_id, f->n_metrics, mn, f->metric_values};
    nl_status st = modelio_save(path, f->m, f->info, &meta, e);
    free(mn);
    if (st) return st;
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (h < 0) return nl_err(e, NL_ERR_IO, "%s: cannot reopen to record the output activation", path);
    herr_t r = mio_put_str(h, "input_name", n->input_name);
    if (n->softmax) {
        r |= mio_put_str(h, "output_activation", "softmax");
        r |= mio_put_str(h, "output_activation_name", n->softmax_name[0] ? n->softmax_name : "softmax");
    }
    if (H5Fclose(h) < 0 || r < 0) return nl_err(e, NL_ERR_IO, "%s: cannot record the output activation", path);
    return NL_OK;
}
