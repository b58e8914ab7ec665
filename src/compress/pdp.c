/* pdp.c — Parameter-free Differentiable Pruning (Cho et al., NeurIPS 2023).
 *
 * Per layer and step: threshold t halfway between the two |w| around the
 * layer's current prune ratio, soft mask m = sigmoid((w^2 - t^2) / tau),
 * out = m w; the gradient reaches w directly and through t (to the two
 * boundary weights). Budgets come from one global |w| sort after
 * pre-training; the ratio ramps as min(1, epsilon (e + 1)) r_l. Structured
 * mode scores output units by their L2 norm. Threshold selection is O(n)
 * (quickselect) and allocation-free; state is sized in pdp_init. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- pure math ------------------------------------------------------------ */

static void swapf(float *a, float *b) { float t = *a; *a = *b; *b = t; }

/* Rearranges a so that a[k] is the k-th largest (0-based), larger or equal
 * values before it, smaller or equal after it. 3-way partition: copes with
 * many equal values (quantized weights). */
static void select_desc(float *a, long n, long k) {
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        float x = a[lo], y = a[mid], z = a[hi], pivot;
        if ((x >= y) == (y >= z)) pivot = y;
        else if ((y >= x) == (x >= z)) pivot = x;
        else pivot = z;
        long lt = lo, i = lo, gt = hi;
        while (i <= gt) {
            if (a[i] > pivot) swapf(&a[lt++], &a[i++]);
            else if (a[i] < pivot) swapf(&a[i], &a[gt--]);
            else i++;
        }
        if (k < lt) hi = lt - 1;
        else if (k > gt) lo = gt + 1;
        else return;
    }
}

float pdp_threshold(const float *w, long n, double r, float *scratch, long *ia, long *ib) {
    *ia = *ib = -1;
    if (n < 2) return -1.0f;
    long keep = (long)floor((1.0 - r) * (double)n + 1e-9);
    if (keep >= n) return -1.0f;
    long k = keep - 1;
    if (k < 0) k = 0;
    if (k > n - 2) k = n - 2;
    int nan = 0;
    for (long j = 0; j < n; j++) {
        scratch[j] = fabsf(w[j]);
        nan |= isnan(scratch[j]);
    }
    /* NaN weights: a NaN threshold makes the loss NaN, which the training
     * loop reports (NL_ERR_NUMERIC) instead of aborting. */
    if (nan) return NAN;
    select_desc(scratch, n, k);
    float vk = scratch[k], vk1 = scratch[k + 1];
    for (long j = k + 2; j < n; j++)
        if (scratch[j] > vk1) vk1 = scratch[j];
    for (long j = 0; j < n && (*ia < 0 || *ib < 0); j++) {
        float a = fabsf(w[j]);
        if (*ia < 0 && a == vk) *ia = j;
        else if (*ib < 0 && a == vk1) *ib = j;
    }
    NL_ASSERT(*ia >= 0 && *ib >= 0);
    return 0.5f * (vk + vk1);
}

/* Numerically stable logistic; exact 0 and 1 far out. */
static float sigmoid(double z) {
    if (z >= 0) return (float)(1.0 / (1.0 + exp(-z)));
    double e = exp(z);
    return (float)(e / (1.0 + e));
}

void pdp_forward(const float *w, long n, float t, float tau, float *m, float *out) {
    if (t < 0) {
        for (long j = 0; j < n; j++) {
            m[j] = 1.0f;
            if (out) out[j] = w[j];
        }
        return;
    }
    double t2 = (double)t * t;
    for (long j = 0; j < n; j++) {
        m[j] = sigmoid(((double)w[j] * w[j] - t2) / tau);
        if (out) out[j] = m[j] * w[j];
    }
}

static float signf(float x) { return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f; }

void pdp_backward(const float *w, const float *m, long n, float t, float tau, long ia,
                  long ib, float *g) {
    if (t < 0) return; /* m = 1: identity */
    double dt = 0;
    for (long j = 0; j < n; j++) {
        double s = (double)m[j] * (1.0 - m[j]);
        double d = (double)g[j] * w[j] * s;  /* dL/dz_j * tau */
        g[j] = (float)((double)g[j] * m[j] + d * 2.0 * w[j] / tau);
        dt += d;
    }
    dt *= -2.0 * t / tau;
    if (ia < 0 || ib < 0) return;
    g[ia] += (float)(dt * signf(w[ia]) * 0.5);
    g[ib] += (float)(dt * signf(w[ib]) * 0.5);
}

float pdp_struct_threshold(const float *w, int in, int out, double r, float *scores,
                           float *scratch, long *ia, long *ib) {
    for (int o = 0; o < out; o++) {
        double s = 0;
        for (int i = 0; i < in; i++) s += (double)w[(long)i * out + o] * w[(long)i * out + o];
        scores[o] = (float)sqrt(s);
    }
    return pdp_threshold(scores, out, r, scratch, ia, ib);
}

