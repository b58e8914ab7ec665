/* nn_internal.h — kernels shared between the files of src/nn/ only.
 * Not a public interface: other modules use include/nnlo/nn.h. Same rules
 * as the public kernels (pure, no allocation, shape comments). */
#ifndef NNLO_NN_INTERNAL_H
#define NNLO_NN_INTERNAL_H

#include "nnlo/nn.h"

/* Hot elementwise loops (ReLU, STE, bias sums, optimizers): the project
 * builds with -O2, where GCC 12 vectorises almost nothing and compiles the
 * ReLU select to a mispredicted branch. Raise these few functions to O3
 * (vectorised, branch-free; no -ffast-math, so results are unchanged) and
 * let sqrtf skip errno. GCC only; other compilers get plain functions. */
#if defined(__GNUC__) && !defined(__clang__)
#define NN_HOT __attribute__((optimize("O3", "no-math-errno")))
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
/* Forward with an optional per-layer input observer (training loop). */
const float *nn_forward_observed(model *m, const float *x, int B, const train_hooks *h);

#endif
