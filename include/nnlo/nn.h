/* nn.h — layers, the model, the loss, optimizers and one training epoch.
 *
 * Knows nothing of MPI, HDF5 or YAML (DESIGN.md). float32, row-major.
 * A model owns ONE flat parameter buffer `params` with a table of named
 * views (STYLE.md 1); `weff`, `grads`, optimizer state and masks use the same
 * layout, so the optimizer is one loop and a checkpoint is one array.
 *
 * Effective weights: the forward pass reads `weff`, never `params`. Without
 * compression, a pre_forward hook (or model_sync_weff) copies params->weff;
 * the compress layer instead writes Q(P(W)) there and maps the gradient
 * back in its post_backward hook. Dense kernels are stored (in, out) as in
 * Keras and hls4ml: W[i * out + o]. */
#ifndef NNLO_NN_H
#define NNLO_NN_H

#include <stddef.h>
#include <stdint.h>
#include "nnlo/fixed.h"
#include "nnlo/util.h"

/* Layer kinds: stored in model files; append only. */
typedef enum {
    LAYER_DENSE = 0,
    LAYER_RELU = 1,
    LAYER_QUANT = 2  /* activation quantizer: out = Q(in), STE backward */
} layer_kind;

/* What a caller asks for; model_create turns it into a layer. */
typedef struct {
    layer_kind kind;
    char name[64];     /* unique; empty -> "<kind><index>" e.g. "dense0" */
    int units;         /* DENSE: output features */
    fixed_spec quant;  /* QUANT: the activation format */
} layer_spec;

typedef struct {
    layer_kind kind;
    char name[64];
    int in_size, out_size;  /* features per sample */
    long w_off, b_off;      /* DENSE: offsets into params; -1 for none */
    fixed_spec quant;       /* QUANT */
    /* Buffers sized for max_batch, owned by the model: */
    float *out;             /* (B, out_size) output activations */
    float *dout;            /* (B, out_size) dL/d(out), scratch of backward */
    unsigned char *pass;    /* (B, out_size) QUANT: STE pass-through mask */
} layer;

typedef struct {
    char name[96];   /* "<layer>/kernel", "<layer>/bias", or a method's own */
    long off;        /* into params */
    long len;
    int layer;       /* owning layer index, -1 for none */
} param_view;

typedef struct model {
    int n_layers;
    layer *layers;
    int in_size, out_size;
    int max_batch;
    long n_params;
    float *params;   /* (n_params) trainable values */
    float *weff;     /* (n_params) effective values read by forward */
    float *grads;    /* (n_params) gradients */
    int n_views;
    param_view *views;
    float *dx;       /* (max_batch, max layer width) backward scratch */
    float *xb;       /* (max_batch, in_size) gathered training batch */
    int32_t *yb;     /* (max_batch) its labels */
    float *dlogits;  /* (max_batch, out_size) */
} model;

/* Builds a model for inputs of in_size features and batches of up to
 * max_batch samples. Extra parameter segments (a pruner's own trainable
 * values) can be requested with extra_names/extra_lens (n_extra of them;
 * they are views with layer -1). Parameters are zero: call model_init_params.
 * Returns NULL and fills e on bad specs (no layers, units < 1, duplicate
 * names) or out of memory. Free with model_free (NULL-safe). */
model *model_create(const layer_spec *specs, int n_specs, int in_size, int max_batch,
                    const char *const *extra_names, const long *extra_lens, int n_extra,
                    nl_error *e);
void model_free(model *m);
/* He-uniform kernels (fan_in), zero biases, deterministic from r. */
void model_init_params(model *m, rng_t *r);
/* Finds a view by name; NULL if none. */
const param_view *model_find_view(const model *m, const char *name);
/* weff = params (for models trained without compression). */
void model_sync_weff(model *m);
/* Forward of B <= max_batch samples x (B, in_size), using weff. Returns the
 * logits (B, out_size), a pointer into the last layer's buffer. */
const float *model_forward(model *m, const float *x, int B);
/* Backward after model_forward on the same x: dlogits (B, out_size) in,
 * grads (zeroed first) out as dL/d(weff). */
void model_backward(model *m, const float *x, const float *dlogits, int B);
/* Number of trainable weights in DENSE kernels and biases. */
long model_count_weights(const model *m);