void pdp_struct_forward(const float *w, int in, int out, const float *scores, float t,
                        float tau, float *cm, float *m, float *o) {
    /* The unit mask on squared norms: smooth in w, same rule as pdp_forward. */
    pdp_forward(scores, out, t, tau, cm, NULL);
    for (int i = 0; i < in; i++)
        for (int u = 0; u < out; u++) {
            long j = (long)i * out + u;
            m[j] = cm[u];
            if (o) o[j] = cm[u] * w[j];
        }
}

void pdp_struct_backward(const float *w, int in, int out, const float *scores,
                         const float *cm, float t, float tau, long ia, long ib, float *g) {
    if (t < 0) return;
    double dt = 0;
    /* G_u = sum_i g[i,u] w[i,u]; dL/d(c_u^2) = G_u s_u / tau. */
    for (int u = 0; u < out; u++) {
        double G = 0;
        for (int i = 0; i < in; i++) G += (double)g[(long)i * out + u] * w[(long)i * out + u];
        double s = (double)cm[u] * (1.0 - cm[u]);
        double dz = G * s / tau;  /* dL/d(c_u^2) */
        for (int i = 0; i < in; i++) {
            long j = (long)i * out + u;
            g[j] = (float)((double)g[j] * cm[u] + dz * 2.0 * w[j]);
        }
        dt += G * s;
    }
    dt *= -2.0 * t / tau;
    /* t = (c_a + c_b) / 2, dc_a / dw[i,a] = w[i,a] / c_a. */
    long unit[2] = {ia, ib};
    for (int q = 0; q < 2; q++) {
        long u = unit[q];
        if (u < 0 || scores[u] <= 0) continue;
        for (int i = 0; i < in; i++) {
            long j = (long)i * out + u;
            g[j] += (float)(dt * 0.5 * w[j] / scores[u]);
        }
    }
}

static int entry_cmp(const void *pa, const void *pb) {
    const cm_entry *a = pa, *b = pb;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

long cm_sort_abs(const float *const *w, const long *n, int L, cm_entry *out) {
    long N = 0;
    for (int l = 0; l < L; l++)
        for (long j = 0; j < n[l]; j++) {
            out[N].a = fabsf(w[l][j]);
            out[N].layer = l;
            out[N].idx = j;
            N++;
        }
    qsort(out, (size_t)N, sizeof *out, entry_cmp);
    return N;
}

void pdp_budgets(const float *const *w, const long *n, int L, double S, double *r,
                 cm_entry *scratch) {
    long N = cm_sort_abs(w, n, L, scratch);
    long P = lround(S * (double)N);
    if (P > N) P = N;
    if (P < 0) P = 0;
    for (int l = 0; l < L; l++) r[l] = 0;
    for (long j = 0; j < P; j++) r[scratch[j].layer] += 1;
    for (int l = 0; l < L; l++) r[l] = n[l] > 0 ? r[l] / (double)n[l] : 0;
}

/* ---- the pruner ------------------------------------------------------------ */

typedef struct {
    double *budget;   /* (n_layers) r_l */
    double *ratio;    /* (n_layers) this epoch's r */
    float *t;         /* (n_layers) threshold of the last forward */
    long *ia, *ib;    /* (n_layers) its boundary weights / units */
    float **scores;   /* structured: (out) per layer */
    float **cm;       /* structured: (out) per layer */
    float *scratch;   /* (max n) */
    cm_entry *sorted; /* (sum of prunable n) for the budgets */
    const float **w;  /* (n_layers) budget inputs */
    long *n;
    int *map;
    double *r;
} pdp_state;

static void pdp_free(compress *c) {
    pdp_state *s = c->state;
    if (!s) return;
    for (int l = 0; l < c->n_layers; l++) {
        if (s->scores) free(s->scores[l]);
        if (s->cm) free(s->cm[l]);
    }
    free(s->scores); free(s->cm);
    free(s->budget); free(s->ratio); free(s->t); free(s->ia); free(s->ib);
    free(s->scratch);
    free(s->sorted); free(s->w); free(s->n); free(s->map); free(s->r);
    free(s);
    c->state = NULL;
}

static nl_status pdp_init(compress *c, nl_error *e) {
    if (!(c->p.temperature > 0))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.temperature must be > 0 for pdp (got %g)",
                      c->p.temperature);
    if (!(c->p.sparsity >= 0 && c->p.sparsity <= 1))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.sparsity must be in [0, 1] for pdp (got %g)",
                      c->p.sparsity);
    pdp_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "pdp: out of memory");
    c->state = s;
    int L = c->n_layers;
    long maxn = 1;
    for (int l = 0; l < L; l++) maxn = c->layers[l].n > maxn ? c->layers[l].n : maxn;
    s->budget = calloc((size_t)L + 1, sizeof *s->budget);
    s->ratio = calloc((size_t)L + 1, sizeof *s->ratio);
    s->t = calloc((size_t)L + 1, sizeof *s->t);
    s->ia = calloc((size_t)L + 1, sizeof *s->ia);
    s->ib = calloc((size_t)L + 1, sizeof *s->ib);
    s->scores = calloc((size_t)L + 1, sizeof *s->scores);
    s->cm = calloc((size_t)L + 1, sizeof *s->cm);
    s->scratch = malloc((size_t)maxn * sizeof *s->scratch);
    long N = 0;
    for (int l = 0; l < L; l++) N += c->layers[l].prunable ? c->layers[l].n : 0;
    s->sorted = malloc((size_t)(N + 1) * sizeof *s->sorted);
    s->w = calloc((size_t)L + 1, sizeof *s->w);
    s->n = calloc((size_t)L + 1, sizeof *s->n);
    s->map = calloc((size_t)L + 1, sizeof *s->map);
    s->r = calloc((size_t)L + 1, sizeof *s->r);
    int ok = s->budget && s->ratio && s->t && s->ia && s->ib && s->scores && s->cm &&
             s->scratch && s->sorted && s->w && s->n && s->map && s->r;
    for (int l = 0; ok && l < L; l++) {
        s->scores[l] = malloc((size_t)c->layers[l].out * sizeof(float));
        s->cm[l] = malloc((size_t)c->layers[l].out * sizeof(float));
        ok = s->scores[l] && s->cm[l];
    }
    if (!ok) {
        pdp_free(c);
        return nl_err(e, NL_ERR_NOMEM, "pdp: out of memory");
    }
    return NL_OK;
}

