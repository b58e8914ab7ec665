/* schema.c — the generic half of the config schema: parse one YAML value
 * against one key descriptor (type, range, enum, default), whole sections
 * (unknown keys, aliases, required keys) and search dimensions. It knows no
 * particular key; the tables are in config.c. Every error names
 * source:line:col of the offending node and the dotted key path. */
#include "config/schema.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void *field(void *base, long off) { return (char *)base + off; }

nl_status cfg_err(pctx *c, const ynode *at, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) return nl_err(c->e, NL_ERR_CONFIG, "%s:%d:%d: %s", c->source, at->line, at->col, msg);
    return nl_err(c->e, NL_ERR_CONFIG, "%s: %s", c->source, msg);
}

const char *cfg_suggest(const char *word, const char *const *names, int n) {
    const char *best = NULL;
    int bestd = INT_MAX;
    for (int i = 0; n < 0 ? names[i] != NULL : i < n; i++) {
        int d = str_edit_distance(word, names[i]);
        if (strcasecmp(word, names[i]) == 0) d = 0;
        if (d < bestd) { bestd = d; best = names[i]; }
    }
    int wl = (int)strlen(word);
    int limit = wl >= 10 ? 3 : 2;
    if (best && bestd <= limit && bestd < wl) return best;
    return NULL;
}

static void fmt_num(char *buf, size_t len, double v) { snprintf(buf, len, "%g", v); }

static void range_text(const cfg_key *k, char *buf, size_t len) {
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, k->lo);
    fmt_num(hi, sizeof hi, k->hi);
    int has_lo = k->flags & (KF_MIN | KF_GT), has_hi = k->flags & (KF_MAX | KF_LT);
    if (has_lo && has_hi)
        snprintf(buf, len, " in %c%s, %s%c", k->flags & KF_GT ? '(' : '[', lo, hi,
                 k->flags & KF_LT ? ')' : ']');
    else if (has_lo)
        snprintf(buf, len, " %s %s", k->flags & KF_GT ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, len, " %s %s", k->flags & KF_LT ? "<" : "<=", hi);
    else
        buf[0] = '\0';
}

void cfg_key_expect(const cfg_key *k, char *buf, size_t len) {
    char r[96];
    range_text(k, r, sizeof r);
    switch (k->type) {
    case KT_INT: case KT_LONG: case KT_U64: snprintf(buf, len, "an integer%s", r); break;
    case KT_FLOAT: snprintf(buf, len, "a number%s", r); break;
    case KT_BOOL: snprintf(buf, len, "true or false"); break;
    case KT_STRING: snprintf(buf, len, k->flags & KF_PATH ? "a file path" : "a string"); break;
    case KT_ENUM: {
        size_t o = (size_t)snprintf(buf, len, "one of ");
        for (int i = 0; k->names[i] && o < len; i++)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", k->names[i]);
        break;
    }
    case KT_STRLIST:
        snprintf(buf, len, k->flags & KF_PATH ? "a file path or a list of file paths"
                                              : "a string or a list of strings");
        break;
    case KT_INTLIST: snprintf(buf, len, "a list of integers%s", r); break;
    case KT_NUMLIST: snprintf(buf, len, "a list of numbers"); break;
    case KT_RAWMAP: snprintf(buf, len, "a map"); break;
    case KT_ANY: snprintf(buf, len, "anything"); break;
    }
}

static double key_default_value(const cfg_key *k, int method) {
    if (k->mdef && method >= 0)
        for (const method_default *m = k->mdef; m->method >= 0; m++)
            if (m->method == method) return m->value;
    return k->def;
}

void cfg_key_default(const cfg_key *k, void *base, int method) {
    if (k->off == CFG_NO_FIELD || k->alias_of) return;
    double d = key_default_value(k, method);
    void *f = field(base, k->off);
    switch (k->type) {
    case KT_INT: case KT_BOOL: case KT_ENUM: *(int *)f = (int)d; break;
    case KT_LONG: *(long *)f = (long)d; break;
    case KT_U64: *(uint64_t *)f = (uint64_t)d; break;
    case KT_FLOAT: *(double *)f = d; break;
    case KT_STRING: snprintf((char *)f, (size_t)k->cap, "%s", k->def_str ? k->def_str : ""); break;
    case KT_STRLIST: cfg_strlist_free((char ***)f, (int *)field(base, k->off2)); break;
    case KT_INTLIST: *(int *)field(base, k->off2) = 0; break;
    case KT_RAWMAP: free(*(char **)f); *(char **)f = NULL; break;
    case KT_NUMLIST: case KT_ANY: break;
    }
}

