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
/* Forward with an optional per-layer input observer (training loop). */
const float *nn_forward_observed(model *m, const float *x, int B, const train_hooks *h);

#endif
