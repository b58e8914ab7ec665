/* check_keras.c — Keras/QKeras import, hls4ml config files, the network ->
 * fpga_layer mapping and the hls4ml export. Fixtures are Keras HDF5 files
 * written here with the HDF5 C API exactly as h5py/tf.keras write them
 * (model_config as a fixed-length NULLPAD byte string, model_weights with
 * layer_names, per-layer weight_names and <layer>/<layer>/kernel:0), so no
 * Python is needed. Checks hand-computed QKeras quantization, round trips
 * (import -> export -> import: identical weights and estimates), weight
 * text files parsed back, config spellings, and import error messages. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include "nnlo/hls4ml.h"
#include "testutil.h"

static char *tpath(const char *dir, const char *name) {
    static char buf[8][700];
    static int k;
    char *p = buf[k++ % 8];
    return fs_join(p, 700, dir, name);
}

/* ---- a Keras file as h5py writes it ------------------------------------ */

static void put_fixed(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s));
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, s) >= 0);
    H5Aclose(a); H5Sclose(sp); H5Tclose(t);
}

static void put_vlen(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, &s) >= 0);
    H5Aclose(a); H5Sclose(sp); H5Tclose(t);
}

/* np.asarray([b"a", b"bc"]): fixed-length 'S2' NULLPAD; [] -> float64 (0,) */
static void put_names(hid_t obj, const char *name, const char *const *v, int n) {
    hsize_t d[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, d, NULL);
    if (n == 0) {
        hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Aclose(a); H5Sclose(sp);
        return;
    }
    size_t w = 1;
    for (int i = 0; i < n; i++) if (strlen(v[i]) > w) w = strlen(v[i]);
    char buf[16][128];
    memset(buf, 0, sizeof buf);
    char *flat = calloc((size_t)n, w);
    for (int i = 0; i < n; i++) memcpy(flat + (size_t)i * w, v[i], strlen(v[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, flat) >= 0);
    H5Aclose(a); H5Sclose(sp); H5Tclose(t);
    free(flat);
}

static void put_data(hid_t g, const char *path, int rank, const hsize_t *dims, const float *v) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, path, H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(d >= 0);
    ck_assert(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d); H5Sclose(s); H5Pclose(lcpl);
}

typedef struct {
    const char *name;
    int n_in, n_out;       /* 0: no weights */
    const float *k, *b;    /* b NULL: no bias dataset */
} fx_layer;

static void write_keras(const char *path, const char *config, const fx_layer *L, int n) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    put_vlen(f, "keras_version", "2.13.1");
    put_vlen(f, "backend", "tensorflow");
    put_fixed(f, "model_config", config);
    hid_t mw = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *names[16];
    for (int i = 0; i < n; i++) names[i] = L[i].name;
    put_names(mw, "layer_names", names, n);
    put_fixed(mw, "backend", "tensorflow");
    put_fixed(mw, "keras_version", "2.13.1");
    for (int i = 0; i < n; i++) {
        hid_t g = H5Gcreate2(mw, L[i].name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (L[i].n_in > 0) {
            char kn[128], bn[128];
            snprintf(kn, sizeof kn, "%s/kernel:0", L[i].name);
            snprintf(bn, sizeof bn, "%s/bias:0", L[i].name);
            const char *wn[2] = {kn, bn};
            put_names(g, "weight_names", wn, L[i].b ? 2 : 1);
            hsize_t kd[2] = {(hsize_t)L[i].n_in, (hsize_t)L[i].n_out}, bd[1] = {(hsize_t)L[i].n_out};
            put_data(g, kn, 2, kd, L[i].k);
            if (L[i].b) put_data(g, bn, 1, bd, L[i].b);
        } else {
            put_names(g, "weight_names", NULL, 0);
        }
        H5Gclose(g);
    }
    H5Gclose(mw);
    H5Fclose(f);
}

/* The standard fixture: 4 -> QDense fc1 (3, quantized_bits(6,0) kernel and
 * bias) -> QActivation quantized_relu(6,2) -> Dense fc2 (2, softmax). */
static const char *CFG =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4], \"dtype\": \"float32\", \"name\": \"input_1\"}},"
    "{\"class_name\": \"QDense\", \"config\": {\"name\": \"fc1\", \"units\": 3, \"activation\": \"linear\", \"use_bias\": true,"
    " \"kernel_quantizer\": {\"class_name\": \"quantized_bits\", \"config\": {\"bits\": 6, \"integer\": 0, \"symmetric\": 0,"
    " \"alpha\": 1, \"keep_negative\": true, \"use_stochastic_rounding\": false, \"qnoise_factor\": 1.0}},"
    " \"bias_quantizer\": \"quantized_bits(6,0,alpha=1)\"}},"
    "{\"class_name\": \"QActivation\", \"config\": {\"name\": \"act1\", \"activation\": \"quantized_relu(6,2)\"}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc2\", \"units\": 2, \"activation\": \"softmax\", \"use_bias\": true}}"
    "]}, \"keras_version\": \"2.13.1\", \"backend\": \"tensorflow\"}";

/* fc1 kernel (4, 3): chosen to hit rounding cases of a 6-bit, 5-fraction grid */
static const float K1[12] = {0.3f, 0.109375f, -0.7f, 0.0f, 1.5f, -1.2f, 0.046875f, 0.0f, 0.2f, -0.015625f, 0.5f, 0.0f};
static const float B1[3] = {0.1f, -0.05f, 0.0f};
static const float K2[6] = {0.123456f, -0.5f, 0.75f, 0.333333f, -1.25f, 2.0f};
static const float B2[2] = {0.01f, -0.02f};

static void write_fixture(const char *path) {
    fx_layer L[4] = {{"input_1", 0, 0, NULL, NULL}, {"fc1", 4, 3, K1, B1}, {"act1", 0, 0, NULL, NULL},
                     {"fc2", 3, 2, K2, B2}};
    write_keras(path, CFG, L, 4);
}

static void load_ok(const char *path, keras_net *n) {
    nl_error e = {0};
    nl_status st = keras_net_load(path, 4, n, &e);
    ck_assert_msg(st == NL_OK, "%s", e.msg);
}

