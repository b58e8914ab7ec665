/* compress_internal.h — shared between the files of src/compress/ only.
 *
 * The pruner interface (prune_ops, one file per method, one line in the
 * registry table of compress.c), the compress object's layout, and the pure
 * mask math of each method, exported here so the tests check it without a
 * model. Not a public interface: other modules use include/nnlo/compress.h.
 * Invariant: every per-layer buffer is allocated in compress_create; the
 * hooks allocate nothing. */
#ifndef NNLO_COMPRESS_INTERNAL_H
#define NNLO_COMPRESS_INTERNAL_H

#include "nnlo/compress.h"

/* ---- the compress object ------------------------------------------------ */

/* One Dense layer under compression. */
typedef struct {
    int layer;                 /* model layer index */
    int prunable;              /* 0: disabled (disable_pruning_for_layers / enable_pruning off) */
    int in, out;
    long n;                    /* kernel entries in * out */
    long w_off, b_off;
    float *mask;               /* (n) stored mask: soft during PDP's main stage, 0/1 when frozen */
    float *tmp;                /* (n) P(W) or Q(W), the intermediate of weff */
    unsigned char *inr;        /* (n) STE window of the weight quantizer's input */
    unsigned char *binr;       /* (out) same for the bias */
    unsigned char *dead;       /* (out) structured methods, masks frozen: 1 = the unit's kernel
                                  column is all pruned, its bias is held at exactly 0 */
    fixed_spec w_spec, b_spec, in_spec, out_spec;
    fixed_spec w_train, b_train; /* as w_spec/b_spec, but WRAP modes clip (training) */
    int in_quantized;          /* a QUANT layer feeds this Dense (through ReLUs) */
    int out_quantized;
} cl_layer;

struct prune_ops;

/* Where compress_train stands after an epoch (what a checkpoint records),
 * or, loaded from one, where it continues. */
typedef struct {
    int valid;                 /* 1: the fields below hold a position */
    train_stage stage;         /* of the last finished epoch */
    int round, epoch;          /* round (main stage; else 0) and epoch within the stage */
    int global_epoch;          /* epochs finished in this compress_train call */
    double best_val;           /* fine-tuning patience: best validation loss so far */
    int since_best;            /* epochs since it */
    int stop;                  /* patience expired after this epoch: training ends here */
    int have_snap;             /* c->snap holds the save_weights_epoch snapshot */
} cm_position;

struct compress {
    model *m;
    cfg_pruning p;
    cfg_quant q;
    cfg_training t;
    int pruning, quantization; /* enabled */
    train_stage stage;         /* PRETRAIN: P = identity; MAIN: the method; FINETUNE: frozen mask */
    int frozen;                /* masks hard and frozen */
    int n_layers;
    cl_layer *layers;
    const struct prune_ops *ops;
    void *state;               /* the method's own */
    long steps_per_epoch;      /* set by compress_train */
    long step;                 /* optimizer steps in the current main-stage round */
    int epoch;                 /* the method's epoch index (restarts per stage/round) */
    int n_epochs;              /* epochs of the current stage */
    char **disable; int n_disable;
    struct cq_state *quant;    /* quant.c: formats, bit groups, HGQ (NULL: quantization off) */
    struct cd_state *distill;  /* distill.c: teacher (NULL: no distillation) */
    cm_position pos;           /* set by compress_train after each epoch, before the callback */
    cm_position resume;        /* set by compress_state_load; consumed by compress_train */
    float *snap;               /* (n_params) the rewind snapshot (kernels and biases) while
                                  compress_train runs, or loaded from a checkpoint */
};

/* A pruning method. Everything but name may be NULL. The compress object
 * calls forward/backward only in the main stage and only for prunable
 * layers; the pre-training stage uses P = identity and fine-tuning the
 * frozen 0/1 mask. */
