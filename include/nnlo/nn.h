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

/* Kinds appended later (same value space, stored in model files, append
 * only). They are declared outside the typedef so that existing switch
 * statements over layer_kind keep compiling under -Wswitch -Werror; switch
 * on (int)kind to handle them. Tensors are channels-last (H, W, C), a flat
 * vector is (1, 1, n) and 1-D data (steps, channels) is (1, steps, C). */
enum {
    LAYER_CONV1D = 3,      /* kernel (K, Cin, Cout) = a (K Cin, Cout) matrix */
    LAYER_CONV2D = 4,      /* kernel (KH, KW, Cin, Cout) = a (KH KW Cin, Cout) matrix */
    LAYER_MAXPOOL1D = 5,
    LAYER_MAXPOOL2D = 6,
    LAYER_AVGPOOL1D = 7,   /* averages over the window's in-range elements (Keras) */
    LAYER_AVGPOOL2D = 8,
    LAYER_BATCHNORM = 9,   /* per channel (last axis); gamma, beta trainable */
    LAYER_FLATTEN = 10,    /* (H, W, C) -> (1, 1, H W C); the data is unchanged */
    LAYER_DROPOUT = 11,    /* inverted dropout in training, identity in evaluation */
    LAYER_TANH = 12,
    LAYER_SIGMOID = 13,
    LAYER_HARD_TANH = 14,  /* clip(x, -1, 1) */
    LAYER_LEAKY_RELU = 15, /* x > 0 ? x : alpha x */
    LAYER_KIND_COUNT = 16
};

typedef enum { PAD_VALID = 0, PAD_SAME = 1 } pad_mode;

/* What a caller asks for; model_create turns it into a layer. Fields a
 * kind does not use are ignored (a zeroed spec plus kind and its fields is
 * a valid spec). */
typedef struct {
    layer_kind kind;
    char name[64];     /* unique; empty -> "<kind><index>" e.g. "dense0" */
    int units;         /* DENSE: output features */
    fixed_spec quant;  /* QUANT: the activation format */
    /* appended for the spatial layers (all optional for DENSE/RELU/QUANT): */
    int filters;       /* CONV: output channels */
    int kernel[2];     /* CONV: (rows, cols); 1-D: kernel[0] */
    int strides[2];    /* CONV, POOL: 0 = default (conv 1, pool = pool size); 1-D: [0] */
    int pool[2];       /* POOL: window (rows, cols); 1-D: pool[0] */
    pad_mode padding;  /* CONV, POOL: valid (default) or same (Keras/TF rules) */
    float rate;        /* DROPOUT: fraction dropped, in [0, 1) */
    float alpha;       /* LEAKY_RELU: slope below 0 */
    float momentum;    /* BATCHNORM: moving = momentum moving + (1 - momentum) batch, [0, 1) */
    float epsilon;     /* BATCHNORM: > 0 (Keras default 1e-3) */
    int in_shape[3];   /* (H, W, C) of this layer's input, or zeros = inferred: the model
                          input is (1, 1, in_size) unless specs[0].in_shape says otherwise,
                          and a shape survives every layer but Dense and Flatten. Needed
                          where a flat vector enters a CONV/POOL layer (e.g. the first). */
} layer_spec;

/* Geometry of a convolution or pooling window over a (h, w, c) input. */
typedef struct {
    int h, w, c;       /* input */
    int oh, ow, oc;    /* output (pooling: oc = c) */
    int kh, kw;        /* window */
    int sh, sw;        /* strides */
    int pt, pl;        /* rows / columns of zero padding before the input (SAME:
                          floor(total / 2), the rest after: TensorFlow's rule) */
} conv_geom;

