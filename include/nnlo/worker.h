/* worker.h — run one trial: config -> data -> model -> stages -> metrics ->
 * files, and serve trials to a master over a comm endpoint.
 *
 * A trial is a pure function of its resolved YAML (seed included) and the
 * data: the same text gives the same metrics, bit for bit, whether run by a
 * scan's worker or by `nnlo-c train`. A trial never ends the process: bad
 * hyperparameters, a NaN loss or a failed allocation become a FAILED result
 * with a reason. Metric names: nnlo/metrics.h. */
#ifndef NNLO_WORKER_H
#define NNLO_WORKER_H

#include <signal.h>
#include "nnlo/comm.h"
#include "nnlo/compress.h"
#include "nnlo/config.h"
#include "nnlo/data.h"
#include "nnlo/metrics.h"
#include "nnlo/util.h"

/* PRUNED: the master's pruner (search.pruner) stopped it early; it is
 * finished (its metrics are those of the model at that epoch) but is not
 * ranked. */
typedef enum { TRIAL_DONE = 0, TRIAL_FAILED = 1, TRIAL_INTERRUPTED = 2, TRIAL_PRUNED = 3 } trial_status;
const char *trial_status_name(trial_status s);

typedef struct {
    int id;
    trial_status status;
    char reason[1024];            /* FAILED / INTERRUPTED: why */
    double metrics[MET_COUNT];    /* NaN where not measured */
} trial_result;

/* Keeps the datasets of the last trial so that the next trial with the same
 * data section reuses them (DESIGN: workers load the data once). */
typedef struct {
    char key[4096];
    data_bundle data;
    int loaded;
} worker_cache;
void worker_cache_free(worker_cache *c);

/* Called after every epoch; returns 0 to go on, 1 to stop training early,
 * 2 to abort the trial (drain). */
typedef int (*trial_progress_fn)(void *ctx, int trial_id, const epoch_record *r);

/* Runs one trial from its YAML text; relative data paths in it are taken
 * relative to base_dir (NULL: the current folder). If trial_dir is not NULL, writes
 * model.h5, history.csv, layers.csv and log there, and checkpoint.bin after
 * every epoch: a later call with the same YAML text and trial_dir continues
 * after the checkpointed epoch and ends exactly as an uninterrupted run
 * (a checkpoint that does not match is ignored with a warning); the
 * checkpoint is removed once the trial is DONE or FAILED and kept when it
 * is INTERRUPTED. trial_dir NULL: no files, no checkpoints. The returned status is about the
 * run itself (NL_OK even for a FAILED trial, which is in res); only an
 * inability to write the result files is an error. */
nl_status worker_run_trial(int trial_id, const char *trial_yaml, const char *source,
                           const char *base_dir, const char *trial_dir, worker_cache *cache, trial_progress_fn cb,
                           void *cb_ctx, trial_result *res, nl_error *e);

/* Everything worker_run_trial does before training, and nothing after:
 * parses the YAML, loads (or reuses from cache) the data, builds the
 * model, optimizer and compressor (a teacher too). NL_OK and the model's
 * parameter count, or NL_ERR_CONFIG with the reason the trial would fail
 * with. For `nnlo-c check`. */
nl_status worker_check_trial(const char *trial_yaml, const char *source, const char *base_dir,
                             worker_cache *cache, long *n_params, nl_error *e);

/* Result <-> JSON (the MSG_RESULT payload and the journal's trial_end). */
void trial_result_to_json(const trial_result *r, sbuf *out);
nl_status trial_result_from_json(const char *text, trial_result *r, nl_error *e);

/* Serves a master: READY, then runs every TRIAL it is sent (payload
 * "<id>\n<trial folder>\n<trial yaml>"), sends PROGRESS per epoch and the
 * RESULT, until SHUTDOWN. A STOP message or *stop_flag != 0 interrupts the
 * current trial at the next epoch boundary, right after its checkpoint
 * (worker_run_trial) is written: sent again, it continues from there. */
nl_status worker_serve(comm *c, volatile sig_atomic_t *stop_flag, nl_error *e);

#endif
