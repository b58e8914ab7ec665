/* wanda.c — Wanda: pruning by weights and activations (Sun et al. 2023).
 *
 * Score S_ij = |W_ij| * ||x_j||_2, with ||x_j||^2 summed over t_delta main-
 * stage training batches once collection starts at batch
 * t_start_collecting_batch (PQuant counts epochs there; we count batches, as
 * the key's name says). Then the lowest scores are pruned once — per output
 * unit (the paper's comparison group; threshold_type: layerwise for one
 * group per layer), with per-layer budgets from one global |W| sort
 * (calculate_pruning_budget) or the plain target — or N:M (keep N of every
 * M consecutive inputs per output; nm_convention: prune_n for PQuant's
 * reading) — and the 0/1 mask stays fixed. compress_wanda_oneshot is the
 * paper's post-training mode on calibration batches. Conv kernels are
 * (kh kw cin, cout) matrices: the norm is per input channel, summed over
 * batch and positions (channels last), and row r uses channel r % cin. Not
 * here: sequential layer-by-layer calibration (all layers see the dense
 * model's inputs). Invariant: the mask is 0/1; ties go by input index. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compress/compress_internal.h"

/* ---- pure math ------------------------------------------------------------ */

void wanda_scores(const float *w, int in, int out, const double *sqsum, float *score) {
    for (int i = 0; i < in; i++) {
        double nrm = sqrt(sqsum[i] > 0 ? sqsum[i] : 0.0);
        for (int o = 0; o < out; o++) {
            long j = (long)i * out + o;
            float s = (float)(fabs((double)w[j]) * nrm);
            score[j] = isnan(s) ? 0.0f : s; /* NaN weights go first */
        }
    }
}

long wanda_mask(const float *score, int in, int out, double ratio, int per_layer, float *mask,
                cm_entry *scratch, float *col) {
    long n = (long)in * out, pruned = 0;
    for (long j = 0; j < n; j++) mask[j] = 1.0f;
    if (!(ratio > 0)) return 0;
    if (ratio > 1) ratio = 1;
    if (per_layer) {
        long P = lround(ratio * (double)n);
        cm_sort_abs(&score, &n, 1, scratch);
        for (long k = 0; k < P; k++) mask[scratch[k].idx] = 0.0f;
        return P;
    }
    long P = lround(ratio * (double)in), len = in;
    for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) col[i] = score[(long)i * out + o];
        const float *cp = col;
        cm_sort_abs(&cp, &len, 1, scratch);
        for (long k = 0; k < P; k++) mask[scratch[k].idx * out + o] = 0.0f;
        pruned += P;
    }
    return pruned;
}

long wanda_nm_mask(const float *score, int in, int out, int keep, int M, float *mask) {
    long pruned = 0;
    for (int o = 0; o < out; o++)
        for (int g0 = 0; g0 < in; g0 += M) {
            int g = in - g0 < M ? in - g0 : M;
            /* A short tail group keeps the same fraction, rounded up. */
            int kg = g == M ? keep : (keep * g + M - 1) / M;
            for (int a = 0; a < g; a++) {
                long ja = (long)(g0 + a) * out + o;
                /* rank = number of group members that beat a (higher score,
                 * or equal score at a lower index); keep the kg best. */
                int rank = 0;
                for (int b = 0; b < g; b++) {
                    float sb = score[(long)(g0 + b) * out + o], sa = score[ja];
                    rank += sb > sa || (sb == sa && b < a);
                }
                mask[ja] = rank < kg ? 1.0f : 0.0f;
                pruned += rank >= kg;
            }
        }
    return pruned;
}

int wanda_nm_keep(int N, int M, prune_nm_convention conv) {
    return conv == NM_PRUNE_N ? M - N : N;
}

/* ---- the pruner ------------------------------------------------------------- */

