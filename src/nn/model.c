/* model.c — the model: layer table, one flat parameter buffer with named
 * views (weff and grads share the layout), activation buffers sized for
 * max_batch, forward and backward passes.
 * Does not train (train.c) nor update weights (optim.c). Invariants: every
 * buffer is allocated in model_create; forward/backward allocate nothing;
 * DENSE views come first in layer order (kernel then bias), extras after. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nn_internal.h"

static const char *kind_name(layer_kind k) {
    switch (k) {
    case LAYER_DENSE: return "dense";
    case LAYER_RELU: return "relu";
    case LAYER_QUANT: return "quant";
    }
    return "layer";
}

/* 64-byte aligned, zeroed; n elements of size sz. NULL on failure. */
static void *alloc_zero(size_t n, size_t sz) {
    size_t bytes = n * sz;
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

void model_free(model *m) {
    if (!m) return;
    if (m->layers)
        for (int l = 0; l < m->n_layers; l++) {
            free(m->layers[l].out);
            free(m->layers[l].dout);
            free(m->layers[l].pass);
        }
    free(m->layers);
    free(m->params);
    free(m->weff);
    free(m->grads);
    free(m->views);
    free(m->dx);
    free(m->xb);
    free(m->yb);
    free(m->dlogits);
    free(m);
}

static int add_view(model *m, const char *name, long off, long len, int layer, nl_error *e) {
    for (int v = 0; v < m->n_views; v++)
        if (strcmp(m->views[v].name, name) == 0) {
            nl_err(e, NL_ERR_CONFIG, "model: two parameter segments are named '%s'; rename one", name);
            return -1;
        }
    if (strlen(name) >= sizeof m->views[0].name) {
        nl_err(e, NL_ERR_CONFIG, "model: parameter name '%s' is longer than %zu characters", name,
               sizeof m->views[0].name - 1);
        return -1;
    }
    param_view *pv = &m->views[m->n_views++];
    snprintf(pv->name, sizeof pv->name, "%s", name);
    pv->off = off;
    pv->len = len;
    pv->layer = layer;
    return 0;
}

model *model_create(const layer_spec *specs, int n_specs, int in_size, int max_batch,
                    const char *const *extra_names, const long *extra_lens, int n_extra,
                    nl_error *e) {
    if (!specs || n_specs < 1) {
        nl_err(e, NL_ERR_CONFIG, "model: no layers given; a model needs at least one layer");
        return NULL;
    }
    if (in_size < 1 || max_batch < 1) {
        nl_err(e, NL_ERR_INVALID, "model: in_size (%d) and max_batch (%d) must be >= 1", in_size,
               max_batch);
        return NULL;
    }
    if (n_extra < 0 || (n_extra > 0 && (!extra_names || !extra_lens))) {
        nl_err(e, NL_ERR_INVALID, "model: %d extra segments but no names/lengths", n_extra);
        return NULL;
    }
    model *m = calloc(1, sizeof *m);
    if (!m) goto nomem;
    m->layers = calloc((size_t)n_specs, sizeof *m->layers);
    m->views = calloc((size_t)(2 * n_specs + n_extra), sizeof *m->views);
    if (!m->layers || !m->views) goto nomem;
    m->n_layers = n_specs;
    m->in_size = in_size;
    m->max_batch = max_batch;

    /* Shapes, names and offsets. */
    int counts[3] = {0, 0, 0};
    int width = in_size, max_width = in_size;
    long off = 0;
    for (int l = 0; l < n_specs; l++) {
        const layer_spec *sp = &specs[l];
        layer *L = &m->layers[l];
        L->kind = sp->kind;
        L->w_off = L->b_off = -1;
        if (sp->kind != LAYER_DENSE && sp->kind != LAYER_RELU && sp->kind != LAYER_QUANT) {
            nl_err(e, NL_ERR_CONFIG, "model: layer %d has unknown kind %d (dense=0, relu=1, quant=2)",
                   l, (int)sp->kind);
            goto fail;
        }
        size_t nlen = strnlen(sp->name, sizeof sp->name);
        if (nlen == sizeof sp->name) {
            nl_err(e, NL_ERR_CONFIG, "model: layer %d's name is not terminated (max 63 characters)", l);
            goto fail;
        }
        if (nlen > 0)
            memcpy(L->name, sp->name, nlen + 1);
        else
            snprintf(L->name, sizeof L->name, "%s%d", kind_name(sp->kind), counts[sp->kind]);
        counts[sp->kind]++;
        if (strchr(L->name, '/')) {
            nl_err(e, NL_ERR_CONFIG, "model: layer name '%s' contains '/'; use another name", L->name);
            goto fail;
        }
        for (int k = 0; k < l; k++)
            if (strcmp(m->layers[k].name, L->name) == 0) {
                nl_err(e, NL_ERR_CONFIG, "model: layers %d and %d are both named '%s'; names must be unique",
                       k, l, L->name);
                goto fail;
            }
        L->in_size = width;
        if (sp->kind == LAYER_DENSE) {
            if (sp->units < 1) {
                nl_err(e, NL_ERR_CONFIG, "model: dense layer '%s' has units = %d; it needs >= 1",
                       L->name, sp->units);
                goto fail;
            }
            L->out_size = sp->units;
            L->w_off = off;
            off += (long)L->in_size * L->out_size;
            L->b_off = off;
            off += L->out_size;
            char vn[96];
            snprintf(vn, sizeof vn, "%s/kernel", L->name);
            if (add_view(m, vn, L->w_off, (long)L->in_size * L->out_size, l, e)) goto fail;
            snprintf(vn, sizeof vn, "%s/bias", L->name);
            if (add_view(m, vn, L->b_off, L->out_size, l, e)) goto fail;
        } else {
            L->out_size = width;
            if (sp->kind == LAYER_QUANT) L->quant = sp->quant;
        }
        width = L->out_size;
        if (width > max_width) max_width = width;
    }
    m->out_size = width;
    for (int x = 0; x < n_extra; x++) {
        if (!extra_names[x] || !extra_names[x][0] || extra_lens[x] < 0) {
            nl_err(e, NL_ERR_INVALID, "model: extra segment %d needs a name and a length >= 0", x);
            goto fail;
        }
        if (add_view(m, extra_names[x], off, extra_lens[x], -1, e)) goto fail;
        off += extra_lens[x];
    }
    m->n_params = off;

    /* Buffers. */
    m->params = alloc_zero((size_t)off, sizeof(float));
    m->weff = alloc_zero((size_t)off, sizeof(float));
    m->grads = alloc_zero((size_t)off, sizeof(float));
    if (!m->params || !m->weff || !m->grads) goto nomem;
    size_t mb = (size_t)max_batch;
    for (int l = 0; l < n_specs; l++) {
        layer *L = &m->layers[l];
        L->out = alloc_zero(mb * (size_t)L->out_size, sizeof(float));
        L->dout = alloc_zero(mb * (size_t)L->out_size, sizeof(float));
        if (!L->out || !L->dout) goto nomem;
        if (L->kind == LAYER_QUANT) {
            L->pass = alloc_zero(mb * (size_t)L->out_size, 1);
            if (!L->pass) goto nomem;
        }
    }
    m->dx = alloc_zero(mb * (size_t)max_width, sizeof(float));
    m->xb = alloc_zero(mb * (size_t)in_size, sizeof(float));
    m->yb = alloc_zero(mb, sizeof(int32_t));
    m->dlogits = alloc_zero(mb * (size_t)m->out_size, sizeof(float));
    if (!m->dx || !m->xb || !m->yb || !m->dlogits) goto nomem;
    return m;

nomem:
    nl_err(e, NL_ERR_NOMEM, "model: out of memory (max_batch %d, in_size %d); lower the batch size",
           max_batch, in_size);
fail:
    model_free(m);
    return NULL;
}

void model_init_params(model *m, rng_t *r) {
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        if (L->kind != LAYER_DENSE) continue;
        /* He-uniform: U(-limit, limit), limit = sqrt(6 / fan_in) */
        double limit = sqrt(6.0 / (double)L->in_size);
        float *w = m->params + L->w_off;
        long n = (long)L->in_size * L->out_size;
        for (long j = 0; j < n; j++) w[j] = (float)((2.0 * rng_uniform(r) - 1.0) * limit);
        memset(m->params + L->b_off, 0, (size_t)L->out_size * sizeof(float));
    }
    model_sync_weff(m);
}

