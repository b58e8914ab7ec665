/* keras.h — Keras 2 / tf.keras HDF5 models (with QKeras layers) in and out.
 *
 * Reads the file model.save() writes: root attribute `model_config` (JSON)
 * and the `model_weights` group (per layer: attribute `weight_names`, the
 * datasets they name). A sequential chain of InputLayer, Dense, QDense,
 * Conv1D/Conv2D/QConv1D/QConv2D, Max/AveragePooling1D/2D,
 * (Q)BatchNormalization, Activation (relu, softmax, linear, tanh, sigmoid,
 * hard_tanh, leaky_relu), ReLU, LeakyReLU, Softmax, QActivation, Dropout
 * and Flatten (channels_last only) becomes nnlo-c layers: QKeras quantizers
 * become fixed-point formats (weights are quantized on import, exactly as
 * QKeras does at inference), QActivation becomes a QUANT layer (plus RELU
 * for quantized_relu), BatchNorm moving statistics go to the model's state.
 * Other layers are refused with a message naming the layer. The writer
 * produces the same layout (docs/estimate.md). */
#ifndef NNLO_KERAS_H
#define NNLO_KERAS_H

#include "nnlo/json.h"
#include "nnlo/modelio.h"

/* A network as estimate and export see it: an nnlo-c model file's content
 * plus what only Keras models carry. */
typedef struct {
    modelio_file f;        /* specs, model (params == weff == values), per-layer formats */
    int softmax;           /* 1: the network ends in a softmax (hls4ml builds one) */
    char softmax_name[64]; /* its Keras layer name ("softmax" for nnlo-c files) */
    int from_keras;        /* 1: read from a Keras file */
    char input_name[64];   /* the Keras InputLayer's name ("input_1" by default) */
} keras_net;

/* 1 if path is an HDF5 file with a root attribute `model_config` (Keras). */
int keras_is_keras_file(const char *path);

/* Reads a Keras/QKeras HDF5 model. Errors name the file and the layer and
 * say what is missing or unsupported. On error *out is freed and zeroed. */
nl_status keras_load(const char *path, int max_batch, keras_net *out, nl_error *e);

/* Reads either format (Keras if the file has `model_config`, else an
 * nnlo-c model file; its root attribute `output_activation` = "softmax"
 * sets softmax). */
nl_status keras_net_load(const char *path, int max_batch, keras_net *out, nl_error *e);
void keras_net_free(keras_net *n); /* NULL-safe */

/* Saves net as an nnlo-c model file (modelio_save) and records a final
 * softmax as the root attribute `output_activation`. */
nl_status keras_net_save_nnlo(const keras_net *n, const char *path, nl_error *e);

/* The Keras-2 model JSON of net (Sequential; QDense / QActivation with
 * quantized_bits where the layer is quantized), appended to b. */
void keras_model_json(const keras_net *n, sbuf *b);

/* Writes net as a Keras HDF5 model (model.save() layout: `model_config`,
 * `keras_version`, `backend`, `model_weights` with `layer_names`, per
 * layer `weight_names` and `<layer>/<layer>/kernel:0`, `.../bias:0`).
 * Each quantized layer group also carries `nnlo_kernel_type`,
 * `nnlo_bias_type`, `nnlo_quant_type` (fixed_format_hls strings) so that
 * nnlo-c reads back the exact rounding and overflow modes that QKeras's
 * quantizer configs cannot express; Keras and hls4ml ignore them.
 * Written to path.tmp and renamed. */
nl_status keras_save(const keras_net *n, const char *path, nl_error *e);

/* Parses one QKeras quantizer, given as JSON (`{"class_name":
 * "quantized_bits", "config": {...}}` or the string form
 * "quantized_bits(8,0,alpha=1)"). quantized_bits(bits, integer, symmetric,
 * keep_negative, alpha) -> (k = keep_negative, i = integer, f = bits - k -
 * i), RND_CONV, SAT (SAT_SYM when symmetric); quantized_relu(bits,
 * integer) -> (0, integer, bits - integer) and *relu = 1;
 * quantized_tanh(bits, 0, symmetric, use_real_tanh) -> (1, 0, bits - 1),
 * RND_CONV, SAT (SAT_SYM) and *relu = 2 (hard tanh before it, what QKeras
 * and hls4ml compute) or 3 (use_real_tanh: tanh). alpha must be
 * None or 1. Returns NL_OK or NL_ERR_DATA with msg "<what is wrong>"
 * (no layer name: the caller prefixes it). */
nl_status keras_parse_quantizer(const json *q, fixed_spec *out, int *relu, nl_error *e);

#endif
