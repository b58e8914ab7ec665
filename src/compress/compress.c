/* compress.c — the compress object: model specs with data quantizers, the
 * pruner registry, the train hooks that write W_eff and map gradients back,
 * and the per-layer report (sparsity, bits, EBOPs).
 *
 * W_eff = Q(P(W)) (pruning_first) or P(Q(W)); bias Q_b(b). P is the
 * identity before the main stage, the method in it, the frozen 0/1 mask
 * after. Q is per-tensor fixed point with a straight-through estimator
 * (gradient passes where the quantizer's input is inside the range).
 * Deliberately not here: the stage machine (stages.c) and the methods'
 * math (one file each). Hooks allocate nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"
#include "compress/quant_internal.h"

/* ---- registry ------------------------------------------------------------ */

/* Indexed by prune_method (config.h): every method has an entry. */
static const prune_ops *const registry[] = {
    [PRUNE_PDP] = &prune_pdp_ops,
    [PRUNE_MAGNITUDE] = &prune_magnitude_ops,
    [PRUNE_CS] = &prune_cs_ops,
    [PRUNE_DST] = &prune_dst_ops,
    [PRUNE_AUTOSPARSE] = &prune_autosparse_ops,
    [PRUNE_WANDA] = &prune_wanda_ops,
    [PRUNE_ACTIVATION] = &prune_activation_ops,
    [PRUNE_MDMM] = &prune_mdmm_ops,
};
#define N_METHODS ((int)(sizeof registry / sizeof registry[0]))

static nl_status lookup_method(prune_method pm, const prune_ops **out, nl_error *e) {
    int k = (int)pm;
    if (k < 0 || k >= N_METHODS)
        return nl_err(e, NL_ERR_CONFIG, "pruning_method %d is unknown (known: pdp, magnitude, "
                      "cs, dst, autosparse, wanda, activation_pruning, mdmm)", k);
    NL_ASSERT(registry[k] != NULL); /* a method added to config.h needs its line here */
    *out = registry[k];
    return NL_OK;
}

/* hls4ml's default precision, reported for tensors we do not quantize. */
static fixed_spec default_spec(void) {
    fixed_spec s = {.k = 1, .i = 5, .f = 10, .overflow = FX_WRAP, .round = FX_TRN};
    return s;
}

/* Training clips where inference would wrap (ALGORITHMS.md): the clipped
 * weights are in range, so exporting them gives the same values in HLS. */
static fixed_spec training_spec(fixed_spec s) {
    if (s.overflow == FX_WRAP) s.overflow = FX_SAT;
    else if (s.overflow == FX_WRAP_SM) s.overflow = s.k ? FX_SAT_SYM : FX_SAT;
    return s;
}

/* ---- model specs ----------------------------------------------------------- */

/* Layers whose kernel compression prunes and quantizes: Dense and Conv
 * (a conv kernel is a (kh kw cin, cout) matrix, see nn.h). */
static int cm_has_kernel(layer_kind kind) { return layer_has_kernel((int)kind); }

/* A data quantizer named "<layer><suffix>". */
static layer_spec quant_spec(const cfg_quant *q, const char *layer, const char *suffix) {
    layer_spec qs;
    memset(&qs, 0, sizeof qs);
    qs.kind = LAYER_QUANT;
    qs.quant = q->data;
    snprintf(qs.name, sizeof qs.name, "%.55s%s", layer, suffix);
    return qs;
}

