/* layers.c — pure kernels of the spatial and elementwise layers: Conv1D/2D
 * (naive reference and im2col + OpenBLAS sgemm), max/avg pooling,
 * BatchNorm, inverted Dropout, tanh / sigmoid / hard_tanh / leaky_relu.
 * Nothing here allocates or knows the model: every function takes pointers
 * with a shape comment; tensors are channels-last (B, H, W, C) and 1-D data
 * is H = 1. Conv kernels are (KH, KW, Cin, Cout) row-major, i.e. one
 * (KH KW Cin, Cout) matrix whose rows match an im2col row. */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "nn_internal.h"

/* ---- geometry ---------------------------------------------------------- */

int conv_geom_init(conv_geom *g, int h, int w, int c, int oc, int kh, int kw, int sh, int sw,
                   pad_mode p) {
    memset(g, 0, sizeof *g);
    if (h < 1 || w < 1 || c < 1 || oc < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1) return -1;
    g->h = h; g->w = w; g->c = c; g->oc = oc;
    g->kh = kh; g->kw = kw; g->sh = sh; g->sw = sw;
    if (p == PAD_SAME) {
        /* TensorFlow: out = ceil(in / s), total padding (out - 1) s + k - in,
         * the smaller half before */
        g->oh = (h + sh - 1) / sh;
        g->ow = (w + sw - 1) / sw;
        int th = (g->oh - 1) * sh + kh - h, tw = (g->ow - 1) * sw + kw - w;
        g->pt = th > 0 ? th / 2 : 0;
        g->pl = tw > 0 ? tw / 2 : 0;
    } else {
        if (h < kh || w < kw) return -1;
        g->oh = (h - kh) / sh + 1;
        g->ow = (w - kw) / sw + 1;
    }
    return 0;
}

/* ---- convolution: reference ---------------------------------------------- */

void conv_forward_ref(float *out, const float *in, const float *w, const float *b, int B,
                      const conv_geom *g) {
    /* out (B, oh, ow, oc), in (B, h, w, c), w (kh, kw, c, oc), b (oc) or NULL */
    for (int s = 0; s < B; s++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++)
                for (int o = 0; o < g->oc; o++) {
                    double acc = b ? b[o] : 0.0;
                    for (int ky = 0; ky < g->kh; ky++) {
                        int iy = oy * g->sh - g->pt + ky;
                        if (iy < 0 || iy >= g->h) continue;
                        for (int kx = 0; kx < g->kw; kx++) {
                            int ix = ox * g->sw - g->pl + kx;
                            if (ix < 0 || ix >= g->w) continue;
                            for (int ci = 0; ci < g->c; ci++)
                                acc += (double)in[(((long)s * g->h + iy) * g->w + ix) * g->c + ci] *
                                       w[(((long)ky * g->kw + kx) * g->c + ci) * g->oc + o];
                        }
                    }
                    out[(((long)s * g->oh + oy) * g->ow + ox) * g->oc + o] = (float)acc;
                }
}

void conv_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                       const float *w, int B, const conv_geom *g) {
    /* din (B, h, w, c) or NULL, dw (kh, kw, c, oc), db (oc) or NULL, dout (B, oh, ow, oc) */
    if (din) memset(din, 0, (size_t)B * g->h * g->w * g->c * sizeof *din);
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            for (int ci = 0; ci < g->c; ci++)
                for (int o = 0; o < g->oc; o++) {
                    double acc = 0;
                    float wv = w[(((long)ky * g->kw + kx) * g->c + ci) * g->oc + o];
                    for (int s = 0; s < B; s++)
                        for (int oy = 0; oy < g->oh; oy++) {
                            int iy = oy * g->sh - g->pt + ky;
                            if (iy < 0 || iy >= g->h) continue;
                            for (int ox = 0; ox < g->ow; ox++) {
                                int ix = ox * g->sw - g->pl + kx;
                                if (ix < 0 || ix >= g->w) continue;
                                long ii = (((long)s * g->h + iy) * g->w + ix) * g->c + ci;
                                float go = dout[(((long)s * g->oh + oy) * g->ow + ox) * g->oc + o];
                                acc += (double)in[ii] * go;
                                if (din) din[ii] += go * wv;
                            }
                        }
                    dw[(((long)ky * g->kw + kx) * g->c + ci) * g->oc + o] += (float)acc;
                }
    if (db)
        for (int o = 0; o < g->oc; o++) {
            double acc = 0;
            for (long r = 0; r < (long)B * g->oh * g->ow; r++) acc += dout[r * g->oc + o];
            db[o] += (float)acc;
        }
}

