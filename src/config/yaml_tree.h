/* yaml_tree.h — internal: a YAML document as a tree of maps, sequences and
 * scalars that remembers the 1-based line:column of every node, and a block
 * YAML writer for it. Parsing goes through libyaml's event parser; the tree
 * does not interpret scalars (no typing: the schema in config.c does that).
 * Invariants: map keys are scalars and unique; aliases are rejected. */
#ifndef NNLO_CONFIG_YAML_TREE_H
#define NNLO_CONFIG_YAML_TREE_H

#include "nnlo/util.h"

typedef enum { YN_SCALAR = 0, YN_MAP = 1, YN_SEQ = 2 } yn_kind;

typedef struct ynode ynode;
struct ynode {
    yn_kind kind;
    int line, col;      /* 1-based position of the node's first character */
    char *text;         /* scalar: its value (never NULL for scalars) */
    int quoted;         /* scalar: written quoted or as a block scalar (never null) */
    int n, cap;         /* map: number of pairs; seq: number of items */
    ynode **keys;          /* map: scalar key nodes */
    ynode **vals;          /* map: values; seq: items */
    /* annotations set by the schema pass (config.c), used by the writer */
    int dim;            /* >= 0: this value is search dimension #dim */
    int is_path;        /* scalar holding a data path (made absolute on output) */
};

/* Parses text into *root (a map; an empty document gives an empty map).
 * Errors: "source:line:col: <libyaml problem>" with NL_ERR_CONFIG. */
nl_status yn_parse(const char *text, const char *source, ynode **root, nl_error *e);
void yn_free(ynode *n); /* NULL-safe, recursive */

ynode *yn_new_scalar(const char *text, int quoted, int line, int col);
ynode *yn_new_map(int line, int col);
ynode *yn_new_seq(int line, int col);
/* Appends (key, val) to a map / an item to a sequence; takes ownership. */
void yn_map_add(ynode *map, ynode *key, ynode *val);
void yn_seq_add(ynode *seq, ynode *item);
/* The value for key in map (or NULL); *key_node gets the key (may be NULL). */
ynode *yn_map_get(const ynode *map, const char *key, ynode **key_node);
int yn_map_index(const ynode *map, const char *key); /* -1 if absent */

/* Plain scalar null: "", "~", "null", "Null", "NULL". */
int yn_is_null(const ynode *n);
/* A string that can be written unquoted in block context and reads back as
 * the same string (and, if as_string, would not be taken for a number,
 * boolean or null by a YAML 1.1/1.2 reader). */
int yn_plain_safe(const char *s, int as_string);
/* Appends s as a YAML scalar: plain when safe, double-quoted otherwise. */
void yn_write_scalar(sbuf *b, const char *s, int force_quote);

/* Callback the writer calls for every value node (scalar, map or sequence)
 * before writing it, so the caller can substitute a one-line scalar (search
 * dimension -> chosen value, relative path -> absolute). Return 1 after
 * appending the scalar text to b, 0 to let the writer write the node. */
typedef int (*yn_subst_fn)(void *ctx, const ynode *node, sbuf *b);
/* Writes node as block YAML at the given indent (a map or sequence; scalars
 * are written on one line). Map keys listed in skip (NULL-terminated) are
 * left out at the top level only. */
void yn_write(sbuf *b, const ynode *node, int indent, const char *const *skip_top,
              yn_subst_fn subst, void *ctx);

#endif
