/* load.c — data_load: HDF5 files -> train / validation / test splits.
 *
 * Two passes: every file is probed first (exists, HDF5, datasets, ranks,
 * types, shapes, consistent feature counts) so that a typo in the last test
 * file fails before gigabytes are read; then each split is allocated once
 * and read straight into float32 / int32 (HDF5 converts). Training and
 * validation rows share one allocation (validation rows follow the training
 * rows), so splitting off validation data never copies. Labels are read in
 * bounded chunks. Not here: batching or per-epoch shuffles (nn does that). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "data/h5util.h"
#include "nnlo/data.h"

typedef struct {
    const char *path;
    const char *split;  /* "training", "validation", "test": for messages */
    long rows;          /* rows in the file */
    long use;           /* rows read (max_samples) */
    int nf;             /* features per row (trailing dims flattened) */
    int lwidth;         /* 0: rank-1 labels; else the second dimension */
    int onehot;         /* rank-2 rows are one-hot / probability rows */
    int frank;          /* rank of the features dataset */
    long max_label;     /* after reading */
} finfo;

typedef struct {
    const char *fname, *lname; /* dataset names */
    label_format fmt;
} names;

static const char *fmt_shape(char *buf, size_t len, int rank, const hsize_t *d) {
    size_t u = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < rank && u < len; i++)
        u += (size_t)snprintf(buf + u, len - u, "%s%llu", i ? ", " : "", (unsigned long long)d[i]);
    if (u < len) snprintf(buf + u, len - u, rank == 1 ? ",)" : ")");
    return buf;
}

/* Opens a dataset; on failure fills e with the datasets that do exist. */
static hid_t open_dataset(hid_t f, const char *path, const char *name, const char *key,
                          nl_error *e) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d >= 0) return d;
    char list[600], near[128];
    h5u_list_datasets(f, list, sizeof list, name, near, sizeof near);
    char hint[200] = "";
    int dist = near[0] ? str_edit_distance(name, near) : -1;
    if (near[0] && (!strcasecmp(name, near) || (dist <= 2 && dist < (int)strlen(name))))
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    nl_err(e, NL_ERR_DATA,
           "%s: dataset '%s' not found%s; the file has datasets: %s. Set data.%s to one of them",
           path, name, hint, list, key);
    return H5I_INVALID_HID;
}

static int numeric_class(hid_t d, H5T_class_t *cls) {
    hid_t t = H5Dget_type(d);
    *cls = H5Tget_class(t);
    H5Tclose(t);
    return *cls == H5T_INTEGER || *cls == H5T_FLOAT;
}

