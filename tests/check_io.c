/* check_io.c — model files: save a model with known (quantized, pruned)
 * weights, masks, formats, trial YAML and metrics, load it back and compare
 * every value and the forward pass bit for bit; the same for a CNN with
 * every layer kind (specs, BatchNorm state, conv masks, reshapes); files
 * without shapes (before the spatial layers) still load; missing,
 * mis-shaped and too-new files fail with messages naming file and item. */
#include <check.h>
#include <hdf5.h>
#include <string.h>
#include "nnlo/data.h"
#include "nnlo/modelio.h"
#include "testutil.h"

static char *tpath(const char *dir, const char *name) {
    static char buf[8][700];
    static int k;
    char *p = buf[k++ % 8];
    return fs_join(p, 700, dir, name);
}

typedef struct {
    model *m;
    layer_spec specs[5];
    modelio_layer_info info[5];
    float mask[4 * 6];
    char *yaml;
    const char *mnames[3];
    double mvals[3];
    modelio_meta meta;
} fixture;

static const fixed_spec fx_in = {0, 2, 5, FX_SAT, FX_RND};
static const fixed_spec fx_w = {1, 0, 7, FX_SAT, FX_RND_CONV};
static const fixed_spec fx_b = {1, 3, 4, FX_WRAP, FX_TRN};
static const fixed_spec fx_o = {1, 5, 10, FX_SAT_SYM, FX_TRN_ZERO};

/* quant(in) -> dense "fc1" 6 (pruned + quantized) -> relu -> dense 3 */
static void make_fixture(fixture *fx) {
    memset(fx, 0, sizeof *fx);
    fx->specs[0].kind = LAYER_QUANT; fx->specs[0].quant = fx_in;
    fx->specs[1].kind = LAYER_DENSE; fx->specs[1].units = 6; strcpy(fx->specs[1].name, "fc1");
    fx->specs[2].kind = LAYER_RELU;
    fx->specs[3].kind = LAYER_DENSE; fx->specs[3].units = 3;
    nl_error e = {0};
    fx->m = model_create(fx->specs, 4, 4, 16, NULL, NULL, 0, &e);
    ck_assert_msg(fx->m != NULL, "%s", e.msg);
    rng_t r; rng_seed(&r, 11);
    model_init_params(fx->m, &r);
    for (long i = 0; i < fx->m->n_params; i++) fx->m->params[i] += 0.01f * rng_normal(&r);
    model_sync_weff(fx->m);
    /* layer 1: mask every third weight, quantize kernel and bias */
    const layer *L = &fx->m->layers[1];
    for (int i = 0; i < 4 * 6; i++) fx->mask[i] = (i % 3 == 1) ? 0.0f : 1.0f;
    for (int i = 0; i < 4 * 6; i++)
        fx->m->weff[L->w_off + i] = fixed_quantize(&fx_w, fx->m->params[L->w_off + i]) * fx->mask[i];
    for (int i = 0; i < 6; i++)
        fx->m->weff[L->b_off + i] = fixed_quantize(&fx_b, fx->m->params[L->b_off + i]);
    fx->info[1].mask = fx->mask;
    fx->info[1].quantized = 1;
    fx->info[1].w = fx_w; fx->info[1].b = fx_b; fx->info[1].in = fx_in; fx->info[1].out = fx_o;
    /* a long YAML (over HDF5's 64 KiB attribute header limit) */
    sbuf sb = {0};
    sbuf_printf(&sb, "seed: 7\nmodel:\n  layers: [\"\\u00e9\"]  # caf\xc3\xa9\n");
    for (int i = 0; i < 3000; i++) sbuf_printf(&sb, "# padding line %04d ........................\n", i);
    fx->yaml = sb.s;
    fx->mnames[0] = "accuracy"; fx->mvals[0] = 0.8125;
    fx->mnames[1] = "lut"; fx->mvals[1] = 12345;
    fx->mnames[2] = "ebops"; fx->mvals[2] = 1.0 / 3.0;
    fx->meta.trial_yaml = fx->yaml;
    fx->meta.trial_id = "t0007";
    fx->meta.n_metrics = 3;
    fx->meta.metric_names = fx->mnames;
    fx->meta.metric_values = fx->mvals;
}

static void free_fixture(fixture *fx) {
    model_free(fx->m);
    free(fx->yaml);
}

static int spec_eq(const fixed_spec *a, const fixed_spec *b) {
    return a->k == b->k && a->i == b->i && a->f == b->f && a->overflow == b->overflow &&
           a->round == b->round;
}