const param_view *model_find_view(const model *m, const char *name) {
    for (int v = 0; v < m->n_views; v++)
        if (strcmp(m->views[v].name, name) == 0) return &m->views[v];
    return NULL;
}

void model_sync_weff(model *m) {
    memcpy(m->weff, m->params, (size_t)m->n_params * sizeof(float));
}

long model_count_weights(const model *m) {
    long n = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind == LAYER_DENSE)
            n += (long)m->layers[l].in_size * m->layers[l].out_size + m->layers[l].out_size;
    return n;
}

/* Rows per chunk of the forward and backward passes. A batch larger than
 * this runs through all layers chunk by chunk: the chunk's activations stay
 * in cache between layers, and OpenBLAS takes its unpacked small-matrix
 * kernels on the narrow layers (jet MLP at batch 1024: +15-25%). */
enum { NN_CHUNK = 256 };

/* Forward of rows [r0, r0 + n) through every layer. */
static void forward_rows(model *m, const float *x, int r0, int n) {
    const float *in = x + (size_t)r0 * m->in_size;
    for (int l = 0; l < m->n_layers; l++) {
        layer *L = &m->layers[l];
        float *out = L->out + (size_t)r0 * L->out_size;
        long cnt = (long)n * L->out_size;
        switch (L->kind) {
        case LAYER_DENSE:
            dense_forward(out, in, m->weff + L->w_off, m->weff + L->b_off, n, L->in_size,
                          L->out_size);
            break;
        case LAYER_RELU:
            nn_relu_forward(out, in, cnt);
            break;
        case LAYER_QUANT:
            fixed_quantize_array(&L->quant, in, out, L->pass + (size_t)r0 * L->out_size, cnt);
            break;
        }
        in = out;
    }
}