/* Pass 1: shapes and types of one file. */
static nl_status probe_file(const names *nm, finfo *fi, nl_error *e) {
    const char *p = fi->path;
    if (!fs_exists(p))
        return nl_err(e, NL_ERR_IO, "%s: %s data file not found (check the path in the data section)",
                      p, fi->split);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char he[400];
        h5u_errstr(he, sizeof he);
        return nl_err(e, NL_ERR_IO, "%s: cannot open as HDF5 (not an HDF5 file, or truncated)%s%s",
                      p, he[0] ? ": " : "", he);
    }
    nl_status st = NL_OK;
    hid_t dx = H5I_INVALID_HID, dy = H5I_INVALID_HID, sx = H5I_INVALID_HID, sy = H5I_INVALID_HID;
    hsize_t dims[H5S_MAX_RANK], ld[H5S_MAX_RANK];
    char shp[200];
    H5T_class_t cls;

    dx = open_dataset(f, p, nm->fname, "features", e);
    if (dx < 0) { st = NL_ERR_DATA; goto done; }
    if (!numeric_class(dx, &cls)) {
        st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' holds %s values; features must be integer or float numbers",
                    p, nm->fname, h5u_class_name(cls));
        goto done;
    }
    sx = H5Dget_space(dx);
    int r = H5Sget_simple_extent_ndims(sx);
    if (r < 0 || r > H5S_MAX_RANK) { st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has no simple shape", p, nm->fname); goto done; }
    H5Sget_simple_extent_dims(sx, dims, NULL);
    fi->frank = r;
    if (r < 2) {
        st = nl_err(e, NL_ERR_DATA,
                    "%s: dataset '%s' has shape %s (rank %d); features must be (n_samples, n_features) "
                    "or (n_samples, d1, d2, ...); reshape a single feature to (n, 1)",
                    p, nm->fname, fmt_shape(shp, sizeof shp, r, dims), r);
        goto done;
    }
    unsigned long long nf = 1;
    for (int i = 1; i < r; i++) nf *= dims[i];
    if (dims[0] == 0 || nf == 0) {
        st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' is empty (shape %s)", p, nm->fname,
                    fmt_shape(shp, sizeof shp, r, dims));
        goto done;
    }
    if (nf > INT_MAX || dims[0] > (hsize_t)LONG_MAX / nf) {
        st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' is too large (shape %s)", p, nm->fname,
                    fmt_shape(shp, sizeof shp, r, dims));
        goto done;
    }
    fi->rows = (long)dims[0];
    fi->nf = (int)nf;

    dy = open_dataset(f, p, nm->lname, "labels", e);
    if (dy < 0) { st = NL_ERR_DATA; goto done; }
    if (!numeric_class(dy, &cls)) {
        st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' holds %s values; labels must be integer class ids "
                    "or one-hot rows of numbers", p, nm->lname, h5u_class_name(cls));
        goto done;
    }
    sy = H5Dget_space(dy);
    int lr = H5Sget_simple_extent_ndims(sy);
    if (lr < 0 || lr > H5S_MAX_RANK) { st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has no simple shape", p, nm->lname); goto done; }
    H5Sget_simple_extent_dims(sy, ld, NULL);
    if (lr < 1 || lr > 2) {
        st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has shape %s; labels must be (n,) class ids or "
                    "(n, n_classes) one-hot rows", p, nm->lname, fmt_shape(shp, sizeof shp, lr, ld));
        goto done;
    }
    if (ld[0] == 0 || (lr == 2 && ld[1] == 0)) {
        st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' is empty (shape %s)", p, nm->lname,
                    fmt_shape(shp, sizeof shp, lr, ld));
        goto done;
    }
    if (ld[0] != dims[0]) {
        char s2[200];
        st = nl_err(e, NL_ERR_DATA, "%s: features '%s' have %llu rows %s but labels '%s' have %llu %s; "
                    "they must have one label per sample",
                    p, nm->fname, (unsigned long long)dims[0], fmt_shape(shp, sizeof shp, r, dims),
                    nm->lname, (unsigned long long)ld[0], fmt_shape(s2, sizeof s2, lr, ld));
        goto done;
    }
    if (lr == 2 && ld[1] > 1000000) {
        st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has %llu columns: too many classes", p, nm->lname,
                    (unsigned long long)ld[1]);
        goto done;
    }
    fi->lwidth = lr == 2 ? (int)ld[1] : 0;
    switch (nm->fmt) {
    case LABELS_AUTO: fi->onehot = lr == 2 && ld[1] > 1; break;
    case LABELS_INDEX:
        if (lr == 2 && ld[1] > 1) {
            st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has shape %s but labels_format is index "
                        "(expects (n,) class ids); use labels_format: onehot or auto",
                        p, nm->lname, fmt_shape(shp, sizeof shp, lr, ld));
            goto done;
        }
        fi->onehot = 0;
        break;
    case LABELS_ONEHOT:
        if (lr != 2) {
            st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has shape %s but labels_format is onehot "
                        "(expects (n, n_classes) rows); use labels_format: index or auto",
                        p, nm->lname, fmt_shape(shp, sizeof shp, lr, ld));
            goto done;
        }
        fi->onehot = 1;
        break;
    }
done:
    if (sx >= 0) H5Sclose(sx);
    if (sy >= 0) H5Sclose(sy);
    if (dx >= 0) H5Dclose(dx);
    if (dy >= 0) H5Dclose(dy);
    H5Fclose(f);
    return st;
}

/* Reads rows [r0, r0+count) of a rank >= 1 dataset whose rows hold `width`
 * elements into buf as memory type mt. */
