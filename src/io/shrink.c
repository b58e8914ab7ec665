/* shrink.c — the structured-pruning shrink: removes every Dense output unit /
 * Conv output channel whose kernel column and bias are exactly zero, the
 * matching input rows (Dense) / input channels (Conv) of the next weighted
 * layer, and the channel's parameters in the per-channel layers between
 * (BatchNorm), so the exported network is physically smaller and computes
 * the same outputs. Deliberately not: folding a dead unit's nonzero constant
 * (sigmoid(0) = 0.5, a batch norm shift) into the next bias (not bit-exact:
 * such units stay), units of the last weighted layer (class outputs), real
 * reshapes (an in_shape other than the layer's input shape). Invariant: a
 * unit is removed only when the value it sends into the next weighted layer
 * is exactly 0 for every input (checked on the real forward pass). */
#include <stdlib.h>
#include <string.h>
#include "nnlo/modelio.h"

/* Layers a dead channel passes through as a constant per channel: value-wise
 * maps, per-channel affine maps and pooling (of a constant field), and
 * Flatten (channel c becomes every C-th feature). */
static int passes_channels(int kind) {
    switch (kind) {
    case LAYER_RELU: case LAYER_QUANT: case LAYER_TANH: case LAYER_SIGMOID:
    case LAYER_HARD_TANH: case LAYER_LEAKY_RELU: case LAYER_DROPOUT: case LAYER_BATCHNORM:
    case LAYER_MAXPOOL1D: case LAYER_MAXPOOL2D: case LAYER_AVGPOOL1D: case LAYER_AVGPOOL2D:
    case LAYER_FLATTEN:
        return 1;
    default: return 0;
    }
}

static int has_shape(const layer_spec *s) { return s->in_shape[0] || s->in_shape[1] || s->in_shape[2]; }

/* A spec's in_shape that only restates layer L's input shape (channels a
 * multiple of C): it can follow the shrink. A real reshape cannot. */
static int shape_follows(const layer_spec *s, const layer *L, int C) {
    return !has_shape(s) || (s->in_shape[0] == L->in_h && s->in_shape[1] == L->in_w &&
                             s->in_shape[2] == L->in_c && L->in_c % C == 0);
}

/* The next weighted layer after l if l's channels reach it unmixed (see
 * passes_channels; a Conv needs them as its input channels: no Flatten on
 * the way), else -1. */
static int chain_target(const modelio_file *f, int l) {
    const model *m = f->m;
    int flat = 0, C = layer_kernel_cols(&m->layers[l]);
    for (int j = l + 1; j < m->n_layers; j++) {
        int kind = (int)m->layers[j].kind;
        if (!shape_follows(&f->specs[j], &m->layers[j], C)) return -1;
        if (layer_has_kernel(kind)) {
            if (kind != LAYER_DENSE && (flat || m->layers[j].in_c != C)) return -1;
            return m->layers[j].in_size % C == 0 ? j : -1;
        }
        if (!passes_channels(kind)) return -1;
        flat |= kind == LAYER_FLATTEN;
    }
    return -1;
}

static int count_kept(const unsigned char *k, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += k[i] != 0;
    return c;
}

/* A model built from f's specs for one sample, f's values in weff and
 * state, after one evaluation forward pass of a zero input. */
static model *probe_forward(const modelio_file *f, nl_error *e) {
    const model *m = f->m;
    model *p = model_create(f->specs, f->n_specs, m->in_size, 1, NULL, NULL, 0, e);
    if (!p) return NULL;
    NL_ASSERT(p->n_params <= m->n_params && p->n_state <= m->n_state);
    memcpy(p->weff, m->weff, (size_t)p->n_params * sizeof(float));
    memcpy(p->params, m->weff, (size_t)p->n_params * sizeof(float));
    if (p->n_state) memcpy(p->state, m->state, (size_t)p->n_state * sizeof(float));
    p->training = 0;
    float *x = calloc((size_t)m->in_size, sizeof *x);
    if (!x) {
        model_free(p);
        nl_err(e, NL_ERR_NOMEM, "shrink: out of memory");
        return NULL;
    }
    model_forward(p, x, 1);
    free(x);
    return p;
}