nl_status compress_model_specs(const cfg_layer *layers, int n, int n_classes,
                               const cfg_quant *q, layer_spec **out, int *n_out, nl_error *e) {
    *out = NULL;
    *n_out = 0;
    int last_dense = -1;
    for (int j = 0; j < n; j++)
        if (layers[j].type == CFG_LAYER_DENSE) last_dense = j;
    if (n < 1 || last_dense < 0)
        return nl_err(e, NL_ERR_CONFIG,
                      "model.layers: the model needs at least one dense layer (the last one "
                      "gives the class scores)");
    int qin = q && q->enable_quantization && q->quantize_input;
    int qout = q && q->enable_quantization && q->quantize_output;
    int cap = n * 3;
    layer_spec *s = calloc((size_t)cap, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "model specs: out of memory");
    int k = 0, nd = 0, nr = 0, nk[LAYER_KIND_COUNT] = {0};
    for (int j = 0; j < n; j++) {
        const cfg_layer *c = &layers[j];
        layer_spec sp;
        memset(&sp, 0, sizeof sp);
        if (c->type == CFG_LAYER_DENSE) {
            sp.kind = LAYER_DENSE;
            if (c->name[0]) snprintf(sp.name, sizeof sp.name, "%s", c->name);
            else snprintf(sp.name, sizeof sp.name, "dense%d", nd);
            nd++;
            sp.units = c->units;
            if (j == last_dense) {
                if (n_classes < 1 && sp.units == 0) {
                    free(s);
                    return nl_err(e, NL_ERR_CONFIG,
                                  "model.layers[%d] ('%s'): units: 0 means the number of classes, "
                                  "but it is unknown; give units explicitly",
                                  j, sp.name);
                }
                if (sp.units == 0) sp.units = n_classes;
                else if (n_classes >= 1 && sp.units != n_classes) {
                    free(s);
                    return nl_err(e, NL_ERR_CONFIG,
                                  "model.layers[%d] ('%s'): the last dense layer has units: %d "
                                  "but the data has %d classes; set units: %d (or 0 for the "
                                  "number of classes)",
                                  j, sp.name, c->units, n_classes, n_classes);
                }
            } else if (sp.units < 1) {
                free(s);
                return nl_err(e, NL_ERR_CONFIG,
                              "model.layers[%d] ('%s'): units must be >= 1 (got %d); only the "
                              "last dense layer may use 0 (= number of classes)",
                              j, sp.name, c->units);
            }
            if (qin) {
                layer_spec qs;
                memset(&qs, 0, sizeof qs);
                qs.kind = LAYER_QUANT;
                qs.quant = q->data;
                snprintf(qs.name, sizeof qs.name, "%.55s_qin", sp.name);
                s[k++] = qs;
            }
            s[k++] = sp;
            if (qout) {
                layer_spec qs;
                memset(&qs, 0, sizeof qs);
                qs.kind = LAYER_QUANT;
                qs.quant = q->data;
                snprintf(qs.name, sizeof qs.name, "%.55s_qout", sp.name);
                s[k++] = qs;
            }
        } else if (c->type == CFG_LAYER_RELU) {
            sp.kind = LAYER_RELU;
            if (c->name[0]) snprintf(sp.name, sizeof sp.name, "%s", c->name);
            else snprintf(sp.name, sizeof sp.name, "relu%d", nr);
            nr++;
            s[k++] = sp;
        } else if ((int)c->type > CFG_LAYER_RELU && (int)c->type <= CFG_LAYER_LEAKY_RELU) {
            /* the layers of layers.md: cfg types 2.. map to nn kinds 3.. in order */
            int kind = LAYER_CONV1D + (int)c->type - CFG_LAYER_CONV1D;
            sp.kind = (layer_kind)kind;
            if (c->name[0]) snprintf(sp.name, sizeof sp.name, "%s", c->name);
            else snprintf(sp.name, sizeof sp.name, "%s%d", layer_kind_name(kind), nk[kind]);
            nk[kind]++;
            sp.filters = c->filters;
            memcpy(sp.kernel, c->kernel_size, sizeof sp.kernel);
            memcpy(sp.strides, c->strides, sizeof sp.strides);
            memcpy(sp.pool, c->pool_size, sizeof sp.pool);
            sp.padding = c->padding == CFG_PAD_SAME ? PAD_SAME : PAD_VALID;
            sp.rate = (float)c->rate;
            sp.alpha = (float)c->alpha;
            sp.momentum = (float)c->momentum;
            sp.epsilon = (float)c->epsilon;
            int conv = layer_has_kernel(kind);
            if (conv && qin) s[k++] = quant_spec(q, sp.name, "_qin");
            s[k++] = sp;
            if (conv && qout) s[k++] = quant_spec(q, sp.name, "_qout");
        } else {
            free(s);
            return nl_err(e, NL_ERR_CONFIG, "model.layers[%d]: unknown layer type %d", j,
                          (int)c->type);
        }
    }
    /* model.input_shape travels on the first spec (nn applies it there) */
    memcpy(s[0].in_shape, layers[0].input_shape, sizeof s[0].in_shape);
    nl_status qst = cq_model_specs(&s, &k, q, e); /* layer_specific, ReLU quantizers */
    if (qst != NL_OK) {
        free(s);
        return qst;
    }
    *out = s;
    *n_out = k;
    return NL_OK;
}

