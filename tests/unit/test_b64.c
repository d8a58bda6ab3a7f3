/* Unit tests of the strict base64/base64url codecs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/b64.h"

static void check_decode(const char *text, const char *want)
{
    uint8_t *out = NULL;
    size_t len = 0;
    srv_error err;
    assert_int_equal(srv_b64_decode(text, strlen(text), 1024, &out, &len, &err), SRV_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    free(out);
}

static void check_reject(const char *text, int url)
{
    uint8_t *out = (uint8_t *)1;
    size_t len = 7;
    srv_error err;
    srv_status st = url ? srv_b64url_decode(text, strlen(text), 1024, &out, &len, &err)
                        : srv_b64_decode(text, strlen(text), 1024, &out, &len, &err);
    assert_int_equal(st, SRV_E_BAD_BASE64);
    assert_int_equal(err.status, SRV_E_BAD_BASE64);
    assert_true(strlen(err.message) > 0);
    assert_null(out);
    assert_int_equal(len, 0);
}

/* RFC 4648 section 10 test vectors, both directions. */
static void test_rfc4648_vectors(void **state)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    (void)state;
    for (size_t i = 0; i < 7; i++) {
        char *e = srv_b64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        char *u = srv_b64url_encode((const uint8_t *)plain[i], strlen(plain[i]));
        assert_string_equal(e, enc[i]);
        assert_string_equal(u, url[i]);
        check_decode(enc[i], plain[i]);
        free(e);
        free(u);
    }
}

static void test_alphabets_differ(void **state)
{
    static const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    char *e = srv_b64_encode(bytes, 3), *u = srv_b64url_encode(bytes, 3);
    uint8_t *out = NULL;
    size_t len = 0;
    (void)state;
    assert_string_equal(e, "+/+/");
    assert_string_equal(u, "-_-_");
    assert_int_equal(srv_b64url_decode(u, 4, 16, &out, &len, NULL), SRV_OK);
    assert_memory_equal(out, bytes, 3);
    free(out);
    check_reject("+/+/", 1);
    check_reject("-_-_", 0);
    free(e);
    free(u);
}

static void test_rejects_malformed(void **state)
{
    (void)state;
    check_reject("Zm9", 0);    /* not a multiple of 4 */
    check_reject("Zm9v\n", 0); /* whitespace */
    check_reject("Zm 9", 0);
    check_reject("Zm9v====", 0); /* too much padding */
    check_reject("Z===", 0);
    check_reject("=Zm9", 0); /* padding inside */
    check_reject("Zm=v", 0);
    check_reject("Zh==", 0); /* non-zero trailing bits: "Zg==" is canonical */
    check_reject("Zm9=", 0); /* "Zm8=" is canonical */
    check_reject("Zm9v*A==", 0);
    check_reject("Z", 1);    /* dangling character */
    check_reject("Zg==", 1); /* base64url is unpadded */
}

static void test_cap(void **state)
{
    uint8_t *out = NULL;
    size_t len = 0;
    srv_error err;
    (void)state;
    assert_int_equal(srv_b64_decode("Zm9vYmFy", 8, 5, &out, &len, &err), SRV_E_BAD_BASE64);
    assert_non_null(strstr(err.message, "exceeds"));
    assert_int_equal(srv_b64_decode("Zm9vYmFy", 8, 6, &out, &len, &err), SRV_OK);
    assert_int_equal(len, 6);
    free(out);
}

static void test_hex(void **state)
{
    static const uint8_t bytes[] = {0x00, 0x9f, 0xff};
    char out[7];
    (void)state;
    srv_hex_encode(bytes, 3, out);
    assert_string_equal(out, "009fff");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_alphabets_differ),
        cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
