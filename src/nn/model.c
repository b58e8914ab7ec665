/* model.c — the model: layer table with channels-last shape inference, one
 * flat parameter buffer with named views (weff and grads share the layout),
 * BatchNorm's moving statistics in a separate state buffer, activation
 * buffers sized for max_batch, forward and backward passes, BatchNorm folding.
 * Does not train (train.c) nor update weights (optim.c); the kernels are in
 * kernels.c and layers.c. Invariants: every buffer is allocated in
 * model_create; forward/backward allocate nothing; layer views (kernel then
 * bias, or gamma then beta) come first in layer order, extras after.
 * Batch-parallel passes (model_set_threads): the worker pool and its
 * scratch are created at the first parallel pass, not per step. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nn_internal.h"

/* Names as the YAML spells the types; also the default layer-name stems. */
static const char *const kind_names[LAYER_KIND_COUNT] = {
    [LAYER_DENSE] = "dense", [LAYER_RELU] = "relu", [LAYER_QUANT] = "quant",
    [LAYER_CONV1D] = "conv1d", [LAYER_CONV2D] = "conv2d",
    [LAYER_MAXPOOL1D] = "maxpool1d", [LAYER_MAXPOOL2D] = "maxpool2d",
    [LAYER_AVGPOOL1D] = "avgpool1d", [LAYER_AVGPOOL2D] = "avgpool2d",
    [LAYER_BATCHNORM] = "batchnorm", [LAYER_FLATTEN] = "flatten", [LAYER_DROPOUT] = "dropout",
    [LAYER_TANH] = "tanh", [LAYER_SIGMOID] = "sigmoid", [LAYER_HARD_TANH] = "hard_tanh",
    [LAYER_LEAKY_RELU] = "leaky_relu",
};

const char *layer_kind_name(int kind) {
    return kind >= 0 && kind < LAYER_KIND_COUNT ? kind_names[kind] : NULL;
}

int layer_has_kernel(int kind) {
    return kind == LAYER_DENSE || kind == LAYER_CONV1D || kind == LAYER_CONV2D;
}

static int is_conv(int kind) { return kind == LAYER_CONV1D || kind == LAYER_CONV2D; }
static int is_pool(int kind) {
    return kind == LAYER_MAXPOOL1D || kind == LAYER_MAXPOOL2D || kind == LAYER_AVGPOOL1D ||
           kind == LAYER_AVGPOOL2D;
}
/* Layers with trainable parameters (w_off/b_off). */
static int has_params(int kind) { return layer_has_kernel(kind) || kind == LAYER_BATCHNORM; }

int layer_kernel_rows(const layer *L) {
    if ((int)L->kind == LAYER_DENSE) return L->in_size;
    if (is_conv((int)L->kind)) return L->geom.kh * L->geom.kw * L->geom.c;
    return 0;
}

int layer_kernel_cols(const layer *L) {
    if ((int)L->kind == LAYER_DENSE) return L->out_size;
    if (is_conv((int)L->kind)) return L->geom.oc;
    return 0;
}

long layer_positions(const layer *L) {
    return is_conv((int)L->kind) ? (long)L->geom.oh * L->geom.ow : 1;
}

/* im2col scratch target per CONV layer: blocks of samples whose windows
 * take about this many floats (256 KiB: stays in L2 next to OpenBLAS's
 * packed panels; measured on the Fashion-MNIST CNN, 1 MiB blocks train 12%
 * slower, 64-256 KiB alike; one sample's windows if larger). */
enum { NN_COL_FLOATS = 1 << 16 };

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

static void pool_free(struct nn_pool *p);

