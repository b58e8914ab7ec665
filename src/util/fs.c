/* fs.c — files: mkdir -p, whole-file reads, atomic writes (tmp + fsync +
 * rename, so a killed job never leaves a half-written result), time. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "nnlo/util.h"

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void time_iso8601(char *buf, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int fs_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

nl_status fs_mkdir_p(const char *path, nl_error *e) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return nl_err(e, NL_ERR_IO, "%s: path too long", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return nl_err(e, NL_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return nl_err(e, NL_ERR_IO, "%s exists and is not a directory", path);
    return NL_OK;
}

nl_status fs_read_all(const char *path, char **out, size_t *len, nl_error *e) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return nl_err(e, NL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(f); return nl_err(e, NL_ERR_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); fclose(f); return nl_err(e, NL_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return nl_err(e, NL_ERR_IO, "error reading %s", path); }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return NL_OK;
}

nl_status fs_write_atomic(const char *path, const void *data, size_t len, nl_error *e) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return nl_err(e, NL_ERR_IO, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return nl_err(e, NL_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int er = errno;
            close(fd); unlink(tmp);
            return nl_err(e, NL_ERR_IO, "cannot write %s: %s", tmp, strerror(er));
        }
        p += w; left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return nl_err(e, NL_ERR_IO, "cannot sync %s: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0)
        return nl_err(e, NL_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    return NL_OK;
}

char *fs_join(char *buf, size_t len, const char *a, const char *b) {
    size_t la = strlen(a);
    int n = snprintf(buf, len, "%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
    NL_ASSERT(n >= 0 && (size_t)n < len);
    return buf;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

nl_status fs_remove_tree(const char *path, nl_error *e) {
    struct stat st;
    if (lstat(path, &st) != 0) return NL_OK;
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return nl_err(e, NL_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return NL_OK;
}