START_TEST(import_quantizers) {
    const char *d = tu_tmpdir();
    char *p = tpath(d, "m.h5");
    write_fixture(p);
    ck_assert(keras_is_keras_file(p));
    keras_net n;
    load_ok(p, &n);
    ck_assert_int_eq(n.f.n_specs, 4);
    const char *names[4] = {"fc1", "act1", "act1_q", "fc2"};
    layer_kind kinds[4] = {LAYER_DENSE, LAYER_RELU, LAYER_QUANT, LAYER_DENSE};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(n.f.specs[i].name, names[i]);
        ck_assert_int_eq(n.f.specs[i].kind, kinds[i]);
    }
    ck_assert_int_eq(n.f.in_size, 4);
    ck_assert_int_eq(n.f.out_size, 2);
    ck_assert_int_eq(n.softmax, 1);
    ck_assert_str_eq(n.softmax_name, "fc2_softmax");
    /* quantized_bits(6,0): k=1, i=0, f=5, RND_CONV, SAT */
    fixed_spec w = n.f.info[0].w;
    ck_assert(n.f.info[0].quantized);
    ck_assert_int_eq(w.k, 1); ck_assert_int_eq(w.i, 0); ck_assert_int_eq(w.f, 5);
    ck_assert_int_eq(w.round, FX_RND_CONV); ck_assert_int_eq(w.overflow, FX_SAT);
    /* quantized_relu(6,2): ap_ufixed<6,2> */
    fixed_spec q = n.f.specs[2].quant;
    ck_assert_int_eq(q.k, 0); ck_assert_int_eq(q.i, 2); ck_assert_int_eq(q.f, 4);
    ck_assert(!n.f.info[3].quantized);
    /* kernel on the 1/32 grid, QKeras rounding (half to even), clipped to [-1, 31/32] */
    const float want1[12] = {10 / 32.f, 4 / 32.f, -22 / 32.f, 0, 31 / 32.f, -1.0f, 2 / 32.f, 0, 6 / 32.f, 0, 16 / 32.f, 0};
    const model *m = n.f.m;
    tu_assert_close(m->weff + m->layers[0].w_off, want1, 12, 0, 0, "fc1 kernel");
    const float wantb[3] = {3 / 32.f, -2 / 32.f, 0};  /* 3.2 -> 3, -1.6 -> -2 */
    tu_assert_close(m->weff + m->layers[0].b_off, wantb, 3, 0, 0, "fc1 bias");
    tu_assert_close(m->weff + m->layers[3].w_off, K2, 6, 0, 0, "fc2 kernel (float, untouched)");
    tu_assert_close(m->params, m->weff, m->n_params, 0, 0, "params == weff");
    keras_net_free(&n);
}
END_TEST

static void estimate(const keras_net *n, const hls4ml_config *hc, fpga_report *r) {
    hls4ml_net hn;
    nl_error e = {0};
    nl_status st = hls4ml_fpga_layers(n->f.m, n->f.info, n->softmax ? n->softmax_name : NULL, n->input_name, hc,
                                      NULL, &hn, &e);
    ck_assert_msg(st == NL_OK, "%s", e.msg);
    st = fpga_estimate_ex(hn.layers, hn.n, &hn.fpga, &hn.opt, r, &e);
    ck_assert_msg(st == NL_OK, "%s", e.msg);
    hls4ml_net_free(&hn);
}

static void assert_same_cost(const fpga_cost *a, const fpga_cost *b, const char *what) {
    ck_assert_msg(a->dsp == b->dsp && a->lut == b->lut && a->ff == b->ff && a->bram18 == b->bram18 &&
                  a->latency_cycles == b->latency_cycles && a->ii == b->ii && a->multipliers == b->multipliers &&
                  a->nonzero_weights == b->nonzero_weights && a->ebops == b->ebops,
                  "%s: dsp %ld/%ld lut %ld/%ld ff %ld/%ld lat %d/%d", what, a->dsp, b->dsp, a->lut, b->lut, a->ff, b->ff,
                  a->latency_cycles, b->latency_cycles);
}

static void assert_same_net(const keras_net *a, const keras_net *b) {
    ck_assert_int_eq(a->f.n_specs, b->f.n_specs);
    ck_assert_int_eq(a->softmax, b->softmax);
    ck_assert_str_eq(a->softmax_name, b->softmax_name);
    for (int l = 0; l < a->f.n_specs; l++) {
        ck_assert_str_eq(a->f.specs[l].name, b->f.specs[l].name);
        ck_assert_int_eq(a->f.specs[l].kind, b->f.specs[l].kind);
        if (a->f.specs[l].kind == LAYER_QUANT)
            ck_assert(!memcmp(&a->f.specs[l].quant, &b->f.specs[l].quant, sizeof(fixed_spec)));
        if (a->f.specs[l].kind == LAYER_DENSE) {
            ck_assert_int_eq(a->f.info[l].quantized, b->f.info[l].quantized);
            if (a->f.info[l].quantized) {
                ck_assert(!memcmp(&a->f.info[l].w, &b->f.info[l].w, sizeof(fixed_spec)));
                ck_assert(!memcmp(&a->f.info[l].b, &b->f.info[l].b, sizeof(fixed_spec)));
            }
        }
    }
    ck_assert_int_eq(a->f.m->n_params, b->f.m->n_params);
    ck_assert_msg(!memcmp(a->f.m->weff, b->f.m->weff, (size_t)a->f.m->n_params * sizeof(float)), "weights differ");
}

START_TEST(round_trip) {
    const char *d = tu_tmpdir();
    char *p = tpath(d, "m.h5"), *nn = tpath(d, "n.h5"), *ex = tpath(d, "ex");
    write_fixture(p);
    keras_net a, b, c;
    nl_error e = {0};
    load_ok(p, &a);
    ck_assert_msg(keras_net_save_nnlo(&a, nn, &e) == NL_OK, "%s", e.msg);
    load_ok(nn, &b);
    ck_assert(!b.from_keras);
    assert_same_net(&a, &b);
    ck_assert_msg(hls4ml_export(&b, NULL, ex, &e) == NL_OK, "%s", e.msg);
    load_ok(tpath(ex, "model_weights.h5"), &c);
    assert_same_net(&a, &c);
    /* identical estimates: original, imported, exported, exported + its config */
    fpga_report ra, rb, rc, rd;
    hls4ml_config hc;
    ck_assert_msg(hls4ml_config_load(tpath(ex, "hls4ml_config.yml"), &hc, &e) == NL_OK, "%s", e.msg);
    estimate(&a, NULL, &ra);
    estimate(&b, NULL, &rb);
    estimate(&c, NULL, &rc);
    estimate(&c, &hc, &rd);
    ck_assert_int_eq(ra.n_layers, 4);  /* fc1, act1 (relu), fc2, softmax: act1_q is act1's result type */
    ck_assert_int_eq(rd.n_layers, ra.n_layers);
    assert_same_cost(&ra.total, &rb.total, "nnlo file");
    assert_same_cost(&ra.total, &rc.total, "export");
    assert_same_cost(&ra.total, &rd.total, "export + hls4ml_config.yml");
    for (int i = 0; i < ra.n_layers; i++) assert_same_cost(&ra.layers[i], &rd.layers[i], ra.layers[i].name);
    ck_assert(ra.total.dsp > 0);  /* the softmax and 16-bit fc2 products */
    fpga_report_free(&ra); fpga_report_free(&rb); fpga_report_free(&rc); fpga_report_free(&rd);
    hls4ml_config_free(&hc);
    keras_net_free(&a); keras_net_free(&b); keras_net_free(&c);
}
END_TEST

/* Reads a w<N>.txt back. */
static int read_txt(const char *path, double *v, int cap) {
    char *t;
    nl_error e = {0};
    ck_assert_msg(fs_read_all(path, &t, NULL, &e) == NL_OK, "%s", e.msg);
    int n = 0;
    char *p = t;
    while (*p && n < cap) {
        char *end;
        v[n++] = strtod(p, &end);
        ck_assert_msg(end != p, "%s: not a number at '%.10s'", path, p);
        p = end;
        if (*p == ',') p++;
        while (*p == ' ') p++;
    }
    free(t);
    return n;
}