/* ---- convolution: im2col + sgemm ------------------------------------------ */

/* d[0..n) = s[0..n) for n < 8 (a first conv on 1-3 channels copies rows
 * of 3-9 floats: a vector loop's set-up costs more than the copy). */
static inline void copy_short(float *restrict d, const float *restrict s, int n) {
    switch (n) {
    case 7: d[6] = s[6]; /* fall through */
    case 6: d[5] = s[5]; /* fall through */
    case 5: d[4] = s[4]; /* fall through */
    case 4: d[3] = s[3]; /* fall through */
    case 3: d[2] = s[2]; /* fall through */
    case 2: d[1] = s[1]; /* fall through */
    case 1: d[0] = s[0]; /* fall through */
    default: break;
    }
}

/* col (S oh ow, kh kw c): row (s, oy, ox) holds the window of output pixel
 * (oy, ox) in the layout of a kernel row, zeros where it overhangs. */
NN_HOT
static void im2col(float *restrict col, const float *restrict in, int S, const conv_geom *g) {
    const int C = g->c, KW = g->kw, rowlen = KW * C, K = g->kh * rowlen;
    const long insz = (long)g->h * g->w * C;
    float *dst = col;
    for (int s = 0; s < S; s++) {
        const float *x = in + s * insz;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, dst += K) {
                const int iy0 = oy * g->sh - g->pt, ix0 = ox * g->sw - g->pl;
                const int full = ix0 >= 0 && ix0 + KW <= g->w;
                for (int ky = 0; ky < g->kh; ky++) {
                    float *d = dst + ky * rowlen;
                    const int iy = iy0 + ky;
                    if (iy < 0 || iy >= g->h) {
                        for (int j = 0; j < rowlen; j++) d[j] = 0.0f;
                        continue;
                    }
                    const float *src = x + ((long)iy * g->w + ix0) * C;
                    if (full) {
                        if (rowlen < 8) copy_short(d, src, rowlen);
                        else for (int j = 0; j < rowlen; j++) d[j] = src[j];
                        continue;
                    }
                    for (int kx = 0; kx < KW; kx++) {
                        const int ix = ix0 + kx;
                        if (ix < 0 || ix >= g->w)
                            for (int j = 0; j < C; j++) d[kx * C + j] = 0.0f;
                        else
                            for (int j = 0; j < C; j++) d[kx * C + j] = src[kx * C + j];
                    }
                }
            }
    }
}

/* din (S, h, w, c) += the windows of col scattered back (im2col's adjoint). */
NN_HOT
static void col2im_add(float *restrict din, const float *restrict col, int S, const conv_geom *g) {
    const int C = g->c, KW = g->kw, rowlen = KW * C, K = g->kh * rowlen;
    const long insz = (long)g->h * g->w * C;
    const float *srcrow = col;
    for (int s = 0; s < S; s++) {
        float *x = din + s * insz;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, srcrow += K) {
                const int iy0 = oy * g->sh - g->pt, ix0 = ox * g->sw - g->pl;
                for (int ky = 0; ky < g->kh; ky++) {
                    const int iy = iy0 + ky;
                    if (iy < 0 || iy >= g->h) continue;
                    const float *d = srcrow + ky * rowlen;
                    float *dst = x + ((long)iy * g->w + ix0) * C;
                    for (int kx = 0; kx < KW; kx++) {
                        const int ix = ix0 + kx;
                        if (ix < 0 || ix >= g->w) continue;
                        for (int j = 0; j < C; j++) dst[kx * C + j] += d[kx * C + j];
                    }
                }
            }
    }
}

/* Samples per im2col block that fit ncol floats (at least 1). */
static int conv_block(const conv_geom *g, long ncol, int B) {
    long per = (long)g->oh * g->ow * g->kh * g->kw * g->c;
    NL_ASSERT(ncol >= per);
    long S = ncol / per;
    return S > B ? B : (int)S;
}

