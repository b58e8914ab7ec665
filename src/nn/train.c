/* train.c — one training epoch and evaluation over in-memory arrays, with
 * the hooks through which compression enters; the OpenBLAS thread count.
 * Does not read files, schedule learning rates or decide early stopping
 * (the worker does). Per step nothing is allocated: batches are gathered
 * row by row into the model's own xb/yb; only the epoch's permutation is. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nn_internal.h"

static nl_status check_labels(const model *m, const int32_t *y, long n, nl_error *e) {
    for (long s = 0; s < n; s++)
        if (y[s] < 0 || y[s] >= m->out_size)
            return nl_err(e, NL_ERR_DATA,
                          "label %d of sample %ld is outside [0, %d): the model has %d outputs; "
                          "check the dataset's labels or the last layer's units",
                          (int)y[s], s, m->out_size, m->out_size);
    return NL_OK;
}

/* xb (B,IN) = rows idx of x (n,IN), yb (B) likewise. Random rows miss the
 * cache: the first 8 lines of the row AHEAD rows on are prefetched before
 * each copy (the hardware streams the rest of a long row; measured on
 * 784-float rows: 125 -> 85 us per batch of 256). */
NN_HOT
static void gather_rows(float *restrict xb, int32_t *yb, const float *x, const int32_t *y,
                        const uint32_t *idx, int B, int IN) {
    enum { AHEAD = 4, LINES = 8 };
    const size_t row = (size_t)IN * sizeof(float);
    const size_t pf = row < LINES * 64 ? row : LINES * 64;
    for (int s = 0; s < B && s < AHEAD; s++) {
        const char *p = (const char *)(x + (size_t)idx[s] * IN);
        for (size_t o = 0; o < pf; o += 64) __builtin_prefetch(p + o);
    }
    for (int s = 0; s < B; s++) {
        if (s + AHEAD < B) {
            const char *p = (const char *)(x + (size_t)idx[s + AHEAD] * IN);
            for (size_t o = 0; o < pf; o += 64) __builtin_prefetch(p + o);
        }
        uint32_t k = idx[s];
        const float *src = x + (size_t)k * IN;
        float *dst = xb + (size_t)s * IN;
        for (int j = 0; j < IN; j++) dst[j] = src[j]; /* short rows: no call */
        yb[s] = y[k];
    }
}

/* Small models train faster on one BLAS thread: OpenBLAS threads any sgemm
 * above 256^3/64 multiply-adds, and on layers this narrow (jet MLP: at most
 * 256 x 64 x 32 per call) waking the second thread costs more than it saves
 * (measured 3.0M vs 2.8M samples/s on an idle 2-core machine, 0.8M when the
 * other core is busy). Convolutions count per sgemm call, i.e. per im2col
 * block (Fashion-MNIST CNN: 363 x 32 x 144; 2 threads trained it at 8.1k
 * samples/s against 11.9k on one). Returns the thread count to restore, or 0.
 * The count found first goes to m->run_threads: a model with convolutions
 * then splits each batch over that many threads (model.c, pool_run). */
enum { NN_SMALL_MACS = 1 << 22 };
static int blas_single_for_small(const model *m, int rows) {
    if (rows > 256) rows = 256; /* the model runs in 256-row chunks */
    long macs = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *L = &m->layers[l];
        long r = rows, P = layer_positions(L), K = layer_kernel_rows(L);
        if (P > 1) { /* conv: samples per im2col block (conv_forward) */
            long S = m->n_col / (P * K);
            if (S < r) r = S > 1 ? S : 1;
        }
        long c = r * K * layer_kernel_cols(L) * P;
        if (c > macs) macs = c;
    }
    int t = openblas_get_num_threads();
    if (t <= 1 || macs >= NN_SMALL_MACS) return 0;
    openblas_set_num_threads(1);
    return t;
}

static void blas_restore(int t) {
    if (t > 0) openblas_set_num_threads(t);
}

/* One epoch. With no pre_forward hook, weff = params before every forward.
 * Returns NL_OK also when a NaN/Inf loss stopped the epoch early (then
 * st->nonfinite = 1 and st covers the batches done, including that one);
 * NL_ERR_INVALID for a bad batch size, NL_ERR_DATA for labels out of range. */
