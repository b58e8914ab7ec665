/* check_io.c — model files: save a model with known (quantized, pruned)
 * weights, masks, formats, trial YAML and metrics, load it back and compare
 * every value and the forward pass bit for bit; missing, mis-shaped and
 * too-new files fail with messages naming the file and the item. */
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
    const char *conv = "conv2d";
    g = H5Gopen2(f, "/layers/002_relu0", H5P_DEFAULT);
    a = H5Aopen(g, "kind", H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, &conv) >= 0);
    H5Aclose(a); H5Gclose(g); H5Tclose(t);
    H5Fclose(f);
    expect_load_err(p, NL_ERR_DATA, "conv2d", "/layers/002_relu0");

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

Suite *make_io_suite(void) {
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_round_trip_exact);
    tcase_add_test(tc, test_no_info_no_meta);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
