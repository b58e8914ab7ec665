/* write.c — writing dataset files: the block-wise h5w writer and
 * data_write_h5. Files appear atomically (temporary name, fsync, rename).
 * Does not validate values: writers of NaN get NaN files, the loader
 * rejects them. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "data/h5util.h"
#include "data/h5write.h"
#include "nnlo/data.h"

static nl_status h5_fail(nl_error *e, const char *path, const char *what) {
    char he[512];
    h5u_errstr(he, sizeof he);
    return nl_err(e, NL_ERR_IO, "%s: cannot %s%s%s", path, what, he[0] ? ": " : "", he);
}

nl_status h5w_open(h5w *w, const char *path, long n, int nf, const char *features,
                   const char *labels, nl_error *e) {
    memset(w, 0, sizeof *w);
    w->file = w->dx = w->dy = H5I_INVALID_HID;
    h5u_quiet();
    if (n < 1 || nf < 1)
        return nl_err(e, NL_ERR_INVALID, "%s: cannot write %ld rows of %d features", path, n, nf);
    if (!features || !*features || !labels || !*labels || !strcmp(features, labels))
        return nl_err(e, NL_ERR_INVALID, "%s: features and labels need two different dataset names", path);
    if (snprintf(w->path, sizeof w->path, "%s", path) >= (int)sizeof w->path)
        return nl_err(e, NL_ERR_IO, "%s: path too long", path);
    nl_status st = h5u_tmpname(w->tmp, sizeof w->tmp, path, e);
    if (st) return st;
    w->n = n; w->nf = nf;
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) return h5_fail(e, w->tmp, "create the file");

    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)nf};
    hsize_t rows = (hsize_t)(65536 / nf) > 0 ? (hsize_t)(65536 / nf) : 1;
    if (rows > (hsize_t)n) rows = (hsize_t)n;
    hsize_t cx[2] = {rows, (hsize_t)nf};
    hsize_t ylen = (hsize_t)n < 65536 ? (hsize_t)n : 65536;
    hid_t sx = H5Screate_simple(2, dims, NULL), sy = H5Screate_simple(1, dims, NULL);
    hid_t px = H5Pcreate(H5P_DATASET_CREATE), py = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(px, 2, cx); H5Pset_deflate(px, 1);
    H5Pset_chunk(py, 1, &ylen); H5Pset_deflate(py, 1);
    H5Pset_obj_track_times(px, 0); /* no timestamps: same data, same bytes */
    H5Pset_obj_track_times(py, 0);
    w->dx = H5Dcreate2(w->file, features, H5T_IEEE_F32LE, sx, lcpl, px, H5P_DEFAULT);
    if (w->dx >= 0)
        w->dy = H5Dcreate2(w->file, labels, H5T_STD_I32LE, sy, lcpl, py, H5P_DEFAULT);
    H5Sclose(sx); H5Sclose(sy); H5Pclose(px); H5Pclose(py); H5Pclose(lcpl);
    if (w->dx < 0 || w->dy < 0) {
        st = h5_fail(e, w->tmp, "create the datasets");
        h5w_abort(w);
        return st;
    }
    return NL_OK;
}

static herr_t write_rows(hid_t ds, long start, long count, int width, hid_t mt, const void *buf) {
    hid_t fs = H5Dget_space(ds);
    hsize_t off[2] = {(hsize_t)start, 0}, cnt[2] = {(hsize_t)count, (hsize_t)width};
    herr_t r = H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    hsize_t m = (hsize_t)count * (hsize_t)width;
    hid_t ms = H5Screate_simple(1, &m, NULL);
    if (r >= 0) r = H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms); H5Sclose(fs);
    return r;
}

nl_status h5w_rows(h5w *w, long start, long count, const float *x, const int32_t *y,
                   nl_error *e) {
    NL_ASSERT(start >= 0 && count >= 0 && start + count <= w->n);
    if (count == 0) return NL_OK;
    if (write_rows(w->dx, start, count, w->nf, H5T_NATIVE_FLOAT, x) < 0 ||
        write_rows(w->dy, start, count, 1, H5T_NATIVE_INT32, y) < 0)
        return h5_fail(e, w->tmp, "write rows (disk full?)");
    return NL_OK;
}

nl_status h5w_close(h5w *w, nl_error *e) {
    herr_t r = 0;
    if (w->dx >= 0) r |= H5Dclose(w->dx);
    if (w->dy >= 0) r |= H5Dclose(w->dy);
    w->dx = w->dy = H5I_INVALID_HID;
    if (w->file >= 0) r |= H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (r < 0) {
        nl_status st = h5_fail(e, w->tmp, "close the file");
        unlink(w->tmp);
        return st;
    }
    return h5u_commit(w->tmp, w->path, e);
}

void h5w_abort(h5w *w) {
    if (w->dx >= 0) H5Dclose(w->dx);
    if (w->dy >= 0) H5Dclose(w->dy);
    if (w->file >= 0) {
        H5Fclose(w->file);
        unlink(w->tmp);
    }
    w->dx = w->dy = w->file = H5I_INVALID_HID;
}

nl_status data_write_h5(const char *path, const float *x, const int32_t *y, long n,
                        int n_features, const char *features, const char *labels,
                        nl_error *e) {
    h5w w;
    nl_status st = h5w_open(&w, path, n, n_features, features, labels, e);
    if (st) return st;
    st = h5w_rows(&w, 0, n, x, y, e);
    if (st) { h5w_abort(&w); return st; }
    return h5w_close(&w, e);
}
