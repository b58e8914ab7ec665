/* error.c — the status/error pair of STYLE.md 7 and the assert of last resort.
 * Messages are formatted once, where the problem is seen, and prefixed with
 * context on the way up. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/util.h"

nl_status nl_err(nl_error *e, nl_status code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

nl_status nl_err_prefix(nl_error *e, const char *fmt, ...) {
    if (!e) return NL_ERR_INVALID;
    char pre[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t lp = strlen(pre), lo = strlen(old), cap = sizeof e->msg - 1;
    if (lp > cap) lp = cap;
    memcpy(e->msg, pre, lp);
    size_t n = lp;
    if (n + 2 <= cap) { e->msg[n++] = ':'; e->msg[n++] = ' '; }
    if (lo > cap - n) lo = cap - n;
    memcpy(e->msg + n, old, lo);
    e->msg[n + lo] = '\0';
    return e->code;
}

const char *nl_status_name(nl_status s) {
    switch (s) {
    case NL_OK: return "ok";
    case NL_ERR_IO: return "i/o error";
    case NL_ERR_CONFIG: return "configuration error";
    case NL_ERR_DATA: return "data error";
    case NL_ERR_NUMERIC: return "numerical error";
    case NL_ERR_NOMEM: return "out of memory";
    case NL_ERR_INVALID: return "invalid argument";
    case NL_ERR_INTERRUPTED: return "interrupted";
    case NL_ERR_COMM: return "communication error";
    }
    return "unknown error";
}

void nl_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "nnlo-c: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    fflush(stderr);
    abort();
}
