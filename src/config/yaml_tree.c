/* yaml_tree.c — libyaml events -> a position-carrying tree, and a block YAML
 * writer for such trees. Does not type scalars or know any key: that is the
 * schema's job (config.c). Rejects aliases, complex keys, duplicate keys and
 * multi-document streams with file:line:col messages. Nesting is limited to
 * YN_MAX_DEPTH so hostile input cannot exhaust the stack. */
#include "config/yaml_tree.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YN_MAX_DEPTH 64

static ynode *yn_alloc(yn_kind k, int line, int col) {
    ynode *n = calloc(1, sizeof *n);
    NL_ASSERT(n != NULL);
    n->kind = k;
    n->line = line;
    n->col = col;
    n->dim = -1;
    return n;
}

ynode *yn_new_scalar(const char *text, int quoted, int line, int col) {
    ynode *n = yn_alloc(YN_SCALAR, line, col);
    n->text = str_dup(text ? text : "");
    NL_ASSERT(n->text != NULL);
    n->quoted = quoted;
    return n;
}

ynode *yn_new_map(int line, int col) { return yn_alloc(YN_MAP, line, col); }
ynode *yn_new_seq(int line, int col) { return yn_alloc(YN_SEQ, line, col); }

static void yn_grow(ynode *n) {
    if (n->n < n->cap) return;
    int cap = n->cap ? 2 * n->cap : 8;
    ynode **v = realloc(n->vals, (size_t)cap * sizeof *v);
    NL_ASSERT(v != NULL);
    n->vals = v;
    if (n->kind == YN_MAP) {
        ynode **k = realloc(n->keys, (size_t)cap * sizeof *k);
        NL_ASSERT(k != NULL);
        n->keys = k;
    }
    n->cap = cap;
}

void yn_map_add(ynode *map, ynode *key, ynode *val) {
    NL_ASSERT(map->kind == YN_MAP && key->kind == YN_SCALAR);
    yn_grow(map);
    map->keys[map->n] = key;
    map->vals[map->n] = val;
    map->n++;
}

void yn_seq_add(ynode *seq, ynode *item) {
    NL_ASSERT(seq->kind == YN_SEQ);
    yn_grow(seq);
    seq->vals[seq->n++] = item;
}

void yn_free(ynode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        if (n->keys) yn_free(n->keys[i]);
        yn_free(n->vals[i]);
    }
    free(n->keys);
    free(n->vals);
    free(n->text);
    free(n);
}

int yn_map_index(const ynode *map, const char *key) {
    if (!map || map->kind != YN_MAP) return -1;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0) return i;
    return -1;
}

ynode *yn_map_get(const ynode *map, const char *key, ynode **key_node) {
    int i = yn_map_index(map, key);
    if (key_node) *key_node = i >= 0 ? map->keys[i] : NULL;
    return i >= 0 ? map->vals[i] : NULL;
}

