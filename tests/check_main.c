/* check_main.c — the one Check runner. Every tests/check_<suite>.c exports
 * Suite *make_<suite>_suite(void); the Makefile generates the list
 * (build/suites.inc) from the file names, or builds one suite alone with
 * -DSUITE_ONLY=make_<suite>_suite (make unit M=<suite>). Fork mode, so a
 * crash in one test is a failure, not the end of the run. */
#include <check.h>
#include <stdlib.h>

#ifdef SUITE_ONLY
Suite *SUITE_ONLY(void);
static Suite *(*const factories[])(void) = {SUITE_ONLY};
#else
#define SUITE(name) Suite *make_##name##_suite(void);
#include "suites.inc"
#undef SUITE
#define SUITE(name) make_##name##_suite,
static Suite *(*const factories[])(void) = {
#include "suites.inc"
};
#undef SUITE
#endif

int main(void) {
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof factories / sizeof factories[0]; i++)
        srunner_add_suite(sr, factories[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