START_TEST(weight_text_files) {
    const char *d = tu_tmpdir();
    char *p = tpath(d, "m.h5"), *ex = tpath(d, "ex"), *exr = tpath(d, "exr");
    write_fixture(p);
    keras_net a;
    nl_error e = {0};
    load_ok(p, &a);
    ck_assert_msg(hls4ml_export(&a, NULL, ex, &e) == NL_OK, "%s", e.msg);
    cfg_fpga rf = {"xcvu13p-flga2577-2-e", 5.0, FPGA_STRATEGY_RESOURCE, 2};
    ck_assert_msg(hls4ml_export(&a, &rf, exr, &e) == NL_OK, "%s", e.msg);
    const model *m = a.f.m;
    double v[64];
    /* hls4ml indices: input_1 = 1, fc1 = 2, act1 = 3, act1_q = 4, fc2 = 5 */
    ck_assert_int_eq(read_txt(tpath(ex, "weights/w2.txt"), v, 64), 12);
    for (int j = 0; j < 12; j++) ck_assert_msg(v[j] == m->weff[m->layers[0].w_off + j], "w2[%d] = %g", j, v[j]);
    ck_assert_int_eq(read_txt(tpath(ex, "weights/b2.txt"), v, 64), 3);
    for (int j = 0; j < 3; j++) ck_assert(v[j] == m->weff[m->layers[0].b_off + j]);
    /* fc2 is float: hls4ml's ap_fixed<16,6> (AP_TRN) values, 10 decimals */
    ck_assert_int_eq(read_txt(tpath(ex, "weights/w5.txt"), v, 64), 6);
    fixed_spec P = {1, 5, 10, FX_WRAP, FX_TRN};
    for (int j = 0; j < 6; j++) ck_assert_msg(v[j] == fixed_quantize(&P, K2[j]), "w5[%d] = %.12g", j, v[j]);
    ck_assert(v[0] == floor(0.123456 * 1024) / 1024);
    /* Resource: transposed to (n_out, n_in) */
    ck_assert_int_eq(read_txt(tpath(exr, "weights/w2.txt"), v, 64), 12);
    for (int j = 0; j < 12; j++) ck_assert(v[j] == m->weff[m->layers[0].w_off + (j % 4) * 3 + j / 4]);
    char *y;
    ck_assert(fs_read_all(tpath(exr, "hls4ml_config.yml"), &y, NULL, &e) == NL_OK);
    ck_assert_ptr_nonnull(strstr(y, "Strategy: Resource"));
    ck_assert_ptr_nonnull(strstr(y, "    act1_q:\n      Precision:\n        result: ap_ufixed<6,2,AP_RND_CONV,AP_SAT>"));
    ck_assert_ptr_nonnull(strstr(y, "        weight: ap_fixed<6,1,AP_RND_CONV,AP_SAT>"));
    free(y);
    keras_net_free(&a);
}
END_TEST

START_TEST(zero_weights_cost_no_dsp) {
    const char *d = tu_tmpdir();
    char *pz = tpath(d, "z.h5"), *pr = tpath(d, "r.h5");
    const char *cfg =
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 8, \"activation\": \"relu\", "
        "\"batch_input_shape\": [null, 16]}}]}}";
    float k[16 * 8], b[8] = {0};
    memset(k, 0, sizeof k);
    fx_layer L = {"d", 16, 8, k, b};
    write_keras(pz, cfg, &L, 1);
    rng_t r;
    rng_seed(&r, 3);
    for (int i = 0; i < 16 * 8; i++) k[i] = 0.5f * rng_normal(&r);
    write_keras(pr, cfg, &L, 1);
    keras_net z, rn;
    load_ok(pz, &z);
    load_ok(pr, &rn);
    ck_assert_int_eq(z.f.n_specs, 2);  /* Dense + its relu */
    ck_assert_str_eq(z.f.specs[1].name, "d_relu");
    fpga_report a, c;
    estimate(&z, NULL, &a);
    estimate(&rn, NULL, &c);
    ck_assert_int_eq(a.total.dsp, 0);
    ck_assert_int_eq(a.total.multipliers, 0);
    ck_assert_int_eq(a.layers[0].lut, 0);
    ck_assert_msg(c.total.dsp > 40, "random 16-bit weights: %ld DSP", c.total.dsp);  /* the test can fail */
    fpga_report_free(&a); fpga_report_free(&c);
    keras_net_free(&z); keras_net_free(&rn);
}
END_TEST

static void expect_error(const char *path, const char *const *needles) {
    keras_net n;
    nl_error e = {0};
    nl_status st = keras_net_load(path, 4, &n, &e);
    ck_assert_int_ne(st, NL_OK);
    for (int i = 0; needles[i]; i++) ck_assert_msg(strstr(e.msg, needles[i]), "'%s' not in: %s", needles[i], e.msg);
}