typedef struct {
    double **sqsum;   /* (n_layers) -> (nfeat) sum of x^2 per input feature/channel */
    int *nfeat;       /* (n_layers) Dense: in; conv: input channels */
    double *rowsq;    /* (max in) sqsum per kernel row */
    double *budget;   /* (n_layers) prune ratio per layer */
    float *score;     /* (max n) */
    float *col;       /* (max in) */
    cm_entry *sorted; /* (max(max n, sum of prunable n)) */
    const float **w;  /* budget inputs */
    long *n;
    int *map;
    double *r;
    long batch;       /* main-stage batches seen (all rounds) */
    long collected;   /* batches accumulated so far */
    int done;         /* masks computed and fixed */
} wanda_state;

static void wanda_free(compress *c) {
    wanda_state *s = c->state;
    if (!s) return;
    if (s->sqsum)
        for (int l = 0; l < c->n_layers; l++) free(s->sqsum[l]);
    free(s->sqsum); free(s->nfeat); free(s->rowsq); free(s->budget); free(s->score);
    free(s->col); free(s->sorted);
    free(s->w); free(s->n); free(s->map); free(s->r);
    free(s);
    c->state = NULL;
}

static nl_status wanda_init(compress *c, nl_error *e) {
    const cfg_pruning *p = &c->p;
    if (!(p->sparsity >= 0 && p->sparsity <= 1))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.sparsity must be in [0, 1] for wanda (got %g)",
                      p->sparsity);
    if ((p->N > 0) != (p->M > 0) || (p->M > 0 && (p->N < 1 || p->N >= p->M)))
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.N, M (%d, %d): N:M sparsity needs 1 <= N < M, or "
                      "both null",
                      p->N, p->M);
    if (p->threshold_type == THRESH_WEIGHTWISE)
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters.threshold_type: wanda compares scores per output unit "
                      "(channelwise, the default) or over the whole layer (layerwise); "
                      "weightwise has no meaning here");
    if (p->t_delta < 1 || p->t_start_collecting_batch < 0)
        return nl_err(e, NL_ERR_CONFIG,
                      "pruning_parameters: wanda needs t_delta >= 1 and "
                      "t_start_collecting_batch >= 0 (got %d, %d)",
                      p->t_delta, p->t_start_collecting_batch);
    wanda_state *s = calloc(1, sizeof *s);
    if (!s) return nl_err(e, NL_ERR_NOMEM, "wanda: out of memory");
    c->state = s;
    int L = c->n_layers;
    long maxn = 1, maxin = 1, N = 0;
    for (int l = 0; l < L; l++) {
        const cl_layer *cl = &c->layers[l];
        if (cl->n > maxn) maxn = cl->n;
        if (cl->in > maxin) maxin = cl->in;
        N += cl->n; /* all kernels: prunable may be decided after init */
    }
    s->sqsum = calloc((size_t)L + 1, sizeof *s->sqsum);
    s->nfeat = calloc((size_t)L + 1, sizeof *s->nfeat);
    s->rowsq = malloc((size_t)maxin * sizeof *s->rowsq);
    s->budget = calloc((size_t)L + 1, sizeof *s->budget);
    s->score = malloc((size_t)maxn * sizeof *s->score);
    s->col = malloc((size_t)maxin * sizeof *s->col);
    s->sorted = malloc((size_t)(N > maxn ? N : maxn) * sizeof *s->sorted);
    s->w = calloc((size_t)L + 1, sizeof *s->w);
    s->n = calloc((size_t)L + 1, sizeof *s->n);
    s->map = calloc((size_t)L + 1, sizeof *s->map);
    s->r = calloc((size_t)L + 1, sizeof *s->r);
    int ok = s->sqsum && s->nfeat && s->rowsq && s->budget && s->score && s->col && s->sorted &&
             s->w && s->n && s->map && s->r;
    for (int l = 0; ok && l < L; l++) {
        s->budget[l] = p->sparsity;
        /* every kernel layer: compress_create may leave conv kernels out */
        const layer *ml = &c->m->layers[c->layers[l].layer];
        s->nfeat[l] = ml->kind == LAYER_DENSE || ml->in_c < 1 ? c->layers[l].in : ml->in_c;
        s->sqsum[l] = calloc((size_t)s->nfeat[l], sizeof **s->sqsum);
        ok = s->sqsum[l] != NULL;
    }
    if (!ok) {
        wanda_free(c);
        return nl_err(e, NL_ERR_NOMEM, "wanda: out of memory for %d layers' statistics", L);
    }
    return NL_OK;
}