START_TEST(test_round_trip_exact) {
    fixture fx;
    make_fixture(&fx);
    const char *d = tu_tmpdir();
    char path[700];
    strcpy(path, tpath(d, "model.h5"));
    nl_error e = {0};
    ck_assert_msg(modelio_save(path, fx.m, fx.info, &fx.meta, &e) == NL_OK, "%s", e.msg);
    char tmp[720];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert(!fs_exists(tmp));

    modelio_file f;
    ck_assert_msg(modelio_load(path, 8, &f, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(f.n_specs, 4);
    ck_assert_int_eq(f.in_size, 4); ck_assert_int_eq(f.out_size, 3);
    ck_assert_int_eq(f.m->max_batch, 8);
    ck_assert_int_eq(f.specs[0].kind, LAYER_QUANT);
    ck_assert(spec_eq(&f.specs[0].quant, &fx_in));
    ck_assert_str_eq(f.specs[0].name, "quant0");
    ck_assert_int_eq(f.specs[1].kind, LAYER_DENSE); ck_assert_int_eq(f.specs[1].units, 6);
    ck_assert_str_eq(f.specs[1].name, "fc1");
    ck_assert_int_eq(f.specs[2].kind, LAYER_RELU); ck_assert_str_eq(f.specs[2].name, "relu0");
    ck_assert_int_eq(f.specs[3].kind, LAYER_DENSE); ck_assert_int_eq(f.specs[3].units, 3);
    ck_assert_str_eq(f.specs[3].name, "dense1");
    /* every parameter bit for bit, params == weff */
    ck_assert_int_eq(f.m->n_params, fx.m->n_params);
    ck_assert(memcmp(f.m->weff, fx.m->weff, (size_t)fx.m->n_params * sizeof(float)) == 0);
    ck_assert(memcmp(f.m->params, fx.m->weff, (size_t)fx.m->n_params * sizeof(float)) == 0);
    /* the pruned entries really are zeros and the kernel is on its grid */
    const layer *L = &f.m->layers[1];
    for (int i = 0; i < 24; i++) {
        float w = f.m->weff[L->w_off + i];
        if (i % 3 == 1) ck_assert(w == 0.0f);
        ck_assert(w == fixed_quantize(&fx_w, w));
    }
    /* masks and formats */
    ck_assert_ptr_nonnull(f.info[1].mask);
    ck_assert(memcmp(f.info[1].mask, fx.mask, sizeof fx.mask) == 0);
    ck_assert_ptr_null(f.info[3].mask);
    ck_assert_int_eq(f.info[1].quantized, 1); ck_assert_int_eq(f.info[3].quantized, 0);
    ck_assert(spec_eq(&f.info[1].w, &fx_w)); ck_assert(spec_eq(&f.info[1].b, &fx_b));
    ck_assert(spec_eq(&f.info[1].in, &fx_in)); ck_assert(spec_eq(&f.info[1].out, &fx_o));
    /* meta */
    ck_assert_str_eq(f.trial_yaml, fx.yaml);
    ck_assert_str_eq(f.trial_id, "t0007");
    ck_assert_int_eq(f.n_metrics, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(f.metric_names[i], fx.mnames[i]);
        ck_assert(f.metric_values[i] == fx.mvals[i]);
    }
    /* forward passes agree bit for bit */
    float x[5 * 4];
    rng_t r; rng_seed(&r, 3);
    for (int i = 0; i < 20; i++) x[i] = 2.0f * rng_normal(&r);
    float ya[15], yb[15];
    memcpy(ya, model_forward(fx.m, x, 5), sizeof ya);
    memcpy(yb, model_forward(f.m, x, 5), sizeof yb);
    ck_assert(memcmp(ya, yb, sizeof ya) == 0);
    int nonzero = 0;
    for (int i = 0; i < 15; i++) nonzero += ya[i] != 0.0f;
    ck_assert_int_gt(nonzero, 10);
    modelio_free(&f);
    modelio_free(&f);
    modelio_free(NULL);

    /* saving the same model again gives the same bytes */
    char path2[700];
    strcpy(path2, tpath(d, "model2.h5"));
    ck_assert_msg(modelio_save(path2, fx.m, fx.info, &fx.meta, &e) == NL_OK, "%s", e.msg);
    char *a, *b; size_t na, nb;
    ck_assert_int_eq(fs_read_all(path, &a, &na, &e), NL_OK);
    ck_assert_int_eq(fs_read_all(path2, &b, &nb, &e), NL_OK);
    ck_assert_uint_eq(na, nb);
    ck_assert(memcmp(a, b, na) == 0);
    free(a); free(b);
    free_fixture(&fx);
}
END_TEST

START_TEST(test_no_info_no_meta) {
    fixture fx;
    make_fixture(&fx);
    char path[700];
    strcpy(path, tpath(tu_tmpdir(), "plain.h5"));
    nl_error e = {0};
    ck_assert_msg(modelio_save(path, fx.m, NULL, NULL, &e) == NL_OK, "%s", e.msg);
    /* overwrite in place works (rename over the old file) */
    ck_assert_msg(modelio_save(path, fx.m, NULL, NULL, &e) == NL_OK, "%s", e.msg);
    modelio_file f;
    ck_assert_msg(modelio_load(path, 1, &f, &e) == NL_OK, "%s", e.msg);
    ck_assert_ptr_null(f.trial_yaml);
    ck_assert_str_eq(f.trial_id, "");
    ck_assert_int_eq(f.n_metrics, 0);
    for (int l = 0; l < 4; l++) {
        ck_assert_ptr_null(f.info[l].mask);
        ck_assert_int_eq(f.info[l].quantized, 0);
    }
    ck_assert(memcmp(f.m->weff, fx.m->weff, (size_t)fx.m->n_params * sizeof(float)) == 0);
    modelio_free(&f);
    free_fixture(&fx);
}
END_TEST

static void expect_load_err(const char *path, nl_status code, const char *w1, const char *w2) {
    modelio_file f;
    nl_error e = {0};
    nl_status st = modelio_load(path, 4, &f, &e);
    if (getenv("NNLO_TEST_SHOW")) fprintf(stderr, "message: %s\n", e.msg);
    ck_assert_msg(st == code, "%s: expected %d, got %d: %s", path, code, st, e.msg);
    ck_assert_msg(strstr(e.msg, path) != NULL, "message lacks the file: %s", e.msg);
    if (w1) ck_assert_msg(strstr(e.msg, w1) != NULL, "message lacks '%s': %s", w1, e.msg);
    if (w2) ck_assert_msg(strstr(e.msg, w2) != NULL, "message lacks '%s': %s", w2, e.msg);
    ck_assert_ptr_null(f.m);
    ck_assert_ptr_null(f.specs);
}

/* Saves the fixture under name, then applies edit to the open file. */
static char *saved_copy(fixture *fx, const char *dir, const char *name, hid_t *fid) {
    char *p = tpath(dir, name);
    nl_error e = {0};
    ck_assert_msg(modelio_save(p, fx->m, fx->info, &fx->meta, &e) == NL_OK, "%s", e.msg);
    *fid = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(*fid >= 0);
    return p;
}

START_TEST(test_errors) {
    fixture fx;
    make_fixture(&fx);
    const char *d = tu_tmpdir();
    hid_t f;
    char p[700];

    expect_load_err(tpath(d, "absent.h5"), NL_ERR_IO, "not found", NULL);

    /* a data file is not a model */
    float x[2] = {1, 2};
    int32_t y[2] = {0, 1};
    nl_error e = {0};
    strcpy(p, tpath(d, "data.h5"));
    ck_assert_int_eq(data_write_h5(p, x, y, 2, 1, "X", "y", &e), NL_OK);
    expect_load_err(p, NL_ERR_DATA, "format_version", "not an nnlo-c model");

    /* newer format */
    strcpy(p, saved_copy(&fx, d, "newer.h5", &f));
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int v = MODELIO_FORMAT_VERSION + 1;
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a); H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "newer", "0.1.0");

    /* missing kernel */
    strcpy(p, saved_copy(&fx, d, "nokernel.h5", &f));
    ck_assert(H5Ldelete(f, "/layers/003_dense1/kernel", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/003_dense1", "'kernel'");

    /* mis-shaped bias */
    strcpy(p, saved_copy(&fx, d, "badbias.h5", &f));
    ck_assert(H5Ldelete(f, "/layers/001_fc1/bias", H5P_DEFAULT) >= 0);
    hsize_t bd[1] = {5};
    hid_t s = H5Screate_simple(1, bd, NULL);
    hid_t ds = H5Dcreate2(f, "/layers/001_fc1/bias", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds); H5Sclose(s); H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/001_fc1/bias", "shape (5), expected (6)");

    /* missing layer group */
    strcpy(p, saved_copy(&fx, d, "nolayer.h5", &f));
    ck_assert(H5Ldelete(f, "/layers/002_relu0", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "layer 2 of 4", NULL);

    /* missing attribute, bad rounding name, unknown kind */
    strcpy(p, saved_copy(&fx, d, "noattr.h5", &f));
    hid_t g = H5Gopen2(f, "/layers/000_quant0", H5P_DEFAULT);
    H5Adelete(g, "f");
    H5Gclose(g); H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/000_quant0", "'f'");
    strcpy(p, saved_copy(&fx, d, "badround.h5", &f));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    const char *bad = "ROUND_UP";
    g = H5Gopen2(f, "/layers/001_fc1", H5P_DEFAULT);
    a = H5Aopen(g, "weight_rounding", H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, &bad) >= 0);
    H5Aclose(a); H5Gclose(g);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "weight_rounding is 'ROUND_UP'", "/layers/001_fc1");
    strcpy(p, saved_copy(&fx, d, "badkind.h5", &f));
    const char *lstm = "lstm";
    g = H5Gopen2(f, "/layers/002_relu0", H5P_DEFAULT);
    a = H5Aopen(g, "kind", H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, &lstm) >= 0);
    H5Aclose(a); H5Gclose(g); H5Tclose(t);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "unknown layer kind 'lstm'", "/layers/002_relu0");
    /* a relu turned into a conv2d: its attributes are missing */
    strcpy(p, saved_copy(&fx, d, "relu2conv.h5", &f));
    t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char *conv = "conv2d";
    g = H5Gopen2(f, "/layers/002_relu0", H5P_DEFAULT);
    a = H5Aopen(g, "kind", H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, &conv) >= 0);
    H5Aclose(a); H5Gclose(g); H5Tclose(t);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/002_relu0", "'filters'");

    /* stored sizes that contradict the layers */
    strcpy(p, saved_copy(&fx, d, "badsize.h5", &f));
    a = H5Aopen(f, "in_size", H5P_DEFAULT);
    v = 5;
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a); H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "in_size", NULL);

    /* truncated file */
    strcpy(p, saved_copy(&fx, d, "trunc.h5", &f));
    H5Fclose(f);
    ck_assert_int_eq(truncate(p, 700), 0);
    expect_load_err(p, NL_ERR_IO, "HDF5", NULL);

    /* unwritable destination: error, nothing left behind */
    char q[700];
    strcpy(q, tpath(d, "no/such/dir/m.h5"));
    ck_assert_int_eq(modelio_save(q, fx.m, fx.info, &fx.meta, &e), NL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "m.h5.tmp"));
    free_fixture(&fx);
}
END_TEST