START_TEST(import_errors) {
    const char *d = tu_tmpdir();
    char *p = tpath(d, "e.h5");
    float k[12] = {0}, b[4] = {0};
    /* unsupported layer */
    write_keras(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                   "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4], \"name\": \"in\"}},"
                   "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"lstm1\", \"units\": 3}}]}}",
                (fx_layer[]){{"in", 0, 0, NULL, NULL}}, 1);
    expect_error(p, (const char *[]){"'lstm1'", "LSTM", "not supported", "QDense", "QConv2D", NULL});
    /* missing bias */
    const char *dense = "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", \"units\": 3, "
                        "\"batch_input_shape\": [null, 4]}}]}}";
    write_keras(p, dense, (fx_layer[]){{"fc", 4, 3, k, NULL}}, 1);
    expect_error(p, (const char *[]){"'fc'", "bias is missing", NULL});
    /* missing layer group */
    write_keras(p, dense, (fx_layer[]){{"other", 4, 3, k, b}}, 1);
    expect_error(p, (const char *[]){"'fc'", "no weights", "model_weights/fc", NULL});
    /* wrong kernel shape */
    write_keras(p, dense, (fx_layer[]){{"fc", 3, 4, k, b}}, 1);
    expect_error(p, (const char *[]){"'fc'", "shape (3, 4)", "expected (4, 3)", NULL});
    /* malformed JSON */
    write_keras(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [}", (fx_layer[]){{"fc", 4, 3, k, b}}, 1);
    expect_error(p, (const char *[]){"model_config is not valid JSON", "column", NULL});
    /* unsupported quantizer option */
    write_keras(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                   "{\"class_name\": \"QDense\", \"config\": {\"name\": \"q\", \"units\": 3, \"batch_input_shape\": [null, 4],"
                   " \"kernel_quantizer\": \"quantized_bits(4,0,1,alpha='auto_po2')\"}}]}}",
                (fx_layer[]){{"q", 4, 3, k, b}}, 1);
    expect_error(p, (const char *[]){"'q'", "kernel_quantizer", "alpha", NULL});
    /* softmax in the middle, unsupported activation */
    write_keras(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                   "{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", \"units\": 3, \"activation\": \"elu\","
                   " \"batch_input_shape\": [null, 4]}}]}}",
                (fx_layer[]){{"fc", 4, 3, k, b}}, 1);
    expect_error(p, (const char *[]){"'fc'", "activation 'elu' is not supported", NULL});
    /* not a Keras model (weights only) */
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_error(p, (const char *[]){"format_version", NULL});
    keras_net n;
    nl_error e = {0};
    ck_assert_int_ne(keras_load(p, 4, &n, &e), NL_OK);
    ck_assert_ptr_nonnull(strstr(e.msg, "model_config"));
}
END_TEST

START_TEST(hls4ml_config_spellings) {
    const char *d = tu_tmpdir();
    char *p = tpath(d, "c.yml");
    const char *y =
        "KerasJson: model.json\nOutputDir: prj\nPart: XCZU9EG-FFVB1156-2-E\nClockPeriod: 3.5\nIOType: io_parallel\n"
        "HLSConfig:\n  Model:\n    Precision: fixed<12,4>\n    ReuseFactor: 2\n    Strategy: Resource\n"
        "  LayerName:\n"
        "    fc1:\n      Precision:\n        weight: ap_ufixed<4,0>\n        bias: ufixed<8,2,AP_RND,AP_SAT>\n"
        "        result: ap_fixed<10,3,AP_RND>\n        accum: auto\n      ReuseFactor: 4\n"
        "    act1_q: {Precision: ap_int<6>}\n    fc2:\n      Precision:\n        result: auto\n";
    nl_error e = {0};
    ck_assert(fs_write_atomic(p, y, strlen(y), &e) == NL_OK);
    hls4ml_config c;
    ck_assert_msg(hls4ml_config_load(p, &c, &e) == NL_OK, "%s", e.msg);
    ck_assert_str_eq(c.fpga.part, "XCZU9EG-FFVB1156-2-E");
    ck_assert(c.fpga.clock_period_ns == 3.5);
    ck_assert_int_eq(c.fpga.reuse_factor, 2);
    ck_assert_int_eq(c.fpga.strategy, FPGA_STRATEGY_RESOURCE);
    fixed_spec want = {1, 3, 8, FX_WRAP, FX_TRN};  /* no modes: HLS's TRN/WRAP */
    ck_assert(!memcmp(&c.precision, &want, sizeof want));
    const hls4ml_layer_cfg *l = hls4ml_config_layer(&c, "FC1");  /* case-insensitive, as hls4ml */
    ck_assert_ptr_nonnull(l);
    ck_assert(l->has_w && l->w.k == 0 && l->w.i == 0 && l->w.f == 4 && l->w.round == FX_TRN);
    ck_assert(l->b.k == 0 && l->b.i == 2 && l->b.f == 6 && l->b.round == FX_RND && l->b.overflow == FX_SAT);
    ck_assert(l->result.k == 1 && l->result.i == 2 && l->result.f == 7 && l->result.round == FX_RND &&
              l->result.overflow == FX_WRAP);
    ck_assert(l->has_accum && l->accum_auto);
    ck_assert_int_eq(l->reuse_factor, 4);
    const hls4ml_layer_cfg *a = hls4ml_config_layer(&c, "act1_q");
    ck_assert(a && a->has_result && a->result.k == 1 && a->result.i == 5 && a->result.f == 0);
    /* applied: fc1 weights become ap_ufixed<4,0>, act1's result is fc2's input,
     * fc2's 'auto' result is hls4ml's inferred accumulator type */
    char *mp = tpath(d, "m.h5");
    write_fixture(mp);
    keras_net n;
    load_ok(mp, &n);
    hls4ml_net hn;
    cfg_fpga base = {"xcu250-figd2104-2L-e", 5, FPGA_STRATEGY_LATENCY, 1};
    ck_assert_msg(hls4ml_fpga_layers(n.f.m, n.f.info, NULL, n.input_name, &c, &base, &hn, &e) == NL_OK, "%s", e.msg);
    ck_assert_str_eq(hn.fpga.part, "XCZU9EG-FFVB1156-2-E");   /* the file overrides the base */
    ck_assert_int_eq(hn.fpga.reuse_factor, 2);
    ck_assert_int_eq(hn.n, 3);
    ck_assert_int_eq(hn.layers[0].w_spec.k, 0);
    ck_assert(hn.layers[0].w[2] == 0.3125f);  /* -0.6875 = -11/16 wraps to 5/16, as ap_ufixed<4,0> does */
    ck_assert(hn.layers[0].w[0] == 0.3125f);
    ck_assert_int_eq(hn.layers[0].reuse_factor, 4);
    ck_assert_int_eq(hn.opt.accum, FPGA_ACCUM_AUTO);
    ck_assert(hn.layers[1].out_spec.i == 5 && hn.layers[1].out_spec.f == 0);  /* act1's result: act1_q's type */
    ck_assert(!memcmp(&hn.layers[2].in_spec, &hn.layers[1].out_spec, sizeof(fixed_spec)));
    fixed_spec acc = hls4ml_auto_accum(&hn.layers[2].in_spec, &hn.layers[2].w_spec, &hn.layers[2].b_spec, 3);
    ck_assert(!memcmp(&hn.layers[2].out_spec, &acc, sizeof acc));
    hls4ml_net_free(&hn);
    keras_net_free(&n);
    hls4ml_config_free(&c);
    /* errors name file:line:col and the key */
    const char *bad = "HLSConfig:\n  Model:\n    Precision: fixd<16,6>\n";
    ck_assert(fs_write_atomic(p, bad, strlen(bad), &e) == NL_OK);
    ck_assert_int_eq(hls4ml_config_load(p, &c, &e), NL_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, ":3:16: HLSConfig.Model.Precision") && strstr(e.msg, "fixd<16,6>"), "%s", e.msg);
    const char *bad2 = "HLSConfig:\n  LayerType:\n    Dense: {ReuseFactor: 2}\n";
    ck_assert(fs_write_atomic(p, bad2, strlen(bad2), &e) == NL_OK);
    ck_assert_int_eq(hls4ml_config_load(p, &c, &e), NL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "LayerType"));
}
END_TEST

START_TEST(auto_accumulator) {
    /* in ap_ufixed<6,2>, w ap_fixed<6,1>, b ap_fixed<6,1>, n_in 16:
     * width 6+6+4 = 16, integers 2+1+4 = 7, frac 9; bias: max(7, 1)+1 = 8
     * integers, 8 + max(9, 5) = 17 bits -> ap_fixed<17,8> */
    fixed_spec in = {0, 2, 4, FX_SAT, FX_RND}, w = {1, 0, 5, FX_SAT, FX_RND}, b = w;
    fixed_spec a = hls4ml_auto_accum(&in, &w, &b, 16);
    ck_assert_int_eq(a.k, 1); ck_assert_int_eq(a.i, 7); ck_assert_int_eq(a.f, 9);
    /* unsigned input, unsigned weights, n_in 1: ap_ufixed<4,1> x ap_ufixed<3,0> -> width 7, int 1,
     * bias ap_fixed<8,3>: a = 1 + 1 = 2, c = 3 -> 4 integers, 4 + max(6, 5) = 10, signed */
    fixed_spec ui = {0, 1, 3, FX_SAT, FX_RND}, uw = {0, 0, 3, FX_SAT, FX_RND}, sb = {1, 2, 5, FX_SAT, FX_RND};
    a = hls4ml_auto_accum(&ui, &uw, &sb, 1);
    ck_assert_int_eq(a.k, 1); ck_assert_int_eq(a.i, 3); ck_assert_int_eq(a.f, 6);
}
END_TEST

/* ---- CNNs ---------------------------------------------------------------- */

/* A layer group with any number of weights of any rank. */
typedef struct {
    const char *name;
    int nw;
    const char *wn[4];     /* "kernel", "bias", "gamma", ... */
    int rank[4];
    hsize_t dims[4][4];
    const float *v[4];
} fx_wlayer;

