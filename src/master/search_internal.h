/* search_internal.h — shared by the search algorithms of src/master/
 * (search.c: random and grid; tpe.c; the pruner, pruner.c), scan.c and
 * their tests; not a public interface. */
#ifndef NNLO_SEARCH_INTERNAL_H
#define NNLO_SEARCH_INTERNAL_H
#include "nnlo/master.h"

/* The random-search point of trial id (rng(seed, id)): what every
 * algorithm but grid uses, and TPE before it has enough history. */
void search_random_point(const scan_config *s, int id, cfg_value *values);
/* x (on the dimension's scale) as its value: integers rounded, others to
 * 6 significant digits, clamped to [lo, hi]. */
void search_number_value(const search_dim *d, double x, cfg_value *v);

/* qsort comparator of doubles, ascending. */
int search_dbl_cmp(const void *a, const void *b);

/* ---- TPE (tpe.c) --------------------------------------------------------- */
/* The size of the good group among n finished trials: min(ceil(n/10), 25), >= 1. */
int tpe_n_good(int n);
/* Parzen components of m observations on [lo, hi]: mu/sigma (m + 1 each)
 * get the observations sorted with their widths, then the prior. */
void tpe_parzen(const double *obs, int m, double lo, double hi, double *mu, double *sigma);
/* log of the equal-weight mixture of k Gaussians truncated to [lo, hi], at x. */
double tpe_log_density(const double *mu, const double *sigma, int k, double lo, double hi, double x);

/* ---- the median pruner (pruner.c) --------------------------------------- */
/* 1 when a running trial whose best val_accuracy so far is `best` should
 * stop at global epoch `step`: step >= warmup, n_completed >= n_startup, and
 * best < the median of curves[i][step] over the completed trials' curves
 * that reach step with a finite value (none: 0). *median gets the median
 * (NaN when not computed). scratch: n doubles. */
int pruner_median_verdict(const double *const *curves, const int *lens, int n, int n_completed, int step,
                          double best, int n_startup, int warmup, double *median, double *scratch);
/* A trial's val_accuracy per global epoch from its history.csv; epochs
 * missing from the file are NaN. *curve is malloc'd (NULL when empty). */
nl_status pruner_read_curve(const char *path, double **curve, int *len, nl_error *e);

#endif