void model_free(model *m) {
    if (!m) return;
    pool_free(m->pool);
    if (m->layers)
        for (int l = 0; l < m->n_layers; l++) {
            free(m->layers[l].out);
            free(m->layers[l].dout);
            free(m->layers[l].pass);
            free(m->layers[l].aux);
            free(m->layers[l].stat);
            free(m->layers[l].argmax);
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
    free(m->state);
    free(m->col);
    free(m->dcol);
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

/* BatchNorm moving statistics: mean 0, variance 1 (Keras's initial values). */
static void reset_state(model *m) {
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        if ((int)L->kind != LAYER_BATCHNORM) continue;
        for (int c = 0; c < L->out_c; c++) {
            m->state[L->s_off + c] = 0.0f;
            m->state[L->s_off + L->out_c + c] = 1.0f;
        }
    }
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

    /* Shapes, names and offsets. The running shape (H, W, C) starts at
     * (1, 1, in_size) or specs[0].in_shape; Dense and Flatten make it flat. */
    int counts[LAYER_KIND_COUNT] = {0};
    int width = in_size, max_width = in_size;
    int H = 1, W = 1, C = in_size;
    long off = 0, soff = 0, ncol = 0;
    for (int l = 0; l < n_specs; l++) {
        const layer_spec *sp = &specs[l];
        layer *L = &m->layers[l];
        const int kind = (int)sp->kind;
        L->kind = sp->kind;
        L->w_off = L->b_off = L->s_off = -1;
        if (!layer_kind_name(kind)) {
            nl_err(e, NL_ERR_CONFIG, "model: layer %d has unknown kind %d (known: 0 to %d)", l,
                   kind, LAYER_KIND_COUNT - 1);
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
            snprintf(L->name, sizeof L->name, "%s%d", kind_names[kind], counts[kind]);
        counts[kind]++;
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
        const int *is = sp->in_shape;
        if (is[0] || is[1] || is[2]) {
            if (is[0] < 1 || is[1] < 1 || is[2] < 1 || (long)is[0] * is[1] * is[2] != width) {
                nl_err(e, NL_ERR_CONFIG,
                       "model: layer '%s' has input shape (%d, %d, %d) but receives %d values per "
                       "sample; the shape's product must be %d (check model.input_shape)",
                       L->name, is[0], is[1], is[2], width, width);
                goto fail;
            }
            H = is[0]; W = is[1]; C = is[2];
        }
        if (l == 0) { m->in_h = H; m->in_w = W; m->in_c = C; }
        L->in_size = width;
        L->in_h = H; L->in_w = W; L->in_c = C;
        if (kind == LAYER_DENSE) {
            if (sp->units < 1) {
                nl_err(e, NL_ERR_CONFIG, "model: dense layer '%s' has units = %d; it needs >= 1",
                       L->name, sp->units);
                goto fail;
            }
            H = W = 1;
            C = sp->units;
            L->w_off = off;
            off += (long)L->in_size * sp->units;
            L->b_off = off;
            off += sp->units;
        } else if (is_conv(kind) || is_pool(kind)) {
            int d1 = kind == LAYER_CONV1D || kind == LAYER_MAXPOOL1D || kind == LAYER_AVGPOOL1D;
            const int *win = is_conv(kind) ? sp->kernel : sp->pool;
            int kh = d1 ? 1 : win[0], kw = d1 ? win[0] : win[1];
            int sh = d1 ? 1 : sp->strides[0], sw = d1 ? sp->strides[0] : sp->strides[1];
            if (sh == 0) sh = is_conv(kind) ? 1 : kh;
            if (sw == 0) sw = is_conv(kind) ? 1 : kw;
            int oc = is_conv(kind) ? sp->filters : C;
            if (d1 && H != 1) {
                nl_err(e, NL_ERR_CONFIG,
                       "model: %s layer '%s' needs 1-D input (steps, channels) but receives "
                       "(%d, %d, %d); flatten first or use the 2-D layer",
                       kind_names[kind], L->name, H, W, C);
                goto fail;
            }
            if (is_conv(kind) && sp->filters < 1) {
                nl_err(e, NL_ERR_CONFIG, "model: %s layer '%s' has filters = %d; it needs >= 1",
                       kind_names[kind], L->name, sp->filters);
                goto fail;
            }
            if (sp->padding != PAD_VALID && sp->padding != PAD_SAME) {
                nl_err(e, NL_ERR_CONFIG, "model: layer '%s' has padding %d (valid = 0, same = 1)",
                       L->name, (int)sp->padding);
                goto fail;
            }
            if (kh < 1 || kw < 1 || sh < 1 || sw < 1) {
                nl_err(e, NL_ERR_CONFIG,
                       "model: %s layer '%s': window %d x %d and strides %d x %d must be >= 1",
                       kind_names[kind], L->name, kh, kw, sh, sw);
                goto fail;
            }
            if (conv_geom_init(&L->geom, H, W, C, oc, kh, kw, sh, sw, sp->padding) != 0) {
                nl_err(e, NL_ERR_CONFIG,
                       "model: %s layer '%s': a %d x %d window with valid padding does not fit "
                       "its (%d, %d, %d) input; use padding: same or a smaller window%s",
                       kind_names[kind], L->name, kh, kw, H, W, C,
                       H == 1 && W == 1 ? " (a flat input: give model.input_shape)" : "");
                goto fail;
            }
            H = L->geom.oh; W = L->geom.ow; C = oc;
            if (is_conv(kind)) {
                L->w_off = off;
                off += (long)kh * kw * L->geom.c * oc;
                L->b_off = off;
                off += oc;
                long per = (long)L->geom.oh * L->geom.ow * kh * kw * L->geom.c;
                long S = NN_COL_FLOATS / per;
                if (S < 1) S = 1;
                if (S > max_batch) S = max_batch;
                if (S * per > ncol) ncol = S * per;
            }
        } else if (kind == LAYER_BATCHNORM) {
            if (!(sp->epsilon > 0) || !(sp->momentum >= 0 && sp->momentum < 1)) {
                nl_err(e, NL_ERR_CONFIG,
                       "model: batchnorm layer '%s' needs epsilon > 0 and momentum in [0, 1) "
                       "(got %g, %g; Keras uses 0.001 and 0.99)",
                       L->name, (double)sp->epsilon, (double)sp->momentum);
                goto fail;
            }
            L->epsilon = sp->epsilon;
            L->momentum = sp->momentum;
            L->w_off = off;
            off += C;
            L->b_off = off;
            off += C;
            L->s_off = soff;
            soff += 2L * C;
        } else if (kind == LAYER_FLATTEN) {
            H = W = 1;
            C = width;
        } else if (kind == LAYER_DROPOUT) {
            if (!(sp->rate >= 0 && sp->rate < 1)) {
                nl_err(e, NL_ERR_CONFIG, "model: dropout layer '%s' has rate %g; it must be in [0, 1)",
                       L->name, (double)sp->rate);
                goto fail;
            }
            L->rate = sp->rate;
        } else if (kind == LAYER_LEAKY_RELU) {
            if (!isfinite(sp->alpha)) {
                nl_err(e, NL_ERR_CONFIG, "model: leaky_relu layer '%s' needs a finite alpha", L->name);
                goto fail;
            }
            L->alpha = sp->alpha;
        } else if (kind == LAYER_QUANT) {
            L->quant = sp->quant;
        }
        L->out_h = H; L->out_w = W; L->out_c = C;
        L->out_size = H * W * C;
        if (has_params(kind)) {
            static const char *const sfx[2][2] = {{"kernel", "bias"}, {"gamma", "beta"}};
            int bn = kind == LAYER_BATCHNORM;
            long wl = bn ? C : (long)layer_kernel_rows(L) * layer_kernel_cols(L);
            long bl = bn ? C : layer_kernel_cols(L);
            char vn[96];
            snprintf(vn, sizeof vn, "%s/%s", L->name, sfx[bn][0]);
            if (add_view(m, vn, L->w_off, wl, l, e)) goto fail;
            snprintf(vn, sizeof vn, "%s/%s", L->name, sfx[bn][1]);
            if (add_view(m, vn, L->b_off, bl, l, e)) goto fail;
        }
        width = L->out_size;
        if (width > max_width) max_width = width;
    }
    m->out_size = width;
    m->n_state = soff;
    m->n_col = ncol;
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
        int kind = (int)L->kind;
        if (kind == LAYER_QUANT || kind == LAYER_DROPOUT) {
            L->pass = alloc_zero(mb * (size_t)L->out_size, 1);
            if (!L->pass) goto nomem;
        }
        if (kind == LAYER_BATCHNORM) {
            L->aux = alloc_zero(mb * (size_t)L->out_size, sizeof(float));
            L->stat = alloc_zero(2 * (size_t)L->out_c, sizeof(float));
            if (!L->aux || !L->stat) goto nomem;
        }
        if (kind == LAYER_MAXPOOL1D || kind == LAYER_MAXPOOL2D) {
            L->argmax = alloc_zero(mb * (size_t)L->out_size, sizeof(int32_t));
            if (!L->argmax) goto nomem;
        }
    }
    m->state = alloc_zero((size_t)m->n_state, sizeof(float));
    if (!m->state) goto nomem;
    reset_state(m);
    if (m->n_col > 0) {
        m->col = alloc_zero((size_t)m->n_col, sizeof(float));
        m->dcol = alloc_zero((size_t)m->n_col, sizeof(float));
        if (!m->col || !m->dcol) goto nomem;
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

/* The half-width of the uniform draw of a kernel (rows x cols) of L. */
static double init_limit(const layer *L, nn_init scheme) {
    double rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
    double window = (int)L->kind == LAYER_DENSE ? 1.0 : rows / (double)L->in_c;
    switch (scheme) {
    case NN_INIT_GLOROT_UNIFORM: return sqrt(6.0 / (rows + window * cols));
    case NN_INIT_LECUN_UNIFORM: return sqrt(3.0 / rows);
    case NN_INIT_PYTORCH: return 1.0 / sqrt(rows);
    case NN_INIT_HE_UNIFORM: break;
    }
    return sqrt(6.0 / rows);
}

void model_init_params(model *m, rng_t *r) { model_init_params_with(m, r, NN_INIT_HE_UNIFORM); }

void model_init_params_with(model *m, rng_t *r, nn_init scheme) {
    int dropout = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        dropout |= (int)L->kind == LAYER_DROPOUT;
        if ((int)L->kind == LAYER_BATCHNORM) {
            for (int c = 0; c < L->out_c; c++) {
                m->params[L->w_off + c] = 1.0f;
                m->params[L->b_off + c] = 0.0f;
            }
            continue;
        }
        if (!layer_has_kernel((int)L->kind)) continue;
        int rows = layer_kernel_rows(L), cols = layer_kernel_cols(L);
        double limit = init_limit(L, scheme);
        float *w = m->params + L->w_off, *b = m->params + L->b_off;
        long n = (long)rows * cols;
        for (long j = 0; j < n; j++) w[j] = (float)((2.0 * rng_uniform(r) - 1.0) * limit);
        if (scheme == NN_INIT_PYTORCH)
            for (int j = 0; j < cols; j++) b[j] = (float)((2.0 * rng_uniform(r) - 1.0) * limit);
        else
            memset(b, 0, (size_t)cols * sizeof(float));
    }
    reset_state(m);
    /* only models with Dropout draw one more number (others keep their streams) */
    if (dropout) rng_seed(&m->drop_rng, rng_next(r));
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
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        if (layer_has_kernel((int)L->kind))
            n += (long)layer_kernel_rows(L) * layer_kernel_cols(L) + layer_kernel_cols(L);
    }
    return n;
}

nl_status model_fold_batchnorm(const model *m, int bn, float *kernel, float *bias, nl_error *e) {
    if (bn < 1 || bn >= m->n_layers || (int)m->layers[bn].kind != LAYER_BATCHNORM ||
        !layer_has_kernel((int)m->layers[bn - 1].kind))
        return nl_err(e, NL_ERR_INVALID,
                      "fold batchnorm: layer %d (%s) is not a batchnorm directly after a dense or "
                      "conv layer; only that pair can be folded",
                      bn, bn >= 0 && bn < m->n_layers ? m->layers[bn].name : "?");
    const layer *B = &m->layers[bn], *P = &m->layers[bn - 1];
    int rows = layer_kernel_rows(P), cols = layer_kernel_cols(P);
    NL_ASSERT(cols == B->out_c);
    const float *gamma = m->weff + B->w_off, *beta = m->weff + B->b_off;
    const float *mean = m->state + B->s_off, *var = m->state + B->s_off + cols;
    const float *w = m->weff + P->w_off, *b = m->weff + P->b_off;
    for (int o = 0; o < cols; o++) {
        double sc = gamma[o] / sqrt((double)var[o] + B->epsilon);
        for (int i = 0; i < rows; i++)
            kernel[(long)i * cols + o] = (float)(w[(long)i * cols + o] * sc);
        bias[o] = (float)(((double)b[o] - mean[o]) * sc + beta[o]);
    }
    return NL_OK;
}

/* Rows per chunk of the forward and backward passes. A batch larger than
 * this runs through all layers chunk by chunk: the chunk's activations stay
 * in cache between layers, and OpenBLAS takes its unpacked small-matrix
 * kernels on the narrow layers (jet MLP at batch 1024: +15-25%). A model
 * with BatchNorm runs the whole batch at once (its statistics need it), and
 * so does one training with two or more Dropouts: each then draws its
 * masks for the whole batch before the next, the order the batch-parallel
 * passes use. */
enum { NN_CHUNK = 256 };

static int chunk_rows(const model *m, int B) {
    int dropouts = 0;
    for (int l = 0; l < m->n_layers; l++) {
        int kind = (int)m->layers[l].kind;
        if (kind == LAYER_BATCHNORM) return B;
        dropouts += kind == LAYER_DROPOUT && m->training && m->layers[l].rate > 0;
    }
    return dropouts > 1 ? B : NN_CHUNK;
}

/* Forward of layer l on rows [r0, r0 + n) of its input in. */
static void forward_layer(model *m, int l, const float *in, int r0, int n, float *col) {
    layer *L = &m->layers[l];
    float *out = L->out + (size_t)r0 * L->out_size;
    long cnt = (long)n * L->out_size;
    const int kind = (int)L->kind;
    switch (kind) {
    case LAYER_DENSE:
        dense_forward(out, in, m->weff + L->w_off, m->weff + L->b_off, n, L->in_size, L->out_size);
        break;
    case LAYER_RELU:
        nn_relu_forward(out, in, cnt);
        break;
    case LAYER_QUANT:
        fixed_quantize_array(&L->quant, in, out, L->pass + (size_t)r0 * L->out_size, cnt);
        break;
    case LAYER_CONV1D:
    case LAYER_CONV2D:
        conv_forward(out, in, m->weff + L->w_off, m->weff + L->b_off, n, &L->geom, col, m->n_col);
        break;
    case LAYER_MAXPOOL1D:
    case LAYER_MAXPOOL2D:
        maxpool_forward(out, L->argmax + (size_t)r0 * L->out_size, in, n, &L->geom);
        break;
    case LAYER_AVGPOOL1D:
    case LAYER_AVGPOOL2D:
        avgpool_forward(out, in, n, &L->geom);
        break;
    case LAYER_BATCHNORM:
        NL_ASSERT(r0 == 0 || !m->training); /* batch statistics need the whole batch */
        nn_bn_forward(out, L->aux + (size_t)r0 * L->out_size, L->stat, in, m->weff + L->w_off,
                      m->weff + L->b_off, m->state + L->s_off, (long)n * L->out_h * L->out_w,
                      L->out_c, L->epsilon, L->momentum, m->training);
        break;
    case LAYER_DROPOUT:
        if (m->training && L->rate > 0)
            nn_dropout_forward(out, L->pass + (size_t)r0 * L->out_size, in, cnt, L->rate,
                               &m->drop_rng);
        else
            memcpy(out, in, (size_t)cnt * sizeof *out);
        break;
    case LAYER_FLATTEN:
        memcpy(out, in, (size_t)cnt * sizeof *out);
        break;
    default:
        nn_act_forward(kind, out, in, cnt, L->alpha);
    }
}

/* Forward of rows [r0, r0 + n) through layers [la, lb). */
static void forward_range(model *m, const float *x, int r0, int n, float *col, int la, int lb) {
    const float *in = la == 0 ? x + (size_t)r0 * m->in_size
                              : m->layers[la - 1].out + (size_t)r0 * m->layers[la - 1].out_size;
    for (int l = la; l < lb; l++) {
        forward_layer(m, l, in, r0, n, col);
        in = m->layers[l].out + (size_t)r0 * m->layers[l].out_size;
    }
}

/* Forward of rows [r0, r0 + n) through every layer. */
static void forward_rows(model *m, const float *x, int r0, int n, float *col) {
    forward_range(m, x, r0, n, col, 0, m->n_layers);
}

/* Layers the batch-parallel passes cannot split by rows: BatchNorm (batch
 * statistics; its stat buffer is shared) and, in training, Dropout (one
 * mask stream in row order). The pool runs the layers between them on
 * slices and the caller runs these on the whole batch in between, so the
 * results are those of the serial pass. In the backward only BatchNorm
 * needs the whole batch (Dropout's backward is its mask, row by row). */
static int whole_batch_fwd(const model *m, int l) {
    int kind = (int)m->layers[l].kind;
    return kind == LAYER_BATCHNORM || (kind == LAYER_DROPOUT && m->training && m->layers[l].rate > 0);
}
static int whole_batch_bwd(const model *m, int l) { return (int)m->layers[l].kind == LAYER_BATCHNORM; }

/* Index of the first layer with parameters (n_layers if none). */
static int first_param_layer(const model *m) {
    for (int l = 0; l < m->n_layers; l++)
        if (has_params((int)m->layers[l].kind)) return l;
    return m->n_layers;
}

/* ---- batch-parallel passes ------------------------------------------------
 * A pool of n - 1 worker threads; the caller is thread 0. A job splits the
 * batch into k <= n contiguous slices (thread t: rows [B t / k, B (t+1) / k))
 * and every thread runs its slice through the job's layers (those between
 * BatchNorm and training Dropout layers; see pool_run), chunk by chunk, with
 * its own im2col scratch; in the backward each thread writes its own
 * gradient buffer (thread 0: m->grads) and the caller then adds buffers
 * 1..k-1 into m->grads in that order. Slices touch disjoint rows of every
 * activation buffer; weff is only read. One mutex and two condition
 * variables (no spinning: the machine's cores are shared). */
enum { NN_PAR_MIN_ROWS = 8, NN_PAR_MAX = 64 };

static void backward_rows(model *m, const float *x, const float *dlogits, int r0, int n,
                          int first, int lo, int hi, int accumulate, float *col, float *dcol,
                          float *grads);

typedef struct {
    struct nn_pool *p;
    int t;
} pool_arg;

struct nn_pool {
    int n;                       /* threads including the caller */
    pthread_t *tid;              /* [1..n) */
    pool_arg *args;              /* [1..n) */
    float **col, **dcol, **grads; /* per thread; [0] are the model's own */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;           /* job counter (workers wait for a change) */
    int pending, quit;
    /* the current job */
    model *m;
    int backward, B, k, first;
    int la, lb;                  /* the job's layers [la, lb) */
    int job, bn;                 /* JOB_*; the BatchNorm layer of a JOB_BN_* job */
    const float *x, *dlogits;
    /* BatchNorm over slices: per-thread sums (2 Cmax doubles each), their
     * totals (2 Cmax) and the input-gradient coefficients (3 Cmax floats) */
    double **acc, *tot;
    float *coef;
};

/* Pool jobs: the layers [la, lb) on each slice, or one piece of a
 * BatchNorm layer over each slice's rows (sums, centred squares,
 * normalization; gradient sums, input gradient). */
enum { JOB_LAYERS = 0, JOB_BN_SUM, JOB_BN_SQ, JOB_BN_NORM, JOB_BN_GSUM, JOB_BN_DIN };

/* The gradient of layer l's output, for rows from r0. */
static float *out_grad(const model *m, const float *dlogits, int l, int r0) {
    if (l == m->n_layers - 1) return (float *)dlogits + (size_t)r0 * m->out_size;
    return m->layers[l].dout + (size_t)r0 * m->layers[l].out_size;
}

/* Thread t's share of a BatchNorm job: samples [a, b) are rows
 * [a hw, b hw) of the layer's (rows, C) view. */
static void bn_part(const struct nn_pool *p, int t, int a, int b) {
    model *m = p->m;
    const layer *L = &m->layers[p->bn];
    const int C = L->out_c;
    const long N = (long)(b - a) * L->out_h * L->out_w;
    const float *in = (p->bn == 0 ? p->x : m->layers[p->bn - 1].out) + (size_t)a * L->in_size;
    float *xhat = L->aux + (size_t)a * L->out_size;
    double *acc = p->acc[t];
    switch (p->job) {
    case JOB_BN_SUM:
        memset(acc, 0, (size_t)C * sizeof *acc);
        nn_bn_sums(in, N, C, 0, C, acc);
        break;
    case JOB_BN_SQ:
        memset(acc, 0, (size_t)C * sizeof *acc);
        nn_bn_sqdevs(in, N, C, 0, C, L->stat, acc);
        break;
    case JOB_BN_NORM:
        nn_bn_normalize(L->out + (size_t)a * L->out_size, xhat, in, N, C, L->stat, m->weff + L->w_off,
                        m->weff + L->b_off);
        break;
    case JOB_BN_GSUM:
        memset(acc, 0, 2 * (size_t)C * sizeof *acc);
        nn_bn_grad_sums(out_grad(m, p->dlogits, p->bn, a), xhat, N, C, 0, C, acc, acc + C);
        break;
    case JOB_BN_DIN:
        nn_bn_input_grad(m->layers[p->bn - 1].dout + (size_t)a * L->in_size, out_grad(m, p->dlogits, p->bn, a),
                         xhat, N, C, 0, C, p->coef, p->coef + C, p->coef + 2 * C);
        break;
    }
}

static void pool_part(const struct nn_pool *p, int t) {
    if (t >= p->k) return;
    model *m = p->m;
    int a = (int)((long)p->B * t / p->k), b = (int)((long)p->B * (t + 1) / p->k);
    if (p->job != JOB_LAYERS) {
        bn_part(p, t, a, b);
        return;
    }
    for (int r = a; r < b; r += NN_CHUNK) {
        int n = b - r < NN_CHUNK ? b - r : NN_CHUNK;
        if (p->backward)
            backward_rows(m, p->x, p->dlogits, r, n, p->first, p->la, p->lb, r > a, p->col[t],
                          p->dcol[t], p->grads[t]);
        else
            forward_range(m, p->x, r, n, p->col[t], p->la, p->lb);
    }
}

static void *pool_main(void *arg) {
    const pool_arg *a = arg;
    struct nn_pool *p = a->p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool_part(p, a->t);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Stops and joins the workers, frees their scratch (NULL-safe). */
static void pool_free(struct nn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++) {
        if (p->args[t].p) pthread_join(p->tid[t], NULL);
        free(p->col[t]);
        free(p->dcol[t]);
        free(p->grads[t]);
    }
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    if (p->acc)
        for (int t = 0; t < p->n; t++) free(p->acc[t]);
    free(p->acc);
    free(p->tot);
    free(p->coef);
    free(p->tid);
    free(p->args);
    free(p->col);
    free(p->dcol);
    free(p->grads);
    free(p);
}

/* Floats of the layer gradients (layer views come first, extras after). */
static long layer_param_len(const model *m) {
    long end = 0;
    for (int v = 0; v < m->n_views; v++)
        if (m->views[v].layer >= 0 && m->views[v].off + m->views[v].len > end)
            end = m->views[v].off + m->views[v].len;
    return end;
}

/* n threads with their scratch; NULL if memory or a thread is refused
 * (the caller then runs serially). */
static struct nn_pool *pool_create(model *m, int n) {
    struct nn_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->n = n;
    p->m = m;
    p->tid = calloc((size_t)n, sizeof *p->tid);
    p->args = calloc((size_t)n, sizeof *p->args);
    p->col = calloc((size_t)n, sizeof *p->col);
    p->dcol = calloc((size_t)n, sizeof *p->dcol);
    p->grads = calloc((size_t)n, sizeof *p->grads);
    if (!p->tid || !p->args || !p->col || !p->dcol || !p->grads) {
        p->n = 1;
        pool_free(p);
        return NULL;
    }
    p->col[0] = m->col;
    p->dcol[0] = m->dcol;
    p->grads[0] = m->grads;
    int cmax = 0; /* the widest BatchNorm */
    for (int l = 0; l < m->n_layers; l++)
        if ((int)m->layers[l].kind == LAYER_BATCHNORM && m->layers[l].out_c > cmax) cmax = m->layers[l].out_c;
    if (cmax > 0) {
        p->acc = calloc((size_t)n, sizeof *p->acc);
        p->tot = calloc(2 * (size_t)cmax, sizeof *p->tot);
        p->coef = calloc(3 * (size_t)cmax, sizeof *p->coef);
        if (!p->acc || !p->tot || !p->coef) goto fail;
        for (int t = 0; t < n; t++)
            if (!(p->acc[t] = calloc(2 * (size_t)cmax, sizeof *p->acc[t]))) goto fail;
    }
    long glen = layer_param_len(m);
    for (int t = 1; t < n; t++) {
        if (m->n_col > 0) {
            p->col[t] = alloc_zero((size_t)m->n_col, sizeof(float));
            p->dcol[t] = alloc_zero((size_t)m->n_col, sizeof(float));
            if (!p->col[t] || !p->dcol[t]) goto fail;
        }
        p->grads[t] = alloc_zero((size_t)glen, sizeof(float));
        if (!p->grads[t]) goto fail;
    }
    for (int t = 1; t < n; t++) {
        p->args[t].t = t;
        p->args[t].p = p;
        if (pthread_create(&p->tid[t], NULL, pool_main, &p->args[t]) != 0) {
            p->args[t].p = NULL; /* not started: not joined */
            goto fail;
        }
    }
    return p;
fail:
    pool_free(p);
    return NULL;
}

/* m->grads[0, len) += g, vectorised. */
NN_HOT
static void add_into(float *restrict dst, const float *restrict g, long len) {
    for (long j = 0; j < len; j++) dst[j] += g[j];
}

/* Threads for a pass over B rows (1 = serial; see model_set_threads). */
static int pass_threads(const model *m, int B) {
    if (m->threads == 1 || (m->threads <= 0 && m->n_col == 0)) return 1;
    int t = m->threads > 0 ? m->threads
            : m->run_threads > 0 ? m->run_threads : openblas_get_num_threads();
    if (t > B / NN_PAR_MIN_ROWS) t = B / NN_PAR_MIN_ROWS;
    if (t > NN_PAR_MAX) t = NN_PAR_MAX;
    if (t < 2) return 1;
    return t;
}

/* One job on the pool: every thread runs its slice of the batch through
 * layers [la, lb) (JOB_LAYERS) or its rows of BatchNorm layer la (JOB_BN_*);
 * returns when all are done. */
static void pool_job(model *m, int k, int job, int backward, const float *x, const float *dlogits,
                     int B, int first, int la, int lb) {
    struct nn_pool *p = m->pool;
    pthread_mutex_lock(&p->mu);
    p->job = job;
    p->bn = la;
    p->backward = backward;
    p->B = B;
    p->k = k;
    p->first = first;
    p->la = la;
    p->lb = lb;
    p->x = x;
    p->dlogits = dlogits;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    pool_part(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* BatchNorm layer b over the whole batch, its rows split over the pool:
 * per-thread double sums added in thread order (so a given thread count
 * is deterministic; it differs from the serial pass by summation order),
 * the statistics on the caller, the normalization in slices. */
static void bn_forward_pool(model *m, int k, const float *x, int B, int b) {
    struct nn_pool *p = m->pool;
    layer *L = &m->layers[b];
    const int C = L->out_c;
    const long N = (long)B * L->out_h * L->out_w;
    if (m->training) {
        pool_job(m, k, JOB_BN_SUM, 0, x, NULL, B, 0, b, b + 1);
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int t = 0; t < k; t++) s += p->acc[t][c];
            L->stat[c] = (float)(s / (double)N);
        }
        pool_job(m, k, JOB_BN_SQ, 0, x, NULL, B, 0, b, b + 1);
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int t = 0; t < k; t++) s += p->acc[t][c];
            p->tot[c] = s;
        }
        nn_bn_finish(L->stat, m->state + L->s_off, C, 0, C, p->tot, N, L->epsilon, L->momentum);
    } else {
        nn_bn_eval_stat(L->stat, m->state + L->s_off, C, L->epsilon);
    }
    pool_job(m, k, JOB_BN_NORM, 0, x, NULL, B, 0, b, b + 1);
}

