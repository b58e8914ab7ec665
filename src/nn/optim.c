/* optim.c — SGD with momentum and Adam over one flat parameter array, with
 * PyTorch's conventions (torch.optim.SGD dampening 0 / no Nesterov;
 * torch.optim.Adam with bias correction, L2 decay added to the gradient).
 * One fused loop per step, no allocation after optim_init. Does not know
 * about views or masks: a frozen weight stays frozen only because the
 * caller's post_step hook re-applies its mask. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/nn.h"

/* sqrtf must not set errno here (v >= 0 always) so the loop vectorises. */
#if defined(__GNUC__) && !defined(__clang__)
#define NN_NO_ERRNO __attribute__((optimize("no-math-errno")))
#else
#define NN_NO_ERRNO
#endif

/* Keeps lr, momentum, weight_decay and any beta1/beta2/eps the caller set
 * before (a zero or out-of-range one gets PyTorch's default 0.9/0.999/1e-8). */
nl_status optim_init(optim *o, optim_kind kind, long n, nl_error *e) {
    optim keep = *o;
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->n = n;
    o->lr = keep.lr;
    o->momentum = keep.momentum;
    o->weight_decay = keep.weight_decay;
    o->beta1 = keep.beta1 > 0.0f && keep.beta1 < 1.0f ? keep.beta1 : 0.9f;
    o->beta2 = keep.beta2 > 0.0f && keep.beta2 < 1.0f ? keep.beta2 : 0.999f;
    o->eps = keep.eps > 0.0f && keep.eps < 1.0f ? keep.eps : 1e-8f;
    if (kind != OPT_SGD && kind != OPT_ADAM)
        return nl_err(e, NL_ERR_INVALID, "optimizer: unknown kind %d (sgd=0, adam=1)", (int)kind);
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    o->m = calloc(1, bytes);
    if (kind == OPT_ADAM) o->v = calloc(1, bytes);
    if (!o->m || (kind == OPT_ADAM && !o->v)) {
        optim_free(o);
        return nl_err(e, NL_ERR_NOMEM, "optimizer: out of memory for %ld parameters", n);
    }
    return NL_OK;
}

void optim_free(optim *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void optim_reset(optim *o) {
    if (o->m) memset(o->m, 0, (size_t)o->n * sizeof(float));
    if (o->v) memset(o->v, 0, (size_t)o->n * sizeof(float));
    o->t = 0;
}

NN_NO_ERRNO
static void adam_step(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, long n, float b1, float b2, float step_size,
                      float inv_bc2_sqrt, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    if (wd != 0.0f) {
        for (long j = 0; j < n; j++) {
            float gj = g[j] + wd * p[j];
            float mj = b1 * m[j] + c1 * gj;
            float vj = b2 * v[j] + c2 * gj * gj;
            m[j] = mj;
            v[j] = vj;
            p[j] -= step_size * mj / (sqrtf(vj) * inv_bc2_sqrt + eps);
        }
    } else {
        for (long j = 0; j < n; j++) {
            float gj = g[j];
            float mj = b1 * m[j] + c1 * gj;
            float vj = b2 * v[j] + c2 * gj * gj;
            m[j] = mj;
            v[j] = vj;
            p[j] -= step_size * mj / (sqrtf(vj) * inv_bc2_sqrt + eps);
        }
    }
}

static void sgd_step(float *restrict p, const float *restrict g, float *restrict buf, long n,
                     float lr, float mu, float wd) {
    if (mu != 0.0f) {
        for (long j = 0; j < n; j++) {
            float gj = g[j] + wd * p[j];
            float vj = mu * buf[j] + gj;
            buf[j] = vj;
            p[j] -= lr * vj;
        }
    } else {
        for (long j = 0; j < n; j++) p[j] -= lr * (g[j] + wd * p[j]);
    }
}

void optim_step(optim *o, float *params, const float *grads) {
    o->t++;
    if (o->kind == OPT_SGD) {
        sgd_step(params, grads, o->m, o->n, o->lr, o->momentum, o->weight_decay);
        return;
    }
    /* bias corrections in double, as PyTorch computes them in Python */
    double bc1 = 1.0 - pow((double)o->beta1, (double)o->t);
    double bc2 = 1.0 - pow((double)o->beta2, (double)o->t);
    float step_size = (float)(o->lr / bc1);
    float inv_bc2_sqrt = (float)(1.0 / sqrt(bc2));
    adam_step(params, grads, o->m, o->v, o->n, o->beta1, o->beta2, step_size, inv_bc2_sqrt,
              o->eps, o->weight_decay);
}
