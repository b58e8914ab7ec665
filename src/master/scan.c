/* scan.c — the master's loop. It reacts to worker messages (READY,
 * PROGRESS, RESULT, FATAL) and to the drain flag; it never calls MPI itself
 * (comm.h does), so the same code runs over MPI ranks and over the
 * in-process transport. Every event goes to the journal before anything
 * else depends on it; results.csv is rewritten after every result. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "journal.h"
#include "search_internal.h"
#include "nnlo/json.h"
#include "nnlo/master.h"

typedef struct {
    const scan_config *s;
    const master_options *o;
    comm *c;
    journal j;
    char out[4096];
    trial_entry *t;
    int n;
    int next;          /* lowest id that may still be pending */
    int *busy;         /* per rank: running trial id or -1 */
    unsigned char *pointed; /* per trial: values set (TPE sets them at dispatch) */
    /* search.pruner: per trial */
    double **curve;    /* completed trials: val_accuracy per global epoch (history.csv) */
    int *curve_len;
    double *best;      /* running trials: best val_accuracy so far */
    int n_completed;   /* trials with status done */
    int tpe_warned;    /* the "objective never finite" warning was given */
    double *scratch;   /* n doubles for the median */
    int draining;
    int finished_now;  /* trials finished in this run */
    double t0;         /* when this run started */
} master;

static void values_json(const master *M, const trial_entry *t, sbuf *b) {
    sbuf_printf(b, "\"values\": {");
    for (int j = 0; j < M->s->n_dims; j++) {
        sbuf_printf(b, "%s", j ? ", " : "");
        json_write_str(b, M->s->dims[j].path);
        sbuf_printf(b, ": ");
        const cfg_value *v = &t->values[j];
        if (v->kind == VAL_STR) json_write_str(b, v->str);
        else if (v->kind == VAL_BOOL) sbuf_printf(b, "%s", v->num != 0 ? "true" : "false");
        else json_write_num(b, v->num);
    }
    sbuf_printf(b, "}");
}

static nl_status record_result(master *M, trial_entry *t, nl_error *e) {
    sbuf b = {0};
    trial_result_to_json(&t->res, &b);
    /* the result object's members, inside the journal event */
    b.s[b.len - 1] = '\0';
    nl_status st = journal_append(&M->j, "trial_end", b.s + 1, e);
    sbuf_free(&b);
    if (st == NL_OK) st = results_write_csv(M->out, M->s, M->t, M->n, e);
    return st;
}

/* "[7/20, ETA 3m10s]": finished over all, and the time the rest should
 * take at this run's pace (finished_now trials in `elapsed` seconds). */
static void progress(const master *M, char *buf, size_t len) {
    int done = 0;
    for (int i = 0; i < M->n; i++) done += M->t[i].state == 2;
    double elapsed = time_now() - M->t0;
    int left = M->n - done;
    if (M->finished_now > 0 && left > 0) {
        double eta = elapsed / M->finished_now * left;
        snprintf(buf, len, "[%d/%d, ETA %dm%02ds]", done, M->n, (int)(eta / 60), (int)eta % 60);
    } else {
        snprintf(buf, len, "[%d/%d]", done, M->n);
    }
}

static void log_result(const master *M, const trial_entry *t) {
    const double *m = t->res.metrics;
    char pr[64];
    progress(M, pr, sizeof pr);
    if (t->res.status == TRIAL_DONE)
        log_info("%s trial %d done: val_acc %.4f test_acc %.4f sparsity %.3f ebops %.0f dsp %.0f lut %.0f latency %.0f cycles (%.1f s)",
                 pr, t->id, m[MET_VAL_ACCURACY], m[MET_TEST_ACCURACY], m[MET_SPARSITY], m[MET_EBOPS], m[MET_DSP],
                 m[MET_LUT], m[MET_LATENCY_CYCLES], m[MET_TRAIN_SECONDS]);
    else if (t->res.status == TRIAL_PRUNED)
        log_info("%s trial %d pruned (%s): val_acc %.4f", pr, t->id, t->res.reason, m[MET_VAL_ACCURACY]);
    else
        log_warn("%s trial %d %s: %s", pr, t->id, trial_status_name(t->res.status), t->res.reason);
}

/* Whether the master judges every epoch (search.pruner or
 * search.trial_timeout): the worker then waits for CONTINUE or PRUNE after
 * each PROGRESS, so a verdict always takes effect at the epoch it is about. */
static int judges_epochs(const scan_config *s) {
    return s->pruner != PRUNER_NONE || s->trial_timeout > 0;
}

