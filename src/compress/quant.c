/* quant.c — fixed-point quantizers of weights, biases and data in the
 * training loop: per-layer formats (defaults, layer_specific overrides,
 * use_symmetric_quantization), per_tensor / per_channel / per_weight bit
 * groups with PQuant's range rule, the straight-through estimator, the data
 * quantizers of the model spec list (input/output, PQuant's ReLU ones).
 * HGQ's trainable bits are in hgq.c; the rounding/overflow rules in
 * util/fixed.c. Deliberately not: dynamic data quantization (data formats
 * are static). Invariant: the hooks allocate nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/quant_internal.h"

/* Training clips where inference would wrap (as compress.c). */
static fixed_spec train_spec(fixed_spec s) {
    if (s.overflow == FX_WRAP) s.overflow = FX_SAT;
    else if (s.overflow == FX_WRAP_SM) s.overflow = s.k ? FX_SAT_SYM : FX_SAT;
    return s;
}

static void apply_override(fixed_spec *s, const cfg_quant_override *o) {
    if (o->has_k) s->k = o->spec.k;
    if (o->has_i) s->i = o->spec.i;
    if (o->has_f) s->f = o->spec.f;
    if (o->has_overflow) s->overflow = o->spec.overflow;
    if (o->has_round) s->round = o->spec.round;
}

static const cfg_quant_layer *find_override(const cfg_quant *q, const char *name) {
    for (int j = 0; q && j < q->n_layers_specific; j++)
        if (strcmp(q->layers[j].layer, name) == 0) return &q->layers[j];
    return NULL;
}

void cq_dynamic_bits(const fixed_spec *s, double absmax, int *i, int *f) {
    int b = fixed_width(s);
    double m = ceil(log2(absmax + 1e-6));
    int hi = b - s->k;
    int ii = m < 0 ? 0 : m > hi ? hi : (int)m;
    if (ii < 0) ii = 0;
    int ff = b - s->k - ii;
    *i = ii;
    *f = ff < 0 ? 0 : ff;
}

/* ---- the spec list ------------------------------------------------------- */

/* "<layer>_qin" / "<layer>_qout": the layer's name into base, 1 in, 2 out. */
static int quant_role(const char *qname, char *base, size_t len) {
    size_t n = strlen(qname);
    if (n > 4 && strcmp(qname + n - 4, "_qin") == 0) {
        snprintf(base, len, "%.*s", (int)(n - 4), qname);
        return 1;
    }
    if (n > 5 && strcmp(qname + n - 5, "_qout") == 0) {
        snprintf(base, len, "%.*s", (int)(n - 5), qname);
        return 2;
    }
    return 0;
}

static layer_spec quant_spec(const char *layer, const char *suffix, fixed_spec f) {
    layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = LAYER_QUANT;
    s.quant = f;
    snprintf(s.name, sizeof s.name, "%.55s%s", layer, suffix);
    return s;
}