static nl_status copy_meta(const modelio_file *in, modelio_file *out, nl_error *e) {
    out->in_size = in->in_size;
    out->out_size = in->out_size;
    snprintf(out->trial_id, sizeof out->trial_id, "%s", in->trial_id);
    if (in->trial_yaml && !(out->trial_yaml = str_dup(in->trial_yaml)))
        return nl_err(e, NL_ERR_NOMEM, "shrink: out of memory");
    if (in->n_metrics > 0) {
        out->metric_names = malloc((size_t)in->n_metrics * sizeof *out->metric_names);
        out->metric_values = malloc((size_t)in->n_metrics * sizeof *out->metric_values);
        if (!out->metric_names || !out->metric_values)
            return nl_err(e, NL_ERR_NOMEM, "shrink: out of memory");
        memcpy(out->metric_names, in->metric_names, (size_t)in->n_metrics * sizeof *out->metric_names);
        memcpy(out->metric_values, in->metric_values, (size_t)in->n_metrics * sizeof *out->metric_values);
        out->n_metrics = in->n_metrics;
    }
    return NL_OK;
}

nl_status modelio_shrink(const modelio_file *in, int max_batch, modelio_file *out, long *removed,
                         nl_error *e) {
    memset(out, 0, sizeof *out);
    if (removed) *removed = 0;
    const model *m = in->m;
    if (!m || in->n_specs != m->n_layers || !in->specs)
        return nl_err(e, NL_ERR_INVALID, "shrink: the model file's specs and model disagree");
    const int n = m->n_layers;
    nl_status st = NL_OK;
    model *p = NULL;
    /* keep[l]: (cols) of weighted layer l; src[j]: the weighted layer whose
     * channels layer j receives (its keep decides j's rows / channels), or -1 */
    unsigned char **keep = calloc((size_t)n, sizeof *keep);
    int *src = malloc((size_t)n * sizeof *src);
    out->specs = malloc((size_t)n * sizeof *out->specs);
    out->info = calloc((size_t)n, sizeof *out->info);
    if (!keep || !src || !out->specs || !out->info) goto nomem;
    out->n_specs = n;
    int last_w = -1;
    for (int l = 0; l < n; l++) {
        src[l] = -1;
        if (layer_has_kernel((int)m->layers[l].kind)) last_w = l;
    }
    if (!(p = probe_forward(in, e))) { st = e ? e->code : NL_ERR_NOMEM; goto fail; }

    long n_removed = 0;
    for (int l = 0; l < n; l++) {
        const layer *L = &m->layers[l];
        if (!layer_has_kernel((int)L->kind)) continue;
        int rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
        if (!(keep[l] = malloc((size_t)cols))) goto nomem;
        memset(keep[l], 1, (size_t)cols);
        int k = l == last_w ? -1 : chain_target(in, l);
        if (k < 0) continue;
        const float *w = m->weff + L->w_off, *b = m->weff + L->b_off;
        const unsigned char *rk = src[l] >= 0 ? keep[src[l]] : NULL;
        int rc = src[l] >= 0 ? layer_kernel_cols(&m->layers[src[l]]) : 1;
        const float *at = p->layers[k - 1].out; /* what layer k reads */
        int S = m->layers[k].in_size;
        for (int o = 0; o < cols; o++) {
            int dead = b[o] == 0.0f;
            /* weights on inputs that are removed too (always exactly 0) do not count */
            for (int i = 0; i < rows && dead; i++)
                dead = w[(long)i * cols + o] == 0.0f || (rk && !rk[i % rc]);
            for (int j = o; j < S && dead; j += cols) dead = at[j] == 0.0f;
            keep[l][o] = (unsigned char)!dead;
        }
        if (count_kept(keep[l], cols) == 0) keep[l][0] = 1; /* a layer keeps one unit */
        n_removed += cols - count_kept(keep[l], cols);
        for (int j = l + 1; j <= k; j++) src[j] = l;
    }

    /* the smaller specs and model */
    memcpy(out->specs, in->specs, (size_t)n * sizeof *out->specs);
    for (int l = 0; l < n; l++) {
        if (!keep[l]) continue;
        int kept = count_kept(keep[l], layer_kernel_cols(&m->layers[l]));
        if ((int)m->layers[l].kind == LAYER_DENSE) out->specs[l].units = kept;
        else out->specs[l].filters = kept;
    }
    for (int j = 0; j < n; j++) /* restated input shapes: C channels -> kept */
        if (src[j] >= 0 && has_shape(&out->specs[j])) {
            int C = layer_kernel_cols(&m->layers[src[j]]);
            out->specs[j].in_shape[2] = out->specs[j].in_shape[2] / C * count_kept(keep[src[j]], C);
        }
    model *s = model_create(out->specs, n, m->in_size, max_batch, NULL, NULL, 0, e);
    if (!s) { st = e ? e->code : NL_ERR_INVALID; nl_err_prefix(e, "shrink"); goto fail; }
    out->m = s;
    for (int l = 0; l < n; l++) {
        const layer *L = &m->layers[l], *N = &s->layers[l];
        static const modelio_layer_info none;
        const modelio_layer_info *ii = in->info ? &in->info[l] : &none;
        out->info[l] = *ii;
        out->info[l].mask = NULL;
        if (keep[l]) {
            int rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
            int ncols = layer_kernel_cols(N);
            const unsigned char *rk = src[l] >= 0 ? keep[src[l]] : NULL;
            int rc = src[l] >= 0 ? layer_kernel_cols(&m->layers[src[l]]) : 1;
            float *mask = NULL;
            if (ii->mask && !(mask = malloc((size_t)layer_kernel_rows(N) * ncols * sizeof *mask)))
                goto nomem;
            out->info[l].mask = mask;
            long r2 = 0;
            for (int i = 0; i < rows; i++) {
                if (rk && !rk[i % rc]) continue;
                int c2 = 0;
                for (int o = 0; o < cols; o++) {
                    if (!keep[l][o]) continue;
                    s->params[N->w_off + r2 * ncols + c2] = m->weff[L->w_off + (long)i * cols + o];
                    if (mask) mask[r2 * ncols + c2] = ii->mask[(long)i * cols + o];
                    c2++;
                }
                r2++;
            }
            NL_ASSERT(r2 == layer_kernel_rows(N));
            for (int o = 0, c2 = 0; o < cols; o++)
                if (keep[l][o]) s->params[N->b_off + c2++] = m->weff[L->b_off + o];
        } else if ((int)L->kind == LAYER_BATCHNORM) {
            /* after a Flatten its "channels" are features: channel c % C of the source */
            const unsigned char *ck = src[l] >= 0 ? keep[src[l]] : NULL;
            int cc = src[l] >= 0 ? layer_kernel_cols(&m->layers[src[l]]) : 1;
            for (int c = 0, c2 = 0; c < L->out_c; c++) {
                if (ck && !ck[c % cc]) continue;
                s->params[N->w_off + c2] = m->weff[L->w_off + c];
                s->params[N->b_off + c2] = m->weff[L->b_off + c];
                s->state[N->s_off + c2] = m->state[L->s_off + c];
                s->state[N->s_off + N->out_c + c2] = m->state[L->s_off + L->out_c + c];
                c2++;
            }
        } else if (ii->mask) {
            NL_ASSERT(!"a mask on a layer without a kernel");
        }
    }
    memcpy(s->weff, s->params, (size_t)s->n_params * sizeof(float));
    if ((st = copy_meta(in, out, e))) goto fail;
    if (removed) *removed = n_removed;
    goto done;
nomem:
    st = nl_err(e, NL_ERR_NOMEM, "shrink: out of memory");
fail:
    modelio_free(out);
done:
    model_free(p);
    if (keep)
        for (int l = 0; l < n; l++) free(keep[l]);
    free(keep);
    free(src);
    return st;
}

