/* check_data.c — data module: exact round trips through HDF5, split sizes,
 * seeded shuffles, standardisation from training rows only (checked
 * against statistics computed here by hand), every load error naming the
 * file and the dataset, the jets generator (shape, balance, determinism)
 * and the Fashion-MNIST converter (on tiny hand-made idx files, and on the
 * Debian files when installed). */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include "nnlo/data.h"
#include "testutil.h"

static char *tpath(const char *dir, const char *name) {
    static char buf[8][700];
    static int k;
    char *p = buf[k++ % 8];
    return fs_join(p, 700, dir, name);
}

static cfg_data base_cfg(void) {
    cfg_data c;
    memset(&c, 0, sizeof c);
    strcpy(c.features, "X");
    strcpy(c.labels, "y");
    c.labels_format = LABELS_AUTO;
    return c;
}

static void write_ok(const char *path, const float *x, const int32_t *y, long n, int nf) {
    nl_error e = {0};
    ck_assert_msg(data_write_h5(path, x, y, n, nf, "X", "y", &e) == NL_OK, "%s", e.msg);
}

/* Raw dataset writer for the cases data_write_h5 cannot produce. */
static void raw_ds(hid_t f, const char *name, hid_t ftype, int rank, const hsize_t *dims,
                   hid_t mtype, const void *buf) {
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(d >= 0);
    if (buf) ck_assert(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(d); H5Sclose(s);
}

static hid_t raw_create(const char *path) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    return f;
}

/* ---- validation and test from the same files: one copy ----------------- */

