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
    long remaining;            /* kept kernel weights (nonzero, in the hard mask), all layers */
    int bits_min, bits_max;    /* bit span of the kept weights (32: float), as layers.csv */
    double bits_mean;
    double seconds;            /* wall time of this epoch, validation included */
    double train_seconds;      /* of which training (forward, backward, steps, masks) */
    /* set by the worker for its progress messages (compress_train leaves 0): */
    double best_val_accuracy;  /* the trial's best so far, epochs before a resume included */
    double trial_seconds;      /* the trial's training wall time so far, across resumes */
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

/* ---- checkpoints (checkpoint.c) -------------------------------------------
 *
 * A checkpoint is a sequence of tagged records: a tag (1..63 characters),
 * a length and that many bytes, in host byte order (the file header's
 * byte-order mark rejects a file from another byte order). Readers consume
 * the records in the order they were written and check tag and length, so
 * a file from another layout is refused, never misread. */

typedef struct {
    unsigned char *p;          /* malloc'd; ckpt_writer_free */
    size_t len, cap;
    int nomem;                 /* an allocation failed: the content is incomplete */
} ckpt_writer;
void ckpt_put(ckpt_writer *w, const char *tag, const void *data, size_t len);
void ckpt_put_i64(ckpt_writer *w, const char *tag, int64_t v);
void ckpt_put_f64(ckpt_writer *w, const char *tag, double v);
void ckpt_writer_free(ckpt_writer *w); /* NULL-safe; w is empty after */

typedef struct {
    const unsigned char *p;    /* not owned */
    size_t len, pos;
} ckpt_reader;
/* The next record must carry `tag` and exactly len bytes (copied to out);
 * else NL_ERR_DATA naming the tag, what was expected and what was found. */
nl_status ckpt_get(ckpt_reader *r, const char *tag, void *out, size_t len, nl_error *e);
nl_status ckpt_get_i64(ckpt_reader *r, const char *tag, int64_t *v, nl_error *e);
nl_status ckpt_get_f64(ckpt_reader *r, const char *tag, double *v, nl_error *e);
/* The next record, any length: *data points into the reader's buffer. */
nl_status ckpt_get_var(ckpt_reader *r, const char *tag, const void **data, size_t *len,
                       nl_error *e);

/* FNV-1a, 64 bits (the trial YAML's fingerprint, the payload checksum). */
uint64_t ckpt_hash(const void *data, size_t len);

/* Writes the records of w to path atomically (fs_write_atomic) behind a
 * 40-byte header: magic "NNLOCKPT", format version, byte-order mark, the
 * caller's key (the hash of the trial YAML), payload length and checksum. */
nl_status ckpt_write_file(const char *path, uint64_t key, const ckpt_writer *w, nl_error *e);
/* Reads and checks a file written by ckpt_write_file: NL_ERR_IO when it
 * cannot be read, NL_ERR_DATA (message says which) when it is truncated,
 * corrupted, of another version or byte order, or its key differs. On
 * NL_OK *buf (malloc'd, caller frees) holds the file and r reads its
 * records. */
nl_status ckpt_read_file(const char *path, uint64_t key, unsigned char **buf, ckpt_reader *r,
                         nl_error *e);

/* Appends everything compress_train needs to continue bit for bit after
 * the epoch just finished: the model's params, non-trainable state and
 * Dropout rng, the optimizer's m, v and t, the training rng r, every
 * layer's mask, dead units and the frozen flag, the stage machine's
 * position (stage, round, epoch, step, patience, the rewind snapshot) and
 * the pruning method's own state. Valid only inside compress_train's
 * epoch callback (NL_ERR_INVALID otherwise). */
nl_status compress_state_save(const compress *c, const optim *o, const rng_t *r, ckpt_writer *w,
                              nl_error *e);
/* Reads what compress_state_save wrote into a compress object freshly
 * created with the same configuration on a model of the same layout (and
 * its optimizer and training rng); the next compress_train (same
 * arguments) continues after the saved epoch: its callback sees only the
 * epochs that follow. NL_ERR_DATA naming the record on any mismatch: the
 * objects are then half-restored, rebuild them before training. */
nl_status compress_state_load(compress *c, optim *o, rng_t *r, ckpt_reader *rd, nl_error *e);
/* The position a loaded checkpoint continues from (0 if none is pending):
 * the stage, round and epoch of the last finished epoch, and how many
 * epochs of this compress_train call were finished. */
int compress_resume_point(const compress *c, train_stage *stage, int *round, int *epoch,
                          int *finished);

/* EBOPs of one dense layer: sum over nonzero weights of
 * bits(input) * bit_span(weight). w is (in, out). */
double compress_ebops_dense(const float *w, int in, int out, const fixed_spec *w_spec,
                            int input_bits);

#endif