nl_status nn_train_epoch(model *m, optim *o, const float *x, const int32_t *y, long n,
                         int batch, rng_t *r, const train_hooks *h, epoch_stats *st,
                         nl_error *e) {
    memset(st, 0, sizeof *st);
    if (batch < 1 || batch > m->max_batch)
        return nl_err(e, NL_ERR_INVALID, "train: batch size %d must be in [1, max_batch = %d]",
                      batch, m->max_batch);
    if (n < 1 || n > (long)UINT32_MAX)
        return nl_err(e, NL_ERR_INVALID, "train: %ld samples; need at least 1", n);
    if (o->n != m->n_params)
        return nl_err(e, NL_ERR_INVALID, "train: optimizer has %ld parameters, model %ld", o->n,
                      m->n_params);
    nl_status rc = check_labels(m, y, n, e);
    if (rc != NL_OK) return rc;
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    if (!perm) return nl_err(e, NL_ERR_NOMEM, "train: out of memory for a permutation of %ld", n);
    for (long s = 0; s < n; s++) perm[s] = (uint32_t)s;
    rng_shuffle_u32(r, perm, (size_t)n);
    m->run_threads = openblas_get_num_threads(); /* the batch-parallel passes' count */
    int restore = blas_single_for_small(m, batch);
    m->training = 1;

    const int IN = m->in_size;
    const int plain = !h || (!h->pre_forward && !h->post_step);
    int weff_fresh = 0;
    double loss_sum = 0;
    long hits = 0, done = 0;
    for (long start = 0; start < n; start += batch) {
        int B = (int)(n - start < batch ? n - start : batch);
        gather_rows(m->xb, m->yb, x, y, perm + start, B, IN);
        if (h && h->pre_forward)
            h->pre_forward(h->ctx, m);
        else if (!weff_fresh)
            model_sync_weff(m);
        const float *logits = nn_forward_observed(m, m->xb, B, h);
        int correct = 0;
        float loss = h && h->loss
                         ? h->loss(h->ctx, m, logits, m->xb, m->yb, perm + start, B, m->dlogits,
                                   &correct)
                         : loss_softmax_xent(logits, m->yb, B, m->out_size, m->dlogits, &correct);
        done += B;
        hits += correct;
        if (!isfinite(loss)) {
            loss_sum += (double)loss * B;
            st->nonfinite = 1;
            break;
        }
        model_backward(m, m->xb, m->dlogits, B);
        float extra = 0;
        if (h && h->post_backward) extra = h->post_backward(h->ctx, m);
        loss_sum += ((double)loss + extra) * B;
        if (!isfinite(extra)) {
            st->nonfinite = 1;
            break;
        }
        /* without hooks that own weff or touch params after the step, the
         * step itself leaves weff = params for the next forward */
        if (plain) {
            optim_step_copy(o, m->params, m->grads, m->weff);
            weff_fresh = 1;
        } else {
            optim_step(o, m->params, m->grads);
        }
        if (h && h->post_step) h->post_step(h->ctx, m);
    }
    m->training = 0;
    blas_restore(restore);
    m->run_threads = 0;
    free(perm);
    st->samples = done;
    st->loss = loss_sum / (double)done;
    st->accuracy = (double)hits / (double)done;
    return NL_OK;
}

/* Without a pre_forward hook, evaluation first syncs weff = params (after
 * training, weff lags one optimizer step behind params). y may be NULL
 * when only logits are wanted (then loss and accuracy are 0). */
nl_status nn_evaluate(model *m, const float *x, const int32_t *y, long n,
                      const train_hooks *h, epoch_stats *st, float *logits, nl_error *e) {
    memset(st, 0, sizeof *st);
    if (n < 0) return nl_err(e, NL_ERR_INVALID, "evaluate: %ld samples", n);
    if (y) {
        nl_status rc = check_labels(m, y, n, e);
        if (rc != NL_OK) return rc;
    }
    if (h && h->pre_forward)
        h->pre_forward(h->ctx, m);
    else
        model_sync_weff(m);
    m->training = 0; /* BatchNorm: moving statistics; Dropout: identity */
    const int IN = m->in_size, C = m->out_size;
    double loss_sum = 0;
    long hits = 0;
    m->run_threads = openblas_get_num_threads();
    int restore = blas_single_for_small(m, m->max_batch);
    for (long start = 0; start < n; start += m->max_batch) {
        int B = (int)(n - start < m->max_batch ? n - start : m->max_batch);
        const float *out = model_forward(m, x + (size_t)start * IN, B);
        if (logits) memcpy(logits + (size_t)start * C, out, (size_t)B * C * sizeof(float));
        if (y) {
            int correct = 0;
            float loss = loss_softmax_xent(out, y + start, B, C, NULL, &correct);
            loss_sum += (double)loss * B;
            hits += correct;
            if (!isfinite(loss)) st->nonfinite = 1;
        }
    }
    blas_restore(restore);
    m->run_threads = 0;
    st->samples = n;
    if (n > 0 && y) {
        st->loss = loss_sum / (double)n;
        st->accuracy = (double)hits / (double)n;
    }
    return NL_OK;
}

/* n >= 1: that many threads; n <= 0: SLURM_CPUS_PER_TASK, else 1. Either
 * way an OPENBLAS_NUM_THREADS in the environment wins (the user's choice). */
int nn_get_threads(void) { return openblas_get_num_threads(); }

void nn_set_threads(int n) {
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (env && *env) return;
    if (n <= 0) {
        const char *s = getenv("SLURM_CPUS_PER_TASK");
        n = s && *s ? atoi(s) : 1;
        if (n < 1) n = 1;
    }
    openblas_set_num_threads(n);
}