/* Budgets over the prunable layers' current |W|. */
static void pdp_setup(compress *c) {
    pdp_state *s = c->state;
    int np = 0;
    for (int l = 0; l < c->n_layers; l++) {
        s->budget[l] = 0;
        if (!c->layers[l].prunable) continue;
        s->w[np] = c->m->params + c->layers[l].w_off;
        s->n[np] = c->layers[l].n;
        s->map[np++] = l;
    }
    pdp_budgets(s->w, s->n, np, c->p.sparsity, s->r, s->sorted);
    for (int j = 0; j < np; j++) s->budget[s->map[j]] = s->r[j];
}

static void pdp_epoch_begin(compress *c) {
    pdp_state *s = c->state;
    double ramp = c->p.epsilon * (double)(c->epoch + 1);
    if (ramp > 1) ramp = 1;
    for (int l = 0; l < c->n_layers; l++) s->ratio[l] = ramp * s->budget[l];
}

static void pdp_fwd(compress *c, int li, const float *w, float *out) {
    pdp_state *s = c->state;
    cl_layer *L = &c->layers[li];
    float tau = (float)c->p.temperature;
    if (c->p.structured_pruning) {
        s->t[li] = pdp_struct_threshold(w, L->in, L->out, s->ratio[li], s->scores[li],
                                        s->scratch, &s->ia[li], &s->ib[li]);
        pdp_struct_forward(w, L->in, L->out, s->scores[li], s->t[li], tau, s->cm[li],
                           L->mask, out);
    } else {
        s->t[li] = pdp_threshold(w, L->n, s->ratio[li], s->scratch, &s->ia[li], &s->ib[li]);
        pdp_forward(w, L->n, s->t[li], tau, L->mask, out);
    }
}

static void pdp_bwd(compress *c, int li, const float *w, float *g) {
    pdp_state *s = c->state;
    cl_layer *L = &c->layers[li];
    float tau = (float)c->p.temperature;
    if (c->p.structured_pruning)
        pdp_struct_backward(w, L->in, L->out, s->scores[li], s->cm[li], s->t[li], tau,
                            s->ia[li], s->ib[li], g);
    else
        pdp_backward(w, L->mask, L->n, s->t[li], tau, s->ia[li], s->ib[li], g);
}

static void pdp_freeze(compress *c) {
    for (int l = 0; l < c->n_layers; l++) {
        cl_layer *L = &c->layers[l];
        for (long j = 0; j < L->n; j++) L->mask[j] = L->mask[j] >= 0.5f ? 1.0f : 0.0f;
    }
}

/* Checkpoint: the budgets (set-up) and this epoch's ratios; thresholds,
 * boundary weights and unit masks are recomputed by every forward. */
static void pdp_save_state(const compress *c, ckpt_writer *w) {
    const pdp_state *s = c->state;
    ckpt_put(w, "pdp_budget", s->budget, (size_t)c->n_layers * sizeof(double));
    ckpt_put(w, "pdp_ratio", s->ratio, (size_t)c->n_layers * sizeof(double));
}

static nl_status pdp_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    pdp_state *s = c->state;
    nl_status st = ckpt_get(r, "pdp_budget", s->budget, (size_t)c->n_layers * sizeof(double), e);
    return st ? st : ckpt_get(r, "pdp_ratio", s->ratio, (size_t)c->n_layers * sizeof(double), e);
}

const prune_ops prune_pdp_ops = {
    .name = "pdp",
    .init = pdp_init,
    .free = pdp_free,
    .setup = pdp_setup,
    .epoch_begin = pdp_epoch_begin,
    .forward = pdp_fwd,
    .backward = pdp_bwd,
    .freeze = pdp_freeze,
    .save_state = pdp_save_state,
    .load_state = pdp_load_state,
};
