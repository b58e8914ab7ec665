/* hls4ml.h — hls4ml configuration files, the network -> fpga_layer mapping
 * shared by `estimate`, the scan and the export, and `export --hls4ml`.
 *
 * One mapping (hls4ml_fpga_layers) decides what hls4ml builds from our
 * layers: a QUANT layer is not a layer of its own but the result type of
 * the layer before it (hls4ml removes a linear activation whose output
 * type equals its input type; the export writes exactly that), each
 * layer's input format is the previous layer's result format, weights are
 * quantized to their (possibly overridden) format, the accumulator mode is
 * the one the export writes (`accum: auto`). Knows nn, fpga and config's
 * YAML reader; not MPI. */
#ifndef NNLO_HLS4ML_H
#define NNLO_HLS4ML_H

#include "nnlo/config.h"
#include "nnlo/fpga.h"
#include "nnlo/keras.h"

/* Per-layer settings from HLSConfig.LayerName.<name>. */
typedef struct {
    char name[64];
    int has_w, has_b, has_result, has_accum;
    int w_auto, b_auto, result_auto, accum_auto;   /* the value was 'auto' */
    fixed_spec w, b, result, accum;
    int reuse_factor;            /* 0 = not given */
    int strategy;                /* -1 = not given, else fpga_strategy */
    int parallelization;         /* ParallelizationFactor (conv layers); 0 = not given */
} hls4ml_layer_cfg;

typedef struct {
    cfg_fpga fpga;               /* part, clock, strategy, reuse factor */
    int has_part, has_clock, has_strategy, has_reuse;
    int has_precision;
    fixed_spec precision;        /* HLSConfig.Model.Precision (default) */
    int model_accum;             /* -1 not given, 0 auto, 1 fixed (model_accum_spec) */
    fixed_spec model_accum_spec;
    hls4ml_layer_cfg *layers; int n_layers;   /* malloc'd */
    char input_name[64];         /* LayerName key that is the Keras input, if any */
} hls4ml_config;

/* hls4ml's defaults: part xcvu13p-flga2577-2-e, 5 ns, Latency, RF 1,
 * precision ap_fixed<16,6> (AP_TRN, AP_WRAP), no layer settings. */
void hls4ml_config_default(hls4ml_config *c);
/* Reads an hls4ml config YAML: Part, ClockPeriod, HLSConfig.Model
 * {Precision (string or {default, accum, ...}), ReuseFactor, Strategy},
 * HLSConfig.LayerName.<layer> {Precision (string or {weight (BatchNorm:
 * scale), bias, result, accum}), ReuseFactor, Strategy, ParallelizationFactor}. Precision spellings: fixed<W,I>,
 * ap_fixed<W,I>, ufixed<W,I>, ap_ufixed<W,I>, with optional modes;
 * without modes they mean AP_TRN/AP_WRAP as in HLS. 'auto' is accepted.
 * Other keys (KerasJson, OutputDir, IOType, Backend, ...) are ignored;
 * LayerType is refused (not supported). Errors name file:line:col and the
 * key. *c is filled over hls4ml_config_default. */
nl_status hls4ml_config_load(const char *path, hls4ml_config *c, nl_error *e);
void hls4ml_config_free(hls4ml_config *c); /* NULL-safe */
/* The settings of layer `name`, or NULL. */
const hls4ml_layer_cfg *hls4ml_config_layer(const hls4ml_config *c, const char *name);
/* Parses a precision as hls4ml reads it: modes default to TRN/WRAP.
 * Returns 0 on success, -1 if not a fixed-point type, 1 for "auto". */
int hls4ml_parse_precision(const char *text, fixed_spec *out);

/* hls4ml's 'auto' accumulator / result type of a Dense layer
 * (InferPrecisionTypes): width w + x + ceil(log2 n_in), integers likewise,
 * then aligned with the bias (+1 integer bit), TRN/WRAP. */
fixed_spec hls4ml_auto_accum(const fixed_spec *in, const fixed_spec *w, const fixed_spec *b, int n_in);

/* The network as fpga_layers. */
typedef struct {
    fpga_layer *layers; int n;   /* malloc'd */
    int *of_layer;               /* (model layers) fpga layer index, -1 for QUANT layers */
    fixed_spec input_spec;       /* the network input's format */
    float *values;               /* quantized weights and biases the layers point into */
    fpga_options opt;            /* accumulator mode, to pass to fpga_estimate_ex */
    cfg_fpga fpga;               /* the resolved part, clock, strategy, RF */
    unsigned char *fused;        /* (model layers) 1 for a BATCHNORM hls4ml fuses into the Dense/Conv
                                    before it (of_layer then names that layer's fpga layer) */
} hls4ml_net;

/* Maps m (per-layer formats in info, NULL = none quantized) to fpga
 * layers, following the rules in the file comment. Conv1D/Conv2D/pooling
 * carry their geometry; Flatten and Dropout make no layer; a BatchNorm
 * directly after an unquantized Dense/Conv whose result type is 'auto'
 * (what the export writes for it; with hc, the layer's config must say
 * result: auto, unless hc has no LayerName entries and model_accum = 0,
 * which stands for the export's settings) is fused into it as hls4ml's FuseBatchNormalization does
 * (model_fold_batchnorm; the fused layer's result is the auto accumulator
 * type), otherwise it is a scale-and-shift layer. softmax_name: append a
 * Softmax layer of that name (NULL = none). input_name: the LayerName key
 * of the input (NULL = none). hc may be NULL: model precision
 * ap_fixed<16,6>, accumulators 'auto' (what the export writes). fpga
 * settings: base_fpga (NULL = hls4ml's defaults), overridden by what hc
 * gives. Unquantized Dense layers use the model precision. Per-layer
 * Strategy different from the model's is an error (the estimator has one).
 * On error *out is zeroed. The worker calls this with hc = NULL, info from
 * compress_layer_formats (quantized = 1) and base_fpga = &tc->fpga, then
 * fpga_estimate_ex(out.layers, out.n, &out.fpga, &out.opt, ...). */
nl_status hls4ml_fpga_layers(const model *m, const modelio_layer_info *info, const char *softmax_name,
                             const char *input_name, const hls4ml_config *hc, const cfg_fpga *base_fpga,
                             hls4ml_net *out, nl_error *e);
void hls4ml_net_free(hls4ml_net *n); /* NULL-safe */

/* Writes DIR/model.json, DIR/model_weights.h5 (a full Keras HDF5 model),
 * DIR/hls4ml_config.yml and DIR/weights/w<N>.txt, b<N>.txt
 * (N = hls4ml's layer index, the InputLayer is 1). Settings (part, clock,
 * strategy, reuse factor) come from fpga (NULL = hls4ml defaults). Creates
 * DIR. */
nl_status hls4ml_export(const keras_net *n, const cfg_fpga *fpga, const char *dir, nl_error *e);
/* keras_net_load + hls4ml_export: for the scan's best/<rank>_<id>/ folders
 * (results_finish: hls4ml_export_file(".../model.h5", &scan_fpga, ".../hls4ml", e)). */
nl_status hls4ml_export_file(const char *model_path, const cfg_fpga *fpga, const char *dir, nl_error *e);

#endif
