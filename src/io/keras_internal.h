/* keras_internal.h — the Keras layer list an export writes (internal to
 * io): one entry per Keras layer, InputLayer first, in order, with the
 * index hls4ml gives it (the input is 1). Shared by keras_write.c (JSON,
 * HDF5) and hls4ml_export.c (config, w<N>.txt), so both agree. */
#ifndef NNLO_IO_KERAS_INTERNAL_H
#define NNLO_IO_KERAS_INTERNAL_H

#include "nnlo/keras.h"

#define KX_KERAS_VERSION "2.15.0"

typedef enum {
    KX_INPUT, KX_DENSE, KX_RELU, KX_QUANT, KX_SOFTMAX,
    KX_CONV,       /* Conv1D / Conv2D (QConv* when quantized) */
    KX_POOL,       /* MaxPooling1D/2D, AveragePooling1D/2D */
    KX_BATCHNORM,  /* BatchNormalization */
    KX_FLATTEN,    /* Flatten (layer -1: inserted before a Dense that receives a spatial tensor) */
    KX_DROPOUT,    /* Dropout: hls4ml skips it (no index) */
    KX_ACT,        /* Activation tanh / sigmoid / hard_tanh */
    KX_LEAKY       /* LeakyReLU */
} kx_kind;

typedef struct {
    kx_kind kind;
    char name[64];
    int layer;        /* model layer index, -1 for input, softmax and inserted Flattens */
    int quantized;    /* DENSE, CONV: written as QDense / QConv */
    int hls_index;    /* hls4ml's layer index: w<hls_index>.txt (0 for Dropout) */
} kx_layer;

/* Room keras_export_layers needs for a model of n layers. */
#define KX_MAX_LAYERS(n) (2 * (n) + 2)

/* Fills out (room for KX_MAX_LAYERS(model layers)) and returns the count. */
int keras_export_layers(const keras_net *n, kx_layer *out);

#endif