void conv_forward(float *out, const float *in, const float *w, const float *b, int B,
                  const conv_geom *g, float *col, long ncol) {
    /* per block of S samples: out (S oh ow, oc) = col (S oh ow, K) @ w (K, oc) + b */
    const int K = g->kh * g->kw * g->c, P = g->oh * g->ow;
    const long insz = (long)g->h * g->w * g->c;
    const int S = conv_block(g, ncol, B);
    for (int s0 = 0; s0 < B; s0 += S) {
        int n = B - s0 < S ? B - s0 : S;
        float *o = out + (long)s0 * P * g->oc;
        im2col(col, in + s0 * insz, n, g);
        if (b) nn_broadcast_rows(o, b, n * P, g->oc);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n * P, g->oc, K, 1.0f, col, K, w,
                    g->oc, b ? 1.0f : 0.0f, o, g->oc);
    }
}

void conv_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                   const float *w, int B, const conv_geom *g, float *col, float *dcol, long ncol,
                   int accumulate) {
    const int K = g->kh * g->kw * g->c, P = g->oh * g->ow;
    const long insz = (long)g->h * g->w * g->c;
    const int S = conv_block(g, ncol, B);
    for (int s0 = 0; s0 < B; s0 += S) {
        int n = B - s0 < S ? B - s0 : S;
        int acc = accumulate || s0 > 0;
        const float *go = dout + (long)s0 * P * g->oc;
        im2col(col, in + s0 * insz, n, g);
        /* dw (K, oc) (+)= col^T (K, n P) @ go (n P, oc) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, g->oc, n * P, 1.0f, col, K, go,
                    g->oc, acc ? 1.0f : 0.0f, dw, g->oc);
        if (db) nn_bias_grad(db, go, n * P, g->oc, acc);
        if (din) {
            /* dcol (n P, K) = go (n P, oc) @ w^T (oc, K), scattered back */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n * P, K, g->oc, 1.0f, go, g->oc,
                        w, g->oc, 0.0f, dcol, K);
            float *di = din + s0 * insz;
            memset(di, 0, (size_t)n * insz * sizeof *di);
            col2im_add(di, dcol, n, g);
        }
    }
}

/* ---- pooling --------------------------------------------------------------- */

/* o, a (C) = the first window element; then elementwise max with its
 * index: branch-free selects so the channel loop vectorises (a branchy
 * version was a third of the CNN's training time), inlined into the hot
 * caller (a dispatched call per pixel cost 10%). Ties keep the first. */
static inline void max_into(float *restrict o, int32_t *restrict a, const float *restrict xp,
                     int32_t base, int C) {
    /* written as a max and a bitwise select on values already loaded: a
     * `gt ? new : old` on the array itself became masked stores (store
     * forwarding stalls, 3x slower) */
    for (int ch = 0; ch < C; ch++) {
        float v = xp[ch], cur = o[ch];
        int32_t ca = a[ch];
        int32_t msk = -(int32_t)(v > cur);
        o[ch] = v > cur ? v : cur;
        a[ch] = (ca & ~msk) | ((base + ch) & msk);
    }
}

static inline void max_first(float *restrict o, int32_t *restrict a, const float *restrict xp,
                      int32_t base, int C) {
    for (int ch = 0; ch < C; ch++) {
        o[ch] = xp[ch];
        a[ch] = base + ch;
    }
}

NN_HOT
void maxpool_forward(float *out, int32_t *argmax, const float *in, int B, const conv_geom *g) {
    /* out, argmax (B, oh, ow, c); in (B, h, w, c) */
    const int C = g->c;
    const long insz = (long)g->h * g->w * C;
    const int inside = g->pt == 0 && g->pl == 0 && (g->oh - 1) * g->sh + g->kh <= g->h &&
                       (g->ow - 1) * g->sw + g->kw <= g->w;
    if (inside) { /* every window inside the input (valid padding): no bounds checks */
        for (int s = 0; s < B; s++) {
            const float *x = in + s * insz;
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    long oi = (((long)s * g->oh + oy) * g->ow + ox) * C;
                    int32_t b0 = (int32_t)(((long)oy * g->sh * g->w + (long)ox * g->sw) * C);
                    max_first(out + oi, argmax + oi, x + b0, b0, C);
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = ky == 0; kx < g->kw; kx++) {
                            int32_t b = b0 + (int32_t)(((long)ky * g->w + kx) * C);
                            max_into(out + oi, argmax + oi, x + b, b, C);
                        }
                }
        }
        return;
    }
    for (int s = 0; s < B; s++) {
        const float *x = in + s * insz;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                long oi = (((long)s * g->oh + oy) * g->ow + ox) * C;
                float *o = out + oi;
                int32_t *a = argmax + oi;
                int first = 1;
                for (int ky = 0; ky < g->kh; ky++) {
                    int iy = oy * g->sh - g->pt + ky;
                    if (iy < 0 || iy >= g->h) continue;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int ix = ox * g->sw - g->pl + kx;
                        if (ix < 0 || ix >= g->w) continue;
                        int32_t base = (int32_t)(((long)iy * g->w + ix) * C);
                        if (first) max_first(o, a, x + base, base, C);
                        else max_into(o, a, x + base, base, C);
                        first = 0;
                    }
                }
                NL_ASSERT(!first); /* conv_geom_init: every window meets the input */
            }
    }
}

