/* util.h — errors, logging, RNG, timing and file helpers shared by every layer.
 *
 * Two tiers of errors (STYLE.md 7): library functions return an nl_status and
 * fill an nl_error with a message a user can act on; only main() exits.
 * Broken invariants go through NL_ASSERT, which prints file:line and aborts.
 * Nothing here allocates behind the caller's back except where documented. */
#ifndef NNLO_UTIL_H
#define NNLO_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- status and errors ------------------------------------------------ */

typedef enum {
    NL_OK = 0,
    NL_ERR_IO = 1,          /* a file could not be read or written */
    NL_ERR_CONFIG = 2,      /* the YAML or command line is wrong */
    NL_ERR_DATA = 3,        /* a dataset is missing, mis-shaped or holds NaN */
    NL_ERR_NUMERIC = 4,     /* NaN/Inf during training, divergence */
    NL_ERR_NOMEM = 5,       /* an allocation failed */
    NL_ERR_INVALID = 6,     /* an argument is out of its domain */
    NL_ERR_INTERRUPTED = 7, /* stopped by a signal / drain request */
    NL_ERR_COMM = 8         /* a peer rank vanished or sent garbage */
} nl_status;

typedef struct {
    nl_status code;
    char msg[1024];
} nl_error;

/* Sets e->code and formats e->msg (if e is not NULL); returns code. */
nl_status nl_err(nl_error *e, nl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an existing message (context on the way up). */
nl_status nl_err_prefix(nl_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *nl_status_name(nl_status s);

#define NL_ASSERT(x)                                                           \
    do {                                                                       \
        if (!(x)) nl_assert_fail(#x, __FILE__, __LINE__);                      \
    } while (0)
void nl_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

/* ---- logging (stderr, one line per call, "[tag] level: msg") ----------- */

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;
void log_set_level(log_level lv);
log_level log_get_level(void);
void log_set_tag(const char *tag); /* e.g. "rank 2"; copied */
void log_msg(log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* ---- random numbers: xoshiro256**, seeded by splitmix64 ---------------- */

typedef struct { uint64_t s[4]; } rng_t;
void rng_seed(rng_t *r, uint64_t seed);
uint64_t rng_next(rng_t *r);
double rng_uniform(rng_t *r);              /* [0, 1) */
float rng_normal(rng_t *r);                /* N(0, 1), Box-Muller */
uint64_t rng_below(rng_t *r, uint64_t n);  /* [0, n), unbiased; n > 0 */
void rng_shuffle_u32(rng_t *r, uint32_t *a, size_t n);
/* Derives an independent seed from (seed, stream): used for trial seeds. */
uint64_t rng_derive(uint64_t seed, uint64_t stream);

/* ---- time -------------------------------------------------------------- */

double time_now(void); /* monotonic seconds */
/* ISO-8601 UTC wall-clock time "2026-11-28T21:12:43Z" into buf (>= 21 bytes). */
void time_iso8601(char *buf, size_t len);

/* ---- files ------------------------------------------------------------- */

/* mkdir -p; ok if it exists. */
nl_status fs_mkdir_p(const char *path, nl_error *e);
int fs_exists(const char *path);
/* Reads a whole file; *out is malloc'd and NUL-terminated, caller frees. */
nl_status fs_read_all(const char *path, char **out, size_t *len, nl_error *e);
/* Writes data to path.tmp, fsyncs, renames over path: readers never see a
 * half-written file. */
nl_status fs_write_atomic(const char *path, const void *data, size_t len, nl_error *e);
/* rm -r: removes path and everything below it (no error if it is absent;
 * symbolic links are removed, never followed). */
nl_status fs_remove_tree(const char *path, nl_error *e);
/* Joins a and b with one '/', into buf; returns buf. Asserts on overflow. */
char *fs_join(char *buf, size_t len, const char *a, const char *b);

/* ---- strings ----------------------------------------------------------- */

/* Levenshtein distance, for did-you-mean suggestions. */
int str_edit_distance(const char *a, const char *b);
/* strdup that reports NOMEM through e. */
char *str_dup(const char *s);
/* Growable string buffer (append-only). free with sbuf_free; free(NULL)-safe. */
typedef struct { char *s; size_t len, cap; } sbuf;
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_append(sbuf *b, const char *s, size_t n);
void sbuf_free(sbuf *b);

/* ---- numbers ----------------------------------------------------------- */

/* Formats a double so that strtod gives back the same value ("%.17g" but
 * short when possible). buf >= 32 bytes. */
char *fmt_double(char *buf, size_t len, double v);

#endif