typedef struct prune_ops {
    const char *name;
    nl_status (*init)(compress *c, nl_error *e);  /* allocate c->state */
    void (*free)(compress *c);
    void (*setup)(compress *c);                   /* after pre-training (budgets) */
    void (*epoch_begin)(compress *c);             /* main stage; c->epoch, c->n_epochs set */
    void (*epoch_end)(compress *c);               /* main stage: store masks */
    void (*round_end)(compress *c, int round);    /* after each non-final round */
    /* out = P(w) for layer li (n values); may update L->mask. */
    void (*forward)(compress *c, int li, const float *w, float *out);
    /* In place: g = dL/dP(w) -> dL/dw, for the w of the last forward. */
    void (*backward)(compress *c, int li, const float *w, float *g);
    void (*post_step)(compress *c);
    void (*freeze)(compress *c);                  /* make every L->mask 0/1 (m >= 0.5) */
    /* The method's own trainable segments in the model's flat buffer (CS's
     * s, DST's thresholds, ...), named and sized before the model exists;
     * the arrays are malloc'd (see compress_plan_params). Find them later
     * with model_find_view(c->m, name); optimizer and checkpoint cover them. */
    nl_status (*plan)(const layer_spec *specs, int n_specs, int in_size, const cfg_pruning *p,
                      char ***names, long **lens, int *n, nl_error *e);
    /* Main stage, after the gradients of the data loss are mapped to W: add
     * the method's loss term's gradients to c->m->grads (W and the method's
     * own segments); returns the term's value. */
    float (*extra_loss)(compress *c);
    /* Main stage, training forward passes: the (B, in_size) input of model
     * layer `layer` (Wanda's feature norms, CLNP's activation counts). */
    void (*observe)(compress *c, int layer, const float *in, int B);
    /* Checkpoints (checkpoint.c): the method's state that lives across
     * epochs and is not in the model's flat buffer (budgets, counters,
     * accumulators, schedules), as tagged records; load_state reads back
     * exactly what save_state wrote, in order, into a freshly initialised
     * object (NL_ERR_DATA on a tag or length mismatch, via ckpt_get). A
     * method without state across epochs leaves both NULL. */
    void (*save_state)(const compress *c, ckpt_writer *w);
    nl_status (*load_state)(compress *c, ckpt_reader *r, nl_error *e);
} prune_ops;

extern const prune_ops prune_pdp_ops;
extern const prune_ops prune_magnitude_ops;

/* ---- PDP math (pdp.c) ------------------------------------------------------ */

/* Threshold of a layer at prune ratio r: with v = |w| sorted descending,
 * k = clamp(floor((1 - r) n) - 1, 0, n - 2), t = (v[k] + v[k+1]) / 2.
 * *ia, *ib: indices of the weights holding v[k] and v[k+1] (the gradient
 * of t flows to them). scratch: n floats. Returns -1 when nothing is to be
 * pruned (floor((1 - r) n) >= n, or n < 2): the mask is then exactly 1;
 * NaN (and *ia = *ib = -1) when a weight is NaN. */
float pdp_threshold(const float *w, long n, double r, float *scratch, long *ia, long *ib);
/* m = sigmoid((w^2 - t^2) / tau), out = m w (out may be NULL). t < 0: m = 1. */
void pdp_forward(const float *w, long n, float t, float tau, float *m, float *out);
/* In place g = dL/dout -> dL/dw: g m + g w m (1 - m) 2 w / tau directly, and
 * dL/dt = sum g w m (1 - m) (-2 t / tau) to w[ia], w[ib] via dt/dw = sign/2. */
void pdp_backward(const float *w, const float *m, long n, float t, float tau, long ia,
                  long ib, float *g);
/* Structured (per output unit of a (in, out) kernel): score c_o = ||W[:, o]||_2,
 * the same threshold rule on the scores, m_o = sigmoid((c_o^2 - t^2) / tau),
 * out[i, o] = m_o W[i, o]. cm: (out) mask per unit; scores, scratch: (out). */
float pdp_struct_threshold(const float *w, int in, int out, double r, float *scores,
                           float *scratch, long *ia, long *ib);
void pdp_struct_forward(const float *w, int in, int out, const float *scores, float t,
                        float tau, float *cm, float *m, float *o);
void pdp_struct_backward(const float *w, int in, int out, const float *scores,
                         const float *cm, float t, float tau, long ia, long ib, float *g);
/* Global budgets: the P = round(S N) smallest |w| over all L layers (ties by
 * layer then index); r[l] = layer l's share of them / n[l]. scratch: N
 * entries, N = sum n[l]. */
typedef struct { float a; int layer; long idx; } cm_entry;
void pdp_budgets(const float *const *w, const long *n, int L, double S, double *r,
                 cm_entry *scratch);

/* ---- magnitude math (magnitude.c) ---------------------------------------- */

/* Zhu & Gupta: 0 before t0; s_f + (s_i - s_f)(1 - (t - t0)/(t1 - t0))^power for
 * t0 <= t <= t1; s_f after t1 (and at t0 when t1 <= t0). */
double magnitude_schedule(double s_i, double s_f, long t, long t0, long t1, double power);
/* Global mask: mask[l][j] = 0 for the round(s N) smallest |w| over all layers
 * (ties by layer then index), 1 otherwise. scratch: N entries. Returns the
 * number pruned. */
