/* tpe.c — the Tree-structured Parzen Estimator (Bergstra et al., NeurIPS
 * 2011), after Optuna's TPESampler (differences in docs/config.md): random
 * points until n_startup_trials trials have completed, then the finished trials
 * (done, and pruned ones ranked below them) are split into the best
 * gamma(n) = min(ceil(n / 10), 25) and the rest; each dimension independently gets a Parzen density l (good) and g
 * (rest), 24 candidates are drawn from l and the one with the largest
 * log l - log g is taken.
 *
 * Numbers: a mixture of Gaussians truncated to the range (log space for
 * log_uniform), one per observation with the larger distance to its
 * neighbours (the range ends count as neighbours) as its width, clipped to
 * [range / min(100, 1 + m), range], plus a prior component (mid-range,
 * width = range), all of weight 1. Choices: observed counts plus a prior
 * weight of 1 spread evenly. Ranking: completed before pruned, then by
 * how far a trial misses the constraints (0 for feasible ones), then the
 * objective in its direction, then the lower id.
 * Deterministic: the same finished trials and id give the same point. Not
 * here: multivariate TPE, constant-liar for running trials. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/master.h"
#include "nnlo/metrics.h"
#include "search_internal.h"

#define TPE_CANDIDATES 24
#define TPE_MAX_GOOD 25

typedef struct {
    int id;
    int pruned;       /* stopped by the pruner: ranked after every completed trial */
    double violation; /* how far it misses the constraints; 0 = feasible */
    double score;     /* larger is better */
} tpe_obs;

static int obs_cmp(const void *a, const void *b) {
    const tpe_obs *x = a, *y = b;
    if (x->pruned != y->pruned) return x->pruned - y->pruned;
    if (x->violation != y->violation) return x->violation < y->violation ? -1 : 1;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id - y->id;
}

int search_dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sum over the constraints of the relative amount a result misses each
 * by (a missing metric counts 1): infeasible trials rank by it, so TPE
 * moves towards the feasible region before anything else (as Optuna's
 * constrained TPE does). */
static double violation(const scan_config *s, const trial_result *r) {
    double v = 0;
    for (int k = 0; k < s->n_constraints; k++) {
        int m = metric_find(s->constraints[k].metric);
        if (m < 0) continue;
        double x = r->metrics[m], b = s->constraints[k].max;
        if (!isfinite(x)) { v += 1; continue; }
        double miss = metric_minimize((metric_id)m) ? x - b : b - x;
        if (miss > 0) v += miss / (fabs(b) > 0 ? fabs(b) : 1.0);
    }
    return v;
}

int tpe_n_good(int n) {
    int g = (n + 9) / 10;
    if (g > TPE_MAX_GOOD) g = TPE_MAX_GOOD;
    return g < 1 ? 1 : g;
}

/* Position of a value on the dimension's axis (log for log_uniform). */
static double axis(const search_dim *d, double v) { return d->kind == DIM_LOG_UNIFORM ? log(v) : v; }

/* The axis's range; integer dimensions reach half a step beyond their
 * ends, so that after rounding lo and hi are as likely as inner values. */
static void axis_range(const search_dim *d, double *lo, double *hi) {
    int is_int = d->kind == DIM_INT || d->is_int;
    double a = d->lo, b = d->hi;
    if (is_int && (d->kind != DIM_LOG_UNIFORM || a > 0.5)) {
        a -= 0.5;
        b += 0.5;
    }
    *lo = axis(d, a);
    *hi = axis(d, b);
}

static double norm_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

void tpe_parzen(const double *obs, int m, double lo, double hi, double *mu, double *sigma) {
    double range = hi - lo;
    double smin = range / fmin(100.0, 1.0 + m);
    /* sorted copy to find each observation's neighbours */
    for (int i = 0; i < m; i++) mu[i] = obs[i];
    qsort(mu, (size_t)m, sizeof *mu, search_dbl_cmp);
    for (int i = 0; i < m; i++) {
        double left = i > 0 ? mu[i - 1] : lo, right = i + 1 < m ? mu[i + 1] : hi;
        double s = fmax(mu[i] - left, right - mu[i]);
        sigma[i] = fmin(fmax(s, smin), range);
    }
    mu[m] = 0.5 * (lo + hi); /* the prior */
    sigma[m] = range;
}

double tpe_log_density(const double *mu, const double *sigma, int k, double lo, double hi, double x) {
    double sum = 0;
    for (int c = 0; c < k; c++) {
        double z = (x - mu[c]) / sigma[c];
        double mass = norm_cdf((hi - mu[c]) / sigma[c]) - norm_cdf((lo - mu[c]) / sigma[c]);
        if (mass < 1e-300) mass = 1e-300;
        sum += exp(-0.5 * z * z) / (sigma[c] * sqrt(2.0 * M_PI) * mass);
    }
    return log(sum / k);
}

/* A draw from the truncated mixture: a component by weight (all equal),
 * then its Gaussian until the draw falls inside [lo, hi]. */
static double mixture_draw(const double *mu, const double *sigma, int k, double lo, double hi, rng_t *r) {
    int c = (int)rng_below(r, (uint64_t)k);
    for (int tries = 0; tries < 100; tries++) {
        double x = mu[c] + sigma[c] * (double)rng_normal(r);
        if (x >= lo && x <= hi) return x;
    }
    return lo + rng_uniform(r) * (hi - lo);
}