static void write_keras_w(const char *path, const char *config, const fx_wlayer *L, int n) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    put_vlen(f, "keras_version", "2.13.1");
    put_vlen(f, "backend", "tensorflow");
    put_fixed(f, "model_config", config);
    hid_t mw = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *names[16];
    for (int i = 0; i < n; i++) names[i] = L[i].name;
    put_names(mw, "layer_names", names, n);
    for (int i = 0; i < n; i++) {
        hid_t g = H5Gcreate2(mw, L[i].name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        char wn[4][128];
        const char *wp[4];
        for (int k = 0; k < L[i].nw; k++) {
            snprintf(wn[k], sizeof wn[k], "%s/%s:0", L[i].name, L[i].wn[k]);
            wp[k] = wn[k];
            put_data(g, wn[k], L[i].rank[k], L[i].dims[k], L[i].v[k]);
        }
        put_names(g, "weight_names", wp, L[i].nw);
        H5Gclose(g);
    }
    H5Gclose(mw);
    H5Fclose(f);
}

/* (6, 6, 2) -> QConv2D c1 (3 filters 3x3, quantized_bits(8,1)) -> BatchNormalization bn1
 * (not fused: c1 is quantized) -> relu -> MaxPooling2D 2 -> (2, 2, 3) -> Conv2D c2 (2 filters
 * 1x1, same) -> BatchNormalization bn2 (fused into c2) -> LeakyReLU 0.1 -> Flatten -> Dropout
 * -> Dense fc (2, softmax). With bn2 = 0: no bn2 layer. */
static void cnn_config(char *buf, size_t len, int bn2) {
    snprintf(buf, len,
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"cnn\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 6, 6, 2], \"name\": \"img\"}},"
        "{\"class_name\": \"QConv2D\", \"config\": {\"name\": \"c1\", \"filters\": 3, \"kernel_size\": [3, 3], "
        "\"strides\": [1, 1], \"padding\": \"valid\", \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], "
        "\"activation\": \"linear\", \"use_bias\": true, \"kernel_quantizer\": \"quantized_bits(8,1,alpha=1)\", "
        "\"bias_quantizer\": \"quantized_bits(8,1,alpha=1)\"}},"
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn1\", \"axis\": -1, \"momentum\": 0.9, "
        "\"epsilon\": 0.001, \"center\": true, \"scale\": true}},"
        "{\"class_name\": \"Activation\", \"config\": {\"name\": \"r1\", \"activation\": \"relu\"}},"
        "{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"p1\", \"pool_size\": [2, 2], \"strides\": null, "
        "\"padding\": \"valid\", \"data_format\": \"channels_last\"}},"
        "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c2\", \"filters\": 2, \"kernel_size\": 1, "
        "\"padding\": \"same\", \"activation\": \"linear\", \"use_bias\": true}},"
        "%s"
        "{\"class_name\": \"LeakyReLU\", \"config\": {\"name\": \"lr\", \"alpha\": 0.1}},"
        "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"fl\", \"data_format\": \"channels_last\"}},"
        "{\"class_name\": \"Dropout\", \"config\": {\"name\": \"dr\", \"rate\": 0.25}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", \"units\": 2, \"activation\": \"softmax\"}}"
        "]}}",
        bn2 ? "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn2\", \"axis\": [3], "
              "\"momentum\": 0.99, \"epsilon\": 0.001}}," : "");
}

static float CK1[3 * 3 * 2 * 3], CB1[3], CK2[3 * 2], CB2[2], FK[8 * 2], FB[2];
static float G1[3] = {1.5f, 0.5f, -2.0f}, BE1[3] = {0.1f, 0.0f, -0.3f}, MU1[3] = {0.2f, -0.1f, 0.0f},
             VA1[3] = {4.0f, 0.25f, 1.0f};
static float G2[2] = {0.75f, 2.0f}, BE2[2] = {0.5f, -0.25f}, MU2[2] = {0.3f, -0.2f}, VA2[2] = {0.5f, 2.0f};

static void write_cnn(const char *path, int bn2, int identity_bn2) {
    rng_t r;
    rng_seed(&r, 17);
    for (int i = 0; i < 54; i++) CK1[i] = 0.4f * rng_normal(&r);
    for (int i = 0; i < 3; i++) CB1[i] = 0.05f * (float)i;
    for (int i = 0; i < 6; i++) CK2[i] = 0.6f * rng_normal(&r);
    CB2[0] = 0.125f; CB2[1] = -0.0625f;
    for (int i = 0; i < 16; i++) FK[i] = 0.3f * rng_normal(&r);
    FB[0] = 0.01f; FB[1] = -0.02f;
    static float I1[2] = {1, 1}, Z[2] = {0, 0}, V1[2] = {0.999f, 0.999f};  /* var + eps = 1: scale 1 */
    char cfg[4096];
    cnn_config(cfg, sizeof cfg, bn2);
    fx_wlayer L[] = {
        {"img", 0, {0}, {0}, {{0}}, {0}},
        {"c1", 2, {"kernel", "bias"}, {4, 1}, {{3, 3, 2, 3}, {3}}, {CK1, CB1}},
        {"bn1", 4, {"gamma", "beta", "moving_mean", "moving_variance"}, {1, 1, 1, 1}, {{3}, {3}, {3}, {3}},
         {G1, BE1, MU1, VA1}},
        {"r1", 0, {0}, {0}, {{0}}, {0}},
        {"p1", 0, {0}, {0}, {{0}}, {0}},
        {"c2", 2, {"kernel", "bias"}, {4, 1}, {{1, 1, 3, 2}, {2}}, {CK2, CB2}},
        {"bn2", 4, {"gamma", "beta", "moving_mean", "moving_variance"}, {1, 1, 1, 1}, {{2}, {2}, {2}, {2}},
         {identity_bn2 ? I1 : G2, identity_bn2 ? Z : BE2, identity_bn2 ? Z : MU2, identity_bn2 ? V1 : VA2}},
        {"lr", 0, {0}, {0}, {{0}}, {0}},
        {"fl", 0, {0}, {0}, {{0}}, {0}},
        {"dr", 0, {0}, {0}, {{0}}, {0}},
        {"fc", 2, {"kernel", "bias"}, {2, 1}, {{8, 2}, {2}}, {FK, FB}},
    };
    if (bn2) {
        write_keras_w(path, cfg, L, 11);
    } else {
        fx_wlayer M[10];
        for (int i = 0, k = 0; i < 11; i++) if (i != 6) M[k++] = L[i];
        write_keras_w(path, cfg, M, 10);
    }
}

static void hls_layers(const keras_net *n, const hls4ml_config *hc, hls4ml_net *hn) {
    nl_error e = {0};
    nl_status st = hls4ml_fpga_layers(n->f.m, n->f.info, n->softmax ? n->softmax_name : NULL, n->input_name, hc,
                                      NULL, hn, &e);
    ck_assert_msg(st == NL_OK, "%s", e.msg);
}

