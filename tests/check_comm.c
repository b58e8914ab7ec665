/* check_comm.c — the in-process transport: FIFO order, payload copies,
 * timeouts, and a ping-pong between two threads. (The MPI transport is
 * exercised by the end-to-end tests under mpirun and srun.) */
#include <check.h>
#include <pthread.h>
#include <string.h>
#include "nnlo/comm.h"
#include "testutil.h"

START_TEST(test_inproc_fifo_and_timeout) {
    comm *a, *b;
    nl_error e;
    ck_assert_int_eq(comm_inproc_pair(&a, &b, &e), NL_OK);
    ck_assert_int_eq(comm_rank(a), 0);
    ck_assert_int_eq(comm_rank(b), 1);
    ck_assert_int_eq(comm_size(b), 2);
    char buf[8] = "hello";
    comm_send(a, 1, MSG_TRIAL, buf, 5, &e);
    buf[0] = 'X'; /* the message was copied */
    comm_send(a, 1, MSG_STOP, NULL, 0, &e);
    comm_msg m;
    int got;
    ck_assert_int_eq(comm_recv(b, &m, 0, &got, &e), NL_OK);
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(m.type, MSG_TRIAL);
    ck_assert_int_eq(m.peer, 0);
    ck_assert_str_eq(m.data, "hello");
    comm_msg_free(&m);
    comm_recv(b, &m, 0, &got, &e);
    ck_assert_int_eq(m.type, MSG_STOP);
    ck_assert_uint_eq(m.len, 0);
    comm_msg_free(&m);
    double t0 = time_now();
    comm_recv(b, &m, 0.05, &got, &e);
    ck_assert_int_eq(got, 0);
    ck_assert(time_now() - t0 >= 0.04);
    comm_close(a);
    comm_close(b);
}
END_TEST

static void *echo(void *p) {
    comm *c = p;
    nl_error e;
    for (;;) {
        comm_msg m;
        int got;
        comm_recv(c, &m, -1, &got, &e);
        if (m.type == MSG_SHUTDOWN) { comm_msg_free(&m); break; }
        comm_send(c, 0, MSG_RESULT, m.data, m.len, &e);
        comm_msg_free(&m);
    }
    return NULL;
}

START_TEST(test_inproc_threads_ping_pong) {
    comm *a, *b;
    nl_error e;
    comm_inproc_pair(&a, &b, &e);
    pthread_t th;
    pthread_create(&th, NULL, echo, b);
    for (int i = 0; i < 1000; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "%d", i);
        comm_send(a, 1, MSG_TRIAL, msg, strlen(msg), &e);
        comm_msg m;
        int got = 0;
        comm_recv(a, &m, 5, &got, &e);
        ck_assert_int_eq(got, 1);
        ck_assert_int_eq(m.type, MSG_RESULT);
        ck_assert_int_eq(atoi(m.data), i);
        comm_msg_free(&m);
    }
    comm_send(a, 1, MSG_SHUTDOWN, NULL, 0, &e);
    pthread_join(th, NULL);
    comm_close(a);
    comm_close(b);
}
END_TEST

Suite *make_comm_suite(void) {
    Suite *s = suite_create("comm");
    TCase *tc = tcase_create("inproc");
    tcase_add_test(tc, test_inproc_fifo_and_timeout);
    tcase_add_test(tc, test_inproc_threads_ping_pong);
    suite_add_tcase(s, tc);
    return s;
}
