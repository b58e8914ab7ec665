/* comm_inproc.c — two endpoints in one process, joined by two mutex/condvar
 * queues (one per direction). Lets `nnlo-c scan.yaml` run master and worker
 * as two threads without a launcher, and the scheduler be tested without
 * MPI. Messages are copied; order per direction is FIFO. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "comm_internal.h"

typedef struct qnode {
    comm_msg m;
    struct qnode *next;
} qnode;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qnode *head, *tail;
} queue;

typedef struct {
    queue q[2];       /* q[r]: messages for rank r */
    int refs;         /* endpoints still open */
    pthread_mutex_t mu;
} inproc_shared;

static nl_status ip_send(comm *c, int dest, msg_type t, const char *data, size_t len, nl_error *e) {
    inproc_shared *sh = c->impl;
    qnode *n = calloc(1, sizeof *n);
    char *copy = malloc(len + 1);
    if (!n || !copy) { free(n); free(copy); return nl_err(e, NL_ERR_NOMEM, "in-process message: out of memory"); }
    if (len) memcpy(copy, data, len);
    copy[len] = '\0';
    n->m = (comm_msg){t, c->rank, copy, len};
    queue *q = &sh->q[dest];
    pthread_mutex_lock(&q->mu);
    if (q->tail) q->tail->next = n; else q->head = n;
    q->tail = n;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return NL_OK;
}

static nl_status ip_recv(comm *c, comm_msg *m, double timeout_s, int *got, nl_error *e) {
    (void)e;
    inproc_shared *sh = c->impl;
    queue *q = &sh->q[c->rank];
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_s >= 0) {
        long ns = until.tv_nsec + (long)((timeout_s - (double)(long)timeout_s) * 1e9);
        until.tv_sec += (time_t)timeout_s + ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
    }
    *got = 0;
    pthread_mutex_lock(&q->mu);
    while (!q->head) {
        if (timeout_s < 0) pthread_cond_wait(&q->cv, &q->mu);
        else if (pthread_cond_timedwait(&q->cv, &q->mu, &until) == ETIMEDOUT) break;
    }
    qnode *n = q->head;
    if (n) {
        q->head = n->next;
        if (!q->head) q->tail = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    if (n) {
        *m = n->m;
        *got = 1;
        free(n);
    }
    return NL_OK;
}

static void ip_close(comm *c) {
    inproc_shared *sh = c->impl;
    pthread_mutex_lock(&sh->mu);
    int last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->mu);
    free(c);
    if (!last) return;
    for (int r = 0; r < 2; r++) {
        for (qnode *n = sh->q[r].head, *nx; n; n = nx) {
            nx = n->next;
            free(n->m.data);
            free(n);
        }
        pthread_mutex_destroy(&sh->q[r].mu);
        pthread_cond_destroy(&sh->q[r].cv);
    }
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

static const comm_vtbl inproc_vtbl = {ip_send, ip_recv, ip_close};

nl_status comm_inproc_pair(comm **master, comm **worker, nl_error *e) {
    inproc_shared *sh = calloc(1, sizeof *sh);
    comm *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    if (!sh || !a || !b) {
        free(sh); free(a); free(b);
        return nl_err(e, NL_ERR_NOMEM, "in-process transport: out of memory");
    }
    for (int r = 0; r < 2; r++) {
        pthread_mutex_init(&sh->q[r].mu, NULL);
        pthread_cond_init(&sh->q[r].cv, NULL);
    }
    pthread_mutex_init(&sh->mu, NULL);
    sh->refs = 2;
    *a = (comm){&inproc_vtbl, 0, 2, sh};
    *b = (comm){&inproc_vtbl, 1, 2, sh};
    *master = a;
    *worker = b;
    return NL_OK;
}