/* Naive reference kernels, kept to test the BLAS path against (STYLE.md 3). */
void dense_forward_ref(float *out, const float *in, const float *w, const float *b,
                       int B, int IN, int OUT);  /* out (B,OUT), in (B,IN), w (IN,OUT), b (OUT) */
void dense_forward(float *out, const float *in, const float *w, const float *b,
                   int B, int IN, int OUT);
/* dw += in^T dout, db += sum_b dout, din = dout w^T (din may be NULL). */
void dense_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int B, int IN, int OUT);
void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int B, int IN, int OUT);

/* Fused, numerically stable softmax cross-entropy over B rows of C logits
 * with integer labels y in [0, C). Returns the mean loss; if dlogits is not
 * NULL it receives (softmax - onehot) / B. If correct is not NULL it
 * receives the number of rows whose argmax equals the label. */
float loss_softmax_xent(const float *logits, const int32_t *y, int B, int C,
                        float *dlogits, int *correct);

/* ---- optimizers -------------------------------------------------------- */

typedef enum { OPT_SGD = 0, OPT_ADAM = 1 } optim_kind;

typedef struct {
    optim_kind kind;
    float lr, momentum, weight_decay;  /* SGD: momentum; both: L2 decay added to grad */
    float beta1, beta2, eps;           /* Adam */
    long t;                            /* steps taken */
    long n;
    float *m, *v;                      /* (n) state, same layout as params */
} optim;

/* Allocates state for n parameters; lr etc. are set by the caller in o
 * before or after. Returns NL_ERR_NOMEM on failure. */
nl_status optim_init(optim *o, optim_kind kind, long n, nl_error *e);
void optim_free(optim *o);
/* One step over all n parameters: params -= update(grads). */
void optim_step(optim *o, float *params, const float *grads);
/* optim_step that also writes the new params to copy (n) in the same pass,
 * e.g. m->weff when training without compression (saves a sync pass). */
void optim_step_copy(optim *o, float *params, const float *grads, float *copy);
/* Zeroes m, v and t (used when rewinding weights). */
void optim_reset(optim *o);

/* ---- training ---------------------------------------------------------- */

/* Hooks through which compression enters the loop. Any may be NULL; with
 * no pre_forward the loop calls model_sync_weff. */
typedef struct {
    void *ctx;
    /* Before each forward: fill m->weff from m->params. */
    void (*pre_forward)(void *ctx, model *m);
    /* After model_backward: turn grads wrt weff into grads wrt params, add
     * the method's own loss gradients; returns the extra loss value. */
    float (*post_backward)(void *ctx, model *m);
    /* After each optimizer step (e.g. re-apply frozen masks, count batches). */
    void (*post_step)(void *ctx, model *m);
    /* Observes the (B, in_size) input of every layer during training
     * forward passes (Wanda / activation pruning statistics); may be NULL. */
    void (*observe)(void *ctx, const model *m, int layer, const float *in, int B);
} train_hooks;

typedef struct {
    double loss;       /* mean data loss (+ extra loss) over the epoch */
    double accuracy;   /* fraction of argmax hits */
    long samples;
    int nonfinite;     /* 1 if a NaN/Inf loss was seen (the epoch stopped) */
} epoch_stats;

/* One epoch of minibatch training over n samples x (n, in_size), y (n):
 * a permutation drawn from r, batches of `batch` (the last may be smaller),
 * gathered into the model's own scratch. Stops early and sets nonfinite on
 * a NaN/Inf loss. batch must be <= m->max_batch. */
nl_status nn_train_epoch(model *m, optim *o, const float *x, const int32_t *y, long n,
                         int batch, rng_t *r, const train_hooks *h, epoch_stats *st,
                         nl_error *e);
/* Mean loss and accuracy over n samples, in order, batches of max_batch;
 * calls h->pre_forward once first if given. If logits is not NULL it
 * receives (n, out_size). */
nl_status nn_evaluate(model *m, const float *x, const int32_t *y, long n,
                      const train_hooks *h, epoch_stats *st, float *logits, nl_error *e);

/* OpenBLAS thread count (from SLURM_CPUS_PER_TASK, else 1, unless
 * OPENBLAS_NUM_THREADS is set). */
void nn_set_threads(int n);

#endif
