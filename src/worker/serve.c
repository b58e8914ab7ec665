/* serve.c — a worker's life: READY, run each TRIAL sent, report PROGRESS
 * per epoch and the RESULT, until SHUTDOWN. Between epochs it polls for a
 * PRUNE (the trial ends there, reported as pruned, with its model and
 * metrics at that epoch) or a STOP (the master is draining) and checks the process's signal flag, so a
 * Slurm time limit interrupts a trial within one epoch, after that epoch's
 * checkpoint is on disk (worker_run_trial writes it into the trial folder;
 * the trial continues from it when sent again). The datasets stay
 * loaded across trials (worker_cache). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnlo/json.h"
#include "nnlo/worker.h"

typedef struct {
    comm *c;
    volatile sig_atomic_t *stop_flag;
    int stop, shutdown;
    int prune;               /* the master pruned the running trial */
    int answers;             /* the master answers every PROGRESS of this trial (CONTINUE/PRUNE) */
    char prune_reason[256];
    nl_error err;
    int comm_failed;
} serve_ctx;

/* One message from the master during a trial; returns 1 for the ones
 * that answer a PROGRESS or end the trial (CONTINUE, PRUNE, STOP,
 * SHUTDOWN). */
static int take_message(serve_ctx *s, const comm_msg *m) {
    switch (m->type) {
    case MSG_CONTINUE: return 1;
    case MSG_PRUNE:
        s->prune = 1;
        snprintf(s->prune_reason, sizeof s->prune_reason, "%s", m->data ? m->data : "pruned");
        return 1;
    case MSG_STOP: s->stop = 1; return 1;
    case MSG_SHUTDOWN: s->stop = s->shutdown = 1; return 1;
    default:
        log_warn("ignoring message type %d from rank %d during a trial", (int)m->type, m->peer);
        return 0;
    }
}

/* The mailbox after an epoch. wait = 0: take what is there (a STOP from a
 * draining master). wait = 1: block until the master's answer to this
 * epoch's PROGRESS, CONTINUE or PRUNE (the trial then ends at this epoch,
 * so the decision is the same whatever the timing); a STOP, SHUTDOWN or
 * the signal flag ends the wait too (a late answer then reaches an idle
 * worker and is dropped). */
static void read_master(serve_ctx *s, int wait) {
    for (;;) {
        comm_msg m;
        int got = 0;
        if (comm_recv(s->c, &m, wait ? 0.5 : 0, &got, &s->err) != NL_OK) { s->comm_failed = s->stop = 1; return; }
        if (!got) {
            if (!wait) return;
            if (s->stop_flag && *s->stop_flag) { s->stop = 1; return; }
            continue;
        }
        int answer = take_message(s, &m);
        comm_msg_free(&m);
        if (wait && answer) return;
    }
}

static int on_progress(void *vctx, int trial_id, const epoch_record *r) {
    serve_ctx *s = vctx;
    sbuf b = {0};
    static const char *stages[] = {"pretrain", "main", "finetune"};
    sbuf_printf(&b, "{\"trial\": %d, \"stage\": \"%s\", \"round\": %d, \"epoch\": %d, \"global_epoch\": %d, ",
                trial_id, stages[r->stage], r->round, r->epoch, r->global_epoch);
    sbuf_printf(&b, "\"train_loss\": ");
    json_write_num(&b, r->train_loss);
    sbuf_printf(&b, ", \"val_accuracy\": ");
    json_write_num(&b, r->val_accuracy);
    sbuf_printf(&b, ", \"sparsity\": ");
    json_write_num(&b, r->sparsity);
    sbuf_printf(&b, ", \"seconds\": ");
    json_write_num(&b, r->seconds);
    sbuf_printf(&b, ", \"best_val_accuracy\": ");
    json_write_num(&b, r->best_val_accuracy);
    sbuf_printf(&b, ", \"trial_seconds\": ");
    json_write_num(&b, r->trial_seconds);
    sbuf_printf(&b, "}");
    if (comm_send(s->c, 0, MSG_PROGRESS, b.s, b.len, &s->err) != NL_OK) s->comm_failed = s->stop = 1;
    sbuf_free(&b);
    read_master(s, s->answers && !s->stop);
    if (s->stop_flag && *s->stop_flag) s->stop = 1;
    /* a drain wins over a prune: the trial then resumes later */
    return s->stop ? 2 : s->prune ? 1 : 0;
}

nl_status worker_serve(comm *c, volatile sig_atomic_t *stop_flag, nl_error *e) {
    serve_ctx s = {.c = c, .stop_flag = stop_flag};
    worker_cache cache;
    memset(&cache, 0, sizeof cache);
    nl_status st = comm_send(c, 0, MSG_READY, NULL, 0, e);
    while (st == NL_OK && !s.shutdown) {
        comm_msg m;
        int got = 0;
        st = comm_recv(c, &m, 0.5, &got, e);
        if (st || !got) continue;
        if (m.type == MSG_SHUTDOWN) { s.shutdown = 1; comm_msg_free(&m); break; }
        if (m.type == MSG_STOP || m.type == MSG_PRUNE || m.type == MSG_CONTINUE) { /* idle: a late answer */
            comm_msg_free(&m);
            continue;
        }
        if (m.type != MSG_TRIAL) {
            log_warn("ignoring message type %d from rank %d", (int)m.type, m.peer);
            comm_msg_free(&m);
            continue;
        }
        /* "<id> <answers>\n<trial folder>\n<yaml>" (answers: the master
         * answers every PROGRESS of this trial) */
        int id = 0, answers = 0;
        if (sscanf(m.data, "%d %d", &id, &answers) < 1) id = -1;
        char *dir = strchr(m.data, '\n');
        char *yaml = dir ? strchr(dir + 1, '\n') : NULL;
        if (!yaml) {
            log_warn("malformed trial message from rank %d ignored", m.peer);
            comm_msg_free(&m);
            continue;
        }
        *yaml++ = '\0';
        dir++;
        char source[160];
        snprintf(source, sizeof source, "trials/%d/trial.yaml", id);
        s.stop = s.prune = 0;
        s.answers = answers;
        trial_result res;
        nl_error te = {0};
        if (worker_run_trial(id, yaml, source, NULL, dir, &cache, on_progress, &s, &res, &te) != NL_OK &&
            res.status == TRIAL_DONE) {
            res.status = TRIAL_FAILED;
            nl_err_prefix(&te, "could not write the trial's files");
            memcpy(res.reason, te.msg, sizeof res.reason);
        }
        comm_msg_free(&m);
        if (s.comm_failed) { *e = s.err; st = e->code; break; }
        if (s.prune && res.status == TRIAL_DONE) { /* stopped early at the master's word */
            res.status = TRIAL_PRUNED;
            snprintf(res.reason, sizeof res.reason, "%s", s.prune_reason);
        }
        sbuf b = {0};
        trial_result_to_json(&res, &b);
        st = comm_send(c, 0, MSG_RESULT, b.s, b.len, e);
        sbuf_free(&b);
        if (st == NL_OK && !s.shutdown) st = comm_send(c, 0, MSG_READY, NULL, 0, e);
    }
    worker_cache_free(&cache);
    return st;
}
