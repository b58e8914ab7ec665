/* search.c — random and grid search over the scan's dimensions. A trial's
 * point is a pure function of (scan seed, trial id): no search state to
 * save, and a resumed scan regenerates the same points. Registry of
 * algorithms: the switch in search_point (random, grid); TPE (tpe.c)
 * depends on finished trials, so scan.c asks it at dispatch time and the
 * journal's trial_start events keep its points for --resume. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/master.h"
#include "search_internal.h"

static long dim_grid_size(const search_dim *d) {
    switch (d->kind) {
    case DIM_CHOICE: return d->n_choices;
    case DIM_INT: return (long)(d->hi - d->lo) + 1;
    case DIM_UNIFORM:
    case DIM_LOG_UNIFORM: return d->grid_points > 0 ? d->grid_points : 3;
    }
    return 1;
}

long search_grid_size(const scan_config *s) {
    long n = 1;
    for (int j = 0; j < s->n_dims; j++) {
        long k = dim_grid_size(&s->dims[j]);
        if (n > (1L << 40) / (k > 0 ? k : 1)) return 1L << 40;
        n *= k;
    }
    return n;
}

int search_n_trials(const scan_config *s, int override) {
    long n = override > 0 ? override : s->trials;
    if (s->algorithm == SEARCH_GRID) {
        long g = search_grid_size(s);
        if (n > g) n = g;
    }
    return n > 1000000 ? 1000000 : (int)n;
}

uint64_t search_trial_seed(const scan_config *s, int id) {
    return rng_derive(s->seed, 0x7000000000ULL + (uint64_t)id);
}

/* Continuous draws keep 6 significant digits: trial.yaml and results.csv
 * stay readable, and the value written is exactly the value trained with. */
static void num_value(cfg_value *v, double x, int is_int) {
    v->kind = VAL_NUM;
    if (is_int) v->num = round(x);
    else {
        char buf[32];
        snprintf(buf, sizeof buf, "%.6g", x);
        v->num = strtod(buf, NULL);
    }
    v->str[0] = '\0';
}

/* Grid coordinate k of n along one dimension. */
static void grid_value(const search_dim *d, long k, cfg_value *v) {
    long n = dim_grid_size(d);
    double u = n > 1 ? (double)k / (double)(n - 1) : 0.0;
    switch (d->kind) {
    case DIM_CHOICE: *v = d->choices[k]; break;
    case DIM_INT: num_value(v, d->lo + (double)k, 1); break;
    case DIM_UNIFORM: num_value(v, d->lo + u * (d->hi - d->lo), d->is_int); break;
    case DIM_LOG_UNIFORM: num_value(v, exp(log(d->lo) + u * (log(d->hi) - log(d->lo))), d->is_int); break;
    }
}

static void random_value(const search_dim *d, rng_t *r, cfg_value *v) {
    switch (d->kind) {
    case DIM_CHOICE: *v = d->choices[rng_below(r, (uint64_t)d->n_choices)]; break;
    case DIM_INT: num_value(v, d->lo + (double)rng_below(r, (uint64_t)(d->hi - d->lo) + 1), 1); break;
    case DIM_UNIFORM: num_value(v, d->lo + rng_uniform(r) * (d->hi - d->lo), d->is_int); break;
    case DIM_LOG_UNIFORM:
        num_value(v, exp(log(d->lo) + rng_uniform(r) * (log(d->hi) - log(d->lo))), d->is_int);
        break;
    }
}

/* Rounding must not step outside the dimension's range. */
static void clamp_value(const search_dim *d, cfg_value *v) {
    if (d->kind == DIM_CHOICE) return;
    if (v->num < d->lo) v->num = d->lo;
    if (v->num > d->hi) v->num = d->hi;
}

void search_number_value(const search_dim *d, double x, cfg_value *v) {
    num_value(v, x, d->is_int || d->kind == DIM_INT);
    clamp_value(d, v);
}

void search_random_point(const scan_config *s, int id, cfg_value *values) {
    rng_t r;
    rng_seed(&r, rng_derive(s->seed, (uint64_t)id));
    for (int j = 0; j < s->n_dims; j++) {
        random_value(&s->dims[j], &r, &values[j]);
        clamp_value(&s->dims[j], &values[j]);
    }
}

void search_point(const scan_config *s, int id, cfg_value *values) {
    if (s->algorithm == SEARCH_GRID) {
        long rest = id;
        for (int j = s->n_dims - 1; j >= 0; j--) {
            long n = dim_grid_size(&s->dims[j]);
            grid_value(&s->dims[j], rest % n, &values[j]);
            clamp_value(&s->dims[j], &values[j]);
            rest /= n;
        }
        return;
    }
    search_random_point(s, id, values);
}
