/* testutil.h — helpers shared by the Check suites: temporary folders and
 * array comparisons that print the first mismatches and the max difference
 * (STYLE.md 10). Header-only, static functions. */
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
