/* json.h — the small JSON subset nnlo-c writes and reads back: objects,
 * arrays, strings, numbers, true/false/null. Used for journal.jsonl, the
 * messages between master and workers, and `--json` output. Not a general
 * JSON library: no streaming, depth limit 32, whole text in memory. */
#ifndef NNLO_JSON_H
#define NNLO_JSON_H

#include "nnlo/util.h"

typedef enum { JSON_NULL = 0, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } json_type;

typedef struct json {
    json_type type;
    double num;            /* NUM, BOOL (0/1) */
    char *str;             /* STR */
    char *key;             /* member name when inside an object */
    struct json *child;    /* ARR / OBJ: first element */
    struct json *next;     /* next sibling */
} json;

/* Parses text; returns a tree (json_free) or NULL with e filled ("line 1
 * column 17: expected ':'"). */
json *json_parse(const char *text, nl_error *e);
void json_free(json *j); /* NULL-safe */
/* Member of an object by key, or NULL. */
const json *json_get(const json *obj, const char *key);
/* Convenience: the number/string at key, or the default. */
double json_num(const json *obj, const char *key, double dflt);
const char *json_str(const json *obj, const char *key, const char *dflt);

/* Writers: append to an sbuf. Strings are escaped; non-finite numbers are
 * written as null (JSON has no NaN). */
void json_write_str(sbuf *b, const char *s);
void json_write_num(sbuf *b, double v);

#endif