/* TPE learns from the objective; when enough trials completed but none
 * has a finite one (e.g. test_accuracy without a test set) it can only
 * draw at random: say so once. */
static void warn_tpe_blind(master *M) {
    int startup = M->s->n_startup_trials > 2 ? M->s->n_startup_trials : 2, finite = 0;
    if (M->tpe_warned || M->n_completed < startup) return;
    for (int i = 0; i < M->n; i++)
        if (M->t[i].state == 2 && M->t[i].res.status == TRIAL_DONE)
            finite += isfinite(M->t[i].res.metrics[M->s->objective]) != 0;
    if (finite > 0) return;
    log_warn("TPE: none of the %d completed trials has a value for search.objective '%s' (is it measured? "
             "test_* needs data.test), so TPE can only draw points at random", M->n_completed,
             metric_name((metric_id)M->s->objective));
    M->tpe_warned = 1;
}

/* Sends worker w the next pending trial; returns 1 if one was sent. A
 * point whose config cannot be resolved (e.g. a value outside a key's
 * range) becomes a FAILED trial and the next one is tried. */
static int dispatch(master *M, int w, nl_error *e) {
    while (M->next < M->n) {
        trial_entry *t = &M->t[M->next++];
        if (t->state != 0) continue;
        if (!M->pointed[t->id]) { /* TPE: from the trials finished so far */
            warn_tpe_blind(M);
            if (search_tpe_point(M->s, t->id, M->t, M->n, t->values, e)) return -1;
            M->pointed[t->id] = 1;
        }
        uint64_t seed = search_trial_seed(M->s, t->id);
        nl_error re = {0};
        char *yaml = config_resolve(M->s, t->values, seed, &re);
        if (!yaml) {
            t->state = 2;
            t->res.status = TRIAL_FAILED;
            snprintf(t->res.reason, sizeof t->res.reason, "%s", re.msg);
            M->finished_now++;
            log_result(M, t);
            if (record_result(M, t, e)) return -1;
            continue;
        }
        char dir[4096 + 32], path[4096 + 64];
        snprintf(dir, sizeof dir, "%s/trials/%d", M->out, t->id);
        snprintf(path, sizeof path, "%s/trial.yaml", dir);
        if (fs_mkdir_p(dir, e) || fs_write_atomic(path, yaml, strlen(yaml), e)) { free(yaml); return -1; }
        sbuf f = {0};
        char seedbuf[32];
        snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
        sbuf_printf(&f, "\"trial\": %d, \"worker\": %d, \"seed\": \"%s\", ", t->id, w, seedbuf);
        values_json(M, t, &f);
        nl_status st = journal_append(&M->j, "trial_start", f.s, e);
        sbuf_free(&f);
        if (st) { free(yaml); return -1; }
        sbuf msg = {0};
        sbuf_printf(&msg, "%d %d\n%s\n", t->id, judges_epochs(M->s), dir);
        sbuf_append(&msg, yaml, strlen(yaml));
        free(yaml);
        st = comm_send(M->c, w, MSG_TRIAL, msg.s, msg.len, e);
        sbuf_free(&msg);
        if (st) return -1;
        t->state = 1;
        t->worker = w;
        M->busy[w] = t->id;
        M->best[t->id] = -INFINITY;
        return 1;
    }
    return 0;
}

/* A completed trial's curve for the pruner, from its history.csv (the
 * same for a live result and a replayed one). */
static void load_curve(master *M, int id) {
    if (M->s->pruner == PRUNER_NONE) return;
    char path[4096 + 64];
    snprintf(path, sizeof path, "%s/trials/%d/history.csv", M->out, id);
    free(M->curve[id]);
    M->curve[id] = NULL;
    M->curve_len[id] = 0;
    nl_error e = {0};
    if (pruner_read_curve(path, &M->curve[id], &M->curve_len[id], &e) != NL_OK)
        log_warn("pruner: trial %d's curve is not used: %s", id, e.msg);
}

/* The verdict on one epoch of a running trial: over search.trial_timeout
 * (its training time across resumes), or its best val_accuracy so far
 * (epochs before a resume included) below the completed trials' median at
 * this epoch. Fills why and returns 1 to prune. */
