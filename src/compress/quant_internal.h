/* quant_internal.h — the quantizers of src/compress (quant.c, hgq.c) and
 * knowledge distillation (distill.c), shared with compress.c only.
 *
 * A quantized tensor (a kernel or a bias) has bit groups: one (per_tensor),
 * one per output unit (per_channel: entry j of an (in, out) kernel is in
 * group j % out), or one per entry (per_weight). Static groups take their
 * integer bits from the group's range at fixed total width (PQuant's rule);
 * HGQ groups read trainable i and f from the model's flat buffer.
 * Invariant: every buffer is allocated in cq_init; the hooks allocate
 * nothing. Not a public interface. */
#ifndef NNLO_QUANT_INTERNAL_H
#define NNLO_QUANT_INTERNAL_H

#include "compress/compress_internal.h"

typedef struct {
    long n;                    /* entries */
    int out;                   /* output units: group of entry j under per_channel = j % out */
    quant_granularity gran;    /* bias: always per tensor */
    long groups;               /* 1, out or n */
    fixed_spec spec;           /* configured format (inference modes) */
    fixed_spec train;          /* as spec, WRAP modes clip (training) */
    int *gi, *gf;              /* (groups) static bits per group; NULL for per tensor */
    /* HGQ: trainable bits, offsets into params (-1: none) */
    long f_off, i_off;
    double *gbuf;              /* (groups) scratch */
} cq_tensor;

typedef struct {
    cq_tensor w, b;
} cq_layer;

struct cq_state {
    int hgq;
    double beta, gamma;
    cq_layer *layers;          /* parallel to c->layers */
};

/* Per-layer formats from the config and layer_specific (names checked
 * against the model), bit groups, HGQ segments (initialised to the
 * configured i and f). Sets L->w_spec/b_spec/w_train/b_train. */
nl_status cq_init(compress *c, nl_error *e);
void cq_free(compress *c);

/* q = Q(x) for layer li's kernel / bias, filling the STE window L->inr /
 * L->binr, and updating L->w_spec / b_spec to the format that holds every
 * quantized value exactly (the widest integer and fractional bits over the
 * groups). */
void cq_weight_forward(compress *c, int li, const float *x, float *q);
void cq_bias_forward(compress *c, int li, const float *x, float *q);
/* In place g = dL/dq -> dL/dx (straight-through inside the range); with
 * HGQ also adds dL/df = g ln2 (x - q) and, for clipped values,
 * dL/di = g ln2 q to the bit segments' gradients. x, q: as in forward. */
void cq_weight_backward(compress *c, int li, const float *x, const float *q, float *g);
void cq_bias_backward(compress *c, int li, const float *x, const float *q, float *g);
/* HGQ: beta * EBOPs + gamma * sum(i + f) over every bit group, its
 * gradients added to the segments; 0 without HGQ. */
float cq_extra_loss(compress *c);

/* Group of entry j. */
static inline long cq_group(const cq_tensor *t, long j) {
    return t->groups == 1 ? 0 : t->groups == t->n ? j : j % t->out;
}

/* PQuant's bits for a group of range absmax at total width b = k + i + f:
 * i = clamp(ceil(log2(absmax + 1e-6)), 0, b - k), f = max(b - k - i, 0). */
void cq_dynamic_bits(const fixed_spec *s, double absmax, int *i, int *f);

/* The spec list with data quantizers as layer_specific and quantize_relu
 * say: input/output quantizers added or dropped per layer, their fields
 * overridden, PQuant's ReLU quantizers (k 0, data integer bits, data
 * fractional bits + 1). Names in layer_specific must be layers of the list
 * (NL_ERR_CONFIG naming the unknown one). Reallocates *s. */
nl_status cq_model_specs(layer_spec **s, int *n, const cfg_quant *q, nl_error *e);

/* HGQ segments "<layer>/hgq_wf", "<layer>/hgq_wi", "<layer>/hgq_bf",
 * "<layer>/hgq_bi" of every kernel layer (Dense, Conv1D, Conv2D; sizes from
 * a throw-away model_create of the specs, so conv/pool/flatten shapes are
 * nn's own) appended to names/lens (malloc'd, grown). Other layers have
 * none. Errors of model_create are returned as they are. */
nl_status cq_plan(const layer_spec *specs, int n_specs, int in_size, const cfg_quant *q,
                  char ***names, long **lens, int *n, nl_error *e);

/* ---- HGQ (hgq.c) --------------------------------------------------------------- */

/* Finds every layer's bit segments (NL_ERR_INVALID naming a missing one: the
 * model was not created with compress_plan_all_params) and sets them to the
 * configured i and f. */
nl_status hgq_init(compress *c, nl_error *e);
/* q = Q_(k, round(i_g), round(f_g))(x); inr[j] = 1 inside the range, 0
 * clipped, 2 when the group has no bits (k + i + f <= 0: q = 0, pruned).
 * *uni: the format holding every nonzero q. */
void hgq_forward(compress *c, const cq_tensor *t, const float *x, float *q, unsigned char *inr,
                 fixed_spec *uni);
void hgq_backward(compress *c, const cq_tensor *t, const float *x, const float *q,
                  const unsigned char *inr, float *g);
/* beta * EBOPs(widths) + gamma * sum(i + f), gradients into the segments.
 * EBOPs(widths) = sum over kept weights with bits of input bits x
 * (k + i + f) x output positions (conv: out_h out_w; Dense: 1), the
 * compress report's EBOPs with the width in place of the bit span. */
float hgq_loss(compress *c);

/* ---- distillation (distill.c) ---------------------------------------------- */

/* loss = alpha CE(y, s) + (1 - alpha) T^2 KL(softmax(t/T) || softmax(s/T)),
 * mean over B rows of C logits; dlogits (may be NULL) receives dloss/ds.
 * correct (may be NULL): argmax(s) == y count. */
float distill_loss(const float *s, const float *t, const int32_t *y, int B, int C, double T,
                   double alpha, float *dlogits, int *correct);

/* train_hooks.loss of a compress object with distillation set; cd_free
 * releases the distillation state (NULL-safe on c->distill). */
float cd_hook_loss(void *ctx, model *m, const float *logits, const float *x, const int32_t *y,
                   const uint32_t *rows, int B, float *dlogits, int *correct);
void cd_free(compress *c);

#endif