static herr_t read_rows(hid_t d, hid_t mt, long r0, long count, long width, void *buf) {
    hid_t fs = H5Dget_space(d);
    hsize_t off[H5S_MAX_RANK] = {0}, cnt[H5S_MAX_RANK];
    H5Sget_simple_extent_dims(fs, cnt, NULL);
    off[0] = (hsize_t)r0; cnt[0] = (hsize_t)count;
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    hsize_t m = (hsize_t)count * (hsize_t)width;
    hid_t ms = H5Screate_simple(1, &m, NULL);
    if (rc >= 0) rc = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms); H5Sclose(fs);
    return rc;
}

static nl_status read_fail(nl_error *e, const char *path, const char *ds) {
    char he[400];
    h5u_errstr(he, sizeof he);
    return nl_err(e, NL_ERR_IO, "%s: cannot read dataset '%s'%s%s", path, ds, he[0] ? ": " : "", he);
}

/* Converts one chunk of label rows (as doubles) to class ids. */
static nl_status convert_labels(const names *nm, finfo *fi, const double *v, long r0, long cnt,
                                int32_t *y, nl_error *e) {
    const char *p = fi->path, *ds = nm->lname;
    if (!fi->onehot) {
        for (long i = 0; i < cnt; i++) {
            double a = v[i];
            if (!(a == floor(a)) || !isfinite(a))
                return nl_err(e, NL_ERR_DATA, "%s: dataset '%s' row %ld holds %g, not an integer class id",
                              p, ds, r0 + i, a);
            if (a < 0)
                return nl_err(e, NL_ERR_DATA, "%s: dataset '%s' row %ld holds the negative label %g; "
                              "class ids must be 0, 1, ..., n_classes-1", p, ds, r0 + i, a);
            if (a > 1000000)
                return nl_err(e, NL_ERR_DATA, "%s: dataset '%s' row %ld holds the label %g: too large a "
                              "class id (class ids must be 0, 1, ..., n_classes-1)", p, ds, r0 + i, a);
            y[i] = (int32_t)a;
            if (y[i] > fi->max_label) fi->max_label = y[i];
        }
        return NL_OK;
    }
    int w = fi->lwidth;
    for (long i = 0; i < cnt; i++) {
        const double *row = v + (size_t)i * (size_t)w;
        double s = 0, best = -1;
        int arg = 0;
        for (int c = 0; c < w; c++) {
            double a = row[c];
            if (!isfinite(a) || a < 0)
                return nl_err(e, NL_ERR_DATA, "%s: dataset '%s' row %ld column %d holds %g; one-hot / "
                              "probability rows must hold values >= 0 that sum to 1",
                              p, ds, r0 + i, c, a);
            s += a;
            if (a > best) { best = a; arg = c; }
        }
        if (fabs(s - 1.0) > 1e-3)
            return nl_err(e, NL_ERR_DATA, "%s: dataset '%s' row %ld sums to %g, so it is not one-hot "
                          "(nor a probability row); for integer class ids use a (n,) dataset",
                          p, ds, r0 + i, s);
        y[i] = arg;
        if (arg > fi->max_label) fi->max_label = arg;
    }
    return NL_OK;
}