nl_status compress_plan_params(const layer_spec *specs, int n_specs, int in_size,
                               const cfg_pruning *p, char ***names, long **lens, int *n,
                               nl_error *e) {
    *names = NULL;
    *lens = NULL;
    *n = 0;
    if (!p || !p->enable_pruning) return NL_OK;
    const prune_ops *ops = NULL;
    nl_status st = lookup_method(p->method, &ops, e);
    if (st || !ops->plan) return st;
    return ops->plan(specs, n_specs, in_size, p, names, lens, n, e);
}

/* ---- create / free ----------------------------------------------------------- */

void compress_free(compress *c) {
    if (!c) return;
    if (c->ops && c->ops->free) c->ops->free(c);
    cq_free(c);
    cd_free(c);
    for (int l = 0; l < c->n_layers; l++) {
        free(c->layers[l].mask);
        free(c->layers[l].tmp);
        free(c->layers[l].inr);
        free(c->layers[l].binr);
        free(c->layers[l].dead);
    }
    free(c->layers);
    free(c->snap);
    free(c);
}

/* The QUANT layer feeding layer li through ReLUs, or -1. */
static int quant_before(const model *m, int li) {
    for (int k = li - 1; k >= 0; k--) {
        if (m->layers[k].kind == LAYER_QUANT) return k;
        if (m->layers[k].kind != LAYER_RELU) return -1;
    }
    return -1;
}

compress *compress_create(model *m, const cfg_pruning *p, const cfg_quant *q,
                          const cfg_training *t, nl_error *e) {
    compress *c = calloc(1, sizeof *c);
    if (!c) {
        nl_err(e, NL_ERR_NOMEM, "compress: out of memory");
        return NULL;
    }
    c->m = m;
    c->p = *p;
    c->q = *q;
    c->t = *t;
    c->pruning = p->enable_pruning;
    c->quantization = q->enable_quantization;
    c->stage = STAGE_PRETRAIN;
    if (c->pruning && lookup_method(p->method, &c->ops, e) != NL_OK) goto fail;
    /* Every disabled name must be a layer of the model. */
    for (int d = 0; d < p->n_disable; d++) {
        int found = 0;
        for (int l = 0; l < m->n_layers && !found; l++)
            found = strcmp(m->layers[l].name, p->disable_layers[d]) == 0;
        if (!found) {
            sbuf names = {0};
            for (int l = 0; l < m->n_layers; l++)
                if (cm_has_kernel(m->layers[l].kind))
                    sbuf_printf(&names, "%s%s", names.len ? ", " : "", m->layers[l].name);
            nl_err(e, NL_ERR_CONFIG,
                   "pruning_parameters.disable_pruning_for_layers: no layer is named '%s' "
                   "(dense and conv layers: %s)",
                   p->disable_layers[d], names.s ? names.s : "none");
            sbuf_free(&names);
            goto fail;
        }
    }
    for (int l = 0; l < m->n_layers; l++) c->n_layers += cm_has_kernel(m->layers[l].kind);
    c->layers = calloc((size_t)c->n_layers + 1, sizeof *c->layers);
    if (!c->layers) goto nomem;
    int li = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ml = &m->layers[l];
        if (!cm_has_kernel(ml->kind)) continue;
        cl_layer *L = &c->layers[li++];
        L->layer = l;
        L->in = layer_kernel_rows(ml);  /* conv: kh kw cin */
        L->out = layer_kernel_cols(ml); /* conv: cout */
        L->n = (long)L->in * L->out;
        L->w_off = ml->w_off;
        L->b_off = ml->b_off;
        L->prunable = c->pruning;   /* Dense and conv kernels alike, every method */
        for (int d = 0; d < p->n_disable; d++)
            if (strcmp(ml->name, p->disable_layers[d]) == 0) L->prunable = 0;
        L->mask = malloc((size_t)L->n * sizeof *L->mask);
        L->tmp = malloc((size_t)L->n * sizeof *L->tmp);
        L->inr = malloc((size_t)L->n);
        L->binr = malloc((size_t)L->out);
        L->dead = calloc((size_t)L->out, 1);
        if (!L->mask || !L->tmp || !L->inr || !L->binr || !L->dead) goto nomem;
        for (long j = 0; j < L->n; j++) L->mask[j] = 1.0f;
        L->w_spec = c->quantization ? q->weight : default_spec();
        L->b_spec = c->quantization ? q->bias : default_spec();
        L->w_train = training_spec(L->w_spec);
        L->b_train = training_spec(L->b_spec);
        int qb = quant_before(m, l);
        L->in_quantized = qb >= 0;
        L->in_spec = qb >= 0 ? m->layers[qb].quant : default_spec();
        L->out_quantized = l + 1 < m->n_layers && m->layers[l + 1].kind == LAYER_QUANT;
        L->out_spec = L->out_quantized ? m->layers[l + 1].quant : default_spec();
    }
    if (cq_init(c, e) != NL_OK) goto fail;
    if (c->ops && c->ops->init && c->ops->init(c, e) != NL_OK) goto fail;
    return c;