/* Per-layer prune ratios: the global |W| budgets (as PDP) or the target. */
static void wanda_setup(compress *c) {
    wanda_state *s = c->state;
    int np = 0;
    for (int l = 0; l < c->n_layers; l++) {
        s->budget[l] = c->p.sparsity;
        if (!c->layers[l].prunable) continue;
        s->w[np] = c->m->params + c->layers[l].w_off;
        s->n[np] = c->layers[l].n;
        s->map[np++] = l;
    }
    if (!c->p.calculate_pruning_budget || c->p.M > 0) return;
    pdp_budgets(s->w, s->n, np, c->p.sparsity, s->r, s->sorted);
    for (int j = 0; j < np; j++) s->budget[s->map[j]] = s->r[j];
}

/* sq[k] += x^2 over the B samples of a (B, in_size) layer input, feature
 * k = index % nf (nf = in_size for Dense; channels last for conv). */
static void accumulate(double *sq, int nf, const float *x, int B, int in_size) {
    for (int b = 0; b < B; b++) {
        const float *row = x + (size_t)b * in_size;
        for (int i = 0, k = 0; i < in_size; i++) {
            sq[k] += (double)row[i] * row[i];
            if (++k == nf) k = 0;
        }
    }
}

/* Masks of every prunable layer from the statistics; they are fixed after. */
static void compute_masks(compress *c) {
    wanda_state *s = c->state;
    const cfg_pruning *p = &c->p;
    for (int l = 0; l < c->n_layers; l++) {
        cl_layer *L = &c->layers[l];
        if (!L->prunable) continue;
        const float *w = c->m->params + L->w_off;
        for (int r = 0; r < L->in; r++) s->rowsq[r] = s->sqsum[l][r % s->nfeat[l]];
        wanda_scores(w, L->in, L->out, s->rowsq, s->score);
        if (p->M > 0)
            wanda_nm_mask(s->score, L->in, L->out, wanda_nm_keep(p->N, p->M, p->nm_convention),
                          p->M, L->mask);
        else
            wanda_mask(s->score, L->in, L->out, s->budget[l],
                       p->threshold_type == THRESH_LAYERWISE, L->mask, s->sorted, s->col);
    }
    s->done = 1;
}

static void wanda_observe(compress *c, int layer, const float *in, int B) {
    wanda_state *s = c->state;
    if (s->done || s->batch < c->p.t_start_collecting_batch) return;
    for (int l = 0; l < c->n_layers; l++) {
        cl_layer *L = &c->layers[l];
        if (L->layer == layer && L->prunable)
            accumulate(s->sqsum[l], s->nfeat[l], in, B, c->m->layers[layer].in_size);
    }
}

static void wanda_post_step(compress *c) {
    wanda_state *s = c->state;
    if (!s->done && s->batch >= c->p.t_start_collecting_batch &&
        ++s->collected >= c->p.t_delta)
        compute_masks(c);
    s->batch++;
}

static void wanda_fwd(compress *c, int li, const float *w, float *out) {
    const cl_layer *L = &c->layers[li];
    for (long j = 0; j < L->n; j++) out[j] = L->mask[j] * w[j];
}

static void wanda_bwd(compress *c, int li, const float *w, float *g) {
    (void)w;
    const cl_layer *L = &c->layers[li];
    for (long j = 0; j < L->n; j++) g[j] *= L->mask[j];
}

/* The main stage ended before t_delta batches: use what was collected; with
 * nothing collected the masks stay 1 (the run shows sparsity 0, not a
 * silently different method). */
static void wanda_freeze(compress *c) {
    wanda_state *s = c->state;
    if (!s->done && s->collected > 0) compute_masks(c);
    s->done = 1;
}

