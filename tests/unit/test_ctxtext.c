/* Unit tests of the agent's context escaping (agent-core/src/agent/ctxtext.c): invalid UTF-8
 * bytes become \xNN, a backslash \\, well-formed UTF-8 stays; the cap never cuts a character
 * or an escape; the escaping reverses to the exact bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent.h"

static void check(const char *in, size_t len, size_t cap, const char *want)
{
    char out[64];
    size_t n = ag_ctx_escape(in, len, out, cap);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_escapes(void **state)
{
    (void)state;
    check("plain /usr/bin/tool", 19, 40, "plain /usr/bin/tool");
    check("caf\xe9", 4, 40, "caf\\xe9"); /* Latin-1 */
    check("a\\b", 3, 40, "a\\\\b");      /* a backslash */
    check("\\x41", 4, 40, "\\\\x41");    /* the text of an escape */
    check("\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91", 9, 40, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91");
    check("\xc0\xaf", 2, 40, "\\xc0\\xaf");                   /* an overlong '/' */
    check("\xed\xa0\x80", 3, 40, "\\xed\\xa0\\x80");          /* a surrogate */
    check("\xf4\x90\x80\x80", 4, 40, "\\xf4\\x90\\x80\\x80"); /* over U+10FFFF */
    check("\xe2\x82", 2, 40, "\\xe2\\x82");                   /* a truncated character */
    check("\x80x", 2, 40, "\\x80x");                          /* a lone continuation byte */
}

static void test_cap_never_cuts(void **state)
{
    (void)state;
    check("ab\xe9", 3, 5, "ab"); /* the escape would need 4 bytes, 3 are left */
    check("ab\xe9", 3, 6, "ab\\xe9");
    check("a\xe2\x82\xac", 4, 3, "a"); /* a 3-byte character does not fit in 2 */
    check("a\\", 2, 2, "a");           /* nor half of \\ */
    check("abc", 3, 0, "");
}

static void test_fit(void **state)
{
    (void)state;
    assert_int_equal(ag_ctx_fit("abc", 10), 3);
    assert_int_equal(ag_ctx_fit("ab\xe2\x82\xac", 4), 2); /* not inside the euro sign */
    assert_int_equal(ag_ctx_fit("ab\xe2\x82\xac", 5), 5);
    assert_int_equal(ag_ctx_fit("\xc3\xa9\xc3\xa9", 3), 2);
}

/* Every byte value, escaped and read back, is the same bytes. */
static void test_reversible(void **state)
{
    unsigned char in[512], back[512];
    char out[2100];
    size_t n, i, k = 0;
    (void)state;
    for (i = 0; i < 256; i++)
        in[i] = (unsigned char)(i == 0 ? '\\' : i);
    memcpy(in + 256, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91", 9);
    n = ag_ctx_escape(in, 265, out, sizeof(out) - 1);
    for (i = 0; i < n; i++) {
        if (out[i] == '\\' && out[i + 1] == '\\') {
            back[k++] = '\\';
            i++;
        } else if (out[i] == '\\') {
            unsigned v;
            assert_int_equal(out[i + 1], 'x');
            assert_int_equal(sscanf(out + i + 2, "%2x", &v), 1);
            back[k++] = (unsigned char)v;
            i += 3;
        } else {
            back[k++] = (unsigned char)out[i];
        }
    }
    assert_int_equal(k, 265);
    assert_memory_equal(back, in, 265);
}

static void redacted(const char *in, size_t len, char sep, const char *want)
{
    char out[512];
    size_t n = ag_ctx_redact(in, len, sep, out, sizeof(out));
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0')
            out[i] = '|';
    out[n] = '\0';
    assert_string_equal(out, want);
}

static void test_redact(void **state)
{
    static const char argv_pin[] = "pkcs11-tool\0--module\0/x.so\0--login\0--pin\0"
                                   "sgk_0123456789ab_secret\0--sign";
    static const char argv_inline[] = "p11tool\0--pin=1234\0--list-all";
    static const char argv_uri[] = "osslsigncode\0-key\0pkcs11:token=t;object=k?pin-value=s3cr3t"
                                   "&module-path=/m.so\0-in\0a.exe";
    (void)state;
    redacted(argv_pin, sizeof(argv_pin) - 1, '\0',
             "pkcs11-tool|--module|/x.so|--login|--pin|***|--sign");
    redacted(argv_inline, sizeof(argv_inline) - 1, '\0', "p11tool|--pin=***|--list-all");
    redacted(argv_uri, sizeof(argv_uri) - 1, '\0',
             "osslsigncode|-key|pkcs11:token=t;object=k?pin-value=***&module-path=/m.so|-in|a.exe");
    /* Windows: one space-separated line; option names in any case. */
    redacted("signtool sign /P hunter2 /f x.pfx a.exe", 39, ' ',
             "signtool sign /P *** /f x.pfx a.exe");
    redacted("jarsigner -storepass a -keypass b x.jar k", 41, ' ',
             "jarsigner -storepass *** -keypass *** x.jar k");
    redacted("openssl pkeyutl -passin pass:x -sign", 36, ' ', "openssl pkeyutl -passin *** -sign");
    /* Nothing to hide: unchanged; a trailing option hides nothing that is not there. */
    redacted("gpg --detach-sign file", 22, ' ', "gpg --detach-sign file");
    redacted("tool --pin", 10, ' ', "tool --pin");
    redacted("", 0, ' ', "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes), cmocka_unit_test(test_cap_never_cuts),
        cmocka_unit_test(test_fit),     cmocka_unit_test(test_reversible),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