long magnitude_mask(const float *const *w, const long *n, int L, double s, float *const *mask,
                    cm_entry *scratch);

/* ---- helpers ------------------------------------------------------------- */

/* Fills and sorts all weights' |w| ascending, ties by layer then index;
 * returns N. */
long cm_sort_abs(const float *const *w, const long *n, int L, cm_entry *out);
/* Fraction of zeros of the hard mask (mask < 0.5) over all Dense kernels. */
double cm_hard_sparsity(const compress *c);
/* rec's ebops, remaining, bits_min/mean/max: the totals of the per-layer
 * report (layers.csv) for the current weff with hard masks. */
void cm_epoch_totals(const compress *c, epoch_record *rec);
/* Input bits of layer L for EBOPs. */
int cm_input_bits(const compress *c, const cl_layer *L);
/* weff for every Dense layer from params in the current stage. */
void cm_pre_forward(compress *c);
/* 1 for the structured methods (pdp with structured_pruning, activation_pruning),
 * whose pruned units lose their bias too. */
int cm_structured(const compress *c);
/* After the masks are made 0/1 and frozen: for structured methods, marks the
 * units whose kernel column is all pruned (L->dead) and zeroes their bias
 * in params; cm_pre_forward and the hooks then keep it at exactly 0. */
void cm_freeze_units(compress *c);

/* ---- cs, dst, autosparse (cs.c, dst.c, autosparse.c) ---------------------- */

extern const prune_ops prune_cs_ops;
extern const prune_ops prune_dst_ops;
extern const prune_ops prune_autosparse_ops;

/* Thresholds of an (in, out) kernel: out (channelwise: one per output
 * unit, PQuant's weight.shape[0]), in * out (weightwise) or 1 (layerwise).
 * Entry (i, o) = j = i out + o uses threshold o, j or 0. */
long sparse_n_thresholds(prune_threshold_type tt, int in, int out);
/* plan helper: one segment "<layer>/<suffix>" per prunable kernel (Dense,
 * Conv: a (rows, cols) matrix, nn's layer_kernel_rows/cols) of specs,
 * rows * cols values (per_weight) or sparse_n_thresholds(p->threshold_type).
 * Shapes come from a throw-away model_create of the specs (batch 1); its
 * errors are returned as they are. */
nl_status sparse_plan(const layer_spec *specs, int n_specs, int in_size, const cfg_pruning *p,
                      const char *suffix, int per_weight, char ***names, long **lens, int *n,
                      nl_error *e);
/* off[li] = the params offset of layer li's segment (-1 if not prunable);
 * NL_ERR_INVALID naming the segment when the model lacks it. */
nl_status sparse_find_segments(compress *c, const char *suffix, int per_weight, long *off,
                               nl_error *e);
/* Every threshold segment found by sparse_find_segments (off[li] >= 0,
 * sparse_n_thresholds values each) back to threshold_init. */
void sparse_reset_thresholds(compress *c, const long *off);

/* CS: c = 1 / sigmoid(s0) = 1 + exp(-s0); beta's factor per epoch
 * final_temp^(1/(E-1)) (final_temp when E <= 1). */
double cs_scale(double s0);
double cs_beta_factor(double final_temp, int E);
/* m = c sigmoid(beta s), out = m w (out may be NULL). */
void cs_forward(const float *w, const float *s, long n, double beta, double scale, float *m,
                float *out);
/* In place g = dL/dout -> dL/dw = g m; gs += g w dm/ds. */
void cs_backward(const float *w, const float *m, long n, double beta, double scale, float *g,
                 float *gs);
/* Returns lambda sum m (m > 0: its L1 norm); gs += lambda dm/ds (gs may be NULL). */
double cs_l1(const float *m, long n, double beta, double scale, double lambda, float *gs);
/* s = min(beta s, s0). */
void cs_round_reset(float *s, long n, double beta, double s0);
double cs_beta(const compress *c);   /* current beta (tests) */

/* DST: surrogate of step'(x): 2 - 4|x| (|x| <= 0.4), 0.4 (|x| <= 1), else 0. */
float dst_step_grad(float x);
/* mask = (|w| - T > 0), o = mask w (o may be NULL); returns the number pruned. */
long dst_forward(const float *w, int in, int out, const float *T, prune_threshold_type tt,
                 float *mask, float *o);
/* In place g -> dL/dw = g mask + g |w| step'(x); gT -= g w step'(x). */
void dst_backward(const float *w, int in, int out, const float *T, prune_threshold_type tt,
                  float *g, float *gT);
