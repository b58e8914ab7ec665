/* checkpoint.c — epoch-boundary checkpoints of compress_train: a tagged
 * record writer/reader, the file framing (header with magic, version,
 * byte-order mark, key, payload checksum; atomic write), and the save /
 * load of the whole training state (model, optimizer, rngs, masks, stage
 * machine position, the method's own state through prune_ops).
 * Deliberately not here: when to write (the caller's epoch callback) and
 * what a trial adds (history, log: src/worker/trial.c). Invariant: a
 * loader reads records in the order the saver wrote them and checks each
 * tag and length, so a mismatched file is refused, never misread. */
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- records --------------------------------------------------------------- */

static void w_bytes(ckpt_writer *w, const void *data, size_t len) {
    if (w->nomem) return;
    if (w->len + len > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + len) cap *= 2;
        unsigned char *p = realloc(w->p, cap);
        if (!p) {
            w->nomem = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    if (len) memcpy(w->p + w->len, data, len);
    w->len += len;
}

void ckpt_put(ckpt_writer *w, const char *tag, const void *data, size_t len) {
    size_t tl = strlen(tag);
    NL_ASSERT(tl >= 1 && tl < 64);
    unsigned char t = (unsigned char)tl;
    uint64_t n = (uint64_t)len;
    w_bytes(w, &t, 1);
    w_bytes(w, tag, tl);
    w_bytes(w, &n, sizeof n);
    w_bytes(w, data, len);
}

void ckpt_put_i64(ckpt_writer *w, const char *tag, int64_t v) { ckpt_put(w, tag, &v, sizeof v); }
void ckpt_put_f64(ckpt_writer *w, const char *tag, double v) { ckpt_put(w, tag, &v, sizeof v); }

void ckpt_writer_free(ckpt_writer *w) {
    if (!w) return;
    free(w->p);
    memset(w, 0, sizeof *w);
}

nl_status ckpt_get_var(ckpt_reader *r, const char *tag, const void **data, size_t *len,
                       nl_error *e) {
    *data = NULL;
    *len = 0;
    if (r->pos >= r->len)
        return nl_err(e, NL_ERR_DATA, "checkpoint: record '%s' expected, found the end", tag);
    size_t tl = r->p[r->pos];
    if (tl < 1 || tl >= 64 || r->pos + 1 + tl + 8 > r->len)
        return nl_err(e, NL_ERR_DATA, "checkpoint: record '%s' expected, found a broken record",
                      tag);
    char got[64];
    memcpy(got, r->p + r->pos + 1, tl);
    got[tl] = '\0';
    if (strcmp(got, tag) != 0)
        return nl_err(e, NL_ERR_DATA, "checkpoint: record '%s' expected, found '%s'", tag, got);
    uint64_t n;
    memcpy(&n, r->p + r->pos + 1 + tl, sizeof n);
    size_t at = r->pos + 1 + tl + 8;
    if (n > r->len - at)
        return nl_err(e, NL_ERR_DATA, "checkpoint: record '%s' runs past the end", tag);
    *data = r->p + at;
    *len = (size_t)n;
    r->pos = at + (size_t)n;
    return NL_OK;
}

nl_status ckpt_get(ckpt_reader *r, const char *tag, void *out, size_t len, nl_error *e) {
    const void *d;
    size_t n;
    nl_status st = ckpt_get_var(r, tag, &d, &n, e);
    if (st) return st;
    if (n != len)
        return nl_err(e, NL_ERR_DATA,
                      "checkpoint: record '%s' holds %zu bytes, this model needs %zu (another "
                      "configuration or nnlo-c version wrote it)",
                      tag, n, len);
    if (len) memcpy(out, d, len);
    return NL_OK;
}

nl_status ckpt_get_i64(ckpt_reader *r, const char *tag, int64_t *v, nl_error *e) {
    return ckpt_get(r, tag, v, sizeof *v, e);
}

nl_status ckpt_get_f64(ckpt_reader *r, const char *tag, double *v, nl_error *e) {
    return ckpt_get(r, tag, v, sizeof *v, e);
}

uint64_t ckpt_hash(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < len; k++) {
        h ^= p[k];
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- the file ---------------------------------------------------------------- */

#define CKPT_MAGIC "NNLOCKPT"
#define CKPT_VERSION 1u
#define CKPT_BOM 0x01020304u
enum { CKPT_HEADER = 40 }; /* magic 8, version 4, bom 4, key 8, length 8, checksum 8 */

nl_status ckpt_write_file(const char *path, uint64_t key, const ckpt_writer *w, nl_error *e) {
    if (w->nomem) return nl_err(e, NL_ERR_NOMEM, "%s: out of memory building the checkpoint", path);
    unsigned char *buf = malloc(CKPT_HEADER + w->len);
    if (!buf) return nl_err(e, NL_ERR_NOMEM, "%s: out of memory writing the checkpoint", path);
    uint32_t ver = CKPT_VERSION, bom = CKPT_BOM;
    uint64_t len = w->len, sum = ckpt_hash(w->p, w->len);
    memcpy(buf, CKPT_MAGIC, 8);
    memcpy(buf + 8, &ver, 4);
    memcpy(buf + 12, &bom, 4);
    memcpy(buf + 16, &key, 8);
    memcpy(buf + 24, &len, 8);
    memcpy(buf + 32, &sum, 8);
    if (w->len) memcpy(buf + CKPT_HEADER, w->p, w->len);
    nl_status st = fs_write_atomic(path, buf, CKPT_HEADER + w->len, e);
    free(buf);
    return st;
}

nl_status ckpt_read_file(const char *path, uint64_t key, unsigned char **buf, ckpt_reader *r,
                         nl_error *e) {
    char *text = NULL;
    size_t n = 0;
    *buf = NULL;
    memset(r, 0, sizeof *r);
    nl_status st = fs_read_all(path, &text, &n, e);
    if (st) return st;
    unsigned char *b = (unsigned char *)text;
    uint32_t ver, bom;
    uint64_t k, len, sum;
    if (n < CKPT_HEADER || memcmp(b, CKPT_MAGIC, 8) != 0) {
        st = nl_err(e, NL_ERR_DATA, "%s is not an nnlo-c checkpoint (%s)", path,
                    n < CKPT_HEADER ? "shorter than its header" : "wrong magic");
        goto fail;
    }
    memcpy(&ver, b + 8, 4);
    memcpy(&bom, b + 12, 4);
    memcpy(&k, b + 16, 8);
    memcpy(&len, b + 24, 8);
    memcpy(&sum, b + 32, 8);
    if (bom != CKPT_BOM) {
        st = nl_err(e, NL_ERR_DATA, "%s was written on a machine of another byte order", path);
        goto fail;
    }
    if (ver != CKPT_VERSION) {
        st = nl_err(e, NL_ERR_DATA, "%s has checkpoint format %u, this nnlo-c reads %u", path,
                    (unsigned)ver, CKPT_VERSION);
        goto fail;
    }
    if (k != key) {
        st = nl_err(e, NL_ERR_DATA,
                    "%s belongs to another trial configuration (the trial YAML's hash differs)",
                    path);
        goto fail;
    }
    if (len != n - CKPT_HEADER) {
        st = nl_err(e, NL_ERR_DATA, "%s is truncated or padded: %llu payload bytes expected, %zu "
                    "found", path, (unsigned long long)len, n - CKPT_HEADER);
        goto fail;
    }
    if (ckpt_hash(b + CKPT_HEADER, (size_t)len) != sum) {
        st = nl_err(e, NL_ERR_DATA, "%s is corrupted (its checksum does not match)", path);
        goto fail;
    }
    *buf = b;
    r->p = b + CKPT_HEADER;
    r->len = (size_t)len;
    r->pos = 0;
    return NL_OK;
fail:
    free(text);
    return st;
}

/* ---- the training state ------------------------------------------------------ */

/* Kernel and bias ranges of every compressed layer, in order: what the
 * rewind snapshot covers. */
static long snap_len(const compress *c) {
    long n = 0;
    for (int li = 0; li < c->n_layers; li++) n += c->layers[li].n + c->layers[li].out;
    return n;
}

nl_status compress_state_save(const compress *c, const optim *o, const rng_t *r, ckpt_writer *w,
                              nl_error *e) {
    const model *m = c->m;
    if (!c->pos.valid)
        return nl_err(e, NL_ERR_INVALID,
                      "compress_state_save: no epoch has finished (call it from the epoch "
                      "callback of compress_train)");
    int64_t layout[8] = {m->n_params, m->n_state, c->n_layers, c->pruning ? (int64_t)c->p.method : -1,
                         c->quantization, o->n, (int64_t)o->kind, snap_len(c)};
    ckpt_put(w, "layout", layout, sizeof layout);
    ckpt_put(w, "params", m->params, (size_t)m->n_params * sizeof(float));
    ckpt_put(w, "model_state", m->state, (size_t)m->n_state * sizeof(float));
    ckpt_put(w, "dropout_rng", &m->drop_rng, sizeof m->drop_rng);
    ckpt_put(w, "train_rng", r, sizeof *r);
    ckpt_put(w, "optim_m", o->m, o->m ? (size_t)o->n * sizeof(float) : 0);
    ckpt_put(w, "optim_v", o->v, o->v ? (size_t)o->n * sizeof(float) : 0);
    ckpt_put_i64(w, "optim_t", o->t);
    for (int li = 0; li < c->n_layers; li++) {
        const cl_layer *L = &c->layers[li];
        ckpt_put(w, "mask", L->mask, (size_t)L->n * sizeof(float));
        ckpt_put(w, "dead", L->dead, (size_t)L->out);
    }
    int64_t cs[5] = {c->stage, c->frozen, c->step, c->epoch, c->n_epochs};
    ckpt_put(w, "compress", cs, sizeof cs);
    const cm_position *p = &c->pos;
    int64_t pi[7] = {p->stage, p->round, p->epoch, p->global_epoch, p->since_best, p->stop,
                     p->have_snap && c->snap};
    ckpt_put(w, "position", pi, sizeof pi);
    ckpt_put_f64(w, "best_val", p->best_val);
    if (p->have_snap && c->snap) {
        for (int li = 0; li < c->n_layers; li++) {
            const cl_layer *L = &c->layers[li];
            ckpt_put(w, "snap_kernel", c->snap + L->w_off, (size_t)L->n * sizeof(float));
            ckpt_put(w, "snap_bias", c->snap + L->b_off, (size_t)L->out * sizeof(float));
        }
    }
    const char *method = c->pruning && c->ops ? c->ops->name : "none";
    ckpt_put(w, "method", method, strlen(method));
    if (c->pruning && c->ops && c->ops->save_state) c->ops->save_state(c, w);
    ckpt_put(w, "end", NULL, 0);
    if (w->nomem) return nl_err(e, NL_ERR_NOMEM, "checkpoint: out of memory");
    return NL_OK;
}

nl_status compress_state_load(compress *c, optim *o, rng_t *r, ckpt_reader *rd, nl_error *e) {
    model *m = c->m;
    nl_status st;
    int64_t layout[8], want[8] = {m->n_params, m->n_state, c->n_layers,
                                  c->pruning ? (int64_t)c->p.method : -1, c->quantization, o->n,
                                  (int64_t)o->kind, snap_len(c)};
    if ((st = ckpt_get(rd, "layout", layout, sizeof layout, e))) return st;
    static const char *what[8] = {"parameters", "state values", "compressed layers",
                                  "pruning method", "quantization", "optimizer entries",
                                  "optimizer", "kernel and bias entries"};
    for (int k = 0; k < 8; k++)
        if (layout[k] != want[k])
            return nl_err(e, NL_ERR_DATA,
                          "checkpoint: it was written for %lld %s, this model has %lld",
                          (long long)layout[k], what[k], (long long)want[k]);
    if ((st = ckpt_get(rd, "params", m->params, (size_t)m->n_params * sizeof(float), e)) ||
        (st = ckpt_get(rd, "model_state", m->state, (size_t)m->n_state * sizeof(float), e)) ||
        (st = ckpt_get(rd, "dropout_rng", &m->drop_rng, sizeof m->drop_rng, e)) ||
        (st = ckpt_get(rd, "train_rng", r, sizeof *r, e)) ||
        (st = ckpt_get(rd, "optim_m", o->m, o->m ? (size_t)o->n * sizeof(float) : 0, e)) ||
        (st = ckpt_get(rd, "optim_v", o->v, o->v ? (size_t)o->n * sizeof(float) : 0, e)))
        return st;
    int64_t v;
    if ((st = ckpt_get_i64(rd, "optim_t", &v, e))) return st;
    o->t = (long)v;
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        if ((st = ckpt_get(rd, "mask", L->mask, (size_t)L->n * sizeof(float), e)) ||
            (st = ckpt_get(rd, "dead", L->dead, (size_t)L->out, e)))
            return st;
    }
    int64_t cs[5], pi[7];
    if ((st = ckpt_get(rd, "compress", cs, sizeof cs, e))) return st;
    c->stage = (train_stage)cs[0];
    c->frozen = (int)cs[1];
    c->step = (long)cs[2];
    c->epoch = (int)cs[3];
    c->n_epochs = (int)cs[4];
    if ((st = ckpt_get(rd, "position", pi, sizeof pi, e))) return st;
    if (pi[0] < STAGE_PRETRAIN || pi[0] > STAGE_FINETUNE || cs[0] < STAGE_PRETRAIN ||
        cs[0] > STAGE_FINETUNE)
        return nl_err(e, NL_ERR_DATA, "checkpoint: unknown training stage %lld",
                      (long long)pi[0]);
    cm_position p;
    memset(&p, 0, sizeof p);
    p.valid = 1;
    p.stage = (train_stage)pi[0];
    p.round = (int)pi[1];
    p.epoch = (int)pi[2];
    p.global_epoch = (int)pi[3];
    p.since_best = (int)pi[4];
    p.stop = (int)pi[5];
    p.have_snap = (int)pi[6];
    if ((st = ckpt_get_f64(rd, "best_val", &p.best_val, e))) return st;
    free(c->snap);
    c->snap = NULL;
    if (p.have_snap) {
        c->snap = calloc((size_t)m->n_params + 1, sizeof *c->snap);
        if (!c->snap) return nl_err(e, NL_ERR_NOMEM, "checkpoint: out of memory for the snapshot");
        for (int li = 0; li < c->n_layers; li++) {
            const cl_layer *L = &c->layers[li];
            if ((st = ckpt_get(rd, "snap_kernel", c->snap + L->w_off, (size_t)L->n * sizeof(float),
                               e)) ||
                (st = ckpt_get(rd, "snap_bias", c->snap + L->b_off, (size_t)L->out * sizeof(float),
                               e)))
                return st;
        }
    }
    const void *name;
    size_t nlen;
    const char *method = c->pruning && c->ops ? c->ops->name : "none";
    if ((st = ckpt_get_var(rd, "method", &name, &nlen, e))) return st;
    if (nlen != strlen(method) || memcmp(name, method, nlen) != 0)
        return nl_err(e, NL_ERR_DATA, "checkpoint: written for pruning method '%.*s', this trial "
                      "uses '%s'", (int)(nlen < 64 ? nlen : 64), (const char *)name, method);
    if (c->pruning && c->ops && c->ops->load_state && (st = c->ops->load_state(c, rd, e)))
        return st;
    if ((st = ckpt_get(rd, "end", NULL, 0, e))) return st;
    c->pos = p;
    c->resume = p;
    return NL_OK;
}

int compress_resume_point(const compress *c, train_stage *stage, int *round, int *epoch,
                          int *finished) {
    if (!c->resume.valid) return 0;
    if (stage) *stage = c->resume.stage;
    if (round) *round = c->resume.round;
    if (epoch) *epoch = c->resume.epoch;
    if (finished) *finished = c->resume.global_epoch;
    return 1;
}