/* Checkpoint: the accumulated input norms, budgets and batch counters
 * (the masks are the layers' own). */
static void wanda_save_state(const compress *c, ckpt_writer *w) {
    const wanda_state *s = c->state;
    for (int l = 0; l < c->n_layers; l++)
        ckpt_put(w, "wanda_sqsum", s->sqsum[l], (size_t)s->nfeat[l] * sizeof(double));
    ckpt_put(w, "wanda_budget", s->budget, (size_t)c->n_layers * sizeof(double));
    int64_t k[3] = {s->batch, s->collected, s->done};
    ckpt_put(w, "wanda_counters", k, sizeof k);
}

static nl_status wanda_load_state(compress *c, ckpt_reader *r, nl_error *e) {
    wanda_state *s = c->state;
    nl_status st;
    for (int l = 0; l < c->n_layers; l++)
        if ((st = ckpt_get(r, "wanda_sqsum", s->sqsum[l], (size_t)s->nfeat[l] * sizeof(double), e)))
            return st;
    if ((st = ckpt_get(r, "wanda_budget", s->budget, (size_t)c->n_layers * sizeof(double), e)))
        return st;
    int64_t k[3];
    if ((st = ckpt_get(r, "wanda_counters", k, sizeof k, e))) return st;
    s->batch = (long)k[0];
    s->collected = (long)k[1];
    s->done = (int)k[2];
    return NL_OK;
}

const prune_ops prune_wanda_ops = {
    .name = "wanda",
    .init = wanda_init,
    .free = wanda_free,
    .setup = wanda_setup,
    .forward = wanda_fwd,
    .backward = wanda_bwd,
    .post_step = wanda_post_step,
    .freeze = wanda_freeze,
    .observe = wanda_observe,
    .save_state = wanda_save_state,
    .load_state = wanda_load_state,
};

/* ---- one-shot post-training mode ---------------------------------------------- */

nl_status compress_wanda_oneshot(compress *c, const float *x, long n, int batches, nl_error *e) {
    if (!c || !c->pruning || c->ops != &prune_wanda_ops || !c->state)
        return nl_err(e, NL_ERR_CONFIG,
                      "wanda one-shot: the compress object must be bound with "
                      "pruning_method: wanda and enable_pruning: true");
    if (batches < 1 || n < 1 || !x)
        return nl_err(e, NL_ERR_INVALID,
                      "wanda one-shot: need at least one calibration batch and sample (got %d "
                      "batches, %ld samples)",
                      batches, n);
    wanda_state *s = c->state;
    model *m = c->m;
    int B = c->t.batch_size > 0 ? c->t.batch_size : m->max_batch;
    if (B > m->max_batch) B = m->max_batch;
    /* Budgets from the current weights; statistics from the dense model
     * (P = identity, quantizers as configured). */
    wanda_setup(c);
    for (int l = 0; l < c->n_layers; l++)
        if (c->layers[l].prunable) memset(s->sqsum[l], 0, (size_t)s->nfeat[l] * sizeof(double));
    c->stage = STAGE_PRETRAIN;
    c->frozen = 0;
    cm_pre_forward(c);
    long start = 0;
    int used = 0;
    for (; used < batches && start < n; used++, start += B) {
        int nb = (int)(n - start < B ? n - start : B);
        const float *xb = x + (size_t)start * m->in_size;
        model_forward(m, xb, nb);
        for (int l = 0; l < c->n_layers; l++) {
            const cl_layer *L = &c->layers[l];
            if (!L->prunable) continue;
            const float *in = L->layer == 0 ? xb : m->layers[L->layer - 1].out;
            accumulate(s->sqsum[l], s->nfeat[l], in, nb, m->layers[L->layer].in_size);
        }
    }
    s->collected = used;
    compute_masks(c);
    /* Hard, frozen masks: weff and reports show the pruned model. */
    c->frozen = 1;
    c->stage = STAGE_FINETUNE;
    cm_pre_forward(c);
    return NL_OK;
}
