/* check_json.c — the JSON subset: escapes, numbers, NaN as null, nesting,
 * and error positions. */
#include <check.h>
#include <math.h>
#include <string.h>
#include "nnlo/json.h"
#include "testutil.h"

START_TEST(test_json_round_trip) {
    sbuf b = {0};
    sbuf_printf(&b, "{\"event\": \"trial_end\", \"name\": ");
    json_write_str(&b, "a \"quoted\"\nline\\");
    sbuf_printf(&b, ", \"acc\": ");
    json_write_num(&b, 0.8125);
    sbuf_printf(&b, ", \"nan\": ");
    json_write_num(&b, NAN);
    sbuf_printf(&b, ", \"m\": {\"dsp\": 12, \"ok\": true}, \"l\": [1, -2.5e-3, \"x\"]}");
    nl_error e;
    json *j = json_parse(b.s, &e);
    ck_assert_msg(j != NULL, "%s", e.msg);
    ck_assert_str_eq(json_str(j, "name", ""), "a \"quoted\"\nline\\");
    ck_assert(json_num(j, "acc", 0) == 0.8125);
    ck_assert(isnan(json_num(j, "nan", 0)));
    ck_assert(json_num(json_get(j, "m"), "dsp", 0) == 12);
    ck_assert(json_num(json_get(j, "m"), "ok", 0) == 1);
    const json *l = json_get(j, "l");
    ck_assert(l->child->num == 1 && l->child->next->num == -2.5e-3);
    ck_assert_str_eq(l->child->next->next->str, "x");
    json_free(j);
    sbuf_free(&b);
}
END_TEST

START_TEST(test_json_errors) {
    nl_error e;
    ck_assert_ptr_null(json_parse("{\"a\" 1}", &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "column 6"));
    ck_assert_ptr_null(json_parse("{\"a\": 1", &e));
    ck_assert_ptr_null(json_parse("[1, 2] x", &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "trailing"));
}
END_TEST

Suite *make_json_suite(void) {
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_json_round_trip);
    tcase_add_test(tc, test_json_errors);
    suite_add_tcase(s, tc);
    return s;
}
