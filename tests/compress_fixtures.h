/* compress_fixtures.h — the toy problem and base training config shared by
 * the compression suites (check_compress, check_prune_data,
 * check_prune_sparse): three Gaussian blobs in 8 dimensions, small enough
 * to train in milliseconds, separable enough that a pruned MLP must still
 * learn it. Header-only; static inline so a suite may leave parts unused. */
#ifndef NNLO_COMPRESS_FIXTURES_H
#define NNLO_COMPRESS_FIXTURES_H

#include <string.h>
#include "nnlo/compress.h"

enum { D = 8, C = 3, NTR = 480, NVA = 150 };

typedef struct {
    float xtr[NTR * D], xva[NVA * D];
    int32_t ytr[NTR], yva[NVA];
} toy_data;

/* Three Gaussian blobs in 8 dimensions; values within +-8 (data format). */
static inline void toy_make(toy_data *t, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed);
    for (int s = 0; s < NTR + NVA; s++) {
        int y = s % C;
        float *x = s < NTR ? t->xtr + s * D : t->xva + (s - NTR) * D;
        for (int d = 0; d < D; d++) x[d] = 0.7f * rng_normal(&r) + (d % C == y ? 1.5f : 0.0f);
        if (s < NTR) t->ytr[s] = y;
        else t->yva[s - NTR] = y;
    }
}

static inline train_data toy_view(const toy_data *t) {
    train_data d = {t->xtr, t->ytr, NTR, t->xva, t->yva, NVA};
    return d;
}

/* One round of `epochs` main-stage epochs, Adam 1e-2, batch 32, no rewind,
 * Q(P(W)), constant learning rate. */
static inline cfg_training tr_toy(int epochs) {
    cfg_training t;
    memset(&t, 0, sizeof t);
    t.epochs = epochs;
    t.rounds = 1;
    t.save_weights_epoch = -1;
    t.rewind = REWIND_NEVER;
    t.pruning_first = 1;
    t.batch_size = 32;
    t.optimizer = OPTIMIZER_ADAM;
    t.learning_rate = 1e-2;
    t.schedule = LR_CONSTANT;
    t.gamma = 0.1;
    return t;
}

/* Quantization off (every field zero). */
static inline cfg_quant q_off(void) {
    cfg_quant q;
    memset(&q, 0, sizeof q);
    return q;
}

#endif