void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B,
                      const conv_geom *g) {
    const long insz = (long)g->h * g->w * g->c, outsz = (long)g->oh * g->ow * g->c;
    memset(din, 0, (size_t)B * insz * sizeof *din);
    for (int s = 0; s < B; s++) {
        float *d = din + s * insz;
        const float *go = dout + s * outsz;
        const int32_t *a = argmax + s * outsz;
        for (long j = 0; j < outsz; j++) d[a[j]] += go[j];
    }
}

/* Number of in-range elements of window (oy, ox). */
static int window_count(const conv_geom *g, int oy, int ox) {
    int y0 = oy * g->sh - g->pt, x0 = ox * g->sw - g->pl;
    int y1 = y0 + g->kh, x1 = x0 + g->kw;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > g->h) y1 = g->h;
    if (x1 > g->w) x1 = g->w;
    return (y1 - y0) * (x1 - x0);
}

void avgpool_forward(float *out, const float *in, int B, const conv_geom *g) {
    const int C = g->c;
    const long insz = (long)g->h * g->w * C;
    for (int s = 0; s < B; s++) {
        const float *x = in + s * insz;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                float *o = out + (((long)s * g->oh + oy) * g->ow + ox) * C;
                for (int ch = 0; ch < C; ch++) o[ch] = 0.0f;
                for (int ky = 0; ky < g->kh; ky++) {
                    int iy = oy * g->sh - g->pt + ky;
                    if (iy < 0 || iy >= g->h) continue;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int ix = ox * g->sw - g->pl + kx;
                        if (ix < 0 || ix >= g->w) continue;
                        const float *xp = x + ((long)iy * g->w + ix) * C;
                        for (int ch = 0; ch < C; ch++) o[ch] += xp[ch];
                    }
                }
                float inv = 1.0f / (float)window_count(g, oy, ox);
                for (int ch = 0; ch < C; ch++) o[ch] *= inv;
            }
    }
}

void avgpool_backward(float *din, const float *dout, int B, const conv_geom *g) {
    const int C = g->c;
    const long insz = (long)g->h * g->w * C;
    memset(din, 0, (size_t)B * insz * sizeof *din);
    for (int s = 0; s < B; s++) {
        float *d = din + s * insz;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                const float *go = dout + (((long)s * g->oh + oy) * g->ow + ox) * C;
                float inv = 1.0f / (float)window_count(g, oy, ox);
                for (int ky = 0; ky < g->kh; ky++) {
                    int iy = oy * g->sh - g->pt + ky;
                    if (iy < 0 || iy >= g->h) continue;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int ix = ox * g->sw - g->pl + kx;
                        if (ix < 0 || ix >= g->w) continue;
                        float *dp = d + ((long)iy * g->w + ix) * C;
                        for (int ch = 0; ch < C; ch++) dp[ch] += go[ch] * inv;
                    }
                }
            }
    }
}

/* ---- BatchNorm ---------------------------------------------------------------- */
/* The pieces below work on any rows [0, N) of (N, C) data and channels
 * [c0, c0 + nc), so the batch-parallel passes can give each thread its
 * rows and add the per-thread sums; nn_bn_forward / nn_bn_backward are
 * the serial passes built from them. */

void nn_bn_sums(const float *in, long N, int C, int c0, int nc, double *sum) {
    for (long r = 0; r < N; r++) {
        const float *x = in + r * C + c0;
        for (int j = 0; j < nc; j++) sum[j] += x[j];
    }
}