const float *nn_forward_observed(model *m, const float *x, int B, const train_hooks *h) {
    NL_ASSERT(B >= 1 && B <= m->max_batch);
    if (h && h->observe) {
        /* layer by layer over the whole batch: the observer sees each
         * layer's full (B, in_size) input once */
        const float *in = x;
        for (int l = 0; l < m->n_layers; l++) {
            h->observe(h->ctx, m, l, in, B);
            layer *L = &m->layers[l];
            long cnt = (long)B * L->out_size;
            switch (L->kind) {
            case LAYER_DENSE:
                dense_forward(L->out, in, m->weff + L->w_off, m->weff + L->b_off, B,
                              L->in_size, L->out_size);
                break;
            case LAYER_RELU:
                nn_relu_forward(L->out, in, cnt);
                break;
            case LAYER_QUANT:
                fixed_quantize_array(&L->quant, in, L->out, L->pass, cnt);
                break;
            }
            in = L->out;
        }
    } else {
        for (int r0 = 0; r0 < B; r0 += NN_CHUNK)
            forward_rows(m, x, r0, B - r0 < NN_CHUNK ? B - r0 : NN_CHUNK);
    }
    return m->layers[m->n_layers - 1].out;
}

const float *model_forward(model *m, const float *x, int B) {
    return nn_forward_observed(m, x, B, NULL);
}

/* Backward of rows [r0, r0 + n) from the last layer down to layer `first`
 * (the first DENSE); accumulate = 0 for the first chunk overwrites the
 * dense gradients instead of adding to them. */
static void backward_rows(model *m, const float *x, const float *dlogits, int r0, int n,
                          int first, int accumulate) {
    /* g is dL/d(output of layer l) for these rows; RELU and QUANT work in
     * place on it (the gradient wrt their input has the same shape). */
    const float *g = dlogits + (size_t)r0 * m->out_size;
    int owned = 0; /* g points into one of our buffers (writable) */
    for (int l = m->n_layers - 1; l >= first; l--) {
        layer *L = &m->layers[l];
        const float *in = l > 0 ? m->layers[l - 1].out + (size_t)r0 * L->in_size
                                : x + (size_t)r0 * L->in_size;
        long cnt = (long)n * L->out_size;
        switch (L->kind) {
        case LAYER_DENSE: {
            /* din goes to the previous layer's dout slot; none for the
             * first parametric layer (saves a third of its work) */
            float *din = l > first ? m->layers[l - 1].dout + (size_t)r0 * L->in_size : NULL;
            nn_dense_backward_beta(din, m->grads + L->w_off, m->grads + L->b_off, g, in,
                                   m->weff + L->w_off, n, L->in_size, L->out_size, accumulate);
            g = din;
            owned = 1;
            break;
        }
        case LAYER_RELU:
        case LAYER_QUANT: {
            float *gw = (float *)g;
            if (!owned) { /* the last layer: copy dlogits once, never write it */
                gw = L->dout + (size_t)r0 * L->out_size;
                memcpy(gw, g, (size_t)cnt * sizeof(float));
                owned = 1;
            }
            if (L->kind == LAYER_RELU)
                nn_relu_backward(gw, L->out + (size_t)r0 * L->out_size, cnt);
            else
                nn_ste_backward(gw, L->pass + (size_t)r0 * L->out_size, cnt);
            g = gw;
            break;
        }
        }
    }
}

void model_backward(model *m, const float *x, const float *dlogits, int B) {
    NL_ASSERT(B >= 1 && B <= m->max_batch);
    /* Extra segments are not touched below: zero them (dense grads are
     * overwritten by the first chunk, so they need no zeroing pass). */
    for (int v = 0; v < m->n_views; v++)
        if (m->views[v].layer < 0)
            memset(m->grads + m->views[v].off, 0, (size_t)m->views[v].len * sizeof(float));
    /* Layers before the first DENSE have no parameters: no gradient needs
     * to flow into them, nor into the input. */
    int first = m->n_layers;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind == LAYER_DENSE) { first = l; break; }
    for (int r0 = 0; r0 < B; r0 += NN_CHUNK)
        backward_rows(m, x, dlogits, r0, B - r0 < NN_CHUNK ? B - r0 : NN_CHUNK, first, r0 > 0);
}
