/* h5util.c — HDF5 plumbing shared by data and io: quiet errors, readable
 * error text, dataset listings and the temporary-name-then-rename commit.
 * Deliberately no reading or writing of user data here. */
#include "data/h5util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void h5u_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct { char *buf; size_t len; int done; } err_walk;

static herr_t err_cb(unsigned n, const H5E_error2_t *err, void *data) {
    (void)n;
    err_walk *w = data;
    if (!w->done && err->desc && err->desc[0]) {
        snprintf(w->buf, w->len, "%s (in %s)", err->desc, err->func_name ? err->func_name : "?");
        w->done = 1;
    }
    return 0;
}

void h5u_errstr(char *buf, size_t len) {
    if (!len) return;
    buf[0] = '\0';
    err_walk w = {buf, len, 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, err_cb, &w);
}

typedef struct {
    char *buf; size_t len, used; int count, cut;
    const char *near_to; char *near; size_t near_len; int best;
} list_ctx;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    list_ctx *c = data;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) return 0; /* dangling link: skip */
    int is_ds = H5Iget_type(o) == H5I_DATASET;
    H5Oclose(o);
    if (!is_ds) return 0;
    c->count++;
    if (c->near_to && c->near) {
        int d = str_edit_distance(c->near_to, name);
        if (c->best < 0 || d < c->best) {
            c->best = d;
            snprintf(c->near, c->near_len, "%s", name);
        }
    }
    if (c->cut) return 0;
    size_t need = strlen(name) + (c->count > 1 ? 2 : 0);
    if (c->used + need + 4 >= c->len) {
        if (c->used + 4 < c->len) { memcpy(c->buf + c->used, "...", 4); c->used += 3; }
        c->cut = 1;
        return 0;
    }
    c->used += (size_t)snprintf(c->buf + c->used, c->len - c->used, "%s%s",
                                c->count > 1 ? ", " : "", name);
    return 0;
}

int h5u_list_datasets(hid_t file, char *buf, size_t len, const char *near_to, char *near,
                      size_t near_len) {
    NL_ASSERT(len >= 8);
    buf[0] = '\0';
    if (near && near_len) near[0] = '\0';
    list_ctx c = {buf, len, 0, 0, 0, near_to, near, near_len, -1};
    H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, list_cb, &c);
    if (c.count == 0) snprintf(buf, len, "none");
    return c.count;
}

nl_status h5u_tmpname(char *buf, size_t len, const char *path, nl_error *e) {
    if (snprintf(buf, len, "%s.tmp", path) >= (int)len)
        return nl_err(e, NL_ERR_IO, "%s: path too long", path);
    return NL_OK;
}

nl_status h5u_commit(const char *tmp, const char *path, nl_error *e) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0) return nl_err(e, NL_ERR_IO, "cannot reopen %s: %s", tmp, strerror(errno));
    if (fsync(fd) != 0) {
        int er = errno;
        close(fd); unlink(tmp);
        return nl_err(e, NL_ERR_IO, "cannot sync %s: %s", tmp, strerror(er));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int er = errno;
        unlink(tmp);
        return nl_err(e, NL_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(er));
    }
    return NL_OK;
}

const char *h5u_class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_TIME: return "time";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}