static int same_choice(const cfg_value *a, const cfg_value *b) {
    if (a->kind != b->kind) return 0;
    return a->kind == VAL_STR ? strcmp(a->str, b->str) == 0 : a->num == b->num;
}

/* One numeric dimension: the best of TPE_CANDIDATES draws from l. */
static double numeric_point(const search_dim *d, const double *good, int ng, const double *bad, int nb,
                            rng_t *r, double *buf) {
    double lo, hi;
    axis_range(d, &lo, &hi);
    if (!(hi > lo)) return d->lo;
    double *lmu = buf, *lsig = lmu + ng + 1, *gmu = lsig + ng + 1, *gsig = gmu + nb + 1;
    tpe_parzen(good, ng, lo, hi, lmu, lsig);
    tpe_parzen(bad, nb, lo, hi, gmu, gsig);
    double best = lo, best_score = -INFINITY;
    for (int c = 0; c < TPE_CANDIDATES; c++) {
        double x = mixture_draw(lmu, lsig, ng + 1, lo, hi, r);
        double sc = tpe_log_density(lmu, lsig, ng + 1, lo, hi, x) - tpe_log_density(gmu, gsig, nb + 1, lo, hi, x);
        if (sc > best_score) {
            best_score = sc;
            best = x;
        }
    }
    return d->kind == DIM_LOG_UNIFORM ? exp(best) : best;
}

/* One choice dimension: weights count + 1/k for l and g; the best of
 * TPE_CANDIDATES draws from l. */
static int choice_point(const search_dim *d, const int *cg, int ng, const int *cb, int nb, rng_t *r) {
    int k = d->n_choices, best = 0;
    double best_score = -INFINITY;
    for (int c = 0; c < TPE_CANDIDATES; c++) {
        double u = rng_uniform(r) * (ng + 1.0), acc = 0;
        int pick = k - 1;
        for (int j = 0; j < k; j++) {
            acc += cg[j] + 1.0 / k;
            if (u < acc) { pick = j; break; }
        }
        double sc = log((cg[pick] + 1.0 / k) / (ng + 1.0)) - log((cb[pick] + 1.0 / k) / (nb + 1.0));
        if (sc > best_score) {
            best_score = sc;
            best = pick;
        }
    }
    return best;
}

/* Finished DONE trials with a finite objective, ranked best first, then
 * the pruned ones (Optuna's TPE also counts pruned trials as worse than
 * every completed one, so it does not propose their region again). */
static int history(const scan_config *s, const trial_entry *t, int n, tpe_obs *out) {
    int m = 0, minimize = metric_minimize((metric_id)s->objective);
    for (int i = 0; i < n; i++) {
        if (t[i].state != 2 || (t[i].res.status != TRIAL_DONE && t[i].res.status != TRIAL_PRUNED)) continue;
        double v = t[i].res.metrics[s->objective];
        if (!isfinite(v)) v = minimize ? INFINITY : -INFINITY;
        if (t[i].res.status == TRIAL_DONE && !isfinite(v)) continue;
        out[m].id = i;
        out[m].pruned = t[i].res.status == TRIAL_PRUNED;
        out[m].violation = violation(s, &t[i].res);
        out[m].score = minimize ? -v : v;
        m++;
    }
    qsort(out, (size_t)m, sizeof *out, obs_cmp);
    return m;
}

nl_status search_tpe_point(const scan_config *s, int id, const trial_entry *t, int n, cfg_value *values,
                           nl_error *e) {
    tpe_obs *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
    if (!h) return nl_err(e, NL_ERR_NOMEM, "TPE: out of memory for %d trials", n);
    int m = history(s, t, n, h);
    if (m < s->n_startup_trials || m < 2) {
        free(h);
        search_random_point(s, id, values);
        return NL_OK;
    }
    int ng = tpe_n_good(m), nb = m - ng;
    double *xs = malloc((size_t)m * sizeof *xs);
    double *buf = malloc((size_t)(2 * m + 4) * 2 * sizeof *buf);
    int maxk = 1;
    for (int j = 0; j < s->n_dims; j++)
        if (s->dims[j].kind == DIM_CHOICE && s->dims[j].n_choices > maxk) maxk = s->dims[j].n_choices;
    int *cnt = calloc((size_t)maxk * 2, sizeof *cnt);
    nl_status st = NL_OK;
    if (!xs || !buf || !cnt) {
        st = nl_err(e, NL_ERR_NOMEM, "TPE: out of memory");
        goto done;
    }
    rng_t r;
    rng_seed(&r, rng_derive(s->seed, 0x7e0000000000ULL + (uint64_t)id));
    for (int j = 0; j < s->n_dims; j++) {
        const search_dim *d = &s->dims[j];
        if (d->kind == DIM_CHOICE) {
            memset(cnt, 0, (size_t)maxk * 2 * sizeof *cnt);
            for (int q = 0; q < m; q++)
                for (int c = 0; c < d->n_choices; c++)
                    if (same_choice(&t[h[q].id].values[j], &d->choices[c])) {
                        cnt[(q < ng ? 0 : maxk) + c]++;
                        break;
                    }
            values[j] = d->choices[choice_point(d, cnt, ng, cnt + maxk, nb, &r)];
            continue;
        }
        for (int q = 0; q < m; q++) xs[q] = axis(d, t[h[q].id].values[j].num);
        double x = numeric_point(d, xs, ng, xs + ng, nb, &r, buf);
        search_number_value(d, x, &values[j]);
    }
done:
    free(h);
    free(xs);
    free(buf);
    free(cnt);
    return st;
}