int yn_is_null(const ynode *n) {
    if (!n || n->kind != YN_SCALAR || n->quoted) return 0;
    const char *t = n->text;
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct {
    yaml_parser_t parser;
    const char *source;
    nl_error *e;
} yparse;

static nl_status yp_libyaml_error(yparse *p) {
    const yaml_parser_t *y = &p->parser;
    const char *prob = y->problem ? y->problem : "invalid YAML";
    if (y->context)
        return nl_err(p->e, NL_ERR_CONFIG, "%s:%zu:%zu: %s (%s that starts at line %zu)",
                      p->source, y->problem_mark.line + 1, y->problem_mark.column + 1, prob,
                      y->context, y->context_mark.line + 1);
    return nl_err(p->e, NL_ERR_CONFIG, "%s:%zu:%zu: %s", p->source, y->problem_mark.line + 1,
                  y->problem_mark.column + 1, prob);
}

static nl_status yp_next(yparse *p, yaml_event_t *ev) {
    if (!yaml_parser_parse(&p->parser, ev)) return yp_libyaml_error(p);
    return NL_OK;
}

static int ev_line(const yaml_event_t *ev) { return (int)ev->start_mark.line + 1; }
static int ev_col(const yaml_event_t *ev) { return (int)ev->start_mark.column + 1; }

/* Builds the node that starts with event ev (consumed: deleted here). */
static nl_status yp_node(yparse *p, yaml_event_t *ev, ynode **out, int depth) {
    *out = NULL;
    int line = ev_line(ev), col = ev_col(ev);
    if (depth > YN_MAX_DEPTH) {
        yaml_event_delete(ev);
        return nl_err(p->e, NL_ERR_CONFIG, "%s:%d:%d: nesting deeper than %d levels", p->source,
                      line, col, YN_MAX_DEPTH);
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        size_t len = ev->data.scalar.length;
        if (memchr(ev->data.scalar.value, '\0', len)) {
            yaml_event_delete(ev);
            return nl_err(p->e, NL_ERR_CONFIG, "%s:%d:%d: NUL character in a scalar", p->source,
                          line, col);
        }
        ynode *n = yn_new_scalar((const char *)ev->data.scalar.value, !ev->data.scalar.plain_implicit,
                              line, col);
        yaml_event_delete(ev);
        *out = n;
        return NL_OK;
    }
    case YAML_ALIAS_EVENT:
        yaml_event_delete(ev);
        return nl_err(p->e, NL_ERR_CONFIG,
                      "%s:%d:%d: YAML aliases (*name) are not supported; write the value out",
                      p->source, line, col);
    case YAML_SEQUENCE_START_EVENT: {
        yaml_event_delete(ev);
        ynode *seq = yn_new_seq(line, col);
        for (;;) {
            yaml_event_t c;
            if (yp_next(p, &c) != NL_OK) { yn_free(seq); return p->e ? p->e->code : NL_ERR_CONFIG; }
            if (c.type == YAML_SEQUENCE_END_EVENT) { yaml_event_delete(&c); break; }
            ynode *item;
            if (yp_node(p, &c, &item, depth + 1) != NL_OK) { yn_free(seq); return NL_ERR_CONFIG; }
            yn_seq_add(seq, item);
        }
        *out = seq;
        return NL_OK;
    }
    case YAML_MAPPING_START_EVENT: {
        yaml_event_delete(ev);
        ynode *map = yn_new_map(line, col);
        for (;;) {
            yaml_event_t k;
            if (yp_next(p, &k) != NL_OK) { yn_free(map); return NL_ERR_CONFIG; }
            if (k.type == YAML_MAPPING_END_EVENT) { yaml_event_delete(&k); break; }
            if (k.type != YAML_SCALAR_EVENT) {
                int kl = ev_line(&k), kc = ev_col(&k);
                yaml_event_delete(&k);
                yn_free(map);
                return nl_err(p->e, NL_ERR_CONFIG,
                              "%s:%d:%d: a map key must be a plain word, not a list or map",
                              p->source, kl, kc);
            }
            ynode *key;
            if (yp_node(p, &k, &key, depth + 1) != NL_OK) { yn_free(map); return NL_ERR_CONFIG; }
            int dup = yn_map_index(map, key->text);
            if (dup >= 0) {
                nl_err(p->e, NL_ERR_CONFIG, "%s:%d:%d: duplicate key '%s' (first at line %d)",
                       p->source, key->line, key->col, key->text, map->keys[dup]->line);
                yn_free(key);
                yn_free(map);
                return NL_ERR_CONFIG;
            }
            yaml_event_t v;
            if (yp_next(p, &v) != NL_OK) { yn_free(key); yn_free(map); return NL_ERR_CONFIG; }
            ynode *val;
            if (yp_node(p, &v, &val, depth + 1) != NL_OK) { yn_free(key); yn_free(map); return NL_ERR_CONFIG; }
            yn_map_add(map, key, val);
        }
        *out = map;
        return NL_OK;
    }
    default:
        yaml_event_delete(ev);
        return nl_err(p->e, NL_ERR_CONFIG, "%s:%d:%d: unexpected YAML event", p->source, line, col);
    }
}

