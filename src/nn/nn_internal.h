/* nn_internal.h — kernels shared between the files of src/nn/ only.
 * Not a public interface: other modules use include/nnlo/nn.h. Same rules
 * as the public kernels (pure, no allocation, shape comments). */
#ifndef NNLO_NN_INTERNAL_H
#define NNLO_NN_INTERNAL_H

#include "nnlo/nn.h"

/* Hot elementwise loops (ReLU, STE, bias, optimizers, batch gather): the
 * project builds with -O2 for x86-64-v2, where GCC 12 vectorises almost
 * nothing and compiles the ReLU select to a mispredicted branch. These few
 * functions get O3 (vectorised, branch-free; short copies stay inline
 * loops instead of memcpy calls) and, on x86-64, an AVX2 clone
 * chosen at load time. No -ffast-math and no FMA contraction (ISO C mode),
 * so every clone computes the same floats. GCC only; elsewhere plain. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_HOT                                                                 \
    __attribute__((optimize("O3", "no-tree-loop-distribute-patterns"),          \
                   target_clones("avx2", "default")))
#elif defined(__GNUC__) && !defined(__clang__)
#define NN_HOT __attribute__((optimize("O3", "no-tree-loop-distribute-patterns")))
#else
#define NN_HOT
#endif

/* Dense backward; accumulate = 0 overwrites dw and db instead of adding
 * (model_backward uses it so that grads need no zeroing pass). */
void nn_dense_backward_beta(float *din, float *dw, float *db, const float *dout,
                            const float *in, const float *w, int B, int IN, int OUT,
                            int accumulate);
void nn_relu_forward(float *out, const float *in, long n);
/* In place: g *= (out > 0). */
void nn_relu_backward(float *g, const float *out, long n);
/* In place: g = pass ? g : 0. */
void nn_ste_backward(float *g, const unsigned char *pass, long n);
/* out (B,OUT): every row = b (OUT). */
void nn_broadcast_rows(float *out, const float *b, int B, int OUT);
/* db (OUT) (+)= column sums of dout (B,OUT); accumulate = 0 overwrites. */
void nn_bias_grad(float *db, const float *dout, int B, int OUT, int accumulate);

/* layers.c. BatchNorm over N rows of C channels (rows = samples x positions):
 * training normalizes with the batch mean and biased variance and moves
 * moving (2C: mean, variance) by momentum; evaluation uses moving. xhat (N,C)
 * and stat (2C: mean, 1/sqrt(var + eps)) are kept for the backward. */
void nn_bn_forward(float *out, float *xhat, float *stat, const float *in, const float *gamma,
                   const float *beta, float *moving, long N, int C, float eps, float momentum,
                   int training);
/* dgamma, dbeta (C) (+)= (accumulate = 0 overwrites); din (N,C) overwritten
 * (may be NULL); training as in the forward. */
void nn_bn_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *xhat,
                    const float *stat, const float *gamma, long N, int C, int training,
                    int accumulate);
/* The row-sliceable pieces of the two (N rows of C channels; channels
 * [c0, c0 + nc); sums are added to). Forward: sum[j] += x; sq[j] += (x -
 * mean)^2 with mean = stat[0..C); nn_bn_finish sets invstd (stat[C..2C))
 * and moves `moving` from the variance sq / N; nn_bn_normalize writes xhat
 * and out for any rows; nn_bn_eval_stat sets stat from moving. Backward:
 * sg += g, sgx += g xhat; nn_bn_grad_coefs gives k = gamma invstd and the
 * means mg, mgx (0 outside training); nn_bn_input_grad writes din. */
void nn_bn_sums(const float *in, long N, int C, int c0, int nc, double *sum);
void nn_bn_sqdevs(const float *in, long N, int C, int c0, int nc, const float *mean, double *sq);
void nn_bn_finish(float *stat, float *moving, int C, int c0, int nc, const double *sq, long N,
                  float eps, float momentum);
void nn_bn_normalize(float *out, float *xhat, const float *in, long N, int C, const float *stat,
                     const float *gamma, const float *beta);
void nn_bn_eval_stat(float *stat, const float *moving, int C, float eps);
void nn_bn_grad_sums(const float *dout, const float *xhat, long N, int C, int c0, int nc, double *sg,
                     double *sgx);
void nn_bn_grad_coefs(const double *sg, const double *sgx, const float *stat, const float *gamma, long N,
                      int C, int c0, int nc, int training, float *k, float *mg, float *mgx);
void nn_bn_input_grad(float *din, const float *dout, const float *xhat, long N, int C, int c0, int nc,
                      const float *k, const float *mg, const float *mgx);
/* Inverted dropout: keep (n) drawn from r, out = keep in / (1 - rate). */
void nn_dropout_forward(float *out, unsigned char *keep, const float *in, long n, float rate,
                        rng_t *r);
/* In place: g = keep ? g / (1 - rate) : 0. */
void nn_dropout_backward(float *g, const unsigned char *keep, long n, float rate);
/* TANH, SIGMOID, HARD_TANH, LEAKY_RELU (alpha) elementwise; the backward
 * works in place on g and reads the forward's in and out. */
void nn_act_forward(int kind, float *out, const float *in, long n, float alpha);
void nn_act_backward(int kind, float *g, const float *in, const float *out, long n, float alpha);

/* Forward with an optional per-layer input observer (training loop). */
const float *nn_forward_observed(model *m, const float *x, int B, const train_hooks *h);

#endif