typedef struct {
    layer_kind kind;
    char name[64];
    int in_size, out_size;  /* features per sample */
    long w_off, b_off;      /* DENSE: offsets into params; -1 for none */
    fixed_spec quant;       /* QUANT */
    /* Buffers sized for max_batch, owned by the model: */
    float *out;             /* (B, out_size) output activations */
    float *dout;            /* (B, out_size) dL/d(out), scratch of backward */
    unsigned char *pass;    /* (B, out_size) QUANT: STE pass-through mask; DROPOUT: kept */
    /* appended for the spatial layers: */
    int in_h, in_w, in_c;   /* input shape; in_size = in_h in_w in_c */
    int out_h, out_w, out_c;
    conv_geom geom;         /* CONV, POOL */
    float rate, alpha, momentum, epsilon; /* DROPOUT, LEAKY_RELU, BATCHNORM */
    /* CONV: w_off = kernel (kh kw in_c, out_c), b_off = bias (out_c).
     * BATCHNORM: w_off = gamma (C), b_off = beta (C), s_off = moving mean
     * (C) then moving variance (C) in m->state (not trained). */
    long s_off;             /* -1 for none */
    float *aux;             /* (B, out_size) BATCHNORM: the normalized input */
    float *stat;            /* (2 C) BATCHNORM: mean and 1/sqrt(var + eps) of the last forward */
    int32_t *argmax;        /* (B, out_size) MAXPOOL: input index within its sample */
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
    /* appended: */
    int in_h, in_w, in_c;  /* input shape (1, 1, in_size) unless specs[0].in_shape */
    int training;    /* 1 inside nn_train_epoch: BatchNorm normalizes with batch
                        statistics and updates the moving ones, Dropout drops;
                        0 (evaluation, the default): both are fixed functions */
    rng_t drop_rng;  /* Dropout masks; seeded by model_init_params */
    long n_state;
    float *state;    /* (n_state) non-trainable persistent values (BatchNorm moving
                        mean/variance): not in params, not seen by the optimizer */
    long n_col;
    float *col, *dcol; /* (n_col) im2col scratch of the CONV layers */
    /* appended: batch-parallel passes (model.c) */
    int threads;     /* model_set_threads; 0 = automatic */
    int run_threads; /* BLAS thread count nn_train_epoch / nn_evaluate found
                        before pinning BLAS to 1 thread (0 outside them) */
    struct nn_pool *pool; /* worker threads and their scratch, created at
                             the first parallel pass, freed by model_free */
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
/* How kernels (and biases) start; fan_in = kernel rows (kh kw in_c for a
 * conv), fan_out = kernel columns times the window (kh kw out_c, Keras). */
typedef enum {
    NN_INIT_HE_UNIFORM = 0,     /* U(+-sqrt(6 / fan_in)), zero biases (the default) */
    NN_INIT_GLOROT_UNIFORM = 1, /* U(+-sqrt(6 / (fan_in + fan_out))), zero biases (Keras's default) */
    NN_INIT_LECUN_UNIFORM = 2,  /* U(+-sqrt(3 / fan_in)), zero biases */
    NN_INIT_PYTORCH = 3         /* kernel and bias U(+-1 / sqrt(fan_in)): torch.nn.Linear/ConvNd */
} nn_init;
/* Kernels and biases as `scheme` says, BatchNorm gamma 1, beta 0, moving
 * mean 0 and variance 1, deterministic from r (per layer: the kernel's
 * values, then, for NN_INIT_PYTORCH, the bias's); a model with Dropout also
 * seeds its mask generator from r. model_init_params = NN_INIT_HE_UNIFORM. */
void model_init_params_with(model *m, rng_t *r, nn_init scheme);
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
/* Threads for model_forward / model_backward (and so training and
 * evaluation) of models without BatchNorm or Dropout: n >= 2 splits every
 * batch into n contiguous slices of at least 8 samples, each run through
 * all layers on its own thread with its own im2col scratch and gradient
 * buffer; gradients are summed in thread order (thread 0 + 1 + ...), so
 * results are deterministic for a given n (and differ from n = 1 only by
 * float summation order). BLAS is held at 1 thread while the slices run.
 * n = 1: serial. n = 0 (default): models with convolutions use as many
 * threads as OpenBLAS has (nn_set_threads, OPENBLAS_NUM_THREADS); others
 * stay serial (their BLAS calls are threaded by OpenBLAS, if at all). */
void model_set_threads(model *m, int n);
/* Number of trainable weights in DENSE and CONV kernels and biases. */
long model_count_weights(const model *m);

/* 1 for the kinds whose kernel is a (rows, cols) matrix that compression
 * prunes and quantizes like a Dense kernel (DENSE, CONV1D, CONV2D). */
int layer_has_kernel(int kind);
/* The kernel matrix of such a layer: rows = in_size (DENSE) or kh kw in_c
 * (CONV), cols = out features / out channels; 0 for other layers. The
 * multiplications of one forward sample are rows * cols * positions, with
 * positions = out_h out_w for CONV, 1 for DENSE (EBOPs accumulate over them). */
int layer_kernel_rows(const layer *L);
int layer_kernel_cols(const layer *L);
long layer_positions(const layer *L);
/* "dense", "conv2d", "max_pooling2d", ...: Keras's spelling of the kind
 * ("quant" for QUANT), or NULL for an unknown kind. */
const char *layer_kind_name(int kind);
/* Folds BATCHNORM layer bn into the DENSE/CONV layer just before it
 * (inference with moving statistics): kernel (rows, cols) and bias (cols)
 * receive W' = W s and b' = (b - mean) s + beta per output channel, with
 * s = gamma / sqrt(var + eps), read from weff and m->state. The model is not
 * changed. NL_ERR_INVALID (naming the layers) if bn is not a BATCHNORM
 * preceded directly by a DENSE or CONV layer. */
nl_status model_fold_batchnorm(const model *m, int bn, float *kernel, float *bias, nl_error *e);

/* ---- spatial kernels (references kept to test the fast path) ---------- */

/* Fills g for a (h, w, c) input, oc output channels, a kh x kw window with
 * strides (sh, sw) and padding p. Returns 0, or -1 when an argument is < 1
 * or the output would be empty (valid padding and a window larger than the
 * input). */
int conv_geom_init(conv_geom *g, int h, int w, int c, int oc, int kh, int kw, int sh, int sw,
                   pad_mode p);
/* out (B, oh, ow, oc) = conv(in (B, h, w, c), w (kh, kw, c, oc)) + b (oc); b may be NULL. */
void conv_forward_ref(float *out, const float *in, const float *w, const float *b, int B,
                      const conv_geom *g);
/* The same through im2col + sgemm, col scratch of ncol floats (at least
 * oh ow kh kw c: one sample; more lets it batch several samples per sgemm). */
void conv_forward(float *out, const float *in, const float *w, const float *b, int B,
                  const conv_geom *g, float *col, long ncol);
/* dw += conv weight gradient, db += sum of dout over samples and positions
 * (db may be NULL), din (B, h, w, c) = input gradient (overwritten; may be NULL). */
void conv_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                       const float *w, int B, const conv_geom *g);
/* The same with im2col; accumulate = 0 overwrites dw and db instead.
 * col and dcol: ncol floats each (as conv_forward). */
