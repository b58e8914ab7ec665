/* keras_internal.h — the Keras layer list an export writes (internal to
 * io): one entry per Keras layer, InputLayer first, in order, with the
 * index hls4ml gives it (the input is 1). Shared by keras_write.c (JSON,
 * HDF5) and hls4ml_export.c (config, w<N>.txt), so both agree. */
#ifndef NNLO_IO_KERAS_INTERNAL_H
#define NNLO_IO_KERAS_INTERNAL_H

#include "nnlo/keras.h"

#define KX_KERAS_VERSION "2.15.0"

typedef enum { KX_INPUT, KX_DENSE, KX_RELU, KX_QUANT, KX_SOFTMAX } kx_kind;

typedef struct {
    kx_kind kind;
    char name[64];
    int layer;        /* model layer index, -1 for input and softmax */
    int quantized;    /* DENSE: written as QDense */
    int hls_index;    /* hls4ml's layer index: w<hls_index>.txt */
} kx_layer;

/* Fills out (room for model layers + 2) and returns the count. */
int keras_export_layers(const keras_net *n, kx_layer *out);

#endif