/* ---- every layer kind ------------------------------------------------- */

enum { CNN_N = 21, CNN_IN = 72, CNN_OUT = 3 };

typedef struct {
    model *m;
    layer_spec specs[CNN_N];
    modelio_layer_info info[CNN_N];
    float mask1[12 * 3], mask13[3 * 1 * 2];
} cnn_fixture;

static void win2(int *a, int r, int c) { a[0] = r; a[1] = c; }

/* (6, 6, 2) -> quant -> conv2d same (3x2 window, 3 filters) -> batchnorm ->
 * leaky_relu -> maxpool2d 2 (default strides) -> avgpool2d 2 same stride 1 ->
 * conv2d valid strides (2, 1) -> tanh -> flatten -> dropout -> dense 12 ->
 * sigmoid -> dense 8 -> reshape (1, 8, 1) -> conv1d same stride 2 ->
 * maxpool1d 2 -> avgpool1d 2 same stride 1 -> hard_tanh -> batchnorm ->
 * flatten -> relu -> dense 3. Layer 1 pruned + quantized, 13 pruned, 10
 * quantized; BatchNorm moving statistics random. */
static void make_cnn(cnn_fixture *fx) {
    memset(fx, 0, sizeof *fx);
    layer_spec *s = fx->specs;
    s[0].kind = (layer_kind)LAYER_QUANT; s[0].quant = fx_in; s[0].in_shape[0] = 6; s[0].in_shape[1] = 6;
    s[0].in_shape[2] = 2;
    s[1].kind = (layer_kind)LAYER_CONV2D; s[1].filters = 3; win2(s[1].kernel, 3, 2); win2(s[1].strides, 1, 1);
    s[1].padding = PAD_SAME; strcpy(s[1].name, "c1");
    s[2].kind = (layer_kind)LAYER_BATCHNORM; s[2].momentum = 0.9f; s[2].epsilon = 1e-3f;
    s[3].kind = (layer_kind)LAYER_LEAKY_RELU; s[3].alpha = 0.1f;
    s[4].kind = (layer_kind)LAYER_MAXPOOL2D; win2(s[4].pool, 2, 2);        /* strides 0: default = pool */
    s[5].kind = (layer_kind)LAYER_AVGPOOL2D; win2(s[5].pool, 2, 2); win2(s[5].strides, 1, 1); s[5].padding = PAD_SAME;
    s[6].kind = (layer_kind)LAYER_CONV2D; s[6].filters = 4; win2(s[6].kernel, 2, 2); win2(s[6].strides, 2, 1);
    s[7].kind = (layer_kind)LAYER_TANH;
    s[8].kind = (layer_kind)LAYER_FLATTEN;
    s[9].kind = (layer_kind)LAYER_DROPOUT; s[9].rate = 0.25f;
    s[10].kind = (layer_kind)LAYER_DENSE; s[10].units = 12;
    s[11].kind = (layer_kind)LAYER_SIGMOID;
    s[12].kind = (layer_kind)LAYER_DENSE; s[12].units = 8;
    s[13].kind = (layer_kind)LAYER_CONV1D; s[13].filters = 2; s[13].kernel[0] = 3; s[13].strides[0] = 2;
    s[13].padding = PAD_SAME; s[13].in_shape[0] = 1; s[13].in_shape[1] = 8; s[13].in_shape[2] = 1;
    s[14].kind = (layer_kind)LAYER_MAXPOOL1D; s[14].pool[0] = 2; s[14].strides[0] = 2;
    s[15].kind = (layer_kind)LAYER_AVGPOOL1D; s[15].pool[0] = 2; s[15].strides[0] = 1; s[15].padding = PAD_SAME;
    s[16].kind = (layer_kind)LAYER_HARD_TANH;
    s[17].kind = (layer_kind)LAYER_BATCHNORM; s[17].momentum = 0.5f; s[17].epsilon = 0.25f;
    s[18].kind = (layer_kind)LAYER_FLATTEN;
    s[19].kind = (layer_kind)LAYER_RELU;
    s[20].kind = (layer_kind)LAYER_DENSE; s[20].units = CNN_OUT;
    nl_error e = {0};
    fx->m = model_create(s, CNN_N, CNN_IN, 16, NULL, NULL, 0, &e);
    ck_assert_msg(fx->m != NULL, "%s", e.msg);
    model *m = fx->m;
    ck_assert_int_eq(m->out_size, CNN_OUT);
    ck_assert_int_eq(m->layers[6].out_size, 8);   /* (1, 2, 4) */
    ck_assert_int_eq(m->layers[13].out_w, 4);
    ck_assert_int_eq(m->layers[17].out_size, 4);  /* (1, 2, 2) */
    rng_t r; rng_seed(&r, 5);
    model_init_params(m, &r);
    for (long i = 0; i < m->n_params; i++) m->params[i] += 0.05f * rng_normal(&r);
    for (int l = 2; l <= 17; l += 15) { /* non-trivial moving statistics */
        const layer *L = &m->layers[l];
        for (int c = 0; c < L->out_c; c++) {
            m->state[L->s_off + c] = 0.3f * rng_normal(&r);
            m->state[L->s_off + L->out_c + c] = 0.5f + rng_uniform(&r);
        }
    }
    model_sync_weff(m);
    const layer *L = &m->layers[1];
    for (int i = 0; i < 36; i++) fx->mask1[i] = (i % 4 == 2) ? 0.0f : 1.0f;
    for (int i = 0; i < 36; i++)
        m->weff[L->w_off + i] = fixed_quantize(&fx_w, m->params[L->w_off + i]) * fx->mask1[i];
    for (int i = 0; i < 3; i++) m->weff[L->b_off + i] = fixed_quantize(&fx_b, m->params[L->b_off + i]);
    fx->info[1].mask = fx->mask1;
    fx->info[1].quantized = 1;
    fx->info[1].w = fx_w; fx->info[1].b = fx_b; fx->info[1].in = fx_in; fx->info[1].out = fx_o;
    L = &m->layers[13];
    for (int i = 0; i < 6; i++) fx->mask13[i] = i == 1 || i == 4 ? 0.0f : 1.0f;
    for (int i = 0; i < 6; i++) m->weff[L->w_off + i] *= fx->mask13[i];
    fx->info[13].mask = fx->mask13;
    fx->info[10].quantized = 1;
    fx->info[10].w = fx_b; fx->info[10].b = fx_w; fx->info[10].in = fx_o; fx->info[10].out = fx_in;
}

