/* comm_mpi.c — the MPI transport: the only file in nnlo-c that includes
 * <mpi.h>. Point-to-point messages of bytes, tag = message type; receives
 * poll with MPI_Iprobe so the caller can check its signal flag between
 * polls (a Slurm time limit must be noticed while waiting). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "comm_internal.h"

static nl_status mpi_send(comm *c, int dest, msg_type t, const char *data, size_t len, nl_error *e) {
    (void)c;
    if (len > (size_t)INT32_MAX) return nl_err(e, NL_ERR_COMM, "message of %zu bytes too large", len);
    int rc = MPI_Send(data ? data : "", (int)len, MPI_CHAR, dest, (int)t, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return nl_err(e, NL_ERR_COMM, "MPI_Send to rank %d failed (code %d)", dest, rc);
    return NL_OK;
}

static nl_status mpi_recv(comm *c, comm_msg *m, double timeout_s, int *got, nl_error *e) {
    (void)c;
    *got = 0;
    double t0 = time_now();
    MPI_Status st;
    int flag = 0;
    long naps = 0;
    for (;;) {
        if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS)
            return nl_err(e, NL_ERR_COMM, "MPI_Iprobe failed");
        if (flag) break;
        if (timeout_s >= 0 && time_now() - t0 >= timeout_s) return NL_OK;
        /* Back off from 50 us to 2 ms: quick replies, idle ranks stay idle. */
        struct timespec ts = {0, naps < 100 ? 50000L : 2000000L};
        nanosleep(&ts, NULL);
        naps++;
    }
    int count = 0;
    MPI_Get_count(&st, MPI_CHAR, &count);
    char *buf = malloc((size_t)count + 1);
    if (!buf) return nl_err(e, NL_ERR_NOMEM, "receiving %d bytes: out of memory", count);
    if (MPI_Recv(buf, count, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(buf);
        return nl_err(e, NL_ERR_COMM, "MPI_Recv from rank %d failed", st.MPI_SOURCE);
    }
    buf[count] = '\0';
    *m = (comm_msg){(msg_type)st.MPI_TAG, st.MPI_SOURCE, buf, (size_t)count};
    *got = 1;
    return NL_OK;
}

static void mpi_close(comm *c) {
    free(c);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

static const comm_vtbl mpi_vtbl = {mpi_send, mpi_recv, mpi_close};

int comm_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
           getenv("SLURM_PROCID");
}

nl_status comm_mpi_open(int *argc, char ***argv, comm **out, nl_error *e) {
    *out = NULL;
    /* An srun step without PMIx (--mpi=none / pmi2): Open MPI would abort
     * inside MPI_Init with a message that does not say what to do. Under
     * pmix, srun sets PMIX_RANK; mpirun sets OMPI_COMM_WORLD_SIZE. The batch
     * shell itself has no SLURM_STEP_ID and runs as a singleton. */
    if (getenv("SLURM_STEP_ID") && !getenv("PMIX_RANK") && !getenv("OMPI_COMM_WORLD_SIZE")) {
        const char *t = getenv("SLURM_MPI_TYPE");
        return nl_err(e, NL_ERR_COMM,
                      "srun started nnlo-c without PMIx (SLURM_MPI_TYPE=%s): Open MPI cannot reach "
                      "the other ranks. Launch with `srun --mpi=pmix nnlo-c ...` (or set "
                      "MpiDefault=pmix in slurm.conf)", t ? t : "none");
    }
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return nl_err(e, NL_ERR_COMM, "MPI_Init failed");
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* Under srun every task has SLURM_PROCID; mpirun sets OMPI_COMM_WORLD_SIZE
     * and may legitimately start fewer ranks than the allocation has tasks. */
    const char *ntasks = getenv("SLURM_NTASKS");
    if (ntasks && getenv("SLURM_PROCID") && !getenv("OMPI_COMM_WORLD_SIZE") && atoi(ntasks) != size) {
        MPI_Finalize();
        return nl_err(e, NL_ERR_COMM,
                      "srun started %s tasks but MPI sees a world of %d: the ranks did not reach "
                      "PMIx, so each thinks it is alone. Launch with `srun --mpi=pmix nnlo-c ...` "
                      "(or set MpiDefault=pmix in slurm.conf)", ntasks, size);
    }
    comm *c = calloc(1, sizeof *c);
    if (!c) { MPI_Finalize(); return nl_err(e, NL_ERR_NOMEM, "out of memory"); }
    *c = (comm){&mpi_vtbl, rank, size, NULL};
    *out = c;
    return NL_OK;
}

void comm_abort(comm *c, int code) {
    (void)c;
    MPI_Abort(MPI_COMM_WORLD, code);
}