static int verdict(master *M, int id, int step, double val, double best_reported, double seconds,
                   char *why, size_t len) {
    const scan_config *s = M->s;
    if (s->trial_timeout > 0 && seconds > s->trial_timeout) {
        snprintf(why, len, "search.trial_timeout: stopped after %.0f s of training (limit %g s)", seconds,
                 s->trial_timeout);
        return 1;
    }
    if (s->pruner == PRUNER_NONE) return 0;
    if (isfinite(val) && val > M->best[id]) M->best[id] = val;
    if (isfinite(best_reported) && best_reported > M->best[id]) M->best[id] = best_reported;
    double med;
    if (!pruner_median_verdict((const double *const *)M->curve, M->curve_len, M->n, M->n_completed, step,
                               M->best[id], s->pruner_startup, s->pruner_warmup, &med, M->scratch))
        return 0;
    snprintf(why, len, "median pruner at epoch %d: best val_accuracy %.4f < median %.4f of the completed trials",
             step, M->best[id], med);
    return 1;
}

static void on_progress(master *M, const comm_msg *m) {
    if (M->o->quiet && !judges_epochs(M->s)) return;
    json *j = json_parse(m->data, NULL);
    int id = j ? (int)json_num(j, "trial", -1) : -1;
    if (j && !M->o->quiet)
        log_info("trial %d [%s r%d e%d] loss %.4f val_acc %.4f sparsity %.3f (%.2f s)", id,
                 json_str(j, "stage", "?"), (int)json_num(j, "round", 0), (int)json_num(j, "epoch", 0),
                 json_num(j, "train_loss", NAN), json_num(j, "val_accuracy", NAN), json_num(j, "sparsity", NAN),
                 json_num(j, "seconds", NAN));
    if (judges_epochs(M->s)) { /* the worker waits for the answer: always give one */
        char why[200] = "";
        int prune = j && id >= 0 && id < M->n && M->t[id].state == 1 &&
                    verdict(M, id, (int)json_num(j, "global_epoch", -1), json_num(j, "val_accuracy", NAN),
                            json_num(j, "best_val_accuracy", NAN), json_num(j, "trial_seconds", 0), why,
                            sizeof why);
        if (prune) comm_send(M->c, m->peer, MSG_PRUNE, why, strlen(why), NULL);
        else comm_send(M->c, m->peer, MSG_CONTINUE, NULL, 0, NULL);
    }
    json_free(j);
}

typedef struct {
    master *M;
    int replayed;
} replay_ctx;

/* A trial_start event's values (TPE: the point a trial was given, which
 * a rerun must keep). Returns 1 if every dimension was there. */
static int values_from_json(const scan_config *s, const json *vals, cfg_value *out) {
    if (!vals || vals->type != JSON_OBJ) return 0;
    for (int j = 0; j < s->n_dims; j++) {
        const json *v = json_get(vals, s->dims[j].path);
        if (!v) return 0;
        memset(&out[j], 0, sizeof out[j]);
        if (v->type == JSON_STR) {
            out[j].kind = VAL_STR;
            snprintf(out[j].str, sizeof out[j].str, "%s", v->str);
        } else if (v->type == JSON_BOOL || v->type == JSON_NUM) {
            out[j].kind = v->type == JSON_BOOL ? VAL_BOOL : VAL_NUM;
            out[j].num = v->num;
        } else {
            return 0;
        }
    }
    return 1;
}

static void replay_visit(void *vctx, const json *ev, const char *line) {
    replay_ctx *r = vctx;
    const char *kind = json_str(ev, "event", "");
    if (r->M->s->algorithm == SEARCH_TPE && strcmp(kind, "trial_start") == 0) {
        int id = (int)json_num(ev, "trial", -1);
        if (id >= 0 && id < r->M->n && values_from_json(r->M->s, json_get(ev, "values"), r->M->t[id].values))
            r->M->pointed[id] = 1;
        return;
    }
    if (strcmp(kind, "trial_end") != 0) return;
    trial_result res;
    if (trial_result_from_json(line, &res, NULL) != NL_OK) return;
    if (res.id < 0 || res.id >= r->M->n || res.status == TRIAL_INTERRUPTED) return;
    trial_entry *t = &r->M->t[res.id];
    if (t->state != 2) r->replayed++;
    if (res.status == TRIAL_DONE && !(t->state == 2 && t->res.status == TRIAL_DONE)) r->M->n_completed++;
    t->res = res;
    t->state = 2;
    if (res.status == TRIAL_DONE) load_curve(r->M, res.id);
}

