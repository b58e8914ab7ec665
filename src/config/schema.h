/* schema.h — internal: the key descriptor of the config schema and the
 * generic machinery that parses one YAML value against one descriptor
 * (type, range, enum names, defaults, search dimensions). The tables that
 * use it live in config.c: that is the one place each key is described.
 * Nothing here knows a particular key. */
#ifndef NNLO_CONFIG_SCHEMA_H
#define NNLO_CONFIG_SCHEMA_H

#include <stddef.h>
#include "config/yaml_tree.h"
#include "nnlo/config.h"

typedef enum {
    KT_INT,      /* int; integral floats ("0.", "-1.0") are accepted (PQuant writes them) */
    KT_LONG,     /* long */
    KT_U64,      /* uint64_t, digits only */
    KT_FLOAT,    /* double, finite */
    KT_BOOL,     /* int 0/1: true/false (any case), or the numbers 0 / 1 */
    KT_STRING,   /* char[cap] */
    KT_ENUM,     /* int (enum) from a list of names */
    KT_STRLIST,  /* a string or a list of strings -> char ** at off, int count at off2 */
    KT_INTLIST,  /* a list of integers -> int[cap] at off, int count at off2 */
    KT_NUMLIST,  /* a list of numbers, validated, not stored */
    KT_RAWMAP,   /* a map (or null), kept as YAML text (char * at off) or not stored */
    KT_ANY       /* anything: accepted and ignored (informational PQuant keys) */
} key_type;

enum {
    KF_REQUIRED = 1 << 0,
    KF_NULLABLE = 1 << 1, /* YAML null gives the default */
    KF_INFO = 1 << 2,     /* accepted for PQuant compatibility, not used */
    KF_PATH = 1 << 3,     /* a file path: resolved against the YAML's folder */
    KF_CASEI = 1 << 4,    /* enum names match case-insensitively */
    KF_MIN = 1 << 5,      /* value >= lo */
    KF_GT = 1 << 6,       /* value > lo */
    KF_MAX = 1 << 7,      /* value <= hi */
    KF_LT = 1 << 8,       /* value < hi */
    KF_NODIM = 1 << 9     /* may not be a search dimension */
};

#define CFG_NO_FIELD (-1L)

typedef struct { int method; double value; } method_default; /* ends with method -1 */

typedef struct cfg_key {
    const char *name;
    key_type type;
    long off;                  /* offset of the field in the section's struct, or CFG_NO_FIELD */
    long off2;                 /* list count field */
    int cap;                   /* string size / list capacity */
    int flags;
    double lo, hi;             /* range, see KF_MIN.. */
    double def;                /* default: numbers, bools, enum values */
    const char *def_str;       /* default: strings */
    const char *const *names;  /* enum names, NULL-terminated; value = index */
    const char *const *unsupported; /* names recognised but refused ("not supported yet") */
    const method_default *mdef;/* per pruning method defaults (pruning_parameters only) */
    const char *alias_of;      /* another spelling of this key */
} cfg_key;

/* Parsing context: where messages point and where dimensions go. */
typedef struct {
    const char *source;
    char base_dir[1024];       /* absolute; relative data paths are joined to it */
    int allow_dims;            /* scan: 1; trial: 0 */
    search_dim *dims; int n_dims, cap_dims;
    const cfg_key **dim_keys;  /* parallel to dims */
    nl_error *e;
} pctx;

/* "source:line:col: " + message; returns NL_ERR_CONFIG. */
nl_status cfg_err(pctx *c, const ynode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The closest of names (NULL-terminated or n entries) to word, if close
 * enough to be a typo; NULL otherwise. */
const char *cfg_suggest(const char *word, const char *const *names, int n);
/* What a key accepts, for messages: "an integer >= 1", "one of a, b". */
void cfg_key_expect(const cfg_key *k, char *buf, size_t len);
/* The key's default written to base (method: pruning method or -1). */
void cfg_key_default(const cfg_key *k, void *base, int method);
/* The stored number of a numeric / bool / enum key. */
double cfg_key_get_num(const cfg_key *k, const void *base);

/* Parses one value node for key k at path ("training_parameters.lr") into
 * base. A map on a scalar key is a search dimension: recorded in c->dims
 * (scan) with the first value written to base, or refused (trial). */
nl_status cfg_key_parse(pctx *c, const cfg_key *k, const char *path, ynode *v, void *base);
/* Parses a section map against keys[0..nk): defaults first, then each
 * present key; unknown keys are errors with a suggestion; aliases map to
 * their key. seen[i] gets the value node of keys[i] (or NULL). map may be
 * NULL (defaults only) or a YAML null. section names the map in messages. */
nl_status cfg_section_parse(pctx *c, const char *section, ynode *map, const cfg_key *keys, int nk,
                            void *base, int method, ynode **seen);
/* Index of name in keys (canonical, following aliases), or -1. */
int cfg_key_find(const cfg_key *keys, int nk, const char *name);

/* Frees what list / raw keys allocated in base. */
void cfg_strlist_free(char ***list, int *n);

#endif