nl_status yn_parse(const char *text, const char *source, ynode **root, nl_error *e) {
    *root = NULL;
    yparse p = {.source = source ? source : "<config>", .e = e};
    if (!yaml_parser_initialize(&p.parser)) return nl_err(e, NL_ERR_NOMEM, "libyaml: out of memory");
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, strlen(text));
    ynode *doc = NULL;
    nl_status st = NL_OK;
    int ndocs = 0;
    for (;;) {
        yaml_event_t ev;
        if ((st = yp_next(&p, &ev)) != NL_OK) break;
        yaml_event_type_t t = ev.type;
        int line = ev_line(&ev), col = ev_col(&ev);
        if (t == YAML_STREAM_END_EVENT) { yaml_event_delete(&ev); break; }
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT) { yaml_event_delete(&ev); continue; }
        if (t == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            if (++ndocs > 1) {
                st = nl_err(e, NL_ERR_CONFIG, "%s:%d:%d: more than one YAML document ('---'); "
                            "put one configuration per file", p.source, line, col);
                break;
            }
            continue;
        }
        ynode *n;
        if ((st = yp_node(&p, &ev, &n, 0)) != NL_OK) break;
        if (n->kind == YN_SCALAR && yn_is_null(n)) { yn_free(n); n = yn_new_map(line, col); }
        if (n->kind != YN_MAP) {
            st = nl_err(e, NL_ERR_CONFIG, "%s:%d:%d: the file must be a map of sections "
                        "(key: value), not a %s", p.source, line, col,
                        n->kind == YN_SEQ ? "list" : "single value");
            yn_free(n);
            break;
        }
        doc = n;
    }
    yaml_parser_delete(&p.parser);
    if (st != NL_OK) { yn_free(doc); return st; }
    *root = doc ? doc : yn_new_map(1, 1);
    return NL_OK;
}

/* ---- writing ------------------------------------------------------------- */

static int looks_special(const char *s) {
    /* Words a YAML reader types as null / boolean (1.1 and 1.2). */
    static const char *const words[] = {"~", "null", "true", "false", "yes", "no", "on", "off",
                                        "y", "n", NULL};
    for (int i = 0; words[i]; i++)
        if (!strcasecmp(s, words[i])) return 1;
    /* Anything strtod reads fully (numbers, .inf, nan, hex) */
    char *end;
    (void)strtod(s, &end);
    if (end != s && *end == '\0') return 1;
    if (s[0] == '.' && (!strcasecmp(s, ".inf") || !strcasecmp(s, ".nan"))) return 1;
    if ((s[0] == '+' || s[0] == '-') && !strcasecmp(s + 1, ".inf")) return 1;
    return 0;
}

int yn_plain_safe(const char *s, int as_string) {
    size_t n = strlen(s);
    if (n == 0) return 0;
    if (strchr("?:,[]{}#&*!|>'\"%@` \t", s[0])) return 0;
    if (s[0] == '-' && (n == 1 || s[1] == ' ' || s[1] == '-')) return 0;
    if (s[n - 1] == ' ' || s[n - 1] == ':' || s[n - 1] == '\t') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return 0;
        if (c == ':' && s[i + 1] == ' ') return 0;
        if (c == '#' && i > 0 && s[i - 1] == ' ') return 0;
    }
    if (as_string && looks_special(s)) return 0;
    return 1;
}

