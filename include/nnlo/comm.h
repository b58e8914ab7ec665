/* comm.h — how the master and the workers talk: typed text messages.
 *
 * Two transports behind one interface: MPI ranks (comm_mpi.c, the ONLY file
 * that includes <mpi.h>) and an in-process pair of endpoints joined by
 * thread-safe queues (comm_inproc.c), so the same master and worker code
 * runs with or without a launcher and the scheduler is tested without MPI.
 * Payloads are NUL-terminated text (YAML for trials, JSON for results).
 * Rank 0 is the master. */
#ifndef NNLO_COMM_H
#define NNLO_COMM_H

#include <stddef.h>
#include "nnlo/util.h"

/* Message types double as MPI tags; append only. */
typedef enum {
    MSG_READY = 1,     /* worker -> master: idle, send me a trial */
    MSG_TRIAL = 2,     /* master -> worker: "<id>\n<trial yaml>" */
    MSG_PROGRESS = 3,  /* worker -> master: JSON epoch record */
    MSG_RESULT = 4,    /* worker -> master: JSON result of a trial */
    MSG_STOP = 5,      /* master -> worker: stop the current trial (drain) */
    MSG_SHUTDOWN = 6,  /* master -> worker: no more work, exit */
    MSG_FATAL = 7,     /* worker -> master: the worker cannot go on (reason) */
    MSG_PRUNE = 8,     /* master -> worker: end the current trial now, it is pruned (reason) */
    MSG_CONTINUE = 9   /* master -> worker: go on (the answer to a PROGRESS when the master judges
                          every epoch: search.pruner or search.trial_timeout) */
} msg_type;

typedef struct {
    msg_type type;
    int peer;          /* sender's rank */
    char *data;        /* malloc'd, NUL-terminated; comm_msg_free */
    size_t len;
} comm_msg;

typedef struct comm comm;

int comm_rank(const comm *c);
int comm_size(const comm *c);
/* Sends len bytes of data (may be NULL/0) to rank dest. */
nl_status comm_send(comm *c, int dest, msg_type t, const char *data, size_t len, nl_error *e);
/* Waits up to timeout_s seconds (< 0: forever) for a message from any
 * peer. *got = 1 and *m filled on arrival, *got = 0 on timeout. */
nl_status comm_recv(comm *c, comm_msg *m, double timeout_s, int *got, nl_error *e);
void comm_msg_free(comm_msg *m);
/* Closes an endpoint (MPI: finalizes after the last endpoint). */
void comm_close(comm *c);

/* Whether this process was started by a launcher (mpirun, srun with PMIx,
 * or srun without it — then the size check below catches it). */
int comm_mpi_launched(void);
/* MPI_Init and the world communicator. Under srun, checks that the world
 * size equals SLURM_NTASKS and fails with a message about
 * `srun --mpi=pmix` when PMIx was not reached. */
nl_status comm_mpi_open(int *argc, char ***argv, comm **out, nl_error *e);
/* Ends the whole job (MPI_Abort) — only main calls this, on a fatal error. */
void comm_abort(comm *c, int code);

/* Two connected endpoints in one process: *master is rank 0, *worker rank 1,
 * size 2. Each endpoint may be used from its own thread. */
nl_status comm_inproc_pair(comm **master, comm **worker, nl_error *e);

#endif