nl_status cq_model_specs(layer_spec **sp, int *np, const cfg_quant *q, nl_error *e) {
    layer_spec *s = *sp;
    int n = *np;
    if (!q || !q->enable_quantization) return NL_OK;
    for (int j = 0; j < q->n_layers_specific; j++) {
        int found = 0;
        for (int k = 0; k < n && !found; k++)
            found = s[k].kind != LAYER_QUANT && strcmp(s[k].name, q->layers[j].layer) == 0;
        if (!found) {
            sbuf names = {0};
            for (int k = 0; k < n; k++)
                if (s[k].kind != LAYER_QUANT)
                    sbuf_printf(&names, "%s%s", names.len ? ", " : "", s[k].name);
            nl_status st = nl_err(e, NL_ERR_CONFIG,
                                  "quantization_parameters.layer_specific: no layer is named '%s' "
                                  "(layers: %s)", q->layers[j].layer, names.s ? names.s : "none");
            sbuf_free(&names);
            return st;
        }
    }
    layer_spec *o = calloc((size_t)n * 3 + 1, sizeof *o);
    if (!o) return nl_err(e, NL_ERR_NOMEM, "model specs: out of memory");
    fixed_spec relu = q->data;
    relu.k = 0;
    relu.f = q->data.f + 1; /* PQuant: unsigned, one more fractional bit */
    int k = 0;
    for (int j = 0; j < n; j++) {
        char base[64];
        if (s[j].kind == LAYER_QUANT) {
            int role = quant_role(s[j].name, base, sizeof base);
            const cfg_quant_layer *ov = role ? find_override(q, base) : NULL;
            const cfg_quant_override *qo = !ov ? NULL : role == 1 ? &ov->input : &ov->output;
            if (qo && qo->has_quantize && !qo->quantize) continue; /* dropped */
            o[k] = s[j];
            if (qo) apply_override(&o[k].quant, qo);
            k++;
            continue;
        }
        const cfg_quant_layer *ov = find_override(q, s[j].name);
        int is_relu = s[j].kind == LAYER_RELU;
        fixed_spec def = is_relu ? relu : q->data;
        int has_in = j > 0 && s[j - 1].kind == LAYER_QUANT &&
                     quant_role(s[j - 1].name, base, sizeof base) == 1 &&
                     strcmp(base, s[j].name) == 0;
        int has_out = j + 1 < n && s[j + 1].kind == LAYER_QUANT &&
                      quant_role(s[j + 1].name, base, sizeof base) == 2 &&
                      strcmp(base, s[j].name) == 0;
        int want_in = is_relu ? q->quantize_relu && q->quantize_input : 0;
        int want_out = is_relu ? q->quantize_relu && q->quantize_output : 0;
        if (ov && ov->input.has_quantize) want_in = ov->input.quantize;
        if (ov && ov->output.has_quantize) want_out = ov->output.quantize;
        if (want_in && !has_in) {
            o[k] = quant_spec(s[j].name, "_qin", def);
            if (ov) apply_override(&o[k].quant, &ov->input);
            k++;
        }
        o[k++] = s[j];
        if (want_out && !has_out) {
            o[k] = quant_spec(s[j].name, "_qout", def);
            if (ov) apply_override(&o[k].quant, &ov->output);
            k++;
        }
    }
    for (int j = 0; j < k; j++) {
        if (o[j].kind != LAYER_QUANT) continue;
        int w = fixed_width(&o[j].quant);
        if (w < 1 || w > 24) {
            nl_status st = nl_err(e, NL_ERR_CONFIG,
                                  "quantization_parameters: quantizer '%s' is %d bits wide "
                                  "(keep_negatives %d, integer_bits %d, fractional_bits %d); "
                                  "nnlo-c supports 1 to 24 bits", o[j].name, w, o[j].quant.k,
                                  o[j].quant.i, o[j].quant.f);
            free(o);
            return st;
        }
    }
    free(s);
    *sp = o;
    *np = k;
    return NL_OK;
}

/* ---- create / free --------------------------------------------------------- */

static nl_status tensor_init(cq_tensor *t, long n, int out, quant_granularity g, fixed_spec spec,
                             nl_error *e) {
    memset(t, 0, sizeof *t);
    t->n = n;
    t->out = out;
    t->gran = g;
    t->spec = spec;
    t->train = train_spec(spec);
    t->groups = g == GRAN_PER_WEIGHT ? n : g == GRAN_PER_CHANNEL ? out : 1;
    t->f_off = t->i_off = -1;
    if (t->groups < 1) t->groups = 1;
    t->gi = malloc((size_t)t->groups * sizeof *t->gi);
    t->gf = malloc((size_t)t->groups * sizeof *t->gf);
    t->gbuf = malloc((size_t)t->groups * sizeof *t->gbuf);
    if (!t->gi || !t->gf || !t->gbuf)
        return nl_err(e, NL_ERR_NOMEM, "quantization: out of memory for %ld bit groups", t->groups);
    for (long g2 = 0; g2 < t->groups; g2++) {
        t->gi[g2] = spec.i;
        t->gf[g2] = spec.f;
    }
    return NL_OK;
}

