/* check_util.c — RNG determinism and range, edit distance, atomic writes,
 * round-trip double formatting. */
#include <check.h>
#include <string.h>
#include "nnlo/util.h"
#include "testutil.h"

START_TEST(test_rng_deterministic_and_uniform) {
    rng_t a, b;
    rng_seed(&a, 42); rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(rng_next(&a), rng_next(&b));
    rng_seed(&a, 7);
    long hist[10] = {0};
    for (int i = 0; i < 100000; i++) hist[rng_below(&a, 10)]++;
    for (int i = 0; i < 10; i++) ck_assert_msg(hist[i] > 9500 && hist[i] < 10500, "bin %d: %ld", i, hist[i]);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) { double x = rng_normal(&a); s += x; s2 += x * x; }
    ck_assert_double_eq_tol(s / 1e5, 0.0, 0.02);
    ck_assert_double_eq_tol(s2 / 1e5, 1.0, 0.02);
    ck_assert_uint_ne(rng_derive(1, 0), rng_derive(1, 1));
    ck_assert_uint_ne(rng_derive(1, 0), rng_derive(2, 0));
}
END_TEST

START_TEST(test_shuffle_is_permutation) {
    rng_t r; rng_seed(&r, 3);
    uint32_t a[1000]; int seen[1000] = {0};
    for (uint32_t i = 0; i < 1000; i++) a[i] = i;
    rng_shuffle_u32(&r, a, 1000);
    int moved = 0;
    for (uint32_t i = 0; i < 1000; i++) { seen[a[i]]++; moved += a[i] != i; }
    for (int i = 0; i < 1000; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_gt(moved, 900);
}
END_TEST

START_TEST(test_edit_distance) {
    ck_assert_int_eq(str_edit_distance("sparsity", "sparsty"), 1);
    ck_assert_int_eq(str_edit_distance("epochs", "epoch"), 1);
    ck_assert_int_eq(str_edit_distance("kitten", "sitting"), 3);
    ck_assert_int_eq(str_edit_distance("", "abc"), 3);
}
END_TEST

START_TEST(test_atomic_write_and_read) {
    char p[600]; nl_error e = {0};
    fs_join(p, sizeof p, tu_tmpdir(), "a/b/c");
    ck_assert_int_eq(fs_mkdir_p(p, &e), NL_OK);
    fs_join(p, sizeof p, p, "f.txt");
    ck_assert_int_eq(fs_write_atomic(p, "hello", 5, &e), NL_OK);
    char *s; size_t n;
    ck_assert_int_eq(fs_read_all(p, &s, &n, &e), NL_OK);
    ck_assert_str_eq(s, "hello");
    ck_assert_uint_eq(n, 5);
    free(s);
    ck_assert_int_eq(fs_read_all("/nonexistent/x", &s, &n, &e), NL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/x"));
}
END_TEST

START_TEST(test_remove_tree) {
    char root[600], p[700];
    nl_error e;
    fs_join(root, sizeof root, tu_tmpdir(), "t");
    snprintf(p, sizeof p, "%s/a/b/c", root);
    ck_assert_int_eq(fs_mkdir_p(p, &e), NL_OK);
    snprintf(p, sizeof p, "%s/a/b/c/f", root);
    ck_assert_int_eq(fs_write_atomic(p, "x", 1, &e), NL_OK);
    snprintf(p, sizeof p, "%s/a/g", root);
    ck_assert_int_eq(fs_write_atomic(p, "y", 1, &e), NL_OK);
    ck_assert_int_eq(fs_remove_tree(root, &e), NL_OK);
    ck_assert(!fs_exists(root));
    ck_assert_int_eq(fs_remove_tree(root, &e), NL_OK); /* absent: fine */
}
END_TEST

START_TEST(test_fmt_double_round_trips) {
    double v[] = {0.1, 1e-3, 3.0, 1.0 / 3.0, 123456.789, 5e-324};
    char buf[40];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        ck_assert(strtod(fmt_double(buf, sizeof buf, v[i]), NULL) == v[i]);
    ck_assert_str_eq(fmt_double(buf, sizeof buf, 0.001), "0.001");
}
END_TEST

START_TEST(test_error_prefix) {
    nl_error e;
    nl_err(&e, NL_ERR_DATA, "dataset 'X' missing");
    nl_err_prefix(&e, "data/train.h5");
    ck_assert_str_eq(e.msg, "data/train.h5: dataset 'X' missing");
    ck_assert_int_eq(e.code, NL_ERR_DATA);
}
END_TEST

Suite *make_util_suite(void) {
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rng_deterministic_and_uniform);
    tcase_add_test(tc, test_shuffle_is_permutation);
    tcase_add_test(tc, test_edit_distance);
    tcase_add_test(tc, test_atomic_write_and_read);
    tcase_add_test(tc, test_fmt_double_round_trips);
    tcase_add_test(tc, test_remove_tree);
    tcase_add_test(tc, test_error_prefix);
    suite_add_tcase(s, tc);
    return s;
}

