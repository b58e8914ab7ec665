/* nn_internal.h — kernels shared between the files of src/nn/ only.
 * Not a public interface: other modules use include/nnlo/nn.h. Same rules
 * as the public kernels (pure, no allocation, shape comments). */
#ifndef NNLO_NN_INTERNAL_H
#define NNLO_NN_INTERNAL_H

#include "nnlo/nn.h"

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
