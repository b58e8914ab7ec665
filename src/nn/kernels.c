/* kernels.c — pure layer kernels: Dense (naive reference and OpenBLAS sgemm),
 * ReLU, the activation quantizer's STE mask, fused softmax cross-entropy.
 * Nothing here allocates, keeps state or knows about the model: every
 * function takes pointers with a shape comment. Backward kernels accumulate
 * (+=); nn_dense_backward_beta(accumulate = 0) overwrites instead, so the
 * model never spends a pass zeroing its gradients. */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "nn_internal.h"

/* ---- Dense ----------------------------------------------------------- */

void dense_forward_ref(float *out, const float *in, const float *w, const float *b,
                       int B, int IN, int OUT) {
    /* out (B,OUT), in (B,IN), w (IN,OUT), b (OUT) or NULL */
    for (int s = 0; s < B; s++)
        for (int o = 0; o < OUT; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < IN; i++) acc += (double)in[(long)s * IN + i] * w[(long)i * OUT + o];
            out[(long)s * OUT + o] = (float)acc;
        }
}

NN_HOT
void nn_broadcast_rows(float *restrict out, const float *restrict b, int B, int OUT) {
    /* an inline loop: memcpy per row costs a call per 20-256 bytes */
    for (int s = 0; s < B; s++)
        for (int o = 0; o < OUT; o++) out[(long)s * OUT + o] = b[o];
}

void dense_forward(float *out, const float *in, const float *w, const float *b,
                   int B, int IN, int OUT) {
    /* out (B,OUT) = in (B,IN) @ w (IN,OUT) + b (OUT): the bias is broadcast
     * into C first and sgemm runs with beta = 1 (one pass, no second sweep). */
    if (b) nn_broadcast_rows(out, b, B, OUT);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, OUT, IN, 1.0f, in, IN, w, OUT,
                b ? 1.0f : 0.0f, out, OUT);
}

void dense_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int B, int IN, int OUT) {
    /* din (B,IN) or NULL, dw (IN,OUT), db (OUT) or NULL, dout (B,OUT), in (B,IN), w (IN,OUT) */
    for (int i = 0; i < IN; i++)
        for (int o = 0; o < OUT; o++) {
            double acc = 0;
            for (int s = 0; s < B; s++) acc += (double)in[(long)s * IN + i] * dout[(long)s * OUT + o];
            dw[(long)i * OUT + o] += (float)acc;
        }
    if (db)
        for (int o = 0; o < OUT; o++) {
            double acc = 0;
            for (int s = 0; s < B; s++) acc += dout[(long)s * OUT + o];
            db[o] += (float)acc;
        }
    if (din)
        for (int s = 0; s < B; s++)
            for (int i = 0; i < IN; i++) {
                double acc = 0;
                for (int o = 0; o < OUT; o++) acc += (double)dout[(long)s * OUT + o] * w[(long)i * OUT + o];
                din[(long)s * IN + i] = (float)acc;
            }
}

/* db (OUT) (+)= column sums of dout (B,OUT): rows outer, columns inner. */
NN_HOT
void nn_bias_grad(float *restrict db, const float *restrict dout, int B, int OUT,
                      int accumulate) {
    if (!accumulate) memset(db, 0, (size_t)OUT * sizeof *db);
    for (int s = 0; s < B; s++) {
        const float *r = dout + (long)s * OUT;
        for (int o = 0; o < OUT; o++) db[o] += r[o];
    }
}

void nn_dense_backward_beta(float *din, float *dw, float *db, const float *dout,
                            const float *in, const float *w, int B, int IN, int OUT,
                            int accumulate) {
    /* dw (IN,OUT) (+)= in^T (IN,B) @ dout (B,OUT) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IN, OUT, B, 1.0f, in, IN, dout, OUT,
                accumulate ? 1.0f : 0.0f, dw, OUT);
    if (db) nn_bias_grad(db, dout, B, OUT, accumulate);
    /* din (B,IN) = dout (B,OUT) @ w^T (OUT,IN) */
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, IN, OUT, 1.0f, dout, OUT, w, OUT,
                    0.0f, din, IN);
}

void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int B, int IN, int OUT) {
    nn_dense_backward_beta(din, dw, db, dout, in, w, B, IN, OUT, 1);
}

/* ---- ReLU and the quantizer's STE ------------------------------------ */

NN_HOT
void nn_relu_forward(float *restrict out, const float *restrict in, long n) {
    /* out (n), in (n). `x < 0 ? 0 : x` keeps NaN (so a diverging run is
     * seen by the loss) and compiles to a compare + and-not. */
    for (long j = 0; j < n; j++) out[j] = in[j] < 0.0f ? 0.0f : in[j];
}

NN_HOT
void nn_relu_backward(float *restrict g, const float *restrict out, long n) {
    /* g (n) in place: dL/d(in) = dL/d(out) where out > 0, else 0 */
    for (long j = 0; j < n; j++) g[j] = out[j] > 0.0f ? g[j] : 0.0f;
}

NN_HOT
void nn_ste_backward(float *restrict g, const unsigned char *restrict pass, long n) {
    /* g (n) in place: gradient where pass[j] = 1, zero elsewhere */
    for (long j = 0; j < n; j++) g[j] = pass[j] ? g[j] : 0.0f;
}

/* ---- loss ------------------------------------------------------------- */

float loss_softmax_xent(const float *logits, const int32_t *y, int B, int C,
                        float *dlogits, int *correct) {
    /* logits (B,C), y (B), dlogits (B,C) or NULL */
    double total = 0;
    int hits = 0;
    const float invB = 1.0f / (float)B;
    for (int s = 0; s < B; s++) {
        const float *z = logits + (long)s * C;
        int arg = 0;
        float mx = z[0];
        for (int c = 1; c < C; c++)
            if (z[c] > mx) { mx = z[c]; arg = c; }
        int lab = y[s];
        NL_ASSERT(lab >= 0 && lab < C);
        hits += arg == lab;
        float sum = 0;
        if (dlogits) {
            float *d = dlogits + (long)s * C;
            for (int c = 0; c < C; c++) { d[c] = expf(z[c] - mx); sum += d[c]; }
            float k = invB / sum;
            for (int c = 0; c < C; c++) d[c] *= k;
            d[lab] -= invB;
        } else {
            for (int c = 0; c < C; c++) sum += expf(z[c] - mx);
        }
        /* -log softmax[lab] = log(sum) + mx - z[lab]; NaN logits give NaN */
        total += (double)logf(sum) + (double)mx - (double)z[lab];
        if (z[lab] != z[lab]) total = NAN;
    }
    if (correct) *correct = hits;
    return (float)(total / B);
}