/* Pass 2: reads fi->use rows of one file into x (use, nf) and y (use). */
static nl_status read_file(const names *nm, finfo *fi, float *x, int32_t *y, nl_error *e) {
    const char *p = fi->path;
    fi->max_label = -1;
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return nl_err(e, NL_ERR_IO, "%s: cannot open as HDF5 (did it change while loading?)", p);
    nl_status st = NL_OK;
    double *buf = NULL;
    hid_t dx = H5Dopen2(f, nm->fname, H5P_DEFAULT);
    hid_t dy = dx >= 0 ? H5Dopen2(f, nm->lname, H5P_DEFAULT) : H5I_INVALID_HID;
    if (dx < 0 || dy < 0) { st = read_fail(e, p, dx < 0 ? nm->fname : nm->lname); goto done; }

    if (read_rows(dx, H5T_NATIVE_FLOAT, 0, fi->use, fi->nf, x) < 0) {
        st = read_fail(e, p, nm->fname);
        goto done;
    }
    size_t nx = (size_t)fi->use * (size_t)fi->nf;
    for (size_t j = 0; j < nx; j++) {
        if (!isfinite(x[j])) {
            st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' row %zu column %zu%s holds %g (first "
                        "non-finite value; values beyond the float32 range read as inf); "
                        "clean or drop such rows", p, nm->fname, j / (size_t)fi->nf,
                        j % (size_t)fi->nf, fi->frank > 2 ? " (trailing dimensions flattened)" : "",
                        (double)x[j]);
            goto done;
        }
    }

    long w = fi->lwidth > 0 ? fi->lwidth : 1;
    long chunk = (1L << 17) / w;
    if (chunk < 1) chunk = 1;
    if (chunk > fi->use) chunk = fi->use;
    buf = malloc((size_t)chunk * (size_t)w * sizeof *buf);
    if (!buf) { st = nl_err(e, NL_ERR_NOMEM, "%s: out of memory reading labels", p); goto done; }
    for (long r0 = 0; r0 < fi->use; r0 += chunk) {
        long cnt = fi->use - r0 < chunk ? fi->use - r0 : chunk;
        if (read_rows(dy, H5T_NATIVE_DOUBLE, r0, cnt, w, buf) < 0) {
            st = read_fail(e, p, nm->lname);
            goto done;
        }
        st = convert_labels(nm, fi, buf, r0, cnt, y + r0, e);
        if (st) goto done;
    }
done:
    free(buf);
    if (dx >= 0) H5Dclose(dx);
    if (dy >= 0) H5Dclose(dy);
    H5Fclose(f);
    return st;
}

/* Fisher-Yates over rows, in place; tmp holds one row. */
static void shuffle_rows(float *x, int32_t *y, long n, int nf, rng_t *r, float *tmp) {
    size_t rb = (size_t)nf * sizeof *x;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)rng_below(r, (uint64_t)i + 1);
        if (j == i) continue;
        float *a = x + (size_t)i * (size_t)nf, *b = x + (size_t)j * (size_t)nf;
        memcpy(tmp, a, rb); memcpy(a, b, rb); memcpy(b, tmp, rb);
        int32_t t = y[i]; y[i] = y[j]; y[j] = t;
    }
}

/* mean / std (population) of the training split in double, applied to
 * every split: per feature, or (global) one mean and std over all training
 * values, stored in every entry of b->mean / b->std. Returns -1 when out of
 * memory. */
static int standardize(data_bundle *b, int global) {
    int nf = b->n_features;
    long n = b->train.n;
    double *acc = calloc((size_t)nf * 2, sizeof *acc);
    if (!acc) return -1;
    double *mu = acc, *ss = acc + nf;
    for (long i = 0; i < n; i++) {
        const float *row = b->train.x + (size_t)i * (size_t)nf;
        for (int c = 0; c < nf; c++) mu[c] += row[c];
    }
    for (int c = 0; c < nf; c++) mu[c] /= (double)n;
    if (global) { /* the mean of the feature means is the mean of all values */
        double g = 0;
        for (int c = 0; c < nf; c++) g += mu[c];
        for (int c = 0; c < nf; c++) mu[c] = g / nf;
    }
    for (long i = 0; i < n; i++) {
        const float *row = b->train.x + (size_t)i * (size_t)nf;
        for (int c = 0; c < nf; c++) { double d = row[c] - mu[c]; ss[c] += d * d; }
    }
    if (global) {
        double g = 0;
        for (int c = 0; c < nf; c++) g += ss[c];
        for (int c = 0; c < nf; c++) ss[c] = g / nf;
    }
    for (int c = 0; c < nf; c++) {
        double sd = sqrt(ss[c] / (double)n);
        if (!(sd > 1e-12 * (1.0 + fabs(mu[c])))) sd = 1.0; /* constant feature */
        b->mean[c] = (float)mu[c];
        b->std[c] = (float)sd;
        ss[c] = 1.0 / sd; /* reuse as the inverse */
    }
    data_split *sp[3] = {&b->train, &b->val, &b->test};
    for (int s = 0; s < (b->test_is_val ? 2 : 3); s++) { /* shared rows: once */
        for (long i = 0; i < sp[s]->n; i++) {
            float *row = sp[s]->x + (size_t)i * (size_t)nf;
            for (int c = 0; c < nf; c++) row[c] = (float)(((double)row[c] - mu[c]) * ss[c]);
        }
    }
    free(acc);
    return 0;
}