double cfg_key_get_num(const cfg_key *k, const void *base) {
    const void *f = (const char *)base + k->off;
    switch (k->type) {
    case KT_INT: case KT_BOOL: case KT_ENUM: return *(const int *)f;
    case KT_LONG: return (double)*(const long *)f;
    case KT_U64: return (double)*(const uint64_t *)f;
    case KT_FLOAT: return *(const double *)f;
    default: NL_ASSERT(!"not a numeric key");
    }
    return 0;
}

void cfg_strlist_free(char ***list, int *n) {
    if (*list)
        for (int i = 0; i < *n; i++) free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

int cfg_key_find(const cfg_key *keys, int nk, const char *name) {
    for (int i = 0; i < nk; i++) {
        if (strcmp(keys[i].name, name) != 0) continue;
        if (!keys[i].alias_of) return i;
        for (int j = 0; j < nk; j++)
            if (!keys[j].alias_of && !strcmp(keys[j].name, keys[i].alias_of)) return j;
        NL_ASSERT(!"alias of a missing key");
    }
    return -1;
}

/* ---- scalars ------------------------------------------------------------- */

static const char *kind_word(const ynode *v) {
    return v->kind == YN_MAP ? "a map" : v->kind == YN_SEQ ? "a list" : "null";
}

static nl_status expect_err(pctx *c, const cfg_key *k, const char *path, const ynode *v,
                            const char *extra) {
    char ex[600];
    cfg_key_expect(k, ex, sizeof ex);
    if (v->kind == YN_SCALAR && !yn_is_null(v))
        return cfg_err(c, v, "%s: expected %s, got '%s'%s", path, ex, v->text, extra ? extra : "");
    return cfg_err(c, v, "%s: expected %s, got %s%s", path, ex, kind_word(v), extra ? extra : "");
}

static int parse_finite(const char *s, double *out) {
    if (!*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int in_range(const cfg_key *k, double v) {
    if ((k->flags & KF_MIN) && !(v >= k->lo)) return 0;
    if ((k->flags & KF_GT) && !(v > k->lo)) return 0;
    if ((k->flags & KF_MAX) && !(v <= k->hi)) return 0;
    if ((k->flags & KF_LT) && !(v < k->hi)) return 0;
    return 1;
}

static int parse_bool_text(const char *s, int *out) {
    static const char *const t[] = {"true", "yes", "on", "1", "1.", "1.0", NULL};
    static const char *const f[] = {"false", "no", "off", "0", "0.", "0.0", NULL};
    for (int i = 0; t[i]; i++)
        if (!strcasecmp(s, t[i])) { *out = 1; return 1; }
    for (int i = 0; f[i]; i++)
        if (!strcasecmp(s, f[i])) { *out = 0; return 1; }
    return 0;
}

/* Parses a scalar node for a scalar-typed key and stores it. */
static nl_status scalar_parse(pctx *c, const cfg_key *k, const char *path, ynode *v, void *base) {
    if (v->kind != YN_SCALAR) return expect_err(c, k, path, v, NULL);
    if (yn_is_null(v)) {
        if (k->flags & KF_NULLABLE) { cfg_key_default(k, base, -1); return NL_OK; }
        return expect_err(c, k, path, v, NULL);
    }
    const char *s = v->text;
    void *f = k->off == CFG_NO_FIELD ? NULL : field(base, k->off);
    switch (k->type) {
    case KT_INT: case KT_LONG: {
        double d;
        if (!parse_finite(s, &d) || d != floor(d) || !in_range(k, d))
            return expect_err(c, k, path, v, NULL);
        if (k->type == KT_INT && (d < INT_MIN || d > INT_MAX)) return expect_err(c, k, path, v, NULL);
        if (k->type == KT_LONG && (d < -9.2e18 || d > 9.2e18)) return expect_err(c, k, path, v, NULL);
        if (f) {
            if (k->type == KT_INT) *(int *)f = (int)d;
            else *(long *)f = (long)d;
        }
        return NL_OK;
    }
    case KT_U64: {
        if (!*s) return expect_err(c, k, path, v, NULL);
        for (const char *p = s; *p; p++)
            if (*p < '0' || *p > '9') return expect_err(c, k, path, v, NULL);
        errno = 0;
        unsigned long long u = strtoull(s, NULL, 10);
        if (errno == ERANGE) return expect_err(c, k, path, v, " (too large for 64 bits)");
        if (f) *(uint64_t *)f = (uint64_t)u;
        return NL_OK;
    }
    case KT_FLOAT: {
        double d;
        if (!parse_finite(s, &d) || !in_range(k, d)) return expect_err(c, k, path, v, NULL);
        if (f) *(double *)f = d;
        return NL_OK;
    }
    case KT_BOOL: {
        int b;
        if (!parse_bool_text(s, &b)) return expect_err(c, k, path, v, NULL);
        if (f) *(int *)f = b;
        return NL_OK;
    }
    case KT_STRING: {
        if (!*s) return expect_err(c, k, path, v, NULL);
        char buf[2048];
        const char *val = s;
        if (k->flags & KF_PATH) {
            v->is_path = 1;
            if (s[0] != '/') {
                const char *rel = s;
                while (rel[0] == '.' && rel[1] == '/') rel += 2;
                if ((size_t)snprintf(buf, sizeof buf, "%s/%s", c->base_dir, rel) >= sizeof buf)
                    return cfg_err(c, v, "%s: path too long", path);
                val = buf;
            }
        }
        if (strlen(val) >= (size_t)k->cap)
            return cfg_err(c, v, "%s: '%s' is longer than %d characters", path, val, k->cap - 1);
        if (f) snprintf((char *)f, (size_t)k->cap, "%s", val);
        return NL_OK;
    }
    case KT_ENUM: {
        for (int i = 0; k->names[i]; i++) {
            int eq = k->flags & KF_CASEI ? !strcasecmp(s, k->names[i]) : !strcmp(s, k->names[i]);
            if (eq) {
                if (f) *(int *)f = i;
                return NL_OK;
            }
        }
        for (int i = 0; k->unsupported && k->unsupported[i]; i++)
            if (!strcasecmp(s, k->unsupported[i])) {
                char ex[600];
                cfg_key_expect(k, ex, sizeof ex);
                return cfg_err(c, v, "%s: '%s' is not supported by nnlo-c yet; use %s", path, s, ex);
            }
        const char *sug = cfg_suggest(s, k->names, -1);
        char extra[200] = "";
        if (sug) snprintf(extra, sizeof extra, "; did you mean '%s'?", sug);
        return expect_err(c, k, path, v, extra);
    }
    default:
        NL_ASSERT(!"scalar_parse on a non-scalar key");
    }
    return NL_OK;
}

static int is_scalar_type(key_type t) {
    return t == KT_INT || t == KT_LONG || t == KT_U64 || t == KT_FLOAT || t == KT_BOOL ||
           t == KT_STRING || t == KT_ENUM;
}

/* ---- search dimensions --------------------------------------------------- */

static const char *const dim_words[] = {"choice", "uniform", "log_uniform", "int", "grid_points", NULL};

static nl_status value_of(pctx *c, const cfg_key *k, const char *path, ynode *node, void *base,
                          cfg_value *out) {
    memset(out, 0, sizeof *out);
    if (node->kind == YN_SCALAR && yn_is_null(node))
        return cfg_err(c, node, "%s: null cannot be a search value", path);
    nl_status st = scalar_parse(c, k, path, node, base);
    if (st != NL_OK) return st;
    if (k->type == KT_STRING || k->type == KT_ENUM) {
        out->kind = VAL_STR;
        if (strlen(node->text) >= sizeof out->str)
            return cfg_err(c, node, "%s: search value longer than %zu characters", path,
                           sizeof out->str - 1);
        snprintf(out->str, sizeof out->str, "%s", node->text);
    } else {
        out->kind = k->type == KT_BOOL ? VAL_BOOL : VAL_NUM;
        out->num = cfg_key_get_num(k, base);
    }
    return NL_OK;
}

static nl_status dim_parse(pctx *c, const cfg_key *k, const char *path, ynode *v, void *base) {
    char ex[600];
    cfg_key_expect(k, ex, sizeof ex);
    int kind = -1;
    ynode *spec = NULL, *gp = NULL, *kind_key = NULL;
    for (int i = 0; i < v->n; i++) {
        const char *w = v->keys[i]->text;
        int idx = -1;
        for (int j = 0; dim_words[j]; j++)
            if (!strcmp(w, dim_words[j])) idx = j;
        if (idx < 0) {
            const char *sug = cfg_suggest(w, dim_words, -1);
            if (sug)
                return cfg_err(c, v->keys[i], "%s: unknown search dimension key '%s'; did you mean '%s'?",
                               path, w, sug);
            return cfg_err(c, v->keys[i],
                           "%s: expected %s, or a search dimension ({choice: [...]}, {uniform: "
                           "[lo, hi]}, {log_uniform: [lo, hi]}, {int: [lo, hi]}), got a map with key '%s'",
                           path, ex, w);
        }
        if (idx == 4) { gp = v->vals[i]; continue; }
        if (kind >= 0)
            return cfg_err(c, v->keys[i], "%s: a search dimension takes exactly one of choice, "
                           "uniform, log_uniform, int; got '%s' and '%s'", path,
                           dim_words[kind], w);
        kind = idx;
        spec = v->vals[i];
        kind_key = v->keys[i];
    }
    if (kind < 0)
        return cfg_err(c, v, "%s: a search dimension needs one of choice, uniform, log_uniform, int",
                       path);
    if (!c->allow_dims)
        return cfg_err(c, v, "%s is a search dimension ({%s: ...}), but a trial config takes single "
                       "values; use `nnlo-c scan` to search, or write one value", path, dim_words[kind]);
    if (k->flags & KF_NODIM)
        return cfg_err(c, v, "%s cannot be a search dimension; write one value", path);
    int numeric = k->type == KT_INT || k->type == KT_LONG || k->type == KT_FLOAT;
    int key_int = k->type == KT_INT || k->type == KT_LONG;
    if (kind != DIM_CHOICE && !numeric)
        return cfg_err(c, kind_key, "%s: {%s: [lo, hi]} needs a numeric key, but %s takes %s; "
                       "use {choice: [...]}", path, dim_words[kind], path, ex);

    search_dim d;
    memset(&d, 0, sizeof d);
    if ((size_t)snprintf(d.path, sizeof d.path, "%s", path) >= sizeof d.path)
        return cfg_err(c, v, "%s: key path too long for a search dimension", path);
    d.kind = (dim_kind)kind;
    d.is_int = key_int || kind == DIM_INT;
    d.line = v->line;
    d.col = v->col;
    ynode *first = NULL;
    nl_status st;
    if (kind == DIM_CHOICE) {
        if (spec->kind != YN_SEQ || spec->n == 0)
            return cfg_err(c, spec, "%s: choice takes a non-empty list of values, e.g. {choice: [a, b]}",
                           path);
        d.choices = calloc((size_t)spec->n, sizeof *d.choices);
        NL_ASSERT(d.choices != NULL);
        d.n_choices = spec->n;
        for (int i = 0; i < spec->n; i++) {
            if ((st = value_of(c, k, path, spec->vals[i], base, &d.choices[i])) != NL_OK) {
                free(d.choices);
                return st;
            }
        }
        first = spec->vals[0];
        if (gp) { free(d.choices); return cfg_err(c, gp, "%s: grid_points is for uniform and log_uniform; a choice's grid is its values", path); }
    } else {
        if (spec->kind != YN_SEQ || spec->n != 2)
            return cfg_err(c, spec, "%s: %s takes [lo, hi]", path, dim_words[kind]);
        cfg_value b[2];
        for (int i = 0; i < 2; i++) {
            if ((st = value_of(c, k, path, spec->vals[i], base, &b[i])) != NL_OK) return st;
            if (kind == DIM_INT && b[i].num != floor(b[i].num))
                return cfg_err(c, spec->vals[i], "%s: int bounds must be integers, got '%s'", path,
                               spec->vals[i]->text);
        }
        d.lo = b[0].num;
        d.hi = b[1].num;
        if (kind == DIM_INT ? !(d.lo <= d.hi) : !(d.lo < d.hi))
            return cfg_err(c, spec, "%s: %s needs lo %s hi, got [%s, %s]", path, dim_words[kind],
                           kind == DIM_INT ? "<=" : "<", spec->vals[0]->text, spec->vals[1]->text);
        if (kind == DIM_LOG_UNIFORM && !(d.lo > 0))
            return cfg_err(c, spec->vals[0], "%s: log_uniform needs lo > 0, got '%s'", path,
                           spec->vals[0]->text);
        first = spec->vals[0];
        if (kind == DIM_UNIFORM || kind == DIM_LOG_UNIFORM) d.grid_points = 3;
        if (gp) {
            if (kind == DIM_INT)
                return cfg_err(c, gp, "%s: grid_points is for uniform and log_uniform; an int "
                               "dimension's grid is every integer in [lo, hi]", path);
            static const cfg_key gpk = {.name = "grid_points", .type = KT_INT, .flags = KF_MIN, .lo = 2};
            char gpath[200];
            snprintf(gpath, sizeof gpath, "%s.grid_points", path);
            int g = 0;
            cfg_key tmp = gpk;
            tmp.off = 0;
            if ((st = scalar_parse(c, &tmp, gpath, gp, &g)) != NL_OK) return st;
            d.grid_points = g;
        }
    }
    /* the scan's base config holds the first value */
    if ((st = scalar_parse(c, k, path, first, base)) != NL_OK) { free(d.choices); return st; }
    if (c->n_dims == c->cap_dims) {
        int cap = c->cap_dims ? 2 * c->cap_dims : 8;
        search_dim *nd = realloc(c->dims, (size_t)cap * sizeof *nd);
        NL_ASSERT(nd != NULL);
        const cfg_key **nk = realloc(c->dim_keys, (size_t)cap * sizeof *nk);
        NL_ASSERT(nk != NULL);
        c->dims = nd;
        c->dim_keys = nk;
        c->cap_dims = cap;
    }
    v->dim = c->n_dims;
    c->dim_keys[c->n_dims] = k;
    c->dims[c->n_dims++] = d;
    return NL_OK;
}

/* ---- one key, one section ------------------------------------------------ */

nl_status cfg_key_parse(pctx *c, const cfg_key *k, const char *path, ynode *v, void *base) {
    NL_ASSERT(!k->alias_of);
    if (is_scalar_type(k->type)) {
        if (v->kind == YN_MAP) return dim_parse(c, k, path, v, base);
        return scalar_parse(c, k, path, v, base);
    }
    switch (k->type) {
    case KT_ANY: return NL_OK;
    case KT_RAWMAP: {
        if (yn_is_null(v)) { cfg_key_default(k, base, -1); return NL_OK; }
        if (v->kind != YN_MAP) return expect_err(c, k, path, v, NULL);
        if (k->off == CFG_NO_FIELD) return NL_OK;
        char **f = (char **)field(base, k->off);
        free(*f);
        *f = NULL;
        if (v->n == 0) return NL_OK;
        sbuf b = {0};
        yn_write(&b, v, 0, NULL, NULL, NULL);
        *f = b.s;
        return NL_OK;
    }
    case KT_STRLIST: {
        if (yn_is_null(v) && (k->flags & KF_NULLABLE)) { cfg_key_default(k, base, -1); return NL_OK; }
        if (yn_is_null(v) || v->kind == YN_MAP) return expect_err(c, k, path, v, NULL);
        int n = v->kind == YN_SEQ ? v->n : 1;
        char **list = calloc((size_t)n + 1, sizeof *list);
        NL_ASSERT(list != NULL);
        for (int i = 0; i < n; i++) {
            ynode *it = v->kind == YN_SEQ ? v->vals[i] : v;
            char tmp[1024];
            cfg_key one = {.name = k->name, .type = KT_STRING, .off = 0, .cap = (int)sizeof tmp,
                           .flags = k->flags & KF_PATH};
            char ipath[220];
            if (v->kind == YN_SEQ) snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
            else snprintf(ipath, sizeof ipath, "%s", path);
            nl_status st = it->kind == YN_SCALAR && !yn_is_null(it)
                               ? scalar_parse(c, &one, ipath, it, tmp)
                               : expect_err(c, k, ipath, it, NULL);
            if (st != NL_OK) {
                for (int j = 0; j < i; j++) free(list[j]);
                free(list);
                return st;
            }
            list[i] = str_dup(tmp);
            NL_ASSERT(list[i] != NULL);
        }
        char ***f = (char ***)field(base, k->off);
        int *cnt = (int *)field(base, k->off2);
        cfg_strlist_free(f, cnt);
        *f = list;
        *cnt = n;
        return NL_OK;
    }
    case KT_INTLIST: case KT_NUMLIST: {
        if (yn_is_null(v) && (k->flags & KF_NULLABLE)) { cfg_key_default(k, base, -1); return NL_OK; }
        if (v->kind != YN_SEQ) return expect_err(c, k, path, v, NULL);
        if (k->type == KT_INTLIST && v->n > k->cap)
            return cfg_err(c, v, "%s: at most %d values, got %d", path, k->cap, v->n);
        for (int i = 0; i < v->n; i++) {
            ynode *it = v->vals[i];
            double d;
            int ok = it->kind == YN_SCALAR && parse_finite(it->text, &d) && in_range(k, d) &&
                     (k->type == KT_NUMLIST || (d == floor(d) && fabs(d) < 2e9));
            if (!ok) {
                char ex[600];
                cfg_key_expect(k, ex, sizeof ex);
                if (it->kind == YN_SCALAR)
                    return cfg_err(c, it, "%s[%d]: expected %s, got '%s'", path, i,
                                   k->type == KT_INTLIST ? "an integer" : "a number", it->text);
                return cfg_err(c, it, "%s: expected %s, got a nested %s", path, ex,
                               it->kind == YN_MAP ? "map" : "list");
            }
            if (k->type == KT_INTLIST && k->off != CFG_NO_FIELD) ((int *)field(base, k->off))[i] = (int)d;
        }
        if (k->type == KT_INTLIST && k->off != CFG_NO_FIELD) *(int *)field(base, k->off2) = v->n;
        return NL_OK;
    }
    default:
        NL_ASSERT(!"unhandled key type");
    }
    return NL_OK;
}

nl_status cfg_section_parse(pctx *c, const char *section, ynode *map, const cfg_key *keys, int nk,
                            void *base, int method, ynode **seen) {
    NL_ASSERT(nk <= 96);
    for (int i = 0; i < nk; i++) {
        seen[i] = NULL;
        cfg_key_default(&keys[i], base, method);
    }
    if (map && !(map->kind == YN_SCALAR && yn_is_null(map))) {
        if (map->kind == YN_SEQ)
            return cfg_err(c, map, "%s: expected a map of settings (key: value), got a list", section);
        if (map->kind != YN_MAP)
            return cfg_err(c, map, "%s: expected a map of settings (key: value), got '%s'", section,
                           map->text);
        const ynode *seen_key[96] = {0};
        for (int j = 0; j < map->n; j++) {
            ynode *kn = map->keys[j];
            const char *name = kn->text;
            int i = cfg_key_find(keys, nk, name);
            if (i < 0) {
                const char *names[96];
                for (int t = 0; t < nk; t++) names[t] = keys[t].name;
                const char *sug = cfg_suggest(name, names, nk);
                char where[160];
                if (*section) snprintf(where, sizeof where, "in %s", section);
                else snprintf(where, sizeof where, "at the top level");
                if (sug) return cfg_err(c, kn, "unknown key '%s' %s; did you mean '%s'?", name, where, sug);
                return cfg_err(c, kn, "unknown key '%s' %s (see docs/config.md for the keys)", name, where);
            }
            if (seen[i])
                return cfg_err(c, kn, "%s%s'%s' and '%s' are the same setting; give only one", section,
                               *section ? ": " : "", seen_key[i]->text, name);
            seen[i] = map->vals[j];
            seen_key[i] = kn;
            char path[200];
            if (*section) snprintf(path, sizeof path, "%s.%s", section, name);
            else snprintf(path, sizeof path, "%s", name);
            nl_status st = cfg_key_parse(c, &keys[i], path, map->vals[j], base);
            if (st != NL_OK) return st;
        }
    }
    for (int i = 0; i < nk; i++)
        if ((keys[i].flags & KF_REQUIRED) && !seen[i]) {
            if (map && map->kind == YN_MAP)
                return cfg_err(c, map, "%s: missing required key '%s'", section, keys[i].name);
            return cfg_err(c, NULL, "missing required key %s.%s", section, keys[i].name);
        }
    return NL_OK;
}