static int fbits_eq(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Every field of two specs, floats bit for bit. */
static void assert_spec_same(const layer_spec *a, const layer_spec *b, int l) {
    ck_assert_msg(a->kind == b->kind, "layer %d: kind %d vs %d", l, a->kind, b->kind);
    ck_assert_msg(!strcmp(a->name, b->name), "layer %d: name %s vs %s", l, a->name, b->name);
    ck_assert_msg(a->units == b->units && a->filters == b->filters, "layer %d: units/filters", l);
    ck_assert_msg(spec_eq(&a->quant, &b->quant), "layer %d: quant", l);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(a->kernel[i] == b->kernel[i] && a->strides[i] == b->strides[i] &&
                      a->pool[i] == b->pool[i], "layer %d: kernel/strides/pool[%d] %d/%d/%d vs %d/%d/%d",
                      l, i, a->kernel[i], a->strides[i], a->pool[i], b->kernel[i], b->strides[i], b->pool[i]);
    ck_assert_msg(a->padding == b->padding, "layer %d: padding %d vs %d", l, a->padding, b->padding);
    ck_assert_msg(fbits_eq(a->rate, b->rate) && fbits_eq(a->alpha, b->alpha) &&
                  fbits_eq(a->momentum, b->momentum) && fbits_eq(a->epsilon, b->epsilon),
                  "layer %d: rate/alpha/momentum/epsilon", l);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(a->in_shape[i] == b->in_shape[i], "layer %d: in_shape[%d] %d vs %d", l, i,
                      a->in_shape[i], b->in_shape[i]);
}

START_TEST(test_cnn_round_trip) {
    cnn_fixture fx;
    make_cnn(&fx);
    model *m = fx.m;
    char path[700];
    strcpy(path, tpath(tu_tmpdir(), "cnn.h5"));
    nl_error e = {0};
    ck_assert_msg(modelio_save(path, m, fx.info, NULL, &e) == NL_OK, "%s", e.msg);
    modelio_file f;
    ck_assert_msg(modelio_load(path, 7, &f, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(f.n_specs, CNN_N);
    ck_assert_int_eq(f.in_size, CNN_IN);
    ck_assert_int_eq(f.m->in_h, 6); ck_assert_int_eq(f.m->in_w, 6); ck_assert_int_eq(f.m->in_c, 2);
    /* the specs: as given, with the generated names and the default strides resolved */
    for (int l = 0; l < CNN_N; l++) {
        layer_spec want = fx.specs[l];
        strcpy(want.name, m->layers[l].name);
        if (l == 4) win2(want.strides, 2, 2);
        assert_spec_same(&f.specs[l], &want, l);
    }
    ck_assert_str_eq(f.specs[1].name, "c1");
    ck_assert_str_eq(f.specs[13].name, "conv1d0");
    ck_assert_str_eq(f.specs[15].name, "avgpool1d0");
    /* every layer's geometry and offsets */
    for (int l = 0; l < CNN_N; l++) {
        const layer *A = &m->layers[l], *B = &f.m->layers[l];
        ck_assert_int_eq(A->in_size, B->in_size); ck_assert_int_eq(A->out_size, B->out_size);
        ck_assert_int_eq(A->out_h, B->out_h); ck_assert_int_eq(A->out_w, B->out_w);
        ck_assert_int_eq(A->out_c, B->out_c);
        ck_assert(memcmp(&A->geom, &B->geom, sizeof A->geom) == 0);
        ck_assert_int_eq(A->w_off, B->w_off); ck_assert_int_eq(A->b_off, B->b_off);
        ck_assert_int_eq(A->s_off, B->s_off);
    }
    ck_assert_int_eq(f.m->layers[1].geom.pt, 1); /* SAME really pads */
    /* every parameter (params == weff == saved weff) and state value */
    ck_assert_int_eq(f.m->n_params, m->n_params);
    ck_assert(memcmp(f.m->weff, m->weff, (size_t)m->n_params * sizeof(float)) == 0);
    ck_assert(memcmp(f.m->params, m->weff, (size_t)m->n_params * sizeof(float)) == 0);
    ck_assert_int_eq(f.m->n_state, 2 * 3 + 2 * 2);
    ck_assert(memcmp(f.m->state, m->state, (size_t)m->n_state * sizeof(float)) == 0);
    ck_assert(f.m->state[f.m->layers[2].s_off] != 0.0f);
    /* masks and formats */
    ck_assert_ptr_nonnull(f.info[1].mask);
    ck_assert(memcmp(f.info[1].mask, fx.mask1, sizeof fx.mask1) == 0);
    ck_assert_ptr_nonnull(f.info[13].mask);
    ck_assert(memcmp(f.info[13].mask, fx.mask13, sizeof fx.mask13) == 0);
    for (int l = 0; l < CNN_N; l++)
        if (l != 1 && l != 13) ck_assert_ptr_null(f.info[l].mask);
    ck_assert_int_eq(f.info[1].quantized, 1); ck_assert_int_eq(f.info[6].quantized, 0);
    ck_assert(spec_eq(&f.info[1].w, &fx_w)); ck_assert(spec_eq(&f.info[1].out, &fx_o));
    ck_assert_int_eq(f.info[10].quantized, 1);
    ck_assert(spec_eq(&f.info[10].w, &fx_b)); ck_assert(spec_eq(&f.info[10].in, &fx_o));
    /* evaluation-mode forward passes agree bit for bit */
    enum { B = 7 };
    float x[B * CNN_IN], ya[B * CNN_OUT], yb[B * CNN_OUT];
    rng_t r; rng_seed(&r, 9);
    for (int i = 0; i < B * CNN_IN; i++) x[i] = 1.5f * rng_normal(&r);
    ck_assert_int_eq(m->training, 0); ck_assert_int_eq(f.m->training, 0);
    memcpy(ya, model_forward(m, x, B), sizeof ya);
    memcpy(yb, model_forward(f.m, x, B), sizeof yb);
    ck_assert(memcmp(ya, yb, sizeof ya) == 0);
    int distinct = 0;
    for (int i = 1; i < B * CNN_OUT; i++) distinct += ya[i] != ya[i - 1];
    ck_assert_int_gt(distinct, 10);
    /* the moving statistics matter: with mean 0 / var 1 the output differs */
    for (int c = 0; c < 3; c++) {
        f.m->state[f.m->layers[2].s_off + c] = 0.0f;
        f.m->state[f.m->layers[2].s_off + 3 + c] = 1.0f;
    }
    memcpy(yb, model_forward(f.m, x, B), sizeof yb);
    ck_assert(memcmp(ya, yb, sizeof ya) != 0);
    modelio_free(&f);

    /* Keras order in the file: conv kernels (KH, KW, Cin, Cout) / (K, Cin, Cout) */
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(h >= 0);
    const char *dn[3] = {"/layers/001_c1/kernel", "/layers/013_conv1d0/kernel", "/layers/002_batchnorm0/moving_variance"};
    const hsize_t want[3][4] = {{3, 2, 2, 3}, {3, 1, 2, 0}, {3, 0, 0, 0}};
    const int wrank[3] = {4, 3, 1};
    for (int k = 0; k < 3; k++) {
        hid_t ds = H5Dopen2(h, dn[k], H5P_DEFAULT);
        ck_assert_msg(ds >= 0, "%s missing", dn[k]);
        hid_t sp = H5Dget_space(ds);
        hsize_t dims[4] = {0};
        ck_assert_int_eq(H5Sget_simple_extent_ndims(sp), wrank[k]);
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < wrank[k]; i++) ck_assert_uint_eq(dims[i], want[k][i]);
        H5Sclose(sp); H5Dclose(ds);
    }
    /* kernel element (kh=2, kw=1, cin=1, cout=2) is W[((2*2+1)*2+1)*3+2] */
    hid_t ds = H5Dopen2(h, dn[0], H5P_DEFAULT);
    float kk[3 * 2 * 2 * 3];
    ck_assert(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, kk) >= 0);
    H5Dclose(ds);
    ck_assert(fbits_eq(kk[((2 * 2 + 1) * 2 + 1) * 3 + 2], m->weff[m->layers[1].w_off + 35]));
    H5Fclose(h);
    /* the same model saved again: the same bytes */
    char path2[700];
    strcpy(path2, tpath(tu_tmpdir(), "cnn2.h5"));
    ck_assert_msg(modelio_save(path2, m, fx.info, NULL, &e) == NL_OK, "%s", e.msg);
    char *a, *b2; size_t na, nb;
    ck_assert_int_eq(fs_read_all(path, &a, &na, &e), NL_OK);
    ck_assert_int_eq(fs_read_all(path2, &b2, &nb, &e), NL_OK);
    ck_assert(na == nb && memcmp(a, b2, na) == 0);
    free(a); free(b2);
    model_free(fx.m);
}
END_TEST

/* A SAME layer whose padding is zero (1x1 kernel; pool 2 stride 2 on an
 * even input) is stored as VALID: the same geometry, the same outputs. */
START_TEST(test_same_without_padding) {
    layer_spec s[4];
    memset(s, 0, sizeof s);
    s[0].kind = (layer_kind)LAYER_CONV2D; s[0].filters = 2; win2(s[0].kernel, 1, 1);
    s[0].padding = PAD_SAME; s[0].in_shape[0] = 4; s[0].in_shape[1] = 2; s[0].in_shape[2] = 3;
    s[1].kind = (layer_kind)LAYER_MAXPOOL2D; win2(s[1].pool, 2, 2); s[1].padding = PAD_SAME;
    s[2].kind = (layer_kind)LAYER_FLATTEN;
    s[3].kind = LAYER_DENSE; s[3].units = 2;
    nl_error e = {0};
    model *m = model_create(s, 4, 24, 4, NULL, NULL, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    rng_t r; rng_seed(&r, 2);
    model_init_params(m, &r);
    model_sync_weff(m);
    char path[700];
    strcpy(path, tpath(tu_tmpdir(), "same.h5"));
    ck_assert_msg(modelio_save(path, m, NULL, NULL, &e) == NL_OK, "%s", e.msg);
    modelio_file f;
    ck_assert_msg(modelio_load(path, 4, &f, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(f.specs[0].padding, PAD_VALID);
    ck_assert_int_eq(f.specs[1].padding, PAD_VALID);
    ck_assert_int_eq(f.specs[1].strides[0], 2);
    for (int l = 0; l < 2; l++)
        ck_assert(memcmp(&m->layers[l].geom, &f.m->layers[l].geom, sizeof m->layers[l].geom) == 0);
    float x[3 * 24], ya[6];
    for (int i = 0; i < 3 * 24; i++) x[i] = rng_normal(&r);
    memcpy(ya, model_forward(m, x, 3), sizeof ya);
    ck_assert(memcmp(ya, model_forward(f.m, x, 3), sizeof ya) == 0);
    modelio_free(&f);
    model_free(m);
}
END_TEST

/* A file as written before the spatial layers (no shapes anywhere) loads. */
START_TEST(test_old_mlp_file) {
    fixture fx;
    make_fixture(&fx);
    const char *d = tu_tmpdir();
    hid_t f;
    char p[700];
    strcpy(p, saved_copy(&fx, d, "old.h5", &f));
    const char *root[3] = {"in_h", "in_w", "in_c"};
    for (int i = 0; i < 3; i++) ck_assert(H5Adelete(f, root[i]) >= 0);
    const char *gs[4] = {"/layers/000_quant0", "/layers/001_fc1", "/layers/002_relu0", "/layers/003_dense1"};
    for (int l = 0; l < 4; l++) {
        hid_t g = H5Gopen2(f, gs[l], H5P_DEFAULT);
        ck_assert(H5Adelete(g, "in_shape") >= 0);
        ck_assert(H5Adelete(g, "out_shape") >= 0);
        H5Gclose(g);
    }
    H5Fclose(f);
    modelio_file mf;
    nl_error e = {0};
    ck_assert_msg(modelio_load(p, 4, &mf, &e) == NL_OK, "%s", e.msg);
    ck_assert(memcmp(mf.m->weff, fx.m->weff, (size_t)fx.m->n_params * sizeof(float)) == 0);
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < 3; i++) ck_assert_int_eq(mf.specs[l].in_shape[i], 0);
    ck_assert_int_eq(mf.m->in_c, 4);
    modelio_free(&mf);
    free_fixture(&fx);
}
END_TEST

/* Saves the CNN fixture under name and opens it for editing. */
static char *cnn_copy(cnn_fixture *fx, const char *dir, const char *name, hid_t *fid) {
    char *p = tpath(dir, name);
    nl_error e = {0};
    ck_assert_msg(modelio_save(p, fx->m, fx->info, NULL, &e) == NL_OK, "%s", e.msg);
    *fid = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(*fid >= 0);
    return p;
}

static void del_attr(hid_t f, const char *group, const char *attr) {
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    ck_assert(g >= 0);
    ck_assert_msg(H5Adelete(g, attr) >= 0, "%s@%s", group, attr);
    H5Gclose(g);
}

static void set_str(hid_t f, const char *group, const char *attr, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    hid_t a = H5Aopen(g, attr, H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, &v) >= 0);
    H5Aclose(a); H5Gclose(g); H5Tclose(t);
}

START_TEST(test_cnn_errors) {
    cnn_fixture fx;
    make_cnn(&fx);
    const char *d = tu_tmpdir();
    hid_t f;
    char p[700];
    /* each conv / pool / batchnorm / dropout / leaky_relu attribute is required */
    static const struct { const char *group, *attr; } need[] = {
        {"/layers/001_c1", "kernel_size"}, {"/layers/001_c1", "strides"},
        {"/layers/001_c1", "padding"}, {"/layers/006_conv2d1", "filters"},
        {"/layers/013_conv1d0", "kernel_size"}, {"/layers/004_maxpool2d0", "pool_size"},
        {"/layers/015_avgpool1d0", "strides"}, {"/layers/002_batchnorm0", "epsilon"},
        {"/layers/017_batchnorm1", "momentum"}, {"/layers/009_dropout0", "rate"},
        {"/layers/003_leaky_relu0", "alpha"},
    };
    for (size_t k = 0; k < sizeof need / sizeof *need; k++) {
        char nm[64], quoted[80];
        snprintf(nm, sizeof nm, "miss%zu.h5", k);
        strcpy(p, cnn_copy(&fx, d, nm, &f));
        del_attr(f, need[k].group, need[k].attr);
        H5Fclose(f);
        snprintf(quoted, sizeof quoted, "'%s'", need[k].attr);
        expect_load_err(p, NL_ERR_DATA, need[k].group, quoted);
    }
    /* a 2-D window with one value */
    strcpy(p, cnn_copy(&fx, d, "win1.h5", &f));
    del_attr(f, "/layers/001_c1", "kernel_size");
    {
        hid_t g = H5Gopen2(f, "/layers/001_c1", H5P_DEFAULT);
        hsize_t one = 1;
        hid_t s = H5Screate_simple(1, &one, NULL);
        int v = 3;
        hid_t a = H5Acreate2(g, "kernel_size", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &v);
        H5Aclose(a); H5Sclose(s); H5Gclose(g);
    }
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "'kernel_size' holds 1 values, expected 2", "/layers/001_c1");
    /* bad padding name */
    strcpy(p, cnn_copy(&fx, d, "pad.h5", &f));
    set_str(f, "/layers/005_avgpool2d0", "padding", "causal");
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "padding is 'causal'", "/layers/005_avgpool2d0");
    /* missing moving statistics and conv kernel */
    strcpy(p, cnn_copy(&fx, d, "nomv.h5", &f));
    ck_assert(H5Ldelete(f, "/layers/017_batchnorm1/moving_variance", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/017_batchnorm1", "'moving_variance'");
    strcpy(p, cnn_copy(&fx, d, "nock.h5", &f));
    ck_assert(H5Ldelete(f, "/layers/006_conv2d1/kernel", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/006_conv2d1", "'kernel'");
    /* a kernel in (rows, cols) instead of Keras order */
    strcpy(p, cnn_copy(&fx, d, "flatk.h5", &f));
    ck_assert(H5Ldelete(f, "/layers/001_c1/kernel", H5P_DEFAULT) >= 0);
    {
        hsize_t kd[2] = {12, 3};
        hid_t s = H5Screate_simple(2, kd, NULL);
        hid_t ds = H5Dcreate2(f, "/layers/001_c1/kernel", H5T_IEEE_F32LE, s, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
        H5Dclose(ds); H5Sclose(s);
    }
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/001_c1/kernel has shape (12, 3)", "expected (3, 2, 2, 3)");
    /* a window that changes the geometry: the stored shapes contradict it */
    strcpy(p, cnn_copy(&fx, d, "geom.h5", &f));
    del_attr(f, "/layers/004_maxpool2d0", "strides");
    {
        hid_t g = H5Gopen2(f, "/layers/004_maxpool2d0", H5P_DEFAULT);
        hsize_t two = 2;
        hid_t s = H5Screate_simple(1, &two, NULL);
        int v[2] = {1, 1};
        hid_t a = H5Acreate2(g, "strides", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, v);
        H5Aclose(a); H5Sclose(s); H5Gclose(g);
    }
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "/layers/004_maxpool2d0", NULL);
    /* a root input shape that does not fit */
    strcpy(p, cnn_copy(&fx, d, "root.h5", &f));
    {
        hid_t a = H5Aopen(f, "in_h", H5P_DEFAULT);
        int v = 4;
        H5Awrite(a, H5T_NATIVE_INT, &v);
        H5Aclose(a);
    }
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "(4, 6, 2) does not hold in_size = 72", NULL);
    /* a root shape that holds the values but contradicts the first layer's */
    strcpy(p, cnn_copy(&fx, d, "root2.h5", &f));
    {
        int v[2] = {12, 3};
        hid_t a = H5Aopen(f, "in_h", H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &v[0]);
        H5Aclose(a);
        a = H5Aopen(f, "in_w", H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &v[1]);
        H5Aclose(a);
    }
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "(12, 3, 2) contradicts", "(6, 6, 2)");
    model_free(fx.m);
}
END_TEST

Suite *make_io_suite(void) {
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_round_trip_exact);
    tcase_add_test(tc, test_no_info_no_meta);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_cnn_round_trip);
    tcase_add_test(tc, test_old_mlp_file);
    tcase_add_test(tc, test_same_without_padding);
    tcase_add_test(tc, test_cnn_errors);
    suite_add_tcase(s, tc);
    return s;
}