void nn_bn_sqdevs(const float *in, long N, int C, int c0, int nc, const float *mean, double *sq) {
    for (long r = 0; r < N; r++) {
        const float *x = in + r * C + c0;
        for (int j = 0; j < nc; j++) {
            double d = (double)x[j] - mean[c0 + j];
            sq[j] += d * d;
        }
    }
}

void nn_bn_finish(float *stat, float *moving, int C, int c0, int nc, const double *sq, long N,
                  float eps, float momentum) {
    float *mean = stat, *invstd = stat + C, *mmean = moving, *mvar = moving + C;
    for (int j = 0; j < nc; j++) {
        double var = sq[j] / (double)N; /* biased, as Keras */
        invstd[c0 + j] = (float)(1.0 / sqrt(var + eps));
        mmean[c0 + j] = momentum * mmean[c0 + j] + (1.0f - momentum) * mean[c0 + j];
        mvar[c0 + j] = momentum * mvar[c0 + j] + (1.0f - momentum) * (float)var;
    }
}

void nn_bn_normalize(float *out, float *xhat, const float *in, long N, int C, const float *stat,
                     const float *gamma, const float *beta) {
    const float *mean = stat, *invstd = stat + C;
    for (long r = 0; r < N; r++) {
        const float *x = in + r * C;
        float *xh = xhat + r * C, *o = out + r * C;
        for (int c = 0; c < C; c++) {
            xh[c] = (x[c] - mean[c]) * invstd[c];
            o[c] = gamma[c] * xh[c] + beta[c];
        }
    }
}

void nn_bn_eval_stat(float *stat, const float *moving, int C, float eps) {
    for (int c = 0; c < C; c++) {
        stat[c] = moving[c];
        stat[C + c] = (float)(1.0 / sqrt((double)moving[C + c] + eps));
    }
}

void nn_bn_forward(float *out, float *xhat, float *stat, const float *in, const float *gamma,
                   const float *beta, float *moving, long N, int C, float eps, float momentum,
                   int training) {
    /* N rows of C channels; stat (2C): mean, invstd; moving (2C): mean, variance */
    if (training) {
        /* two passes (mean, then centred squares) with double accumulators,
         * a block of channels at a time on the stack */
        enum { CB = 64 };
        for (int c0 = 0; c0 < C; c0 += CB) {
            int nc = C - c0 < CB ? C - c0 : CB;
            double sum[CB], sq[CB];
            for (int j = 0; j < nc; j++) sum[j] = sq[j] = 0;
            nn_bn_sums(in, N, C, c0, nc, sum);
            for (int j = 0; j < nc; j++) stat[c0 + j] = (float)(sum[j] / (double)N);
            nn_bn_sqdevs(in, N, C, c0, nc, stat, sq);
            nn_bn_finish(stat, moving, C, c0, nc, sq, N, eps, momentum);
        }
    } else {
        nn_bn_eval_stat(stat, moving, C, eps);
    }
    nn_bn_normalize(out, xhat, in, N, C, stat, gamma, beta);
}

void nn_bn_grad_sums(const float *dout, const float *xhat, long N, int C, int c0, int nc, double *sg,
                     double *sgx) {
    for (long r = 0; r < N; r++) {
        const float *g = dout + r * C + c0, *xh = xhat + r * C + c0;
        for (int j = 0; j < nc; j++) {
            sg[j] += g[j];
            sgx[j] += (double)g[j] * xh[j];
        }
    }
}

void nn_bn_grad_coefs(const double *sg, const double *sgx, const float *stat, const float *gamma, long N,
                      int C, int c0, int nc, int training, float *k, float *mg, float *mgx) {
    const float *invstd = stat + C;
    for (int j = 0; j < nc; j++) {
        int c = c0 + j;
        k[j] = gamma[c] * invstd[c];
        mg[j] = training ? (float)(sg[j] / (double)N) : 0.0f;
        mgx[j] = training ? (float)(sgx[j] / (double)N) : 0.0f;
    }
}