START_TEST(cnn_import_and_mapping) {
    const char *d = tu_tmpdir();
    char *p = tpath(d, "cnn.h5");
    write_cnn(p, 1, 0);
    keras_net n;
    load_ok(p, &n);
    /* Dropout is dropped; Flatten stays (it changes the shape) */
    const char *names[] = {"c1", "bn1", "r1", "p1", "c2", "bn2", "lr", "fl", "fc"};
    const int kinds[] = {LAYER_CONV2D, LAYER_BATCHNORM, LAYER_RELU, LAYER_MAXPOOL2D, LAYER_CONV2D, LAYER_BATCHNORM,
                         LAYER_LEAKY_RELU, LAYER_FLATTEN, LAYER_DENSE};
    ck_assert_int_eq(n.f.n_specs, 9);
    for (int i = 0; i < 9; i++) {
        ck_assert_str_eq(n.f.specs[i].name, names[i]);
        ck_assert_int_eq((int)n.f.specs[i].kind, kinds[i]);
    }
    const model *m = n.f.m;
    ck_assert_int_eq(m->in_size, 72);
    ck_assert_int_eq(m->layers[0].out_h, 4);
    ck_assert_int_eq(m->layers[3].out_size, 12);
    ck_assert_int_eq(m->layers[4].out_h, 2);   /* 1x1 same */
    ck_assert_int_eq(m->out_size, 2);
    ck_assert_str_eq(n.softmax_name, "fc_softmax");
    ck_assert_float_eq(m->layers[6].alpha, 0.1f);
    ck_assert_float_eq(m->layers[1].epsilon, 0.001f);
    /* c1: quantized_bits(8,1): k=1, i=1, f=6, kernel on the 1/64 grid (QKeras round half even) */
    ck_assert(n.f.info[0].quantized);
    ck_assert_int_eq(n.f.info[0].w.f, 6);
    for (int i = 0; i < 54; i++) {
        float want = rintf(CK1[i] * 64) / 64;
        if (want > 127 / 64.f) want = 127 / 64.f;
        if (want < -2) want = -2;
        ck_assert_msg(m->weff[m->layers[0].w_off + i] == want, "c1 kernel[%d] %g != %g", i,
                      m->weff[m->layers[0].w_off + i], want);
    }
    tu_assert_close(m->weff + m->layers[4].w_off, CK2, 6, 0, 0, "c2 kernel (float)");
    tu_assert_close(m->state + m->layers[1].s_off, MU1, 3, 0, 0, "bn1 moving mean");
    tu_assert_close(m->state + m->layers[1].s_off + 3, VA1, 3, 0, 0, "bn1 moving variance");
    tu_assert_close(m->weff + m->layers[5].w_off, G2, 2, 0, 0, "bn2 gamma");
    /* the mapping: bn1 is a layer (c1 is quantized), bn2 is fused into c2;
     * Flatten and Dropout make none */
    hls4ml_net hn;
    hls_layers(&n, NULL, &hn);
    const int fk[] = {FPGA_LAYER_CONV2D, FPGA_LAYER_BATCHNORM, FPGA_LAYER_RELU, FPGA_LAYER_MAXPOOL, FPGA_LAYER_CONV2D,
                      FPGA_LAYER_LEAKY_RELU, FPGA_LAYER_DENSE, FPGA_LAYER_SOFTMAX};
    ck_assert_int_eq(hn.n, 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq((int)hn.layers[i].kind, fk[i]);
    ck_assert(hn.fused[5] && !hn.fused[1]);
    ck_assert_int_eq(hn.of_layer[5], 4);
    ck_assert_int_eq(hn.of_layer[7], -1);
    /* bn1 scale = gamma / sqrt(var + eps), bias = beta - mean scale, on ap_fixed<16,6> */
    fixed_spec P = {1, 5, 10, FX_WRAP, FX_TRN};
    for (int c = 0; c < 3; c++) {
        double s = G1[c] / sqrt((double)VA1[c] + 0.001);
        ck_assert_msg(hn.layers[1].w[c] == fixed_quantize(&P, (float)s), "bn1 scale %d", c);
        ck_assert(hn.layers[1].b[c] == fixed_quantize(&P, (float)(BE1[c] - MU1[c] * s)));
    }
    /* c2 fused: W' = W s, b' = (b - mean) s + beta, quantized to ap_fixed<16,6> */
    for (int i = 0; i < 6; i++) {
        int o = i % 2;
        double s = G2[o] / sqrt((double)VA2[o] + 0.001);
        ck_assert_msg(fabsf(hn.layers[4].w[i] - fixed_quantize(&P, (float)(CK2[i] * s))) <= 1.0f / 1024,
                      "c2 fused w[%d] = %g", i, hn.layers[4].w[i]);
    }
    ck_assert(fabsf(hn.layers[4].b[1] - fixed_quantize(&P, (float)((CB2[1] - MU2[1]) * G2[1] / sqrt(2.001) + BE2[1]))) <=
              1.0f / 1024);
    /* each layer's input type is the previous result; the fused result is hls4ml's auto type */
    for (int i = 1; i < hn.n; i++) ck_assert(!memcmp(&hn.layers[i].in_spec, &hn.layers[i - 1].out_spec, sizeof P));
    fixed_spec au = hls4ml_auto_accum(&hn.layers[4].in_spec, &hn.layers[4].w_spec, &hn.layers[4].b_spec, 3);
    ck_assert(!memcmp(&hn.layers[4].out_spec, &au, sizeof au));
    ck_assert_int_eq(hn.layers[3].kh, 2);
    ck_assert_int_eq(hn.layers[0].in_c, 2);
    fpga_report r;
    nl_error e = {0};
    ck_assert_msg(fpga_estimate_ex(hn.layers, hn.n, &hn.fpga, &hn.opt, &r, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(r.layers[3].dsp, 0);            /* pooling */
    long nz = 0;
    for (int i = 0; i < 54; i++) nz += m->weff[m->layers[0].w_off + i] != 0;
    ck_assert_int_eq(r.layers[0].nonzero_weights, nz);
    ck_assert_int_eq(r.layers[0].ii, 16);            /* 16 output pixels, ParallelizationFactor 1 */
    fpga_report_free(&r);
    hls4ml_net_free(&hn);
    keras_net_free(&n);
}
END_TEST

START_TEST(cnn_fused_batchnorm_costs_nothing) {
    /* bn2 with scale exactly 1 and shift 0, fused into c2, gives the same
     * estimate as the network without bn2 once c2's result is 'auto' in
     * both (hls4ml fuses only into an 'auto' result, which then becomes the
     * inferred accumulator type: the layers after it see that type) */
    const char *d = tu_tmpdir();
    char *pa = tpath(d, "a.h5"), *pb = tpath(d, "b.h5");
    write_cnn(pa, 1, 1);
    write_cnn(pb, 0, 0);
    keras_net a, b;
    load_ok(pa, &a);
    load_ok(pb, &b);
    ck_assert_int_eq(a.f.n_specs, b.f.n_specs + 1);
    hls4ml_config hc;
    hls4ml_config_default(&hc);
    hls4ml_layer_cfg lc;
    memset(&lc, 0, sizeof lc);
    snprintf(lc.name, sizeof lc.name, "c2");
    lc.has_result = lc.result_auto = 1;
    lc.strategy = -1;
    hc.layers = &lc;
    hc.n_layers = 1;
    fpga_report ra, rb, rn;
    estimate(&a, &hc, &ra);
    estimate(&b, &hc, &rb);
    ck_assert_int_eq(ra.n_layers, rb.n_layers);
    assert_same_cost(&ra.total, &rb.total, "fused identity BatchNorm");
    for (int i = 0; i < ra.n_layers; i++) assert_same_cost(&ra.layers[i], &rb.layers[i], ra.layers[i].name);
    /* without result: auto hls4ml does not fuse: bn2 is a scale-and-shift layer of its own */
    lc.has_result = 0;
    estimate(&a, &hc, &rn);
    ck_assert_int_eq(rn.n_layers, ra.n_layers + 1);
    ck_assert_str_eq(rn.layers[5].name, "bn2");
    /* scale 1 is wiring, shift 0 nothing: only a cast remains */
    ck_assert_int_eq(rn.layers[5].dsp, 0);
    ck_assert_str_eq(ra.layers[1].name, "bn1");
    ck_assert_int_gt(ra.layers[1].lut + ra.layers[1].dsp, 0);  /* a real unfused BatchNorm costs */
    fpga_report_free(&ra); fpga_report_free(&rb); fpga_report_free(&rn);
    keras_net_free(&a); keras_net_free(&b);
}
END_TEST

START_TEST(cnn_round_trip_and_export) {
    const char *d = tu_tmpdir();
    char p[700], ex[700], exr[700];  /* tpath's buffers rotate */
    snprintf(p, sizeof p, "%s", tpath(d, "cnn.h5"));
    snprintf(ex, sizeof ex, "%s", tpath(d, "ex"));
    snprintf(exr, sizeof exr, "%s", tpath(d, "exr"));
    write_cnn(p, 1, 0);
    keras_net a, c;
    nl_error e = {0};
    load_ok(p, &a);
    ck_assert_msg(hls4ml_export(&a, NULL, ex, &e) == NL_OK, "%s", e.msg);
    load_ok(tpath(ex, "model_weights.h5"), &c);
    assert_same_net(&a, &c);
    /* the nnlo-c model file (what `nnlo-c import` writes) holds the same CNN */
    {
        keras_net b;
        char nn[700];
        snprintf(nn, sizeof nn, "%s", tpath(d, "n.h5"));
        ck_assert_msg(keras_net_save_nnlo(&a, nn, &e) == NL_OK, "%s", e.msg);
        load_ok(nn, &b);
        assert_same_net(&a, &b);
        ck_assert(!memcmp(a.f.m->state, b.f.m->state, (size_t)a.f.m->n_state * sizeof(float)));
        fpga_report r1, r2;
        estimate(&a, NULL, &r1);
        estimate(&b, NULL, &r2);
        assert_same_cost(&r1.total, &r2.total, "nnlo-c model file");
        fpga_report_free(&r1); fpga_report_free(&r2);
        keras_net_free(&b);
    }
    for (int l = 0; l < a.f.n_specs; l++) {
        const layer_spec *x = &a.f.specs[l], *y = &c.f.specs[l];
        ck_assert_int_eq(x->filters, y->filters);
        ck_assert_int_eq(c.f.m->layers[l].out_size, a.f.m->layers[l].out_size);  /* a 1x1 'same' is written 'valid' */
        ck_assert(!memcmp(x->kernel, y->kernel, sizeof x->kernel) && !memcmp(x->pool, y->pool, sizeof x->pool));
        if (layer_has_kernel((int)x->kind)) ck_assert_int_eq(a.f.info[l].quantized, c.f.info[l].quantized);
    }
    ck_assert_int_eq(a.f.m->n_state, c.f.m->n_state);
    ck_assert(!memcmp(a.f.m->state, c.f.m->state, (size_t)a.f.m->n_state * sizeof(float)));
    ck_assert_float_eq(c.f.m->layers[6].alpha, 0.1f);
    /* identical estimates with and without the exported config */
    hls4ml_config hc;
    ck_assert_msg(hls4ml_config_load(tpath(ex, "hls4ml_config.yml"), &hc, &e) == NL_OK, "%s", e.msg);
    fpga_report ra, rc, rd;
    estimate(&a, NULL, &ra);
    estimate(&c, NULL, &rc);
    estimate(&c, &hc, &rd);
    ck_assert_int_eq(rd.n_layers, 8);
    assert_same_cost(&ra.total, &rc.total, "export");
    for (int i = 0; i < ra.n_layers; i++) assert_same_cost(&ra.layers[i], &rd.layers[i], ra.layers[i].name);
    /* the config: ParallelizationFactor for convs, result auto where a BatchNorm fuses, no bn2 entry */
    char *y;
    ck_assert(fs_read_all(tpath(ex, "hls4ml_config.yml"), &y, NULL, &e) == NL_OK);
    ck_assert_ptr_nonnull(strstr(y, "    c1:\n      Precision:\n        weight: ap_fixed<8,2,AP_RND_CONV,AP_SAT>"));
    ck_assert_ptr_nonnull(strstr(y, "      ParallelizationFactor: 1\n"));
    ck_assert_ptr_nonnull(strstr(y, "        result: auto\n        accum: auto\n"));
    ck_assert_ptr_nonnull(strstr(y, "    bn1:\n      Precision:\n        scale: ap_fixed<16,6>"));
    ck_assert_ptr_null(strstr(y, "    bn2:"));
    ck_assert_ptr_null(strstr(y, "    dr:"));
    free(y);
    /* weight files: img 1, c1 2, bn1 3, r1 4, p1 5, c2 6, bn2 7, lr 8, fl 9, (dr skipped), fc 10 */
    double v[128];
    const model *m = a.f.m;
    ck_assert_int_eq(read_txt(tpath(ex, "weights/w2.txt"), v, 128), 54);
    for (int j = 0; j < 54; j++) ck_assert(v[j] == m->weff[m->layers[0].w_off + j]);
    ck_assert_int_eq(read_txt(tpath(ex, "weights/s3.txt"), v, 128), 3);
    ck_assert_int_eq(read_txt(tpath(ex, "weights/w10.txt"), v, 128), 16);
    hls4ml_net hn;
    hls_layers(&a, NULL, &hn);
    ck_assert_int_eq(read_txt(tpath(ex, "weights/w6.txt"), v, 128), 6);  /* c2 with bn2 fused */
    for (int j = 0; j < 6; j++) ck_assert_msg(v[j] == hn.layers[4].w[j], "w6[%d] = %g", j, v[j]);
    ck_assert(!fs_exists(tpath(ex, "weights/w7.txt")) && !fs_exists(tpath(ex, "weights/s7.txt")));
    /* Resource: conv weights transposed to (Cout, KH, KW, Cin) */
    cfg_fpga rs = {"xcvu13p-flga2577-2-e", 5.0, FPGA_STRATEGY_RESOURCE, 2};
    ck_assert_msg(hls4ml_export(&a, &rs, exr, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(read_txt(tpath(exr, "weights/w2.txt"), v, 128), 54);
    for (int j = 0; j < 54; j++) ck_assert(v[j] == m->weff[m->layers[0].w_off + (j % 18) * 3 + j / 18]);
    /* ParallelizationFactor from a config: c1 has 16 output pixels; 4 in parallel = 4x the
     * multipliers (8-bit weights: built in LUTs, no DSP) and LUTs */
    for (int i = 0; i < hc.n_layers; i++)
        if (!strcmp(hc.layers[i].name, "c1")) hc.layers[i].parallelization = 4;
    fpga_report_free(&rc);
    estimate(&c, &hc, &rc);
    ck_assert_int_gt(rd.layers[0].multipliers, 0);
    ck_assert_int_eq(rd.layers[0].dsp, 0);
    ck_assert_int_eq(rc.layers[0].multipliers, 4 * rd.layers[0].multipliers);
    ck_assert_int_eq(rc.layers[0].lut, 4 * rd.layers[0].lut);
    ck_assert_int_eq(rc.layers[0].ii, 4);
    fpga_report_free(&ra); fpga_report_free(&rc); fpga_report_free(&rd);
    hls4ml_net_free(&hn);
    hls4ml_config_free(&hc);
    keras_net_free(&a); keras_net_free(&c);
}
END_TEST

START_TEST(cnn_import_1d_and_errors) {
    const char *d = tu_tmpdir();
    char *p = tpath(d, "c1d.h5");
    /* (8, 2) -> Conv1D k3 (2 filters) tanh -> AveragePooling1D 2 -> QActivation quantized_tanh(4)
     * -> Flatten -> Dense 1 sigmoid */
    const char *cfg1 =
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"Conv1D\", \"config\": {\"name\": \"k\", \"filters\": 2, \"kernel_size\": [3], "
        "\"activation\": \"tanh\", \"batch_input_shape\": [null, 8, 2]}},"
        "{\"class_name\": \"AveragePooling1D\", \"config\": {\"name\": \"ap\", \"pool_size\": 2}},"
        "{\"class_name\": \"QActivation\", \"config\": {\"name\": \"qt\", \"activation\": \"quantized_tanh(4,0)\"}},"
        "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"f\"}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"o\", \"units\": 1, \"activation\": \"sigmoid\"}}]}}";
    static float k1[3 * 2 * 2], b1[2], ko[6], bo[1];
    for (int i = 0; i < 12; i++) k1[i] = 0.25f * (float)(i - 6);
    for (int i = 0; i < 6; i++) ko[i] = 0.5f;
    fx_wlayer L[] = {{"k", 2, {"kernel", "bias"}, {3, 1}, {{3, 2, 2}, {2}}, {k1, b1}},
                     {"ap", 0, {0}, {0}, {{0}}, {0}}, {"qt", 0, {0}, {0}, {{0}}, {0}}, {"f", 0, {0}, {0}, {{0}}, {0}},
                     {"o", 2, {"kernel", "bias"}, {2, 1}, {{6, 1}, {1}}, {ko, bo}}};
    write_keras_w(p, cfg1, L, 5);
    keras_net n;
    load_ok(p, &n);
    const int kinds[] = {LAYER_CONV1D, LAYER_TANH, LAYER_AVGPOOL1D, LAYER_HARD_TANH, LAYER_QUANT, LAYER_FLATTEN,
                         LAYER_DENSE, LAYER_SIGMOID};
    ck_assert_int_eq(n.f.n_specs, 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq((int)n.f.specs[i].kind, kinds[i]);
    /* quantized_tanh(4, 0): hard tanh, then ap_fixed<4,1> round half to even, saturating */
    fixed_spec qt = n.f.specs[4].quant;
    ck_assert(qt.k == 1 && qt.i == 0 && qt.f == 3 && qt.round == FX_RND_CONV && qt.overflow == FX_SAT);
    ck_assert_str_eq(n.f.specs[3].name, "qt");
    ck_assert_str_eq(n.f.specs[4].name, "qt_q");
    ck_assert_int_eq(n.f.m->layers[0].out_w, 6);
    ck_assert_int_eq(n.f.m->layers[2].out_w, 3);
    fpga_report r;
    estimate(&n, NULL, &r);
    ck_assert_int_eq(r.n_layers, 6);   /* conv1d, tanh, avgpool, hard_tanh, dense, sigmoid */
    ck_assert_int_eq(r.layers[3].dsp, 0);
    ck_assert_int_eq(r.layers[1].bram18, 6);  /* 12 tanh lookups, 2 per BRAM18 */
    fpga_report_free(&r);
    /* the export writes a 1-D input and Conv1D with a (3, 2, 2) kernel; import gives it back */
    char *ex = tpath(d, "ex1");
    nl_error e = {0};
    ck_assert_msg(hls4ml_export(&n, NULL, ex, &e) == NL_OK, "%s", e.msg);
    keras_net c;
    load_ok(tpath(ex, "model_weights.h5"), &c);
    assert_same_net(&n, &c);
    keras_net_free(&c);
    keras_net_free(&n);
    /* errors name the layer */
    float k[64] = {0};
    fx_wlayer one[] = {{"cv", 2, {"kernel", "bias"}, {4, 1}, {{3, 3, 2, 2}, {2}}, {k, k}}};
    write_keras_w(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                     "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"cv\", \"filters\": 2, \"kernel_size\": 3, "
                     "\"data_format\": \"channels_first\", \"batch_input_shape\": [null, 2, 6, 6]}}]}}", one, 1);
    expect_error(p, (const char *[]){"'cv'", "Conv2D", "channels_first", "channels_last", NULL});
    write_keras_w(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                     "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"cv\", \"filters\": 2, \"kernel_size\": 3, "
                     "\"batch_input_shape\": [null, 6, 6, 3]}}]}}", one, 1);
    expect_error(p, (const char *[]){"'cv'", "kernel", "shape (3, 3, 2, 2)", "expected (3, 3, 3, 2)", NULL});
    fx_wlayer bn[] = {{"cv", 2, {"kernel", "bias"}, {4, 1}, {{3, 3, 2, 2}, {2}}, {k, k}},
                      {"bn", 3, {"gamma", "beta", "moving_mean"}, {1, 1, 1}, {{2}, {2}, {2}}, {k, k, k}}};
    write_keras_w(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                     "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"cv\", \"filters\": 2, \"kernel_size\": 3, "
                     "\"batch_input_shape\": [null, 6, 6, 2]}},"
                     "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\"}}]}}", bn, 2);
    expect_error(p, (const char *[]){"'bn'", "BatchNormalization", "moving_variance is missing", NULL});
    write_keras_w(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                     "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"cv\", \"filters\": 2, \"kernel_size\": 3, "
                     "\"batch_input_shape\": [null, 6, 6, 2]}},"
                     "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 2}}]}}", one, 1);
    expect_error(p, (const char *[]){"'d'", "Dense", "Flatten", NULL});
    write_keras_w(p, "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                     "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"cv\", \"filters\": 2, \"kernel_size\": 3, "
                     "\"batch_input_shape\": [null, 6, 6, 2]}},"
                     "{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"mp\", \"pool_size\": 2, "
                     "\"padding\": \"causal\"}}]}}", one, 1);
    expect_error(p, (const char *[]){"'mp'", "padding 'causal'", NULL});
}
END_TEST

Suite *make_keras_suite(void) {
    Suite *s = suite_create("keras");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, import_quantizers);
    tcase_add_test(t, round_trip);
    tcase_add_test(t, weight_text_files);
    tcase_add_test(t, zero_weights_cost_no_dsp);
    tcase_add_test(t, import_errors);
    tcase_add_test(t, hls4ml_config_spellings);
    tcase_add_test(t, auto_accumulator);
    tcase_add_test(t, cnn_import_and_mapping);
    tcase_add_test(t, cnn_fused_batchnorm_costs_nothing);
    tcase_add_test(t, cnn_round_trip_and_export);
    tcase_add_test(t, cnn_import_1d_and_errors);
    suite_add_tcase(s, t);
    return s;
}