nomem:
    nl_err(e, NL_ERR_NOMEM, "compress: out of memory for the masks of %d dense layers",
           c->n_layers);
fail:
    compress_free(c);
    return NULL;
}

/* ---- structured pruning: a removed unit takes its bias along --------------- */

int cm_structured(const compress *c) {
    return c->pruning && ((c->p.method == PRUNE_PDP && c->p.structured_pruning) ||
                          c->p.method == PRUNE_ACTIVATION);
}

void cm_freeze_units(compress *c) {
    if (!cm_structured(c)) return;
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        if (!L->prunable) continue;
        for (int o = 0; o < L->out; o++) {
            int dead = 1;
            for (int i = 0; i < L->in && dead; i++) dead = L->mask[(long)i * L->out + o] == 0.0f;
            L->dead[o] = (unsigned char)dead;
            if (dead) c->m->params[L->b_off + o] = 0.0f;
        }
    }
}

/* ---- the hooks ---------------------------------------------------------------- */

/* Which P applies to layer L now. */
enum { P_IDENTITY, P_METHOD, P_FROZEN };
static int p_kind(const compress *c, const cl_layer *L) {
    if (!L->prunable) return P_IDENTITY;
    if (c->frozen) return P_FROZEN;
    if (c->stage == STAGE_MAIN && c->ops && c->ops->forward) return P_METHOD;
    return P_IDENTITY;
}

static void apply_p(compress *c, int li, const float *w, float *out) {
    cl_layer *L = &c->layers[li];
    switch (p_kind(c, L)) {
    case P_METHOD: c->ops->forward(c, li, w, out); break;
    case P_FROZEN:
        for (long j = 0; j < L->n; j++) out[j] = L->mask[j] * w[j];
        break;
    default:
        if (out != w) memcpy(out, w, (size_t)L->n * sizeof *out);
    }
}

static void backward_p(compress *c, int li, const float *w, float *g) {
    cl_layer *L = &c->layers[li];
    switch (p_kind(c, L)) {
    case P_METHOD:
        if (c->ops->backward) c->ops->backward(c, li, w, g);
        break;
    case P_FROZEN:
        for (long j = 0; j < L->n; j++) g[j] *= L->mask[j];
        break;
    default: break;
    }
}