void conv_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                   const float *w, int B, const conv_geom *g, float *col, float *dcol, long ncol,
                   int accumulate);
/* Pooling over g's windows (g->oc = g->c). Max ignores padded positions;
 * argmax (B, oh, ow, c) receives the input index within its sample. Avg
 * divides by the number of in-range elements. Backward overwrites din. */
void maxpool_forward(float *out, int32_t *argmax, const float *in, int B, const conv_geom *g);
void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B,
                      const conv_geom *g);
void avgpool_forward(float *out, const float *in, int B, const conv_geom *g);
void avgpool_backward(float *din, const float *dout, int B, const conv_geom *g);

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
    /* Replaces the softmax cross-entropy of training batches (knowledge
     * distillation); may be NULL. logits (B, out_size) of the gathered rows
     * x (B, in_size) with labels y; rows[b] is row b's index in the epoch's
     * x (for precomputed teacher outputs). Writes dlogits (B, out_size),
     * returns the mean loss, sets *correct to the argmax hits. */
    float (*loss)(void *ctx, model *m, const float *logits, const float *x, const int32_t *y,
                  const uint32_t *rows, int B, float *dlogits, int *correct);
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
/* The thread count passes use (OpenBLAS's): results of conv models depend
 * on it through float summation order. */
int nn_get_threads(void);

#endif
