/* Unit tests of bounded JSON parsing and typed field access. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"

static cJSON *parse_ok(const char *text)
{
    cJSON *doc = NULL;
    srv_error err;
    assert_int_equal(srv_json_parse_object(text, strlen(text), 1024, &doc, &err), SRV_OK);
    assert_non_null(doc);
    return doc;
}

static void parse_fails(const char *text, size_t len, size_t cap, srv_status want)
{
    cJSON *doc = (cJSON *)1;
    srv_error err;
    assert_int_equal(srv_json_parse_object(text, len, cap, &doc, &err), want);
    assert_null(doc);
    assert_true(strlen(err.message) > 0);
}

static void test_parse(void **state)
{
    (void)state;
    cJSON_Delete(parse_ok("{\"a\":1}"));
    cJSON_Delete(parse_ok("  {\"a\":[1,2]}\r\n"));
    parse_fails("", 0, 1024, SRV_E_BAD_JSON);
    parse_fails("{", 1, 1024, SRV_E_BAD_JSON);
    parse_fails("[1,2]", 5, 1024, SRV_E_BAD_JSON);
    parse_fails("\"x\"", 3, 1024, SRV_E_BAD_JSON);
    parse_fails("{\"a\":1} x", 9, 1024, SRV_E_BAD_JSON);
    parse_fails("{\"a\":1}{}", 9, 1024, SRV_E_BAD_JSON);
    parse_fails("{\"a\":\"\0\"}", 9, 1024, SRV_E_BAD_JSON);
    parse_fails("{\"a\":1}", 7, 6, SRV_E_BODY_TOO_LARGE);
}

static void test_encoding(void **state)
{
    static const char nul[] = "{\"a\":\"x\\u0000y\"}";
    static const char escaped_backslash[] = "{\"a\":\"x\\\\u0000y\"}";
    cJSON *doc;
    (void)state;
    parse_fails(nul, strlen(nul), 1024, SRV_E_BAD_JSON);
    doc = parse_ok(escaped_backslash);
    assert_string_equal(cJSON_GetObjectItem(doc, "a")->valuestring, "x\\u0000y");
    cJSON_Delete(doc);
    cJSON_Delete(parse_ok("{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"}"));
    parse_fails("{\"a\":\"\xff\xfe\"}", 11, 1024, SRV_E_BAD_JSON);         /* not UTF-8 */
    parse_fails("{\"a\":\"\xc0\xaf\"}", 11, 1024, SRV_E_BAD_JSON);         /* overlong */
    parse_fails("{\"a\":\"\xed\xa0\x80\"}", 12, 1024, SRV_E_BAD_JSON);     /* surrogate */
    parse_fails("{\"a\":\"\xf4\x90\x80\x80\"}", 13, 1024, SRV_E_BAD_JSON); /* > U+10FFFF */
    parse_fails("{\"a\":\"\xe2\x82\"}", 11, 1024, SRV_E_BAD_JSON);         /* truncated */
    assert_true(srv_utf8_valid("", 0));
    assert_false(srv_utf8_valid("\x80", 1));
}

static void test_fields(void **state)
{
    static const char *const allowed[] = {"a", "b", NULL};
    cJSON *doc;
    srv_error err;
    (void)state;
    doc = parse_ok("{\"a\":1,\"b\":2}");
    assert_int_equal(srv_json_check_fields(doc, allowed, &err), SRV_OK);
    cJSON_Delete(doc);
    doc = parse_ok("{\"a\":1,\"c\":2}");
    assert_int_equal(srv_json_check_fields(doc, allowed, &err), SRV_E_UNKNOWN_FIELD);
    assert_non_null(strstr(err.message, "\"c\""));
    cJSON_Delete(doc);
    doc = parse_ok("{\"a\":1,\"a\":2}");
    assert_int_equal(srv_json_check_fields(doc, allowed, &err), SRV_E_INVALID_FIELD);
    assert_non_null(strstr(err.message, "duplicate"));
    cJSON_Delete(doc);
}

static void test_getters(void **state)
{
    cJSON *doc = parse_ok("{\"s\":\"hello\",\"n\":42,\"f\":1.5,\"b\":true,\"z\":null}");
    const char *s = NULL;
    long long n = 0;
    int b = 0;
    srv_error err;
    (void)state;
    assert_int_equal(srv_json_get_string(doc, "s", 1, 5, &s, &err), SRV_OK);
    assert_string_equal(s, "hello");
    assert_int_equal(srv_json_get_string(doc, "s", 1, 4, &s, &err), SRV_E_INVALID_FIELD);
    assert_int_equal(srv_json_get_string(doc, "n", 1, 4, &s, &err), SRV_E_INVALID_FIELD);
    assert_int_equal(srv_json_get_string(doc, "missing", 1, 4, &s, &err), SRV_E_INVALID_FIELD);
    assert_non_null(strstr(err.message, "required"));
    s = "untouched";
    assert_int_equal(srv_json_get_string(doc, "z", 0, 4, &s, &err), SRV_OK);
    assert_string_equal(s, "untouched");
    assert_int_equal(srv_json_get_int(doc, "n", 1, 0, 100, &n, &err), SRV_OK);
    assert_int_equal(n, 42);
    assert_int_equal(srv_json_get_int(doc, "n", 1, 0, 41, &n, &err), SRV_E_INVALID_FIELD);
    assert_int_equal(srv_json_get_int(doc, "f", 1, 0, 100, &n, &err), SRV_E_INVALID_FIELD);
    assert_int_equal(srv_json_get_int(doc, "s", 1, 0, 100, &n, &err), SRV_E_INVALID_FIELD);
    assert_int_equal(srv_json_get_bool(doc, "b", 1, &b, &err), SRV_OK);
    assert_true(b);
    assert_int_equal(srv_json_get_bool(doc, "n", 1, &b, &err), SRV_E_INVALID_FIELD);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse), cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_fields), cmocka_unit_test(test_getters)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