void cm_pre_forward(compress *c) {
    model *m = c->m;
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        const float *w = m->params + L->w_off;
        float *we = m->weff + L->w_off;
        if (!c->quantization) {
            apply_p(c, li, w, we);
        } else if (c->t.pruning_first) {
            apply_p(c, li, w, L->tmp);
            cq_weight_forward(c, li, L->tmp, we);
        } else {
            cq_weight_forward(c, li, w, L->tmp);
            apply_p(c, li, L->tmp, we);
        }
        const float *b = m->params + L->b_off;
        float *be = m->weff + L->b_off;
        if (c->quantization) cq_bias_forward(c, li, b, be);
        else memcpy(be, b, (size_t)L->out * sizeof *be);
        if (p_kind(c, L) == P_FROZEN) /* a removed unit's bias is removed with it */
            for (int o = 0; o < L->out; o++)
                if (L->dead[o]) be[o] = 0.0f;
    }
    /* A method's own segments, and parameters of layers without a kernel
     * (BatchNorm's gamma and beta), are read as they are. */
    for (int v = 0; v < m->n_views; v++)
        if (m->views[v].layer < 0 || !cm_has_kernel(m->layers[m->views[v].layer].kind))
            memcpy(m->weff + m->views[v].off, m->params + m->views[v].off,
                   (size_t)m->views[v].len * sizeof(float));
}

static void hook_pre_forward(void *ctx, model *m) {
    (void)m;
    cm_pre_forward(ctx);
}

static float hook_post_backward(void *ctx, model *m) {
    compress *c = ctx;
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        float *g = m->grads + L->w_off;
        if (!c->quantization) {
            backward_p(c, li, m->params + L->w_off, g);
        } else if (c->t.pruning_first) {
            cq_weight_backward(c, li, L->tmp, m->weff + L->w_off, g);
            backward_p(c, li, m->params + L->w_off, g);
        } else {
            backward_p(c, li, L->tmp, g);
            cq_weight_backward(c, li, m->params + L->w_off, L->tmp, g);
        }
        if (c->quantization)
            cq_bias_backward(c, li, m->params + L->b_off, m->weff + L->b_off,
                             m->grads + L->b_off);
        if (p_kind(c, L) == P_FROZEN)
            for (int o = 0; o < L->out; o++)
                if (L->dead[o]) m->grads[L->b_off + o] = 0.0f;
    }
    float extra = cq_extra_loss(c); /* HGQ's bit-width losses */
    if (c->stage == STAGE_MAIN && !c->frozen && c->pruning && c->ops && c->ops->extra_loss)
        extra += c->ops->extra_loss(c);
    return extra;
}

static void hook_observe(void *ctx, const model *m, int layer, const float *in, int B) {
    (void)m;
    compress *c = ctx;
    if (c->stage == STAGE_MAIN && !c->frozen && c->pruning && c->ops && c->ops->observe)
        c->ops->observe(c, layer, in, B);
}

static void hook_post_step(void *ctx, model *m) {
    compress *c = ctx;
    if (c->stage == STAGE_MAIN && !c->frozen && c->ops && c->ops->post_step) c->ops->post_step(c);
    /* Adam's momentum would move a removed unit's bias: hold it at 0 */
    for (int li = 0; c->frozen && li < c->n_layers; li++) {
        const cl_layer *L = &c->layers[li];
        if (p_kind(c, L) != P_FROZEN) continue;
        for (int o = 0; o < L->out; o++)
            if (L->dead[o]) m->params[L->b_off + o] = 0.0f;
    }
}

train_hooks compress_hooks(compress *c) {
    train_hooks h;
    memset(&h, 0, sizeof h);
    h.ctx = c;
    h.pre_forward = hook_pre_forward;
    h.post_backward = hook_post_backward;
    h.post_step = hook_post_step;
    if (c->pruning && c->ops && c->ops->observe) h.observe = hook_observe;
    if (c->distill) h.loss = cd_hook_loss;
    return h;
}

/* ---- reporting --------------------------------------------------------------- */

double compress_ebops_dense(const float *w, int in, int out, const fixed_spec *w_spec,
                            int input_bits) {
    double s = 0;
    long n = (long)in * out;
    for (long j = 0; j < n; j++)
        if (w[j] != 0.0f) s += (double)input_bits * fixed_bit_span(w_spec, w[j]);
    return s;
}

int cm_input_bits(const compress *c, const cl_layer *L) {
    (void)c;
    return L->in_quantized ? fixed_width(&L->in_spec) : 32;
}

/* Bits of one kept weight: its span when quantized, 32 (float) when not. */
static int weight_bits(const compress *c, const cl_layer *L, float w) {
    return c->quantization ? fixed_bit_span(&L->w_spec, w) : 32;
}