void modelio_shrink_describe(const modelio_file *before, const modelio_file *after, sbuf *b) {
    const model *a = before->m, *z = after->m;
    NL_ASSERT(a->n_layers == z->n_layers);
    for (int l = 0; l < a->n_layers; l++) {
        const layer *L = &a->layers[l], *N = &z->layers[l];
        if (!layer_has_kernel((int)L->kind)) continue;
        int dense = (int)L->kind == LAYER_DENSE;
        sbuf_printf(b, "%s: %d -> %d %s (kernel %d x %d -> %d x %d)\n", L->name,
                    layer_kernel_cols(L), layer_kernel_cols(N), dense ? "units" : "filters",
                    layer_kernel_rows(L), layer_kernel_cols(L), layer_kernel_rows(N),
                    layer_kernel_cols(N));
    }
    sbuf_printf(b, "weights and biases: %ld -> %ld\n", model_count_weights(a), model_count_weights(z));
}

nl_status modelio_shrink_file(modelio_file *f, const char *dir, nl_error *e) {
    modelio_file s;
    long removed = 0;
    nl_status st = modelio_shrink(f, f->m->max_batch, &s, &removed, e);
    if (st) return st;
    if (dir) {
        sbuf t = {0};
        sbuf_printf(&t, "# nnlo-c export: the structured shrink (docs/estimate.md) removed %ld "
                        "unit%s whose kernel column and bias are exactly zero,\n# with the inputs "
                        "they fed; the exported network computes the same outputs.\n",
                    removed, removed == 1 ? "" : "s");
        modelio_shrink_describe(f, &s, &t);
        char path[4096];
        st = fs_mkdir_p(dir, e);
        if (!st) st = fs_write_atomic(fs_join(path, sizeof path, dir, "shrink.txt"), t.s, t.len, e);
        sbuf_free(&t);
        if (st) {
            modelio_free(&s);
            return st;
        }
    }
    modelio_free(f);
    *f = s;
    return NL_OK;
}
