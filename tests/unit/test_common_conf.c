/* Unit tests of the `key = value` parser (common/src/conf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signum/common/conf.h"

typedef struct {
    char seen[1024];
    unsigned lines[16];
    unsigned n;
    unsigned stop_at; /* refuse the entry of this line (0: never) */
} sink;

static int entry(void *ctx, const char *key, const char *value, unsigned line)
{
    sink *s = ctx;
    size_t used = strlen(s->seen);
    if (s->stop_at && line == s->stop_at)
        return 1;
    snprintf(s->seen + used, sizeof(s->seen) - used, "[%s|%s]", key, value);
    if (s->n < 16)
        s->lines[s->n++] = line;
    return 0;
}

static sgc_conf_status parse(const char *text, size_t max_line, sink *s, sgc_conf_error *err)
{
    memset(s, 0, sizeof(*s));
    return sgc_conf_parse(text, strlen(text), max_line, entry, s, err);
}

static void test_syntax(void **state)
{
    sink s;
    sgc_conf_error err;
    (void)state;
    assert_int_equal(parse("# comment\n\n  a = 1  \nb=2\r\n\tc\t=\t x = y \n   # indented\nd =\n"
                           "e = \"q\" # not a comment\nlast = no newline",
                           0, &s, &err),
                     SGC_CONF_OK);
    assert_string_equal(s.seen,
                        "[a|1][b|2][c|x = y][d|][e|\"q\" # not a comment][last|no newline]");
    /* Lines are the file's: blank and comment lines count. */
    assert_int_equal(s.n, 6);
    assert_int_equal(s.lines[0], 3);
    assert_int_equal(s.lines[1], 4);
    assert_int_equal(s.lines[2], 5);
    assert_int_equal(s.lines[3], 7);
    assert_int_equal(s.lines[5], 9);
    assert_int_equal(err.status, SGC_CONF_OK);
    assert_int_equal(parse("", 0, &s, &err), SGC_CONF_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(parse("= v\n", 0, &s, &err), SGC_CONF_OK); /* the caller refuses "" */
    assert_string_equal(s.seen, "[|v]");
}

static void test_errors_carry_line(void **state)
{
    sink s;
    sgc_conf_error err;
    (void)state;
    assert_int_equal(parse("a = 1\n\n# c\nnot a setting\nb = 2\n", 0, &s, &err), SGC_CONF_E_SYNTAX);
    assert_int_equal(err.line, 4);
    assert_string_equal(err.message, "expected key = value");
    assert_string_equal(s.seen, "[a|1]"); /* nothing after the bad line */

    memset(&s, 0, sizeof(s));
    s.stop_at = 3;
    assert_int_equal(sgc_conf_parse("a = 1\n\nb = 2\nc = 3\n", 19, 0, entry, &s, &err),
                     SGC_CONF_E_CALLBACK);
    assert_int_equal(err.line, 3);
    assert_string_equal(s.seen, "[a|1]");
}

static void test_line_cap(void **state)
{
    char text[64];
    sink s;
    sgc_conf_error err;
    (void)state;
    /* "k = " and 6 characters: 10, exactly the cap, then 11. */
    snprintf(text, sizeof(text), "x = 1\nk = 123456\n");
    assert_int_equal(parse(text, 10, &s, &err), SGC_CONF_OK);
    snprintf(text, sizeof(text), "x = 1\nk = 1234567\n");
    assert_int_equal(parse(text, 10, &s, &err), SGC_CONF_E_LINE);
    assert_int_equal(err.line, 2);
    assert_string_equal(err.message, "longer than 10 characters");
    /* A long comment line is as long as any other. */
    assert_int_equal(parse("# 0123456789\n", 10, &s, &err), SGC_CONF_E_LINE);
    assert_int_equal(err.line, 1);
}

static void test_default_line_cap(void **state)
{
    size_t n = SGC_CONF_LINE_MAX + 1;
    char *text = malloc(n + 2);
    sink s;
    sgc_conf_error err;
    (void)state;
    assert_non_null(text);
    memcpy(text, "k = ", 4);
    memset(text + 4, 'v', n - 4);
    text[n] = '\n';
    text[n + 1] = '\0';
    memset(&s, 0, sizeof(s));
    /* 0 and anything over SGC_CONF_LINE_MAX mean SGC_CONF_LINE_MAX. */
    assert_int_equal(sgc_conf_parse(text, n + 1, 0, entry, &s, &err), SGC_CONF_E_LINE);
    assert_int_equal(sgc_conf_parse(text, n + 1, n + 100, entry, &s, &err), SGC_CONF_E_LINE);
    assert_int_equal(sgc_conf_parse(text + 1, n, 0, entry, &s, &err), SGC_CONF_OK);
    free(text);
}

static void test_file_cap(void **state)
{
    char *text = malloc(SGC_CONF_FILE_MAX + 1);
    sink s;
    sgc_conf_error err;
    (void)state;
    assert_non_null(text);
    memset(text, '\n', SGC_CONF_FILE_MAX + 1);
    memset(&s, 0, sizeof(s));
    assert_int_equal(sgc_conf_parse(text, SGC_CONF_FILE_MAX, 0, entry, &s, &err), SGC_CONF_OK);
    assert_int_equal(sgc_conf_parse(text, SGC_CONF_FILE_MAX + 1, 0, entry, &s, &err),
                     SGC_CONF_E_TOO_LARGE);
    assert_int_equal(err.line, 0);
    assert_string_equal(err.message, "larger than 64 KiB");
    free(text);
}

static void test_nul_byte(void **state)
{
    sink s;
    sgc_conf_error err;
    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(sgc_conf_parse("a = 1\nb = \0x\nc = 3\n", 18, 0, entry, &s, &err),
                     SGC_CONF_E_LINE);
    assert_int_equal(err.line, 2);
    assert_string_equal(err.message, "holds a NUL byte");
    assert_string_equal(s.seen, "[a|1]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),   cmocka_unit_test(test_errors_carry_line),
        cmocka_unit_test(test_line_cap), cmocka_unit_test(test_default_line_cap),
        cmocka_unit_test(test_file_cap), cmocka_unit_test(test_nul_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
