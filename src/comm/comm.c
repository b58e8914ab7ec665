/* comm.c — dispatch of the comm.h calls to the transport's vtable. */
#include <stdlib.h>
#include "comm_internal.h"

int comm_rank(const comm *c) { return c->rank; }
int comm_size(const comm *c) { return c->size; }

nl_status comm_send(comm *c, int dest, msg_type t, const char *data, size_t len, nl_error *e) {
    NL_ASSERT(dest >= 0 && dest < c->size && dest != c->rank);
    return c->vt->send(c, dest, t, data, len, e);
}

nl_status comm_recv(comm *c, comm_msg *m, double timeout_s, int *got, nl_error *e) {
    return c->vt->recv(c, m, timeout_s, got, e);
}

void comm_msg_free(comm_msg *m) {
    if (!m) return;
    free(m->data);
    m->data = NULL;
    m->len = 0;
}

void comm_close(comm *c) {
    if (c) c->vt->close(c);
}