/* Returns alpha sum exp(-T); gT -= alpha exp(-T) (gT may be NULL). */
double dst_penalty(const float *T, long nT, double alpha, float *gT);
/* Collapse guard: channelwise/layerwise T just below the largest |w| of its
 * group (it stays kept); weightwise T <= |w| + 1 (x stays in the surrogate's
 * support). gmax: nT floats of scratch. */
void dst_clamp(const float *w, int in, int out, float *T, prune_threshold_type tt, float *gmax);

/* AutoSparse: alpha0 max((1 + cos(pi e/E))/2, 1 - sigmoid(-6 + 12 e/E)), 0 once
 * e >= reset_epoch. */
double autosparse_alpha(double alpha0, int e, int E, int reset_epoch);
/* sT = sigmoid(T) (nT floats), x = |w| - sT, mask = x > 0, o = sign(w) relu(x)
 * (o may be NULL or w itself); returns the number pruned. */
long autosparse_forward(const float *w, int in, int out, const float *T, prune_threshold_type tt,
                        float *sT, float *mask, float *o);
/* In place g -> dL/dw = g d (d = 1 if x > 0 else alpha; 0 where w = 0);
 * gT -= g d sign(w) sT (1 - sT). sT from the forward. */
void autosparse_backward(const float *w, int in, int out, const float *sT,
                         prune_threshold_type tt, float alpha, float *g, float *gT);
/* Collapse guard (channelwise/layerwise; weightwise is left alone): T at most
 * logit of just below the largest |w| of its group, so each unit keeps its
 * strongest weight. gmax: nT floats of scratch. */
void autosparse_clamp(const float *w, int in, int out, float *T, prune_threshold_type tt,
                      float *gmax);
double autosparse_current_alpha(const compress *c); /* tests */

/* ---- wanda, activation_pruning, mdmm (wanda.c, activation.c, mdmm.c) ------ */

extern const prune_ops prune_wanda_ops;
extern const prune_ops prune_activation_ops;
extern const prune_ops prune_mdmm_ops;

/* Wanda scores S[i, o] = |W[i, o]| sqrt(sqsum[i]) of an (in, out) kernel
 * (NaN scores become 0: pruned first). */
void wanda_scores(const float *w, int in, int out, const double *sqsum, float *score);
/* mask = 0 for the lowest scores: lround(ratio in) per output unit, or
 * lround(ratio n) over the layer (per_layer); ties by index (lower index
 * pruned first). scratch: n (per_layer) or in entries; col: in floats.
 * Returns the number pruned. */
long wanda_mask(const float *score, int in, int out, double ratio, int per_layer, float *mask,
                cm_entry *scratch, float *col);
/* N:M: per output unit, in each group of M consecutive inputs keep the
 * `keep` highest scores (ties: lower index kept); a short tail group of g
 * keeps ceil(keep g / M). Returns the number pruned. */
long wanda_nm_mask(const float *score, int in, int out, int keep, int M, float *mask);
/* Survivors per group of M: N (keep_n) or M - N (prune_n, PQuant's). */
int wanda_nm_keep(int N, int M, prune_nm_convention conv);

/* CLNP: active[o] += number of rows b with pre[b, o] > 0. */
void clnp_count(const float *pre, int B, int out, double *active);
/* Kernel mask of an (in, out) layer: unit o kept iff active[o] / samples >
 * threshold (samples 0: kept). Returns the number of pruned units. */
int clnp_mask(const double *active, double samples, int in, int out, double threshold,
              float *mask);

/* MDMM sparsity metric f = (s^2 - L0^2) ||w||_1 / N (N = n if mean_scale, else 1),
 * L0 = mean(|w| <= eps) or mean(exp(-100 w^2)); dfdw (n, may be NULL)
 * receives df/dw (the coarse L0 counts as constant). */
double mdmm_sparsity_metric(const float *w, long n, double eps, mdmm_l0_mode mode,
                            double s_target, int mean_scale, double *dfdw);
/* h of the constraint type at f; *dhdf its derivative (0 at the kink). */
double mdmm_infeasibility(double f, double target, mdmm_constraint type, double *dhdf);
/* scale (lambda h + damping h^2 / 2) for one layer from p's keys; *h gets
 * h; if g is not NULL the penalty's gradient is added to it (scratch: n). */
double mdmm_penalty(const float *w, long n, const cfg_pruning *p, double lambda, double *h,
                    double *scratch, float *g);

#endif