/* Its backward: gradient sums per slice, added in thread order on the
 * caller into gamma's and beta's gradients (m->grads; the other threads'
 * buffers stay 0 there), then the input gradient in slices. */
static void bn_backward_pool(model *m, int k, const float *x, const float *dlogits, int B, int b,
                             int first) {
    struct nn_pool *p = m->pool;
    layer *L = &m->layers[b];
    const int C = L->out_c;
    const long N = (long)B * L->out_h * L->out_w;
    pool_job(m, k, JOB_BN_GSUM, 1, x, dlogits, B, first, b, b + 1);
    double *sg = p->tot, *sgx = p->tot + C;
    for (int c = 0; c < C; c++) {
        double s = 0, sx = 0;
        for (int t = 0; t < k; t++) {
            s += p->acc[t][c];
            sx += p->acc[t][C + c];
        }
        sg[c] = s;
        sgx[c] = sx;
        m->grads[L->b_off + c] = (float)s;
        m->grads[L->w_off + c] = (float)sx;
    }
    if (b <= first) return;
    nn_bn_grad_coefs(sg, sgx, L->stat, m->weff + L->w_off, N, C, 0, C, m->training, p->coef, p->coef + C,
                     p->coef + 2 * C);
    pool_job(m, k, JOB_BN_DIN, 1, x, dlogits, B, first, b, b + 1);
}