static void layer_report(const compress *c, const cl_layer *L, compress_layer_report *r) {
    const float *we = c->m->weff + L->w_off;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", c->m->layers[L->layer].name);
    r->layer = L->layer;
    r->weights = L->n;
    int ib = cm_input_bits(c, L);
    long bsum = 0;
    r->bits_min = 0;
    for (long j = 0; j < L->n; j++) {
        if (we[j] == 0.0f || L->mask[j] < 0.5f) continue;
        int b = weight_bits(c, L, we[j]);
        if (b == 0) continue;
        if (r->remaining == 0 || b < r->bits_min) r->bits_min = b;
        if (b > r->bits_max) r->bits_max = b;
        bsum += b;
        r->remaining++;
        r->ebops += (double)ib * b;
    }
    r->bits_mean = r->remaining ? (double)bsum / (double)r->remaining : 0;
    /* Conv: every kept weight multiplies once per output position */
    r->ebops *= (double)layer_positions(&c->m->layers[L->layer]);
    r->sparsity = L->n ? 1.0 - (double)r->remaining / (double)L->n : 0;
    r->w_spec = L->w_spec;
    r->b_spec = L->b_spec;
    r->in_spec = L->in_spec;
    r->out_spec = L->out_spec;
}

nl_status compress_report_get(compress *c, compress_report *out, nl_error *e) {
    memset(out, 0, sizeof *out);
    out->layers = calloc((size_t)c->n_layers + 1, sizeof *out->layers);
    if (!out->layers) return nl_err(e, NL_ERR_NOMEM, "compress report: out of memory");
    out->n = c->n_layers;
    for (int li = 0; li < c->n_layers; li++) {
        layer_report(c, &c->layers[li], &out->layers[li]);
        out->weights += out->layers[li].weights;
        out->remaining += out->layers[li].remaining;
        out->ebops += out->layers[li].ebops;
    }
    out->sparsity = out->weights ? 1.0 - (double)out->remaining / (double)out->weights : 0;
    return NL_OK;
}

void compress_report_free(compress_report *r) {
    if (!r) return;
    free(r->layers);
    r->layers = NULL;
    r->n = 0;
}

void cm_epoch_totals(const compress *c, epoch_record *rec) {
    double ebops = 0, bsum = 0;
    long remaining = 0;
    int bmin = 0, bmax = 0;
    for (int li = 0; li < c->n_layers; li++) {
        compress_layer_report r;
        layer_report(c, &c->layers[li], &r);
        ebops += r.ebops;
        if (r.remaining > 0) {
            if (remaining == 0 || r.bits_min < bmin) bmin = r.bits_min;
            if (r.bits_max > bmax) bmax = r.bits_max;
        }
        bsum += r.bits_mean * (double)r.remaining;
        remaining += r.remaining;
    }
    rec->ebops = ebops;
    rec->remaining = remaining;
    rec->bits_min = bmin;
    rec->bits_max = bmax;
    rec->bits_mean = remaining ? bsum / (double)remaining : 0;
}

double cm_hard_sparsity(const compress *c) {
    long zeros = 0, n = 0;
    for (int li = 0; li < c->n_layers; li++) {
        const cl_layer *L = &c->layers[li];
        for (long j = 0; j < L->n; j++) zeros += L->mask[j] < 0.5f;
        n += L->n;
    }
    return n ? (double)zeros / (double)n : 0;
}

const float *compress_mask(const compress *c, int layer) {
    for (int li = 0; li < c->n_layers; li++)
        if (c->layers[li].layer == layer) return c->layers[li].prunable ? c->layers[li].mask : NULL;
    return NULL;
}

void compress_layer_formats(const compress *c, int layer, fixed_spec *w, fixed_spec *b,
                            fixed_spec *in, fixed_spec *out) {
    for (int li = 0; li < c->n_layers; li++) {
        const cl_layer *L = &c->layers[li];
        if (L->layer != layer) continue;
        if (w) *w = L->w_spec;
        if (b) *b = L->b_spec;
        if (in) *in = L->in_spec;
        if (out) *out = L->out_spec;
        return;
    }
    fixed_spec d = default_spec();
    if (w) *w = d;
    if (b) *b = d;
    if (in) *in = d;
    if (out) *out = d;
}
