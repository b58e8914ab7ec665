/* testutil.h — helpers shared by the Check suites: temporary folders and
 * array comparisons that print the first mismatches and the max difference
 * (STYLE.md 10). Header-only, static functions. */
/* The float-equality rule. Compare floats bit for bit (memcmp, ==) only
 * where both sides are the same sequence of float operations by
 * construction: a resume against an uninterrupted run, the same call twice
 * with the same thread count, a save/load round trip, integer fixed-point
 * paths, sums of dyadic values that float32 holds exactly. Everywhere the
 * order of a sum may differ — other batch sizes or shapes (OpenBLAS picks
 * its kernel by shape and CPU), other thread counts, BLAS against a _ref
 * loop, the pool against the serial pass — compare with tu_assert_close
 * and a tolerance derived from the operation's float error (a sum of K
 * terms in any order: |diff| <= gamma_K * sum|terms|, gamma_K ~ K * 2^-24),
 * say how in a comment, and assert what the test is about (a wrong
 * pairing, a lost update) with a control that the tolerance would catch.
 * tests/blas_matrix.sh runs the float suites under every OpenBLAS kernel
 * the CPU has, at 1 and 2 threads, to keep the rule honest. */
#ifndef NNLO_TESTUTIL_H
#define NNLO_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* mkdtemp under $TMPDIR (or /tmp); returns a static buffer. */
static inline const char *tu_tmpdir(void) {
    static char buf[512];
    const char *t = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/nnlo-test-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
    return buf;
}

/* Asserts |a - b| <= atol + rtol |b| elementwise; prints up to 5 mismatches. */
static inline void tu_assert_close(const float *a, const float *b, long n, double atol,
                                   double rtol, const char *what) {
    long bad = 0; double maxd = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxd || isnan(d)) maxd = isnan(d) ? INFINITY : d;
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            if (bad < 5) fprintf(stderr, "%s[%ld]: %.9g vs %.9g\n", what, i, a[i], b[i]);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%s: %ld of %ld differ, max |diff| %.3g", what, bad, n, maxd);
}

#endif