static void tensor_free(cq_tensor *t) {
    free(t->gi);
    free(t->gf);
    free(t->gbuf);
}

void cq_free(compress *c) {
    if (!c->quant) return;
    if (c->quant->layers)
        for (int li = 0; li < c->n_layers; li++) {
            tensor_free(&c->quant->layers[li].w);
            tensor_free(&c->quant->layers[li].b);
        }
    free(c->quant->layers);
    free(c->quant);
    c->quant = NULL;
}

nl_status cq_init(compress *c, nl_error *e) {
    const cfg_quant *q = &c->q;
    model *m = c->m;
    if (!c->quantization) return NL_OK;
    for (int j = 0; j < q->n_layers_specific; j++) {
        int found = 0;
        for (int l = 0; l < m->n_layers && !found; l++)
            found = strcmp(m->layers[l].name, q->layers[j].layer) == 0;
        if (!found)
            return nl_err(e, NL_ERR_CONFIG, "quantization_parameters.layer_specific: no layer of "
                          "the model is named '%s'", q->layers[j].layer);
    }
    c->quant = calloc(1, sizeof *c->quant);
    if (!c->quant) return nl_err(e, NL_ERR_NOMEM, "quantization: out of memory");
    c->quant->layers = calloc((size_t)c->n_layers + 1, sizeof *c->quant->layers);
    if (!c->quant->layers) return nl_err(e, NL_ERR_NOMEM, "quantization: out of memory");
    c->quant->hgq = q->use_hgq;
    c->quant->beta = q->hgq_beta;
    c->quant->gamma = q->hgq_gamma;
    for (int li = 0; li < c->n_layers; li++) {
        cl_layer *L = &c->layers[li];
        cq_layer *Q = &c->quant->layers[li];
        fixed_spec w = q->weight, b = q->bias;
        if (q->use_symmetric_quantization) {
            if (w.overflow == FX_SAT) w.overflow = FX_SAT_SYM;
            if (b.overflow == FX_SAT) b.overflow = FX_SAT_SYM;
        }
        const cfg_quant_layer *ov = find_override(q, m->layers[L->layer].name);
        if (ov) {
            apply_override(&w, &ov->weight);
            apply_override(&b, &ov->bias);
        }
        const char *what = NULL;
        if (fixed_width(&w) < 1 || fixed_width(&w) > 24) what = "weight";
        else if (fixed_width(&b) < 1 || fixed_width(&b) > 24) what = "bias";
        if (what)
            return nl_err(e, NL_ERR_CONFIG, "quantization_parameters.layer_specific.%s.%s: the "
                          "format is %d bits wide; nnlo-c supports 1 to 24 bits",
                          m->layers[L->layer].name, what,
                          fixed_width(what[0] == 'w' ? &w : &b));
        quant_granularity g = q->granularity;
        if (q->use_hgq) g = q->hgq_heterogeneous ? (g == GRAN_PER_CHANNEL ? g : GRAN_PER_WEIGHT)
                                                 : GRAN_PER_TENSOR;
        nl_status st = tensor_init(&Q->w, L->n, L->out, g, w, e);
        if (st == NL_OK)
            st = tensor_init(&Q->b, L->out, L->out,
                             q->use_hgq && g != GRAN_PER_TENSOR ? GRAN_PER_WEIGHT : GRAN_PER_TENSOR,
                             b, e);
        if (st != NL_OK) return st;
        L->w_spec = w;
        L->b_spec = b;
        L->w_train = Q->w.train;
        L->b_train = Q->b.train;
    }
    if (q->use_hgq) return hgq_init(c, e);
    return NL_OK;
}