/* Runs a forward (backward = 0) or backward pass on the pool if this model
 * and batch take one; returns 0 (nothing done) otherwise. The layers
 * between whole-batch layers (whole_batch_fwd/bwd) go to the pool as one
 * job each; the caller runs the whole-batch layers in between. */
static int pool_run(model *m, int backward, const float *x, const float *dlogits, int B,
                    int first) {
    int k = pass_threads(m, B);
    if (k < 2) return 0;
    if (!m->pool || m->pool->n < k) {
        pool_free(m->pool);
        m->pool = pool_create(m, k);
        if (!m->pool) return 0;
    }
    int blas = openblas_get_num_threads();
    if (blas > 1) openblas_set_num_threads(1);
    const int L = m->n_layers;
    if (!backward) {
        for (int la = 0; la < L;) {
            int lb = la;
            while (lb < L && !whole_batch_fwd(m, lb)) lb++;
            if (lb > la) pool_job(m, k, JOB_LAYERS, 0, x, NULL, B, first, la, lb);
            if (lb < L && (int)m->layers[lb].kind == LAYER_BATCHNORM) bn_forward_pool(m, k, x, B, lb);
            else if (lb < L) forward_range(m, x, 0, B, m->col, lb, lb + 1); /* Dropout */
            la = lb + 1;
        }
    } else {
        /* from the top down to `first`; a whole-batch layer b writes its
         * input gradient (layers[b - 1].dout) for the job below it */
        for (int hi = L; hi > first;) {
            int lo = hi;
            while (lo > first && !whole_batch_bwd(m, lo - 1)) lo--;
            if (hi > lo) pool_job(m, k, JOB_LAYERS, 1, x, dlogits, B, first, lo, hi);
            if (lo <= first) break;
            bn_backward_pool(m, k, x, dlogits, B, lo - 1, first);
            hi = lo - 1;
        }
    }
    if (blas > 1) openblas_set_num_threads(blas);
    if (backward && first < L) {
        long len = layer_param_len(m);
        for (int t = 1; t < k; t++) add_into(m->grads, m->pool->grads[t], len);
    }
    return 1;
}

