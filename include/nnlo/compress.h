/* compress.h — pruning and quantization in the training loop.
 *
 * A `compress` object binds one pruning method (a registry entry behind the
 * prune_ops interface, one file per method) and the fixed-point quantizers
 * to one model. It enters training through nn's train_hooks: before each
 * forward it writes W_eff = Q(P(W)) (or P(Q(W))) and Q_b(b) into
 * model->weff; after backward it maps dL/dW_eff to dL/dW with the
 * straight-through estimators and adds the method's own loss gradients.
 * compress_train runs the stage machine of ALGORITHMS.md (pre-training,
 * rounds with save_weights_epoch / rewind, hard frozen masks, fine-tuning).
 * Knows nothing of MPI, HDF5 or YAML: it takes the typed config structs. */
#ifndef NNLO_COMPRESS_H
#define NNLO_COMPRESS_H

#include "nnlo/config.h"
#include "nnlo/fixed.h"
#include "nnlo/nn.h"
#include "nnlo/util.h"

/* Turns the YAML layer list into nn layer specs: fills in the last Dense's
 * units (n_classes when 0; an error naming the layer when it disagrees),
 * names unnamed layers ("dense0", "relu1", ...), and inserts QUANT layers
 * where the quantization config puts data quantizers (quantize_input:
 * before each Dense; quantize_output: after it). *out is malloc'd. */
nl_status compress_model_specs(const cfg_layer *layers, int n, int n_classes,
                               const cfg_quant *q, layer_spec **out, int *n_out, nl_error *e);

/* Extra trainable segments the pruning method needs in the model's flat
 * buffer (e.g. CS's s, DST's thresholds), to pass to model_create.
 * *names / *lens are malloc'd arrays (free both and each name); *n may be 0. */
nl_status compress_plan_params(const layer_spec *specs, int n_specs, int in_size,
                               const cfg_pruning *p, char ***names, long **lens, int *n,
                               nl_error *e);

/* compress_plan_params plus the quantizers' own trainable segments (HGQ's
 * bit-widths "<layer>/hgq_wf", "_wi", "_bf", "_bi" when
 * use_high_granularity_quantization is on). Use this one to create the
 * model when quantization may be on; same ownership rules. */
nl_status compress_plan_all_params(const layer_spec *specs, int n_specs, int in_size,
                                   const cfg_pruning *p, const cfg_quant *q, char ***names,
                                   long **lens, int *n, nl_error *e);

typedef struct compress compress;

/* Binds methods to a created model. Returns NULL with e filled on a method
 * that is not implemented, a disable_pruning_for_layers name that matches
 * no layer, or out of memory. The model must outlive the object. */
compress *compress_create(model *m, const cfg_pruning *p, const cfg_quant *q,
                          const cfg_training *t, nl_error *e);
void compress_free(compress *c); /* NULL-safe */
/* The hooks to pass to nn_train_epoch / nn_evaluate. */
train_hooks compress_hooks(compress *c);

typedef enum { STAGE_PRETRAIN = 0, STAGE_MAIN = 1, STAGE_FINETUNE = 2 } train_stage;

typedef struct {
    train_stage stage;
    int round, epoch;          /* epoch restarts at 0 in each stage and round */
    int global_epoch;          /* 0, 1, 2, ... over the whole run */
    double lr;
    double train_loss, train_accuracy;
    double val_loss, val_accuracy;
    double sparsity;           /* from the hard mask */
    double ebops;
    double seconds;            /* wall time of this epoch, validation included */
    double train_seconds;      /* of which training (forward, backward, steps, masks) */
} epoch_record;

/* Called after every epoch; return 0 to go on, 1 to stop training here and
 * keep the model as it is (early stopping), 2 to abort (drain). */
typedef int (*epoch_callback)(void *ctx, const epoch_record *r);

typedef struct {
    const float *x_train; const int32_t *y_train; long n_train;
    const float *x_val;   const int32_t *y_val;   long n_val;
} train_data;

/* Runs every stage. The optimizer `o` is set up by the caller (lr etc.
 * from t); the learning-rate schedule is applied here. Returns NL_OK,
 * NL_ERR_NUMERIC (NaN/Inf loss: message says in which stage/epoch),
 * or NL_ERR_INTERRUPTED (the callback returned 2). After return, weff holds
 * the final effective weights with hard masks. */
nl_status compress_train(compress *c, model *m, optim *o, const cfg_training *t,
                         const train_data *d, rng_t *r, epoch_callback cb, void *ctx,
                         nl_error *e);

/* Wanda's one-shot post-training mode (the paper's): runs up to `batches`
 * calibration batches of training.batch_size rows of x (n, in_size), in
 * order, through the model with its current dense weights (P = identity,
 * quantizers as configured), accumulates every prunable layer's input
 * norms, computes the masks as the wanda config says (budgets, per unit or
 * per layer, N:M) and freezes them: weff and compress_report then show the
 * pruned model, and a later compress_train keeps these masks (fine-tuning).
 * NL_ERR_CONFIG unless c was created with pruning_method: wanda. */
nl_status compress_wanda_oneshot(compress *c, const float *x, long n, int batches, nl_error *e);

/* Knowledge distillation: training batches use loss = alpha CE(y, s) +
 * (1 - alpha) T^2 KL(softmax(t/T) || softmax(s/T)) (evaluation keeps CE).
 * With a teacher model, t = the teacher's forward on the very rows of each
 * batch; the teacher (same in_size and classes, max_batch >= the student's,
 * e.g. modelio_load(path, batch_size, ...)->m) must outlive c. With logits,
 * t is row r of logits (n, classes) for training row r: the array must
 * match the train_data rows given to compress_train and outlive c. */
nl_status compress_set_distillation(compress *c, model *teacher, double temperature,
                                    double alpha, nl_error *e);
nl_status compress_set_distillation_logits(compress *c, const float *logits, long n,
                                           double temperature, double alpha, nl_error *e);

/* ---- what the other layers read back ------------------------------------ */

typedef struct {
    char name[64];
    int layer;                 /* model layer index (DENSE only) */
    long weights;              /* kernel entries */
    long remaining;            /* nonzero after the hard mask and quantization */
    double sparsity;           /* 1 - remaining / weights */
    int bits_min, bits_max;    /* per-weight bit spans of the quantized kernel */
    double bits_mean;
    double ebops;
    fixed_spec w_spec, b_spec, in_spec, out_spec;
} compress_layer_report;

typedef struct {
    compress_layer_report *layers; int n;
    long weights, remaining;
    double sparsity, ebops;
} compress_report;

/* Per Dense layer and total, from the current weff (call after training or
 * after a pre_forward). out->layers is malloc'd: compress_report_free. */
nl_status compress_report_get(compress *c, compress_report *out, nl_error *e);
void compress_report_free(compress_report *r);
/* The layer's current mask (kernel-shaped, 0/1 once frozen), or NULL if the
 * layer is not pruned. Valid until the next training step. */
const float *compress_mask(const compress *c, int layer);
/* Formats of a Dense layer's weights, bias, input and output. */
void compress_layer_formats(const compress *c, int layer, fixed_spec *w, fixed_spec *b,
                            fixed_spec *in, fixed_spec *out);

/* EBOPs of one dense layer: sum over nonzero weights of
 * bits(input) * bit_span(weight). w is (in, out). */
double compress_ebops_dense(const float *w, int in, int out, const fixed_spec *w_spec,
                            int input_bits);

#endif
