/* json.c — recursive-descent reader and two writers for the JSON subset of
 * json.h. Numbers go through strtod; strings support the standard escapes
 * (\uXXXX below 0x80 only; others become '?'). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/json.h"

typedef struct {
    const char *s, *p;
    nl_error *e;
    int depth;
} jparser;

static json *jp_value(jparser *jp);

static void jp_where(jparser *jp, int *line, int *col) {
    *line = 1; *col = 1;
    for (const char *q = jp->s; q < jp->p; q++) {
        if (*q == '\n') { (*line)++; *col = 1; } else (*col)++;
    }
}

static json *jp_fail(jparser *jp, const char *what) {
    int line, col;
    jp_where(jp, &line, &col);
    nl_err(jp->e, NL_ERR_INVALID, "JSON line %d column %d: %s", line, col, what);
    return NULL;
}

static void jp_ws(jparser *jp) {
    while (*jp->p && isspace((unsigned char)*jp->p)) jp->p++;
}

static json *jnew(json_type t) {
    json *j = calloc(1, sizeof *j);
    NL_ASSERT(j != NULL);
    j->type = t;
    return j;
}

static char *jp_string(jparser *jp) {
    /* at the opening quote */
    jp->p++;
    sbuf b = {0};
    sbuf_append(&b, "", 0);
    while (*jp->p && *jp->p != '"') {
        char c = *jp->p++;
        if (c == '\\') {
            char x = *jp->p++;
            switch (x) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    char h = *jp->p;
                    if (!isxdigit((unsigned char)h)) { sbuf_free(&b); jp_fail(jp, "bad \\u escape"); return NULL; }
                    v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
                    jp->p++;
                }
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            case '\0': sbuf_free(&b); jp_fail(jp, "unterminated string"); return NULL;
            default: c = x; break;
            }
        }
        sbuf_append(&b, &c, 1);
    }
    if (*jp->p != '"') { sbuf_free(&b); jp_fail(jp, "unterminated string"); return NULL; }
    jp->p++;
    return b.s;
}

static json *jp_container(jparser *jp, int is_obj) {
    if (++jp->depth > 32) return jp_fail(jp, "nested too deeply");
    json *j = jnew(is_obj ? JSON_OBJ : JSON_ARR), **tail = &j->child;
    jp->p++;
    jp_ws(jp);
    if (*jp->p == (is_obj ? '}' : ']')) { jp->p++; jp->depth--; return j; }
    for (;;) {
        char *key = NULL;
        jp_ws(jp);
        if (is_obj) {
            if (*jp->p != '"') { json_free(j); return jp_fail(jp, "expected a string key"); }
            key = jp_string(jp);
            if (!key) { json_free(j); return NULL; }
            jp_ws(jp);
            if (*jp->p != ':') { free(key); json_free(j); return jp_fail(jp, "expected ':'"); }
            jp->p++;
        }
        json *v = jp_value(jp);
        if (!v) { free(key); json_free(j); return NULL; }
        v->key = key;
        *tail = v;
        tail = &v->next;
        jp_ws(jp);
        if (*jp->p == ',') { jp->p++; continue; }
        if (*jp->p == (is_obj ? '}' : ']')) { jp->p++; break; }
        json_free(j);
        return jp_fail(jp, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    jp->depth--;
    return j;
}

static json *jp_value(jparser *jp) {
    jp_ws(jp);
    char c = *jp->p;
    if (c == '{') return jp_container(jp, 1);
    if (c == '[') return jp_container(jp, 0);
    if (c == '"') {
        char *s = jp_string(jp);
        if (!s) return NULL;
        json *j = jnew(JSON_STR);
        j->str = s;
        return j;
    }
    if (!strncmp(jp->p, "true", 4)) { jp->p += 4; json *j = jnew(JSON_BOOL); j->num = 1; return j; }
    if (!strncmp(jp->p, "false", 5)) { jp->p += 5; return jnew(JSON_BOOL); }
    if (!strncmp(jp->p, "null", 4)) { jp->p += 4; return jnew(JSON_NULL); }
    if (c == '-' || isdigit((unsigned char)c)) {
        char *end;
        double v = strtod(jp->p, &end);
        if (end == jp->p) return jp_fail(jp, "bad number");
        jp->p = end;
        json *j = jnew(JSON_NUM);
        j->num = v;
        return j;
    }
    return jp_fail(jp, c ? "unexpected character" : "unexpected end of text");
}

json *json_parse(const char *text, nl_error *e) {
    jparser jp = {text, text, e, 0};
    json *j = jp_value(&jp);
    if (!j) return NULL;
    jp_ws(&jp);
    if (*jp.p) { json_free(j); return jp_fail(&jp, "trailing characters"); }
    return j;
}

void json_free(json *j) {
    while (j) {
        json *next = j->next;
        json_free(j->child);
        free(j->str);
        free(j->key);
        free(j);
        j = next;
    }
}

const json *json_get(const json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJ) return NULL;
    for (const json *c = obj->child; c; c = c->next)
        if (c->key && !strcmp(c->key, key)) return c;
    return NULL;
}

double json_num(const json *obj, const char *key, double dflt) {
    const json *v = json_get(obj, key);
    if (v && (v->type == JSON_NUM || v->type == JSON_BOOL)) return v->num;
    if (v && v->type == JSON_NULL) return NAN;
    return dflt;
}

const char *json_str(const json *obj, const char *key, const char *dflt) {
    const json *v = json_get(obj, key);
    return v && v->type == JSON_STR ? v->str : dflt;
}

void json_write_str(sbuf *b, const char *s) {
    sbuf_append(b, "\"", 1);
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '"': sbuf_append(b, "\\\"", 2); break;
        case '\\': sbuf_append(b, "\\\\", 2); break;
        case '\n': sbuf_append(b, "\\n", 2); break;
        case '\t': sbuf_append(b, "\\t", 2); break;
        case '\r': sbuf_append(b, "\\r", 2); break;
        default:
            if (c < 0x20) sbuf_printf(b, "\\u%04x", c);
            else sbuf_append(b, (const char *)p, 1);
        }
    }
    sbuf_append(b, "\"", 1);
}

void json_write_num(sbuf *b, double v) {
    if (!isfinite(v)) { sbuf_append(b, "null", 4); return; }
    char buf[40];
    fmt_double(buf, sizeof buf, v);
    sbuf_append(b, buf, strlen(buf));
}
