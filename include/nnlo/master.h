/* master.h — rank 0: search, scheduling, journal, results and ranking.
 *
 * A trial's seed, and under random and grid search its point, are pure
 * functions of (scan seed, trial id), so a resumed scan regenerates exactly
 * the trials it had not finished; TPE's points depend on the finished
 * trials and come back from the journal's trial_start events. The master talks to workers only through comm.h
 * (MPI ranks or the in-process transport) and appends every event to
 * <out>/journal.jsonl (flushed and fsynced), the source of truth for
 * --resume. */
#ifndef NNLO_MASTER_H
#define NNLO_MASTER_H

#include <signal.h>
#include "nnlo/comm.h"
#include "nnlo/config.h"
#include "nnlo/worker.h"

typedef struct {
    const char *out_dir;  /* NULL: the scan's output_dir */
    int resume;           /* continue the scan recorded in out_dir */
    int trials;           /* > 0: overrides search.trials */
    int quiet;            /* no per-epoch progress lines */
} master_options;

/* Runs a whole scan with comm_size(c) - 1 workers. Returns NL_OK when every
 * trial ran or the scan was drained by *stop_flag (SIGTERM/SIGUSR1): the
 * journal then holds every finished trial and --resume continues. Errors:
 * the output folder cannot be written, it holds another scan, or all
 * workers failed. Prints the ranking on stdout at the end. */
nl_status master_run(comm *c, const scan_config *scan, const master_options *o,
                     volatile sig_atomic_t *stop_flag, nl_error *e);

/* ---- search ------------------------------------------------------------- */

/* Number of points of the grid (choice: its values, int: hi-lo+1,
 * uniform/log_uniform: grid_points). 1 without dimensions. */
long search_grid_size(const scan_config *s);
/* The number of trials the scan runs: search.trials (or override), capped
 * by the grid size under grid search. */
int search_n_trials(const scan_config *s, int override);
/* The point of trial `id`: random search (and TPE's start-up) draws it
 * from rng(seed, id); grid search takes the id-th point of the grid in
 * row-major order (the first dimension varies slowest). values has
 * s->n_dims entries. */
void search_point(const scan_config *s, int id, cfg_value *values);
uint64_t search_trial_seed(const scan_config *s, int id);

/* ---- results ------------------------------------------------------------ */

typedef struct {
    int id;
    int state;              /* 0 pending, 1 running, 2 finished */
    int worker;
    trial_result res;
    cfg_value *values;      /* n_dims */
} trial_entry;

/* TPE (search.algorithm: tpe): the point of trial id given the n trials so
 * far (those finished DONE with a finite objective, then the PRUNED ones
 * ranked below them, are the history; their
 * values must be set). With fewer than max(2, n_startup_trials) of them it
 * is search_point's random point. Deterministic in (scan, id, history). */
nl_status search_tpe_point(const scan_config *s, int id, const trial_entry *t, int n,
                           cfg_value *values, nl_error *e);

/* Whether a finished trial satisfies every constraint of the scan. */
int results_feasible(const scan_config *s, const trial_result *r);
/* Writes results.csv (all trials with a result) atomically. */
nl_status results_write_csv(const char *out_dir, const scan_config *s, const trial_entry *t, int n,
                            nl_error *e);
/* Ranks feasible DONE trials by search.objective (default val_accuracy,
 * in the metric's direction; ties: fewer LUTs), writes
 * pareto.csv (non-dominated on val_accuracy vs dsp, lut, latency_cycles,
 * ebops), copies the top-k models into best/<rank>_<id>/, and prints the
 * ranking table to `out`. */
nl_status results_finish(const char *out_dir, const scan_config *s, const trial_entry *t, int n,
                         FILE *out, nl_error *e);

#endif