/* Probes a list of files of one split; caps rows at max_samples. */
static nl_status probe_split(const names *nm, char *const *files, int n, const char *split,
                             long cap, finfo *fi, long *total, const finfo **ref, nl_error *e) {
    *total = 0;
    for (int i = 0; i < n; i++) {
        fi[i].path = files[i];
        fi[i].split = split;
        nl_status st = probe_file(nm, &fi[i], e);
        if (st) return st;
        if (*ref && (*ref)->nf != fi[i].nf)
            return nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has %d features per sample but %s "
                          "(%s data) has %d; every file must have the same features",
                          fi[i].path, nm->fname, fi[i].nf, (*ref)->path, (*ref)->split, (*ref)->nf);
        if (!*ref) *ref = &fi[i];
        long left = cap > 0 ? cap - *total : fi[i].rows;
        fi[i].use = fi[i].rows < left ? fi[i].rows : left;
        *total += fi[i].use;
    }
    return NL_OK;
}

static nl_status read_split(const names *nm, finfo *fi, int n, float *x, int32_t *y, int nf,
                            nl_error *e) {
    long off = 0;
    for (int i = 0; i < n; i++) {
        if (fi[i].use == 0) { fi[i].max_label = -1; continue; }
        nl_status st = read_file(nm, &fi[i], x + (size_t)off * (size_t)nf, y + off, e);
        if (st) return st;
        off += fi[i].use;
    }
    return NL_OK;
}