void yn_write_scalar(sbuf *b, const char *s, int force_quote) {
    if (!force_quote && yn_plain_safe(s, 0)) { sbuf_append(b, s, strlen(s)); return; }
    sbuf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sbuf_append(b, "\\\"", 2); break;
        case '\\': sbuf_append(b, "\\\\", 2); break;
        case '\n': sbuf_append(b, "\\n", 2); break;
        case '\t': sbuf_append(b, "\\t", 2); break;
        case '\r': sbuf_append(b, "\\r", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) sbuf_printf(b, "\\x%02x", *p);
            else sbuf_append(b, (const char *)p, 1);
        }
    }
    sbuf_append(b, "\"", 1);
}

static void write_indent(sbuf *b, int n) {
    for (int i = 0; i < n; i++) sbuf_append(b, " ", 1);
}

static void write_plain_node(sbuf *b, const ynode *n) {
    if (yn_is_null(n)) sbuf_append(b, "null", 4);
    else yn_write_scalar(b, n->text, n->quoted);
}

/* Writes the value part after "key:" or "-": inline scalars and empty
 * collections on the same line, others on the next lines at indent. */
static void write_value(sbuf *b, const ynode *v, int indent, yn_subst_fn subst, void *ctx,
                        int after_dash);

static void write_map_body(sbuf *b, const ynode *m, int indent, int first_inline,
                           const char *const *skip, yn_subst_fn subst, void *ctx) {
    int first = 1;
    for (int i = 0; i < m->n; i++) {
        int skipped = 0;
        for (int s = 0; skip && skip[s]; s++)
            if (!strcmp(skip[s], m->keys[i]->text)) skipped = 1;
        if (skipped) continue;
        if (!(first && first_inline)) write_indent(b, indent);
        first = 0;
        yn_write_scalar(b, m->keys[i]->text, 0);
        sbuf_append(b, ":", 1);
        write_value(b, m->vals[i], indent + 2, subst, ctx, 0);
    }
    if (first && first_inline) sbuf_append(b, "{}\n", 3);
}

static void write_seq_body(sbuf *b, const ynode *s, int indent, int first_inline, yn_subst_fn subst,
                           void *ctx) {
    for (int i = 0; i < s->n; i++) {
        if (!(i == 0 && first_inline)) write_indent(b, indent);
        sbuf_append(b, "-", 1);
        write_value(b, s->vals[i], indent + 2, subst, ctx, 1);
    }
}

static void write_value(sbuf *b, const ynode *v, int indent, yn_subst_fn subst, void *ctx,
                        int after_dash) {
    sbuf_append(b, " ", 1);
    if (subst && subst(ctx, v, b)) { sbuf_append(b, "\n", 1); return; }
    if (v->kind == YN_SCALAR) { write_plain_node(b, v); sbuf_append(b, "\n", 1); return; }
    if (v->n == 0) { sbuf_append(b, v->kind == YN_MAP ? "{}\n" : "[]\n", 3); return; }
    if (after_dash && v->kind == YN_MAP) {
        /* "- key: value" with the other keys aligned under the first */
        write_map_body(b, v, indent, 1, NULL, subst, ctx);
        return;
    }
    b->len--; /* drop the space: the collection starts on the next line */
    b->s[b->len] = '\0';
    sbuf_append(b, "\n", 1);
    if (v->kind == YN_MAP) write_map_body(b, v, indent, 0, NULL, subst, ctx);
    else write_seq_body(b, v, indent, 0, subst, ctx);
}

void yn_write(sbuf *b, const ynode *node, int indent, const char *const *skip_top,
              yn_subst_fn subst, void *ctx) {
    if (node->kind == YN_MAP) {
        write_map_body(b, node, indent, 0, skip_top, subst, ctx);
    } else if (node->kind == YN_SEQ) {
        if (node->n == 0) { write_indent(b, indent); sbuf_append(b, "[]\n", 3); }
        else write_seq_body(b, node, indent, 0, subst, ctx);
    } else {
        write_indent(b, indent);
        if (!(subst && subst(ctx, node, b))) write_plain_node(b, node);
        sbuf_append(b, "\n", 1);
    }
}
