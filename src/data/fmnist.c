/* fmnist.c — data_make_fashion_mnist: Fashion-MNIST idx(.gz) -> HDF5.
 *
 * Reads the four idx files (gzip or plain: zlib's gzread passes plain files
 * through), checks magic numbers, image size 28x28 and that image and label
 * counts agree, and streams rows into OUTDIR/train.h5 and test.h5 as
 * X (n, 784) float32 = byte / 255 and y (n) int32. Holds one block of rows,
 * never the whole set. Labels outside 0..9 are an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "data/h5write.h"
#include "nnlo/data.h"

#define FM_BLOCK 2048
#define FM_PIX 784

typedef struct { gzFile g; char path[4096]; } idx_file;

/* Opens dir/name.gz, else dir/name; fills e naming both on failure. */
static nl_status idx_open(idx_file *f, const char *dir, const char *name, nl_error *e) {
    char gz[sizeof f->path];
    if (snprintf(gz, sizeof gz, "%s/%s.gz", dir, name) >= (int)sizeof gz)
        return nl_err(e, NL_ERR_IO, "%s: path too long", dir);
    memcpy(f->path, gz, sizeof gz);
    if (!fs_exists(gz)) snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    if (!fs_exists(f->path))
        return nl_err(e, NL_ERR_IO, "%s: not found (nor %s/%s); install the Debian package "
                      "dataset-fashion-mnist or pass --source DIR", gz, dir, name);
    f->g = gzopen(f->path, "rb");
    if (!f->g) return nl_err(e, NL_ERR_IO, "%s: cannot open", f->path);
    return NL_OK;
}

static nl_status idx_read(idx_file *f, void *buf, size_t n, const char *what, nl_error *e) {
    int r = gzread(f->g, buf, (unsigned)n);
    if (r < 0 || (size_t)r != n) {
        int errnum = 0;
        const char *m = gzerror(f->g, &errnum);
        return nl_err(e, NL_ERR_DATA, "%s: truncated or corrupt while reading %s%s%s", f->path, what,
                      errnum ? ": " : "", errnum ? m : "");
    }
    return NL_OK;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads the header: magic 0x00000803 (images, 3 dims) or 0x00000801
 * (labels, 1 dim); returns the item count. */
static nl_status idx_header(idx_file *f, int images, long *count, nl_error *e) {
    unsigned char h[16];
    size_t hl = images ? 16 : 8;
    nl_status st = idx_read(f, h, hl, "the header", e);
    if (st) return st;
    uint32_t magic = be32(h), want = images ? 0x00000803u : 0x00000801u;
    if (magic != want)
        return nl_err(e, NL_ERR_DATA, "%s: magic number 0x%08x, expected 0x%08x (an idx %s file)",
                      f->path, magic, want, images ? "image" : "label");
    *count = (long)be32(h + 4);
    if (*count < 1) return nl_err(e, NL_ERR_DATA, "%s: holds no items", f->path);
    if (images && (be32(h + 8) != 28 || be32(h + 12) != 28))
        return nl_err(e, NL_ERR_DATA, "%s: images are %ux%u, expected 28x28", f->path, be32(h + 8),
                      be32(h + 12));
    return NL_OK;
}

static nl_status convert(const char *src, const char *img, const char *lab, const char *out,
                         nl_error *e) {
    idx_file fi = {0}, fl = {0};
    unsigned char *pix = NULL, *lb = NULL;
    float *x = NULL;
    int32_t *y = NULL;
    long ni = 0, nl = 0;
    h5w w;
    int wopen = 0;
    nl_status st = idx_open(&fi, src, img, e);
    if (!st) st = idx_open(&fl, src, lab, e);
    if (!st) st = idx_header(&fi, 1, &ni, e);
    if (!st) st = idx_header(&fl, 0, &nl, e);
    if (!st && ni != nl)
        st = nl_err(e, NL_ERR_DATA, "%s has %ld images but %s has %ld labels", fi.path, ni, fl.path, nl);
    if (st) goto done;
    pix = malloc((size_t)FM_BLOCK * FM_PIX);
    lb = malloc(FM_BLOCK);
    x = malloc((size_t)FM_BLOCK * FM_PIX * sizeof *x);
    y = malloc(FM_BLOCK * sizeof *y);
    if (!pix || !lb || !x || !y) { st = nl_err(e, NL_ERR_NOMEM, "out of memory"); goto done; }
    st = h5w_open(&w, out, ni, FM_PIX, "X", "y", e);
    if (st) goto done;
    wopen = 1;
    for (long r0 = 0; r0 < ni; r0 += FM_BLOCK) {
        long cnt = ni - r0 < FM_BLOCK ? ni - r0 : FM_BLOCK;
        st = idx_read(&fi, pix, (size_t)cnt * FM_PIX, "pixels", e);
        if (!st) st = idx_read(&fl, lb, (size_t)cnt, "labels", e);
        if (st) goto done;
        for (long i = 0; i < cnt * FM_PIX; i++) x[i] = (float)pix[i] / 255.0f;
        for (long i = 0; i < cnt; i++) {
            if (lb[i] > 9) {
                st = nl_err(e, NL_ERR_DATA, "%s: item %ld has label %d, expected 0..9", fl.path,
                            r0 + i, lb[i]);
                goto done;
            }
            y[i] = lb[i];
        }
        st = h5w_rows(&w, r0, cnt, x, y, e);
        if (st) goto done;
    }
    wopen = 0;
    st = h5w_close(&w, e);
done:
    if (wopen) h5w_abort(&w);
    if (fi.g) gzclose(fi.g);
    if (fl.g) gzclose(fl.g);
    free(pix); free(lb); free(x); free(y);
    return st;
}

nl_status data_make_fashion_mnist(const char *outdir, const char *source_dir, nl_error *e) {
    const char *src = source_dir && *source_dir ? source_dir : "/usr/share/datasets/fashion-mnist";
    nl_status st = fs_mkdir_p(outdir, e);
    if (st) return st;
    char p[4096];
    st = convert(src, "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 fs_join(p, sizeof p, outdir, "train.h5"), e);
    if (!st)
        st = convert(src, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                     fs_join(p, sizeof p, outdir, "test.h5"), e);
    return st;
}