void nn_bn_input_grad(float *din, const float *dout, const float *xhat, long N, int C, int c0, int nc,
                      const float *k, const float *mg, const float *mgx) {
    /* dx = gamma invstd (g - mean(g) - xhat mean(g xhat)), row by row over
     * the block's channels (contiguous), not channel by channel down the
     * rows (a stride of C floats) */
    for (long r = 0; r < N; r++) {
        long i0 = r * C + c0;
        for (int j = 0; j < nc; j++) din[i0 + j] = k[j] * (dout[i0 + j] - mg[j] - xhat[i0 + j] * mgx[j]);
    }
}

void nn_bn_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *xhat,
                    const float *stat, const float *gamma, long N, int C, int training,
                    int accumulate) {
    if (!accumulate) {
        memset(dgamma, 0, (size_t)C * sizeof *dgamma);
        memset(dbeta, 0, (size_t)C * sizeof *dbeta);
    }
    enum { CB = 64 };
    for (int c0 = 0; c0 < C; c0 += CB) {
        int nc = C - c0 < CB ? C - c0 : CB;
        double sg[CB], sgx[CB];
        for (int j = 0; j < nc; j++) sg[j] = sgx[j] = 0;
        nn_bn_grad_sums(dout, xhat, N, C, c0, nc, sg, sgx);
        for (int j = 0; j < nc; j++) {
            dbeta[c0 + j] += (float)sg[j];
            dgamma[c0 + j] += (float)sgx[j];
        }
        if (!din) continue;
        float k[CB], mg[CB], mgx[CB];
        nn_bn_grad_coefs(sg, sgx, stat, gamma, N, C, c0, nc, training, k, mg, mgx);
        nn_bn_input_grad(din, dout, xhat, N, C, c0, nc, k, mg, mgx);
    }
}

/* ---- Dropout ----------------------------------------------------------------- */

void nn_dropout_forward(float *out, unsigned char *keep, const float *in, long n, float rate,
                        rng_t *r) {
    /* keep[j] = u_j >= rate (u uniform on 32 bits), out = keep in / (1 - rate) */
    const float scale = 1.0f / (1.0f - rate);
    const uint64_t thr = (uint64_t)((double)rate * 4294967296.0);
    uint64_t bits = 0;
    for (long j = 0; j < n; j++) {
        uint32_t u;
        if ((j & 1) == 0) {
            bits = rng_next(r);
            u = (uint32_t)bits;
        } else {
            u = (uint32_t)(bits >> 32);
        }
        keep[j] = (uint64_t)u >= thr;
        out[j] = keep[j] ? in[j] * scale : 0.0f;
    }
}

NN_HOT
void nn_dropout_backward(float *restrict g, const unsigned char *restrict keep, long n, float rate) {
    const float scale = 1.0f / (1.0f - rate);
    for (long j = 0; j < n; j++) g[j] = keep[j] ? g[j] * scale : 0.0f;
}

/* ---- activations --------------------------------------------------------------- */

void nn_act_forward(int kind, float *out, const float *in, long n, float alpha) {
    switch (kind) {
    case LAYER_TANH:
        for (long j = 0; j < n; j++) out[j] = tanhf(in[j]);
        break;
    case LAYER_SIGMOID:
        for (long j = 0; j < n; j++) out[j] = 1.0f / (1.0f + expf(-in[j]));
        break;
    case LAYER_HARD_TANH:
        for (long j = 0; j < n; j++) out[j] = in[j] < -1.0f ? -1.0f : in[j] > 1.0f ? 1.0f : in[j];
        break;
    case LAYER_LEAKY_RELU:
        for (long j = 0; j < n; j++) out[j] = in[j] < 0.0f ? alpha * in[j] : in[j];
        break;
    default: NL_ASSERT(!"not an activation kind");
    }
}

void nn_act_backward(int kind, float *g, const float *in, const float *out, long n, float alpha) {
    switch (kind) {
    case LAYER_TANH:
        for (long j = 0; j < n; j++) g[j] *= 1.0f - out[j] * out[j];
        break;
    case LAYER_SIGMOID:
        for (long j = 0; j < n; j++) g[j] *= out[j] * (1.0f - out[j]);
        break;
    case LAYER_HARD_TANH:
        for (long j = 0; j < n; j++) g[j] = in[j] > -1.0f && in[j] < 1.0f ? g[j] : 0.0f;
        break;
    case LAYER_LEAKY_RELU:
        for (long j = 0; j < n; j++) g[j] = in[j] < 0.0f ? alpha * g[j] : g[j];
        break;
    default: NL_ASSERT(!"not an activation kind");
    }
}