static nl_status prepare_out(master *M, nl_error *e) {
    char path[4096 + 32];
    nl_status st = fs_mkdir_p(M->out, e);
    if (st) return st;
    snprintf(path, sizeof path, "%s/journal.jsonl", M->out);
    int have_journal = fs_exists(path);
    snprintf(path, sizeof path, "%s/scan.yaml", M->out);
    if (have_journal && !M->o->resume)
        return nl_err(e, NL_ERR_CONFIG,
                      "%s already holds a scan (journal.jsonl). Add --resume to continue it, or "
                      "choose another output folder with --out", M->out);
    if (have_journal && fs_exists(path)) {
        char *old;
        size_t len;
        if ((st = fs_read_all(path, &old, &len, e))) return st;
        int same = strcmp(old, M->s->text) == 0;
        free(old);
        if (!same)
            return nl_err(e, NL_ERR_CONFIG,
                          "%s: --resume needs the same scan file as the one this folder was started "
                          "with (%s differs); trial ids would map to other points. Use a new --out",
                          M->s->source, path);
    }
    if (M->o->resume && !have_journal) log_info("%s: nothing to resume, starting the scan", M->out);
    return fs_write_atomic(path, M->s->text, strlen(M->s->text), e);
}

nl_status master_run(comm *c, const scan_config *s, const master_options *o,
                     volatile sig_atomic_t *stop_flag, nl_error *e) {
    master M;
    memset(&M, 0, sizeof M);
    M.s = s;
    M.o = o;
    M.c = c;
    M.t0 = time_now();
    snprintf(M.out, sizeof M.out, "%s", o->out_dir ? o->out_dir : s->output_dir);
    int size = comm_size(c), nworkers = size - 1;
    nl_status st = NL_OK;
    if (nworkers < 1) return nl_err(e, NL_ERR_INVALID, "a scan needs at least one worker");
    /* Tell every worker to go home if the set-up fails. */
    if ((st = prepare_out(&M, e))) goto shutdown_all;

    M.n = search_n_trials(s, o->trials);
    M.t = calloc((size_t)M.n, sizeof *M.t);
    M.busy = malloc(sizeof(int) * (size_t)size);
    size_t nn = (size_t)(M.n > 0 ? M.n : 1);
    M.pointed = calloc(nn, 1);
    M.curve = calloc(nn, sizeof *M.curve);
    M.curve_len = calloc(nn, sizeof *M.curve_len);
    M.best = calloc(nn, sizeof *M.best);
    M.scratch = calloc(nn, sizeof *M.scratch);
    if (!M.t || !M.busy || !M.pointed || !M.curve || !M.curve_len || !M.best || !M.scratch) { st = nl_err(e, NL_ERR_NOMEM, "out of memory for %d trials", M.n); goto shutdown_all; }
    for (int w = 0; w < size; w++) M.busy[w] = -1;
    for (int i = 0; i < M.n; i++) {
        trial_entry *t = &M.t[i];
        t->id = i;
        t->values = calloc((size_t)(s->n_dims > 0 ? s->n_dims : 1), sizeof *t->values);
        if (!t->values) { st = nl_err(e, NL_ERR_NOMEM, "out of memory"); goto shutdown_all; }
        if (s->algorithm != SEARCH_TPE) {
            search_point(s, i, t->values);
            M.pointed[i] = 1;
        }
        t->res.id = i;
        for (int k = 0; k < MET_COUNT; k++) t->res.metrics[k] = NAN;
    }
    char jpath[4096 + 32];
    snprintf(jpath, sizeof jpath, "%s/journal.jsonl", M.out);
    replay_ctx rc = {&M, 0};
    if (o->resume && (st = journal_replay(jpath, replay_visit, &rc, e))) goto shutdown_all;
    if ((st = journal_open(&M.j, jpath, e))) goto shutdown_all;
    {
        sbuf f = {0};
        sbuf_printf(&f, "\"scan\": ");
        json_write_str(&f, s->name);
        sbuf_printf(&f, ", \"trials\": %d, \"workers\": %d, \"resume\": %s, \"already_finished\": %d", M.n,
                    nworkers, o->resume ? "true" : "false", rc.replayed);
        st = journal_append(&M.j, "scan_start", f.s, e);
        sbuf_free(&f);
        if (st) goto shutdown_all;
    }
    log_info("scan '%s': %d trials (%s search, %d dimension%s) on %d worker%s, output in %s%s", s->name, M.n,
             s->algorithm == SEARCH_GRID ? "grid" : s->algorithm == SEARCH_TPE ? "TPE" : "random", s->n_dims, s->n_dims == 1 ? "" : "s", nworkers,
             nworkers == 1 ? "" : "s", M.out, rc.replayed ? " (resumed)" : "");
    if (rc.replayed) log_info("resume: %d trials already finished, not run again", rc.replayed);
    if (s->algorithm == SEARCH_GRID && search_grid_size(s) > M.n)
        log_warn("the grid has %ld points but the scan runs %d (search.trials)", search_grid_size(s), M.n);

    int shut = 0;
    while (shut < nworkers) {
        if (stop_flag && *stop_flag && !M.draining) {
            M.draining = 1;
            log_warn("signal received: draining — no new trials; running trials stop at their next epoch");
            journal_append(&M.j, "drain", NULL, NULL);
            for (int w = 1; w < size; w++)
                if (M.busy[w] >= 0) comm_send(c, w, MSG_STOP, NULL, 0, NULL);
        }
        comm_msg m;
        int got = 0;
        if ((st = comm_recv(c, &m, 0.25, &got, e))) break;
        if (!got) continue;
        int w = m.peer;
        switch (m.type) {
        case MSG_READY: {
            M.busy[w] = -1;
            int r = M.draining ? 0 : dispatch(&M, w, e);
            if (r < 0) { st = e->code; comm_msg_free(&m); goto shutdown_all; }
            if (r == 0) { comm_send(c, w, MSG_SHUTDOWN, NULL, 0, NULL); shut++; }
            break;
        }
        case MSG_PROGRESS:
            on_progress(&M, &m);
            break;
        case MSG_RESULT: {
            trial_result res;
            nl_error pe;
            if (trial_result_from_json(m.data, &res, &pe) != NL_OK || res.id < 0 || res.id >= M.n) {
                log_error("rank %d sent an unreadable result: %s", w, pe.msg);
                break;
            }
            trial_entry *t = &M.t[res.id];
            t->res = res;
            M.busy[w] = -1;
            if (res.status == TRIAL_INTERRUPTED) {
                t->state = 0; /* runs again on --resume */
                journal_append(&M.j, "trial_interrupted", NULL, NULL);
                log_warn("trial %d interrupted: --resume continues it from its last checkpoint", t->id);
                break;
            }
            t->state = 2;
            M.finished_now++;
            if (res.status == TRIAL_DONE) {
                M.n_completed++;
                load_curve(&M, t->id);
            }
            log_result(&M, t);
            if ((st = record_result(&M, t, e))) { comm_msg_free(&m); goto shutdown_all; }
            break;
        }
        case MSG_FATAL:
            log_error("rank %d stopped: %s", w, m.data);
            if (M.busy[w] >= 0) M.t[M.busy[w]].state = 0;
            M.busy[w] = -1;
            shut++;
            break;
        default:
            log_warn("unexpected message type %d from rank %d", (int)m.type, w);
        }
        comm_msg_free(&m);
    }
    if (st == NL_OK) {
        int left = 0;
        for (int i = 0; i < M.n; i++) left += M.t[i].state != 2;
        sbuf f = {0};
        sbuf_printf(&f, "\"finished_now\": %d, \"left\": %d", M.finished_now, left);
        journal_append(&M.j, left ? "scan_drained" : "scan_end", f.s, NULL);
        sbuf_free(&f);
        st = results_write_csv(M.out, s, M.t, M.n, e);
        if (st == NL_OK) st = results_finish(M.out, s, M.t, M.n, stdout, e);
        if (left)
            log_warn("%d of %d trials not finished; continue with: nnlo-c %s --out %s --resume", left, M.n,
                     s->source, M.out);
        /* Every trial failed: most likely the data or the config, not the
         * hyperparameters. Say so, with the first reason, and fail. */
        int done = 0, failed = 0, first = -1;
        for (int i = 0; i < M.n; i++) {
            if (M.t[i].state != 2) continue;
            if (M.t[i].res.status == TRIAL_DONE) done++;
            else if (M.t[i].res.status == TRIAL_FAILED && failed++ == 0) first = i;
        }
        if (st == NL_OK && done == 0 && failed > 0)
            st = nl_err(e, NL_ERR_DATA, "all %d finished trials failed; trial %d: %s", failed, first,
                        M.t[first].res.reason);
    }
    goto done;

shutdown_all:
    for (int w = 1; w < size; w++) comm_send(c, w, MSG_SHUTDOWN, NULL, 0, NULL);
done:
    journal_close(&M.j);
    if (M.t)
        for (int i = 0; i < M.n; i++) free(M.t[i].values);
    free(M.t);
    free(M.busy);
    free(M.pointed);
    if (M.curve)
        for (int i = 0; i < M.n; i++) free(M.curve[i]);
    free(M.curve);
    free(M.curve_len);
    free(M.best);
    free(M.scratch);
    return st;
}