nl_status data_load(const cfg_data *cfg, uint64_t seed, data_bundle *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    h5u_quiet();
    names nm = {cfg->features[0] ? cfg->features : "X", cfg->labels[0] ? cfg->labels : "y",
                cfg->labels_format};
    if (cfg->n_train < 1 || !cfg->train_files)
        return nl_err(e, NL_ERR_CONFIG, "no training files: set data.train_files (a list of HDF5 files)");
    if (!(cfg->validation_split >= 0 && cfg->validation_split < 1))
        return nl_err(e, NL_ERR_CONFIG, "data.validation_split is %g; it must be in [0, 1)",
                      cfg->validation_split);
    int nt = cfg->n_train, nv = cfg->val_files ? cfg->n_val : 0, ne = cfg->test_files ? cfg->n_test : 0;
    finfo *fi = calloc((size_t)(nt + nv + ne), sizeof *fi);
    float *tmp = NULL;
    if (!fi) return nl_err(e, NL_ERR_NOMEM, "out of memory");
    finfo *ft = fi, *fv = fi + nt, *fe = fi + nt + nv;
    /* The same files as validation and test (e.g. a held-out set used for
     * both, as the PyTorch reference does): one copy of the rows. */
    int same = nv > 0 && ne == nv;
    for (int i = 0; same && i < nv; i++) same = !strcmp(cfg->val_files[i], cfg->test_files[i]);
    if (same) ne = 0;
    const finfo *ref = NULL;
    long ntr, nva, nte;
    long cap = cfg->max_samples > 0 ? cfg->max_samples : 0;
    nl_status st = probe_split(&nm, cfg->train_files, nt, "training", cap, ft, &ntr, &ref, e);
    if (!st) st = probe_split(&nm, cfg->val_files, nv, "validation", cap, fv, &nva, &ref, e);
    if (!st) st = probe_split(&nm, cfg->test_files, ne, "test", cap, fe, &nte, &ref, e);
    if (st) goto fail;
    int nf = ref->nf;
    out->n_features = nf;

    /* training + validation rows in one allocation, validation last */
    size_t ntv = (size_t)ntr + (size_t)nva;
    if ((size_t)nf > SIZE_MAX / sizeof(float) / ntv) { st = nl_err(e, NL_ERR_NOMEM, "data too large"); goto fail; }
    out->train.x = malloc(ntv * (size_t)nf * sizeof(float));
    out->train.y = malloc(ntv * sizeof(int32_t));
    if (nte > 0) {
        out->test.x = malloc((size_t)nte * (size_t)nf * sizeof(float));
        out->test.y = malloc((size_t)nte * sizeof(int32_t));
    }
    if (!out->train.x || !out->train.y || (nte > 0 && (!out->test.x || !out->test.y))) {
        st = nl_err(e, NL_ERR_NOMEM, "out of memory loading %zu rows of %d features (%.1f MB); "
                    "set data.max_samples to load fewer", ntv + (size_t)nte, nf,
                    (double)(ntv + (size_t)nte) * (nf + 1) * 4 / 1e6);
        goto fail;
    }
    st = read_split(&nm, ft, nt, out->train.x, out->train.y, nf, e);
    if (!st) st = read_split(&nm, fv, nv, out->train.x + (size_t)ntr * (size_t)nf, out->train.y + ntr, nf, e);
    if (!st) st = read_split(&nm, fe, ne, out->test.x, out->test.y, nf, e);
    if (st) goto fail;

    /* classes: one-hot widths must agree; index labels must fit them */
    const finfo *oh = NULL;
    long max_label = -1;
    for (int i = 0; i < nt + nv + ne; i++) {
        if (fi[i].max_label > max_label) max_label = fi[i].max_label;
        if (!fi[i].onehot) continue;
        if (oh && oh->lwidth != fi[i].lwidth) {
            st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' has %d one-hot columns but %s has %d; "
                        "every file must encode the same classes", fi[i].path, nm.lname,
                        fi[i].lwidth, oh->path, oh->lwidth);
            goto fail;
        }
        oh = &fi[i];
    }
    if (oh) {
        for (int i = 0; i < nt + nv + ne; i++) {
            if (!fi[i].onehot && fi[i].max_label >= oh->lwidth) {
                st = nl_err(e, NL_ERR_DATA, "%s: dataset '%s' holds class id %ld, out of range of the "
                            "%d one-hot columns of %s", fi[i].path, nm.lname, fi[i].max_label,
                            oh->lwidth, oh->path);
                goto fail;
            }
        }
    }
    out->n_classes = oh ? oh->lwidth : (int)max_label + 1;

    /* validation: from files, else the last fraction of shuffled training rows */
    out->train.n = ntr;
    if (nv > 0) {
        out->val.n = nva;
    } else if (cfg->validation_split > 0) {
        long nval = (long)floor(cfg->validation_split * (double)ntr + 0.5);
        if (nval >= ntr) {
            st = nl_err(e, NL_ERR_CONFIG, "data.validation_split %g of %ld training rows leaves no "
                        "training rows", cfg->validation_split, ntr);
            goto fail;
        }
        tmp = malloc((size_t)nf * sizeof *tmp);
        if (!tmp) { st = nl_err(e, NL_ERR_NOMEM, "out of memory"); goto fail; }
        rng_t r;
        rng_seed(&r, rng_derive(seed, 0xDA7A5A17ULL));
        shuffle_rows(out->train.x, out->train.y, ntr, nf, &r, tmp);
        out->train.n = ntr - nval;
        out->val.n = nval;
    }
    if (out->val.n > 0) {
        out->val.x = out->train.x + (size_t)out->train.n * (size_t)nf;
        out->val.y = out->train.y + out->train.n;
    }
    out->test.n = nte;
    if (same) {
        out->test = out->val;
        out->test_is_val = 1;
    }

    if (cfg->standardize) {
        out->mean = malloc((size_t)nf * sizeof(float));
        out->std = malloc((size_t)nf * sizeof(float));
        if (!out->mean || !out->std || standardize(out, cfg->standardize == STANDARDIZE_GLOBAL) != 0) {
            st = nl_err(e, NL_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    out->bytes = (long)((ntv + (size_t)nte) * ((size_t)nf * sizeof(float) + sizeof(int32_t)));
    free(tmp);
    free(fi);
    return NL_OK;
fail:
    free(tmp);
    free(fi);
    data_free(out);
    return st;
}

void data_free(data_bundle *b) {
    if (!b) return;
    free(b->train.x); free(b->train.y); /* val rows live in the same allocation */
    if (!b->test_is_val) { free(b->test.x); free(b->test.y); }
    free(b->mean); free(b->std);
    memset(b, 0, sizeof *b);
}
