/* comm_internal.h — the transport vtable behind comm.h. Private to src/comm. */
#ifndef NNLO_COMM_INTERNAL_H
#define NNLO_COMM_INTERNAL_H

#include "nnlo/comm.h"

typedef struct {
    nl_status (*send)(comm *c, int dest, msg_type t, const char *data, size_t len, nl_error *e);
    nl_status (*recv)(comm *c, comm_msg *m, double timeout_s, int *got, nl_error *e);
    void (*close)(comm *c);
} comm_vtbl;

struct comm {
    const comm_vtbl *vt;
    int rank, size;
    void *impl;
};

#endif
