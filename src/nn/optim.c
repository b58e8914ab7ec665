/* optim.c — SGD with momentum and Adam over one flat parameter array, with
 * PyTorch's conventions (torch.optim.SGD dampening 0 / no Nesterov;
 * torch.optim.Adam with bias correction, L2 decay added to the gradient).
 * One fused loop per step, no allocation after optim_init. Does not know
 * about views or masks: a frozen weight stays frozen only because the
 * caller's post_step hook re-applies its mask. */
#include <math.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>
#include "nn_internal.h"


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

/* One Adam update of element j (scalar; the SSE path below computes the
 * same operations in the same order, so both give identical floats). */
static inline void adam_one(float *p, const float *g, float *m, float *v, float *w, long j,
                            float b1, float b2, float c1, float c2, float step_size,
                            float inv_bc2_sqrt, float eps, float wd) {
    float gj = g[j] + wd * p[j];
    float mj = b1 * m[j] + c1 * gj;
    float vj = b2 * v[j] + c2 * (gj * gj);
    m[j] = mj;
    v[j] = vj;
    p[j] -= step_size * mj / (sqrtf(vj) * inv_bc2_sqrt + eps);
    if (w) w[j] = p[j];
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NN_ADAM_AVX 1
/* The same update 8 wide; the build targets x86-64-v2, so this is compiled
 * for AVX separately and chosen at run time. No FMA: every rounding is as
 * in adam_one, so results do not depend on the CPU. Returns elements done. */
__attribute__((target("avx"))) static long adam_avx(float *restrict p, const float *restrict g,
                                                    float *restrict m, float *restrict v,
                                                    float *restrict w, long n,
                                                    float b1, float b2, float c1, float c2,
                                                    float step_size, float inv_bc2_sqrt,
                                                    float eps, float wd) {
    const __m256 B1 = _mm256_set1_ps(b1), B2 = _mm256_set1_ps(b2), C1 = _mm256_set1_ps(c1),
                 C2 = _mm256_set1_ps(c2), SS = _mm256_set1_ps(step_size),
                 IB = _mm256_set1_ps(inv_bc2_sqrt), EPS = _mm256_set1_ps(eps),
                 WD = _mm256_set1_ps(wd);
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 pj = _mm256_loadu_ps(p + j);
        __m256 gj = _mm256_add_ps(_mm256_loadu_ps(g + j), _mm256_mul_ps(WD, pj));
        __m256 mj = _mm256_add_ps(_mm256_mul_ps(B1, _mm256_loadu_ps(m + j)), _mm256_mul_ps(C1, gj));
        __m256 vj = _mm256_add_ps(_mm256_mul_ps(B2, _mm256_loadu_ps(v + j)),
                                  _mm256_mul_ps(C2, _mm256_mul_ps(gj, gj)));
        _mm256_storeu_ps(m + j, mj);
        _mm256_storeu_ps(v + j, vj);
        __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vj), IB), EPS);
        __m256 pn = _mm256_sub_ps(pj, _mm256_div_ps(_mm256_mul_ps(SS, mj), den));
        _mm256_storeu_ps(p + j, pn);
        if (w) _mm256_storeu_ps(w + j, pn);
    }
    return j;
}
#endif

/* p (n), g (n), m (n), v (n): PyTorch's update, with the decay term
 * wd * p added to the gradient (adding 0 when wd = 0 changes nothing);
 * w (n) or NULL receives a copy of the new p in the same pass. */
static void adam_step(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, float *restrict w, long n, float b1, float b2, float step_size,
                      float inv_bc2_sqrt, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    long j = 0;
#ifdef NN_ADAM_AVX
    if (__builtin_cpu_supports("avx"))
        j = adam_avx(p, g, m, v, w, n, b1, b2, c1, c2, step_size, inv_bc2_sqrt, eps, wd);
#endif
#if defined(__SSE2__)
    /* sqrtf in a loop is not vectorised by GCC without -fno-math-errno */
    const __m128 B1 = _mm_set1_ps(b1), B2 = _mm_set1_ps(b2), C1 = _mm_set1_ps(c1),
                 C2 = _mm_set1_ps(c2), SS = _mm_set1_ps(step_size),
                 IB = _mm_set1_ps(inv_bc2_sqrt), EPS = _mm_set1_ps(eps), WD = _mm_set1_ps(wd);
    for (; j + 4 <= n; j += 4) {
        __m128 pj = _mm_loadu_ps(p + j);
        __m128 gj = _mm_add_ps(_mm_loadu_ps(g + j), _mm_mul_ps(WD, pj));
        __m128 mj = _mm_add_ps(_mm_mul_ps(B1, _mm_loadu_ps(m + j)), _mm_mul_ps(C1, gj));
        __m128 vj = _mm_add_ps(_mm_mul_ps(B2, _mm_loadu_ps(v + j)),
                               _mm_mul_ps(C2, _mm_mul_ps(gj, gj)));
        _mm_storeu_ps(m + j, mj);
        _mm_storeu_ps(v + j, vj);
        __m128 den = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(vj), IB), EPS);
        __m128 pn = _mm_sub_ps(pj, _mm_div_ps(_mm_mul_ps(SS, mj), den));
        _mm_storeu_ps(p + j, pn);
        if (w) _mm_storeu_ps(w + j, pn);
    }
#endif
    for (; j < n; j++) adam_one(p, g, m, v, w, j, b1, b2, c1, c2, step_size, inv_bc2_sqrt, eps, wd);
}

NN_HOT
static void sgd_step(float *restrict p, const float *restrict g, float *restrict buf,
                     float *restrict w, long n, float lr, float mu, float wd) {
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
    if (w) memcpy(w, p, (size_t)n * sizeof *w);
}

void optim_step(optim *o, float *params, const float *grads) {
    optim_step_copy(o, params, grads, NULL);
}

void optim_step_copy(optim *o, float *params, const float *grads, float *copy) {
    o->t++;
    if (o->kind == OPT_SGD) {
        sgd_step(params, grads, o->m, copy, o->n, o->lr, o->momentum, o->weight_decay);
        return;
    }
    /* bias corrections in double, as PyTorch computes them in Python */
    double bc1 = 1.0 - pow((double)o->beta1, (double)o->t);
    double bc2 = 1.0 - pow((double)o->beta2, (double)o->t);
    float step_size = (float)(o->lr / bc1);
    float inv_bc2_sqrt = (float)(1.0 / sqrt(bc2));
    adam_step(params, grads, o->m, o->v, copy, o->n, o->beta1, o->beta2, step_size,
              inv_bc2_sqrt, o->eps, o->weight_decay);
}