void model_set_threads(model *m, int n) {
    m->threads = n < 0 ? 0 : n;
}

const float *nn_forward_observed(model *m, const float *x, int B, const train_hooks *h) {
    NL_ASSERT(B >= 1 && B <= m->max_batch);
    if (h && h->observe) {
        /* layer by layer over the whole batch: the observer sees each
         * layer's full (B, in_size) input once */
        const float *in = x;
        for (int l = 0; l < m->n_layers; l++) {
            h->observe(h->ctx, m, l, in, B);
            forward_layer(m, l, in, 0, B, m->col);
            in = m->layers[l].out;
        }
    } else if (!pool_run(m, 0, x, NULL, B, 0)) {
        int ch = chunk_rows(m, B);
        for (int r0 = 0; r0 < B; r0 += ch)
            forward_rows(m, x, r0, B - r0 < ch ? B - r0 : ch, m->col);
    }
    return m->layers[m->n_layers - 1].out;
}

const float *model_forward(model *m, const float *x, int B) {
    return nn_forward_observed(m, x, B, NULL);
}

/* Backward of rows [r0, r0 + n) from the last layer down to layer `first`
 * (the first with parameters); accumulate = 0 for the first chunk
 * overwrites the parameter gradients instead of adding to them. */
static void backward_rows(model *m, const float *x, const float *dlogits, int r0, int n,
                          int first, int lo, int hi, int accumulate, float *col, float *dcol,
                          float *grads) {
    /* g is dL/d(output of layer l) for these rows; elementwise layers work
     * in place on it (the gradient wrt their input has the same shape),
     * the others write it into the previous layer's dout slot. Below the
     * top layer, the gradient of layer hi - 1's output is already in its
     * dout slot (written by layer hi). */
    const int top = hi == m->n_layers;
    const float *g = top ? dlogits + (size_t)r0 * m->out_size
                         : m->layers[hi - 1].dout + (size_t)r0 * m->layers[hi - 1].out_size;
    int owned = !top; /* g points into one of our buffers (writable) */
    for (int l = hi - 1; l >= lo && l >= first; l--) {
        layer *L = &m->layers[l];
        const int kind = (int)L->kind;
        const float *in = l > 0 ? m->layers[l - 1].out + (size_t)r0 * L->in_size
                                : x + (size_t)r0 * L->in_size;
        long cnt = (long)n * L->out_size;
        /* the previous layer's dout slot; none for the first parametric
         * layer (saves a third of its work) */
        float *din = l > first ? m->layers[l - 1].dout + (size_t)r0 * L->in_size : NULL;
        switch (kind) {
        case LAYER_DENSE:
            nn_dense_backward_beta(din, grads + L->w_off, grads + L->b_off, g, in,
                                   m->weff + L->w_off, n, L->in_size, L->out_size, accumulate);
            g = din;
            owned = 1;
            continue;
        case LAYER_CONV1D:
        case LAYER_CONV2D:
            conv_backward(din, grads + L->w_off, grads + L->b_off, g, in, m->weff + L->w_off,
                          n, &L->geom, col, dcol, m->n_col, accumulate);
            g = din;
            owned = 1;
            continue;
        case LAYER_BATCHNORM:
            nn_bn_backward(din, grads + L->w_off, grads + L->b_off, g,
                           L->aux + (size_t)r0 * L->out_size, L->stat, m->weff + L->w_off,
                           (long)n * L->out_h * L->out_w, L->out_c, m->training, accumulate);
            g = din;
            owned = 1;
            continue;
        case LAYER_MAXPOOL1D:
        case LAYER_MAXPOOL2D:
            NL_ASSERT(din != NULL);
            maxpool_backward(din, g, L->argmax + (size_t)r0 * L->out_size, n, &L->geom);
            g = din;
            owned = 1;
            continue;
        case LAYER_AVGPOOL1D:
        case LAYER_AVGPOOL2D:
            NL_ASSERT(din != NULL);
            avgpool_backward(din, g, n, &L->geom);
            g = din;
            owned = 1;
            continue;
        case LAYER_FLATTEN:
            continue; /* same values, same gradient */
        case LAYER_DROPOUT:
            if (!m->training || L->rate <= 0) continue;
            break;
        default:
            break;
        }
        /* elementwise, in place */
        float *gw = (float *)g;
        if (!owned) { /* the last layer: copy dlogits once, never write it */
            gw = L->dout + (size_t)r0 * L->out_size;
            memcpy(gw, g, (size_t)cnt * sizeof(float));
            owned = 1;
        }
        const float *out = L->out + (size_t)r0 * L->out_size;
        if (kind == LAYER_RELU)
            nn_relu_backward(gw, out, cnt);
        else if (kind == LAYER_QUANT)
            nn_ste_backward(gw, L->pass + (size_t)r0 * L->out_size, cnt);
        else if (kind == LAYER_DROPOUT)
            nn_dropout_backward(gw, L->pass + (size_t)r0 * L->out_size, cnt, L->rate);
        else
            nn_act_backward(kind, gw, in, out, cnt, L->alpha);
        g = gw;
    }
    /* a whole-batch layer below reads the gradient of its output from its
     * dout slot; an elementwise bottom layer left it where g points */
    if (lo > first) {
        float *slot = m->layers[lo - 1].dout + (size_t)r0 * m->layers[lo - 1].out_size;
        if (g != slot) memcpy(slot, g, (size_t)n * m->layers[lo - 1].out_size * sizeof(float));
    }
}

void model_backward(model *m, const float *x, const float *dlogits, int B) {
    NL_ASSERT(B >= 1 && B <= m->max_batch);
    /* Extra segments are not touched below: zero them (layer gradients are
     * overwritten by the first chunk, so they need no zeroing pass). */
    for (int v = 0; v < m->n_views; v++)
        if (m->views[v].layer < 0)
            memset(m->grads + m->views[v].off, 0, (size_t)m->views[v].len * sizeof(float));
    /* Layers before the first with parameters: no gradient needs to flow
     * into them, nor into the input. */
    int first = first_param_layer(m);
    if (pool_run(m, 1, x, dlogits, B, first)) return;
    int ch = chunk_rows(m, B);
    for (int r0 = 0; r0 < B; r0 += ch)
        backward_rows(m, x, dlogits, r0, B - r0 < ch ? B - r0 : ch, first, first, m->n_layers, r0 > 0,
                      m->col, m->dcol, m->grads);
}