/* ---- forward / backward ------------------------------------------------------ */

/* Static groups: bits from each group's range at the configured width. */
static void static_forward(cq_tensor *t, const float *x, float *q, unsigned char *inr,
                           fixed_spec *uni) {
    if (t->groups == 1) {
        fixed_quantize_array(&t->train, x, q, inr, t->n);
        *uni = t->spec;
        return;
    }
    for (long g = 0; g < t->groups; g++) t->gbuf[g] = 0;
    for (long j = 0; j < t->n; j++) {
        long g = cq_group(t, j);
        double a = fabs((double)x[j]);
        if (a > t->gbuf[g]) t->gbuf[g] = a;
    }
    int imax = -1000, fmax = -1000;
    for (long g = 0; g < t->groups; g++) {
        cq_dynamic_bits(&t->spec, t->gbuf[g], &t->gi[g], &t->gf[g]);
        if (t->gi[g] > imax) imax = t->gi[g];
        if (t->gf[g] > fmax) fmax = t->gf[g];
    }
    for (long j = 0; j < t->n; j++) {
        long g = cq_group(t, j);
        fixed_spec s = t->train;
        s.i = t->gi[g];
        s.f = t->gf[g];
        fixed_quantize_array(&s, x + j, q + j, inr + j, 1);
    }
    *uni = t->spec;
    uni->i = imax;
    uni->f = fmax;
}

void cq_weight_forward(compress *c, int li, const float *x, float *q) {
    cl_layer *L = &c->layers[li];
    cq_tensor *t = &c->quant->layers[li].w;
    if (c->quant->hgq) hgq_forward(c, t, x, q, L->inr, &L->w_spec);
    else static_forward(t, x, q, L->inr, &L->w_spec);
}

void cq_bias_forward(compress *c, int li, const float *x, float *q) {
    cl_layer *L = &c->layers[li];
    cq_tensor *t = &c->quant->layers[li].b;
    if (c->quant->hgq) hgq_forward(c, t, x, q, L->binr, &L->b_spec);
    else static_forward(t, x, q, L->binr, &L->b_spec);
}

static void ste(float *g, const unsigned char *pass, long n) {
    for (long j = 0; j < n; j++)
        if (!pass[j]) g[j] = 0.0f;
}

void cq_weight_backward(compress *c, int li, const float *x, const float *q, float *g) {
    cl_layer *L = &c->layers[li];
    if (c->quant->hgq) hgq_backward(c, &c->quant->layers[li].w, x, q, L->inr, g);
    else ste(g, L->inr, L->n);
}

void cq_bias_backward(compress *c, int li, const float *x, const float *q, float *g) {
    cl_layer *L = &c->layers[li];
    if (c->quant->hgq) hgq_backward(c, &c->quant->layers[li].b, x, q, L->binr, g);
    else ste(g, L->binr, L->out);
}

float cq_extra_loss(compress *c) {
    if (!c->quantization || !c->quant || !c->quant->hgq || c->stage == STAGE_PRETRAIN) return 0;
    return hgq_loss(c);
}

/* ---- planning --------------------------------------------------------------- */

nl_status compress_plan_all_params(const layer_spec *specs, int n_specs, int in_size,
                                   const cfg_pruning *p, const cfg_quant *q, char ***names,
                                   long **lens, int *n, nl_error *e) {
    nl_status st = compress_plan_params(specs, n_specs, in_size, p, names, lens, n, e);
    if (st != NL_OK) return st;
    if (!q || !q->enable_quantization || !q->use_hgq) return NL_OK;
    st = cq_plan(specs, n_specs, in_size, q, names, lens, n, e);
    if (st != NL_OK) {
        for (int j = 0; j < *n; j++) free((*names)[j]);
        free(*names);
        free(*lens);
        *names = NULL;
        *lens = NULL;
        *n = 0;
    }
    return st;
}