START_TEST(test_shared_val_test) {
    const char *d = tu_tmpdir();
    float xt[20 * 3], xh[6 * 3];
    int32_t yt[20], yh[6];
    for (int i = 0; i < 60; i++) xt[i] = (float)((i * 37) % 11) - 2.5f;
    for (int i = 0; i < 18; i++) xh[i] = (float)((i * 13) % 7) + 0.25f;
    for (int i = 0; i < 20; i++) yt[i] = i % 3;
    for (int i = 0; i < 6; i++) yh[i] = (i + 1) % 3;
    char *pt = tpath(d, "t.h5"), *ph = tpath(d, "h.h5"), *ph2 = tpath(d, "h2.h5");
    write_ok(pt, xt, yt, 20, 3);
    write_ok(ph, xh, yh, 6, 3);
    write_ok(ph2, xh, yh, 6, 3);
    char *tr[1] = {pt}, *h[1] = {ph}, *h2[1] = {ph2};
    cfg_data c = base_cfg();
    c.train_files = tr; c.n_train = 1;
    c.val_files = h; c.n_val = 1;
    c.test_files = h; c.n_test = 1;
    c.standardize = 1;
    data_bundle shared, separate;
    nl_error e;
    ck_assert_msg(data_load(&c, 1, &shared, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(shared.test_is_val, 1);
    ck_assert_ptr_eq(shared.test.x, shared.val.x);
    ck_assert_int_eq(shared.test.n, 6);
    c.test_files = h2;
    ck_assert_msg(data_load(&c, 1, &separate, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(separate.test_is_val, 0);
    /* standardized once: the shared rows equal an independent copy */
    tu_assert_close(shared.test.x, separate.test.x, 18, 0, 0, "shared test rows");
    tu_assert_close(shared.val.x, separate.val.x, 18, 0, 0, "shared val rows");
    ck_assert(shared.bytes < separate.bytes);
    data_free(&shared);
    data_free(&separate);
}
END_TEST

/* standardize: global — one mean and std over every training value. */
START_TEST(test_standardize_global) {
    const char *d = tu_tmpdir();
    float x[4 * 2] = {0, 10, 2, 12, 4, 14, 6, 16};   /* features: 0,2,4,6 and 10,12,14,16 */
    int32_t y[4] = {0, 1, 0, 1};
    char *p = tpath(d, "g.h5");
    write_ok(p, x, y, 4, 2);
    char *tr[1] = {p};
    cfg_data c = base_cfg();
    c.train_files = tr; c.n_train = 1;
    c.standardize = STANDARDIZE_GLOBAL;
    data_bundle b;
    nl_error e;
    ck_assert_msg(data_load(&c, 1, &b, &e) == NL_OK, "%s", e.msg);
    /* all values: mean 8; squared deviations 64+36+16+4+4+16+36+64 = 240: variance 30 */
    double mu = 8.0, sd = sqrt(30.0);
    ck_assert_float_eq_tol(b.mean[0], mu, 1e-6);
    ck_assert_float_eq_tol(b.mean[1], mu, 1e-6);
    ck_assert_float_eq_tol(b.std[0], sd, 1e-5);
    ck_assert_float_eq_tol(b.std[1], sd, 1e-5);
    for (long i = 0; i < b.train.n * 2; i++) {
        int found = 0;
        for (int k = 0; k < 8; k++) found |= fabs(b.train.x[i] - (x[k] - mu) / sd) < 1e-6;
        ck_assert_msg(found, "value %g is not a globally standardized input", b.train.x[i]);
    }
    data_free(&b);
}
END_TEST

/* ---- exact values, concatenation, split sizes ------------------------- */

START_TEST(test_load_exact_concat) {
    const char *d = tu_tmpdir();
    float x1[7 * 3], x2[5 * 3], xv[2 * 3], xt[4 * 3];
    int32_t y1[7], y2[5], yv[2], yt[4];
    for (int i = 0; i < 21; i++) x1[i] = 0.5f * i - 3.25f;
    for (int i = 0; i < 15; i++) x2[i] = 100.0f + i / 8.0f;
    for (int i = 0; i < 6; i++) xv[i] = -1e-3f * i;
    for (int i = 0; i < 12; i++) xt[i] = 1e6f + i;
    for (int i = 0; i < 7; i++) y1[i] = i % 3;
    for (int i = 0; i < 5; i++) y2[i] = 4 - i % 2;
    yv[0] = 1; yv[1] = 0;
    for (int i = 0; i < 4; i++) yt[i] = i;
    char *tr[2] = {tpath(d, "a.h5"), tpath(d, "b.h5")}, *va[1] = {tpath(d, "v.h5")},
         *te[1] = {tpath(d, "t.h5")};
    write_ok(tr[0], x1, y1, 7, 3); write_ok(tr[1], x2, y2, 5, 3);
    write_ok(va[0], xv, yv, 2, 3); write_ok(te[0], xt, yt, 4, 3);

    cfg_data c = base_cfg();
    c.train_files = tr; c.n_train = 2; c.val_files = va; c.n_val = 1;
    c.test_files = te; c.n_test = 1;
    data_bundle b; nl_error e = {0};
    ck_assert_msg(data_load(&c, 1, &b, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(b.train.n, 12); ck_assert_int_eq(b.val.n, 2); ck_assert_int_eq(b.test.n, 4);
    ck_assert_int_eq(b.n_features, 3);
    ck_assert_int_eq(b.n_classes, 5); /* max label 4 */
    ck_assert_ptr_null(b.mean);
    ck_assert_int_eq(b.bytes, (12 + 2 + 4) * (3 * 4 + 4));
    for (int i = 0; i < 21; i++) ck_assert(b.train.x[i] == x1[i]);
    for (int i = 0; i < 15; i++) ck_assert(b.train.x[21 + i] == x2[i]);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(b.train.y[i], y1[i]);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(b.train.y[7 + i], y2[i]);
    for (int i = 0; i < 6; i++) ck_assert(b.val.x[i] == xv[i]);
    ck_assert_int_eq(b.val.y[0], 1); ck_assert_int_eq(b.val.y[1], 0);
    for (int i = 0; i < 12; i++) ck_assert(b.test.x[i] == xt[i]);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(b.test.y[i], i);
    data_free(&b);
    data_free(&b); /* idempotent */
    data_free(NULL);

    /* max_samples caps each split, reading across the file boundary */
    c.max_samples = 9;
    ck_assert_msg(data_load(&c, 1, &b, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(b.train.n, 9); ck_assert_int_eq(b.val.n, 2); ck_assert_int_eq(b.test.n, 4);
    ck_assert(b.train.x[8 * 3 + 2] == x2[1 * 3 + 2]);
    ck_assert_int_eq(b.train.y[8], y2[1]);
    data_free(&b);
}
END_TEST

/* Rows encode their index: x[i] = (i, 2i, -i), y = i % 3. */
static void write_indexed(const char *path, long n) {
    float *x = malloc((size_t)n * 3 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    for (long i = 0; i < n; i++) {
        x[i * 3] = (float)i; x[i * 3 + 1] = 2.0f * i; x[i * 3 + 2] = -(float)i;
        y[i] = (int32_t)(i % 3);
    }
    write_ok(path, x, y, n, 3);
    free(x); free(y);
}

START_TEST(test_validation_split_shuffle) {
    const char *d = tu_tmpdir();
    char *tr[1] = {tpath(d, "idx.h5")};
    write_indexed(tr[0], 100);
    cfg_data c = base_cfg();
    c.train_files = tr; c.n_train = 1; c.validation_split = 0.25;
    data_bundle a, b, z; nl_error e = {0};
    ck_assert_msg(data_load(&c, 42, &a, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(a.train.n, 75); ck_assert_int_eq(a.val.n, 25); ck_assert_int_eq(a.test.n, 0);
    ck_assert_int_eq(a.n_classes, 3);
    /* train + val is a permutation of the rows, rows kept intact */
    int seen[100] = {0}, moved = 0;
    for (int s = 0; s < 2; s++) {
        data_split *sp = s ? &a.val : &a.train;
        for (long i = 0; i < sp->n; i++) {
            const float *r = sp->x + i * 3;
            int k = (int)r[0];
            ck_assert(k >= 0 && k < 100);
            ck_assert(r[1] == 2.0f * k && r[2] == -(float)k);
            ck_assert_int_eq(sp->y[i], k % 3);
            seen[k]++;
            moved += (s ? 75 + i : i) != k;
        }
    }
    for (int k = 0; k < 100; k++) ck_assert_int_eq(seen[k], 1);
    ck_assert_int_gt(moved, 80);
    /* same seed: same order; other seed: other order */
    ck_assert_msg(data_load(&c, 42, &b, &e) == NL_OK, "%s", e.msg);
    ck_assert(memcmp(a.train.x, b.train.x, 100 * 3 * sizeof(float)) == 0);
    ck_assert(memcmp(a.train.y, b.train.y, 100 * sizeof(int32_t)) == 0);
    ck_assert_msg(data_load(&c, 43, &z, &e) == NL_OK, "%s", e.msg);
    ck_assert(memcmp(a.train.x, z.train.x, 100 * 3 * sizeof(float)) != 0);
    data_free(&a); data_free(&b); data_free(&z);

    /* max_samples with a split: the first 40 rows, 30 + 10 */
    c.max_samples = 40;
    ck_assert_msg(data_load(&c, 42, &a, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(a.train.n, 30); ck_assert_int_eq(a.val.n, 10);
    for (long i = 0; i < 40; i++) ck_assert(a.train.x[i * 3] < 40.0f);
    data_free(&a);

    /* a split that leaves nothing to train on, or out of [0, 1) */
    c.max_samples = 1; c.validation_split = 0.6;
    ck_assert_int_eq(data_load(&c, 42, &a, &e), NL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "validation_split"));
    c.validation_split = 1.0;
    ck_assert_int_eq(data_load(&c, 42, &a, &e), NL_ERR_CONFIG);
    ck_assert_ptr_null(a.train.x);
}
END_TEST

START_TEST(test_standardize_train_only) {
    const char *d = tu_tmpdir();
    long n = 50;
    float x[50 * 3], xt[2 * 3] = {1, 2, 3, -4, 5.5f, 7};
    int32_t y[50], yt[2] = {0, 1};
    rng_t r; rng_seed(&r, 9);
    for (long i = 0; i < n; i++) {
        x[i * 3] = 3.0f + 2.0f * rng_normal(&r);
        x[i * 3 + 1] = 7.0f;                         /* constant: std 1 */
        x[i * 3 + 2] = (float)(i * i) / 10.0f - 5;  /* trend: val rows differ */
        y[i] = (int32_t)(i % 2);
    }
    char *tr[1] = {tpath(d, "s.h5")}, *te[1] = {tpath(d, "st.h5")};
    write_ok(tr[0], x, y, n, 3);
    write_ok(te[0], xt, yt, 2, 3);
    cfg_data c = base_cfg();
    c.train_files = tr; c.n_train = 1; c.test_files = te; c.n_test = 1;
    c.validation_split = 0.3;
    data_bundle raw, st; nl_error e = {0};
    ck_assert_msg(data_load(&c, 5, &raw, &e) == NL_OK, "%s", e.msg);
    c.standardize = 1;
    ck_assert_msg(data_load(&c, 5, &st, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(raw.train.n, 35); ck_assert_int_eq(st.train.n, 35);
    /* statistics by hand from the raw training rows (same seed, same rows) */
    double mu[3] = {0}, sd[3] = {0}, mu_all[3] = {0};
    for (long i = 0; i < 35; i++) for (int j = 0; j < 3; j++) mu[j] += raw.train.x[i * 3 + j];
    for (long i = 0; i < 50; i++) for (int j = 0; j < 3; j++) mu_all[j] += x[i * 3 + j];
    for (int j = 0; j < 3; j++) { mu[j] /= 35; mu_all[j] /= 50; }
    for (long i = 0; i < 35; i++)
        for (int j = 0; j < 3; j++) { double v = raw.train.x[i * 3 + j] - mu[j]; sd[j] += v * v; }
    for (int j = 0; j < 3; j++) sd[j] = sqrt(sd[j] / 35);
    ck_assert(sd[1] == 0.0);
    sd[1] = 1.0;
    ck_assert_msg(fabs(mu[2] - mu_all[2]) > 0.5, "test needs train and all-row means to differ");
    for (int j = 0; j < 3; j++) {
        ck_assert_double_eq_tol(st.mean[j], mu[j], 1e-5 * (1 + fabs(mu[j])));
        ck_assert_double_eq_tol(st.std[j], sd[j], 1e-5 * sd[j]);
    }
    ck_assert(st.std[1] == 1.0f);
    /* applied to every split with the training statistics */
    data_split *rs[3] = {&raw.train, &raw.val, &raw.test}, *ss[3] = {&st.train, &st.val, &st.test};
    for (int s = 0; s < 3; s++) {
        ck_assert_int_eq(rs[s]->n, ss[s]->n);
        for (long i = 0; i < rs[s]->n * 3; i++) {
            double want = (rs[s]->x[i] - mu[i % 3]) / sd[i % 3];
            ck_assert_msg(fabs(ss[s]->x[i] - want) <= 1e-5 * (1 + fabs(want)),
                          "split %d [%ld]: %g vs %g", s, i, ss[s]->x[i], want);
        }
    }
    /* standardized training features: mean 0, std 1 (constant one: 0) */
    double m0 = 0, v0 = 0;
    for (long i = 0; i < 35; i++) m0 += st.train.x[i * 3];
    for (long i = 0; i < 35; i++) v0 += st.train.x[i * 3] * st.train.x[i * 3];
    ck_assert_double_eq_tol(m0 / 35, 0.0, 1e-6);
    ck_assert_double_eq_tol(v0 / 35, 1.0, 1e-5);
    ck_assert(st.train.x[1] == 0.0f);
    data_free(&raw); data_free(&st);
}
END_TEST

START_TEST(test_onehot_and_images) {
    const char *d = tu_tmpdir();
    char *tr[1] = {tpath(d, "img.h5")}, *te[1] = {tpath(d, "idx.h5")};
    hid_t f = raw_create(tr[0]);
    double img[4][2][3];
    for (int i = 0; i < 4; i++) for (int a = 0; a < 2; a++) for (int b = 0; b < 3; b++)
        img[i][a][b] = i * 100 + a * 10 + b + 0.25;
    hsize_t di[3] = {4, 2, 3};
    raw_ds(f, "X", H5T_IEEE_F64LE, 3, di, H5T_NATIVE_DOUBLE, img);
    float oh[4][4] = {{0, 0, 1, 0}, {1, 0, 0, 0}, {0.1f, 0.7f, 0.2f, 0}, {0, 0, 0, 1}};
    hsize_t dl[2] = {4, 4};
    raw_ds(f, "y", H5T_IEEE_F32LE, 2, dl, H5T_NATIVE_FLOAT, oh);
    H5Fclose(f);
    /* test file with float labels that are integers, and (n, 1) shape */
    f = raw_create(te[0]);
    double xt[2][6] = {{1, 2, 3, 4, 5, 6}, {6, 5, 4, 3, 2, 1}};
    hsize_t dx[2] = {2, 6}, dy[2] = {2, 1};
    raw_ds(f, "X", H5T_IEEE_F64LE, 2, dx, H5T_NATIVE_DOUBLE, xt);
    double yt[2] = {3.0, 1.0};
    raw_ds(f, "y", H5T_IEEE_F64LE, 2, dy, H5T_NATIVE_DOUBLE, yt);
    H5Fclose(f);

    cfg_data c = base_cfg();
    c.train_files = tr; c.n_train = 1; c.test_files = te; c.n_test = 1;
    data_bundle b; nl_error e = {0};
    ck_assert_msg(data_load(&c, 0, &b, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(b.n_features, 6);
    ck_assert_int_eq(b.n_classes, 4);
    for (int i = 0; i < 4; i++) for (int k = 0; k < 6; k++)
        ck_assert(b.train.x[i * 6 + k] == (float)(i * 100 + (k / 3) * 10 + k % 3 + 0.25));
    int32_t want[4] = {2, 0, 1, 3};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(b.train.y[i], want[i]);
    ck_assert_int_eq(b.test.y[0], 3); ck_assert_int_eq(b.test.y[1], 1);
    ck_assert(b.test.x[6] == 6.0f);
    data_free(&b);
    /* index format refuses one-hot rows; onehot format refuses (n,) */
    c.labels_format = LABELS_INDEX;
    ck_assert_int_eq(data_load(&c, 0, &b, &e), NL_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(e.msg, "img.h5")); ck_assert_ptr_nonnull(strstr(e.msg, "'y'"));
    ck_assert_ptr_nonnull(strstr(e.msg, "onehot"));
}
END_TEST

/* ---- errors: each names the file and the dataset ----------------------- */

static void expect_err(const cfg_data *c, nl_status code, const char *file, const char *ds,
                       const char *word) {
    data_bundle b; nl_error e = {0};
    nl_status st = data_load(c, 0, &b, &e);
    if (getenv("NNLO_TEST_SHOW")) fprintf(stderr, "message: %s\n", e.msg);
    ck_assert_msg(st == code, "expected %d got %d: %s", code, st, e.msg);
    ck_assert_msg(strstr(e.msg, file) != NULL, "message lacks file '%s': %s", file, e.msg);
    if (ds) {
        char q[140];
        snprintf(q, sizeof q, "'%s'", ds);
        ck_assert_msg(strstr(e.msg, q) != NULL, "message lacks dataset %s: %s", q, e.msg);
    }
    if (word) ck_assert_msg(strstr(e.msg, word) != NULL, "message lacks '%s': %s", word, e.msg);
    ck_assert_ptr_null(b.train.x);
}

/* A file with X (n, nf) float and y (n) int written through the raw API. */
static void write_xy(const char *path, long n, int nf, const float *x, const int32_t *y) {
    hid_t f = raw_create(path);
    hsize_t dx[2] = {(hsize_t)n, (hsize_t)nf}, dy[1] = {(hsize_t)n};
    raw_ds(f, "X", H5T_IEEE_F32LE, 2, dx, H5T_NATIVE_FLOAT, x);
    raw_ds(f, "y", H5T_STD_I32LE, 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
}

START_TEST(test_errors_name_file_and_dataset) {
    const char *d = tu_tmpdir();
    float x[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8};
    int32_t y[4] = {0, 1, 2, 1};
    char *good[1] = {tpath(d, "good.h5")};
    write_ok(good[0], x, y, 4, 2);
    cfg_data c = base_cfg();
    c.n_train = 1;
    char *one[1];
    c.train_files = one;

    /* missing file, not HDF5 */
    one[0] = tpath(d, "nope.h5");
    expect_err(&c, NL_ERR_IO, "nope.h5", NULL, "not found");
    one[0] = tpath(d, "text.h5");
    nl_error e = {0};
    ck_assert_int_eq(fs_write_atomic(one[0], "hello\n", 6, &e), NL_OK);
    expect_err(&c, NL_ERR_IO, "text.h5", NULL, "HDF5");

    /* missing dataset: lists what exists, suggests the near name */
    one[0] = tpath(d, "other.h5");
    hid_t f = raw_create(one[0]);
    hsize_t d2[2] = {4, 2}, d1[1] = {4};
    raw_ds(f, "x", H5T_IEEE_F32LE, 2, d2, H5T_NATIVE_FLOAT, x);
    H5Gclose(H5Gcreate2(f, "grp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    raw_ds(f, "grp/labels", H5T_STD_I32LE, 1, d1, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    expect_err(&c, NL_ERR_DATA, "other.h5", "X", "grp/labels");
    expect_err(&c, NL_ERR_DATA, "other.h5", "X", "did you mean 'x'");
    strcpy(c.features, "x");
    expect_err(&c, NL_ERR_DATA, "other.h5", "y", "grp/labels");
    strcpy(c.labels, "grp/labels");
    {
        data_bundle b;
        ck_assert_msg(data_load(&c, 0, &b, &e) == NL_OK, "%s", e.msg); /* group paths work */
        ck_assert_int_eq(b.train.y[2], 2);
        data_free(&b);
    }
    c = base_cfg(); c.n_train = 1; c.train_files = one;

    /* wrong rank: 1-D features; 3-D labels */
    one[0] = tpath(d, "rank.h5");
    f = raw_create(one[0]);
    raw_ds(f, "X", H5T_IEEE_F32LE, 1, d1, H5T_NATIVE_FLOAT, x);
    raw_ds(f, "y", H5T_STD_I32LE, 1, d1, H5T_NATIVE_INT32, y);
    hsize_t d3[3] = {4, 1, 2};
    raw_ds(f, "X3", H5T_IEEE_F32LE, 2, d2, H5T_NATIVE_FLOAT, x);
    raw_ds(f, "y3", H5T_IEEE_F32LE, 3, d3, H5T_NATIVE_FLOAT, x);
    H5Fclose(f);
    expect_err(&c, NL_ERR_DATA, "rank.h5", "X", "(n, 1)");
    strcpy(c.features, "X3"); strcpy(c.labels, "y3");
    expect_err(&c, NL_ERR_DATA, "rank.h5", "y3", "(4, 1, 2)");
    c = base_cfg(); c.n_train = 1; c.train_files = one;

    /* rows differ */
    one[0] = tpath(d, "rows.h5");
    f = raw_create(one[0]);
    hsize_t d3r[1] = {3};
    raw_ds(f, "X", H5T_IEEE_F32LE, 2, d2, H5T_NATIVE_FLOAT, x);
    raw_ds(f, "y", H5T_STD_I32LE, 1, d3r, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    expect_err(&c, NL_ERR_DATA, "rows.h5", "y", "3");

    /* feature counts differ between training and test files */
    one[0] = good[0];
    char *te[1] = {tpath(d, "three.h5")};
    float x3[2 * 3] = {0};
    int32_t y3[2] = {0, 0};
    write_ok(te[0], x3, y3, 2, 3);
    c.test_files = te; c.n_test = 1;
    expect_err(&c, NL_ERR_DATA, "three.h5", "X", "good.h5");
    c.test_files = NULL; c.n_test = 0;

    /* non-numeric (string) features */
    one[0] = tpath(d, "str.h5");
    f = raw_create(one[0]);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 4);
    raw_ds(f, "X", st, 2, d2, st, NULL);
    H5Tclose(st);
    raw_ds(f, "y", H5T_STD_I32LE, 1, d1, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    expect_err(&c, NL_ERR_DATA, "str.h5", "X", "string");

    /* NaN and Inf: first row / column */
    float xn[4 * 2] = {1, 2, 3, 4, 5, NAN, 7, INFINITY};
    one[0] = tpath(d, "nan.h5");
    write_xy(one[0], 4, 2, xn, y);
    expect_err(&c, NL_ERR_DATA, "nan.h5", "X", "row 2 column 1");
    xn[5] = 0;
    write_xy(one[0], 4, 2, xn, y);
    expect_err(&c, NL_ERR_DATA, "nan.h5", "X", "row 3 column 1 holds inf");

    /* negative label; non-integer float label */
    int32_t yneg[4] = {0, 1, -2, 1};
    one[0] = tpath(d, "neg.h5");
    write_xy(one[0], 4, 2, x, yneg);
    expect_err(&c, NL_ERR_DATA, "neg.h5", "y", "negative");
    one[0] = tpath(d, "frac.h5");
    f = raw_create(one[0]);
    double yf[4] = {0, 1, 1.5, 1};
    raw_ds(f, "X", H5T_IEEE_F32LE, 2, d2, H5T_NATIVE_FLOAT, x);
    raw_ds(f, "y", H5T_IEEE_F64LE, 1, d1, H5T_NATIVE_DOUBLE, yf);
    H5Fclose(f);
    expect_err(&c, NL_ERR_DATA, "frac.h5", "y", "row 2 holds 1.5");

    /* one-hot rows that are not one-hot */
    one[0] = tpath(d, "oh.h5");
    f = raw_create(one[0]);
    float oh[4][3] = {{1, 0, 0}, {0, 1, 0}, {0, 1, 1}, {0, 0, 1}};
    hsize_t dl[2] = {4, 3};
    raw_ds(f, "X", H5T_IEEE_F32LE, 2, d2, H5T_NATIVE_FLOAT, x);
    raw_ds(f, "y", H5T_IEEE_F32LE, 2, dl, H5T_NATIVE_FLOAT, oh);
    H5Fclose(f);
    expect_err(&c, NL_ERR_DATA, "oh.h5", "y", "row 2 sums to 2");

    /* class id out of range of the one-hot width of another file */
    oh[2][2] = 0;
    f = raw_create(one[0]);
    raw_ds(f, "X", H5T_IEEE_F32LE, 2, d2, H5T_NATIVE_FLOAT, x);
    raw_ds(f, "y", H5T_IEEE_F32LE, 2, dl, H5T_NATIVE_FLOAT, oh);
    H5Fclose(f);
    char *te5[1] = {tpath(d, "five.h5")};
    float x5[2 * 2] = {0};
    int32_t y5[2] = {1, 5};
    write_ok(te5[0], x5, y5, 2, 2);
    c.test_files = te5; c.n_test = 1;
    expect_err(&c, NL_ERR_DATA, "five.h5", "y", "oh.h5");
    c.test_files = NULL; c.n_test = 0;

    /* empty dataset */
    one[0] = tpath(d, "empty.h5");
    f = raw_create(one[0]);
    hsize_t z2[2] = {0, 2}, z1[1] = {0};
    raw_ds(f, "X", H5T_IEEE_F32LE, 2, z2, H5T_NATIVE_FLOAT, NULL);
    raw_ds(f, "y", H5T_STD_I32LE, 1, z1, H5T_NATIVE_INT32, NULL);
    H5Fclose(f);
    expect_err(&c, NL_ERR_DATA, "empty.h5", "X", "empty");

    /* a bad validation file is reported as such */
    one[0] = good[0];
    char *va[1] = {tpath(d, "missing_val.h5")};
    c.val_files = va; c.n_val = 1;
    expect_err(&c, NL_ERR_IO, "missing_val.h5", NULL, "validation");

    /* no training files at all */
    c = base_cfg();
    data_bundle b;
    ck_assert_int_eq(data_load(&c, 0, &b, &e), NL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "train"));
}
END_TEST

/* ---- generators --------------------------------------------------------- */

static void load_one(const char *path, data_bundle *b) {
    cfg_data c = base_cfg();
    char *tr[1] = {(char *)path};
    c.train_files = tr; c.n_train = 1;
    nl_error e = {0};
    ck_assert_msg(data_load(&c, 0, b, &e) == NL_OK, "%s", e.msg);
}

START_TEST(test_jets) {
    const char *d = tu_tmpdir();
    char *p1 = tpath(d, "j1.h5"), *p2 = tpath(d, "j2.h5"), *p3 = tpath(d, "j3.h5");
    nl_error e = {0};
    ck_assert_msg(data_make_jets(p1, 2000, 7, &e) == NL_OK, "%s", e.msg);
    ck_assert_msg(data_make_jets(p2, 2000, 7, &e) == NL_OK, "%s", e.msg);
    ck_assert_msg(data_make_jets(p3, 2000, 8, &e) == NL_OK, "%s", e.msg);
    /* same seed, byte-identical files */
    char *s1, *s2; size_t n1, n2;
    ck_assert_int_eq(fs_read_all(p1, &s1, &n1, &e), NL_OK);
    ck_assert_int_eq(fs_read_all(p2, &s2, &n2, &e), NL_OK);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(s1, s2, n1) == 0);
    free(s1); free(s2);
    data_bundle a, c;
    load_one(p1, &a); load_one(p3, &c);
    ck_assert_int_eq(a.train.n, 2000); ck_assert_int_eq(a.n_features, 16);
    ck_assert_int_eq(a.n_classes, 5);
    long cnt[5] = {0};
    for (long i = 0; i < 2000; i++) cnt[a.train.y[i]]++;
    for (int k = 0; k < 5; k++) ck_assert_msg(cnt[k] > 330 && cnt[k] < 470, "class %d: %ld", k, cnt[k]);
    ck_assert(memcmp(a.train.x, c.train.x, 2000 * 16 * sizeof(float)) != 0);
    /* classes differ in their feature means (the set is learnable) but
     * overlap: the class-0 / class-4 gap in feature 0 is under 4 pooled sd */
    double m[5] = {0}, s[5] = {0};
    for (long i = 0; i < 2000; i++) { m[a.train.y[i]] += a.train.x[i * 16]; }
    for (int k = 0; k < 5; k++) m[k] /= cnt[k];
    for (long i = 0; i < 2000; i++) {
        double v = a.train.x[i * 16] - m[a.train.y[i]];
        s[a.train.y[i]] += v * v;
    }
    double sp = sqrt((s[0] + s[4]) / (cnt[0] + cnt[4]));
    double gap = fabs(m[4] - m[0]) / sp;
    ck_assert_msg(gap > 0.5 && gap < 4, "gap %g", gap);
    data_free(&a); data_free(&c);
    ck_assert_int_eq(data_make_jets(p1, 0, 7, &e), NL_ERR_INVALID);
}
END_TEST

static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int nd,
                      const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char h[4];
    uint32_t vals[4] = {magic, 0, 0, 0};
    for (int i = 0; i < nd; i++) vals[1 + i] = dims[i];
    for (int i = 0; i < 1 + nd; i++) {
        h[0] = vals[i] >> 24; h[1] = vals[i] >> 16; h[2] = vals[i] >> 8; h[3] = vals[i];
        fwrite(h, 1, 4, f);
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

START_TEST(test_fashion_mnist_small_idx) {
    const char *src = tu_tmpdir();
    char srcd[600]; strcpy(srcd, src);
    char out[700];
    strcpy(out, tpath(tu_tmpdir(), "out"));
    static unsigned char pix[3 * 784];
    for (int i = 0; i < 3 * 784; i++) pix[i] = (unsigned char)((i * 7) % 256);
    unsigned char lab[3] = {9, 0, 4}, lab2[2] = {1, 2};
    uint32_t di[3] = {3, 28, 28}, dl[1] = {3}, di2[3] = {2, 28, 28}, dl2[1] = {2};
    /* train files uncompressed, test files gzip */
    write_idx(tpath(srcd, "train-images-idx3-ubyte"), 0x803, di, 3, pix, sizeof pix);
    write_idx(tpath(srcd, "train-labels-idx1-ubyte"), 0x801, dl, 1, lab, 3);
    char tmpi[700], tmpl[700];
    strcpy(tmpi, tpath(srcd, "ti")); strcpy(tmpl, tpath(srcd, "tl"));
    write_idx(tmpi, 0x803, di2, 3, pix, 2 * 784);
    write_idx(tmpl, 0x801, dl2, 1, lab2, 2);
    const char *srcs[2] = {tmpi, tmpl};
    const char *dsts[2] = {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int k = 0; k < 2; k++) {
        char *buf; size_t n; nl_error e = {0};
        ck_assert_int_eq(fs_read_all(srcs[k], &buf, &n, &e), NL_OK);
        gzFile g = gzopen(tpath(srcd, dsts[k]), "wb");
        ck_assert_int_eq(gzwrite(g, buf, (unsigned)n), (int)n);
        gzclose(g);
        free(buf);
    }
    nl_error e = {0};
    ck_assert_msg(data_make_fashion_mnist(out, srcd, &e) == NL_OK, "%s", e.msg);
    data_bundle b;
    load_one(tpath(out, "train.h5"), &b);
    ck_assert_int_eq(b.train.n, 3); ck_assert_int_eq(b.n_features, 784);
    for (int i = 0; i < 3 * 784; i++) ck_assert(b.train.x[i] == (float)pix[i] / 255.0f);
    ck_assert_int_eq(b.train.y[0], 9); ck_assert_int_eq(b.train.y[2], 4);
    data_free(&b);
    load_one(tpath(out, "test.h5"), &b);
    ck_assert_int_eq(b.train.n, 2); ck_assert_int_eq(b.train.y[1], 2);
    ck_assert(b.train.x[783] == (float)pix[783] / 255.0f);
    data_free(&b);

    /* bad magic, count mismatch, truncation, missing: name the file */
    write_idx(tpath(srcd, "train-labels-idx1-ubyte"), 0x803, dl, 1, lab, 3);
    ck_assert_int_eq(data_make_fashion_mnist(out, srcd, &e), NL_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(e.msg, "train-labels-idx1-ubyte"));
    ck_assert_ptr_nonnull(strstr(e.msg, "magic"));
    write_idx(tpath(srcd, "train-labels-idx1-ubyte"), 0x801, dl2, 1, lab, 2);
    ck_assert_int_eq(data_make_fashion_mnist(out, srcd, &e), NL_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(e.msg, "3 images"));
    write_idx(tpath(srcd, "train-labels-idx1-ubyte"), 0x801, dl, 1, lab, 3);
    write_idx(tpath(srcd, "train-images-idx3-ubyte"), 0x803, di, 3, pix, 784);
    ck_assert_int_eq(data_make_fashion_mnist(out, srcd, &e), NL_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(e.msg, "train-images-idx3-ubyte: truncated"));
    ck_assert_int_eq(data_make_fashion_mnist(out, tpath(srcd, "none"), &e), NL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "train-images-idx3-ubyte"));
}
END_TEST

START_TEST(test_fashion_mnist_debian) {
    const char *src = "/usr/share/datasets/fashion-mnist";
    char probe[200];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", src);
    if (!fs_exists(probe)) { fprintf(stderr, "fashion-mnist not installed: skipped\n"); return; }
    const char *out = tu_tmpdir();
    nl_error e = {0};
    ck_assert_msg(data_make_fashion_mnist(out, NULL, &e) == NL_OK, "%s", e.msg);
    cfg_data c = base_cfg();
    char *tr[1] = {tpath(out, "train.h5")}, *te[1] = {tpath(out, "test.h5")};
    c.train_files = tr; c.n_train = 1; c.test_files = te; c.n_test = 1;
    data_bundle b;
    ck_assert_msg(data_load(&c, 0, &b, &e) == NL_OK, "%s", e.msg);
    ck_assert_int_eq(b.train.n, 60000); ck_assert_int_eq(b.test.n, 10000);
    ck_assert_int_eq(b.n_features, 784); ck_assert_int_eq(b.n_classes, 10);
    long cnt[10] = {0}, tcnt[10] = {0};
    for (long i = 0; i < 60000; i++) cnt[b.train.y[i]]++;
    for (long i = 0; i < 10000; i++) tcnt[b.test.y[i]]++;
    for (int k = 0; k < 10; k++) { ck_assert_int_eq(cnt[k], 6000); ck_assert_int_eq(tcnt[k], 1000); }
    float lo = 1, hi = 0;
    double s = 0;
    for (long i = 0; i < 60000L * 784; i++) {
        float v = b.train.x[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        s += v;
    }
    ck_assert(lo == 0.0f && hi == 1.0f);
    ck_assert_double_eq_tol(s / (60000.0 * 784), 0.2860, 0.001); /* the known pixel mean */
    ck_assert(b.train.x[14 * 28 + 14] * 255.0f == floorf(b.train.x[14 * 28 + 14] * 255.0f + 0.5f));
    data_free(&b);
    unlink(tr[0]); unlink(te[0]); /* 50 MB: do not leave them in /tmp */
    rmdir(out);
}
END_TEST

Suite *make_data_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_load_exact_concat);
    tcase_add_test(tc, test_shared_val_test);
    tcase_add_test(tc, test_standardize_global);
    tcase_add_test(tc, test_validation_split_shuffle);
    tcase_add_test(tc, test_standardize_train_only);
    tcase_add_test(tc, test_onehot_and_images);
    tcase_add_test(tc, test_errors_name_file_and_dataset);
    tcase_add_test(tc, test_jets);
    tcase_add_test(tc, test_fashion_mnist_small_idx);
    tcase_add_test(tc, test_fashion_mnist_debian);
    suite_add_tcase(s, tc);
    return s;
}
