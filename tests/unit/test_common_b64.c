/* Unit tests of common/src/b64.c as the agent calls it: a C string decoded into a fixed buffer
 * (the server's allocating names are in test_b64.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signum/common/b64.h"

static int dec(const char *text, sgc_b64_alphabet a, uint8_t *out, size_t cap, size_t *len)
{
    char why[128];
    int rc = sgc_b64_decode(text, strlen(text), a, out, cap, len, why, sizeof(why));
    if (rc != SGC_OK)
        assert_true(strlen(why) > 0); /* every refusal says why */
    return rc;
}

static void test_vectors_into_buffer(void **state)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    (void)state;
    for (size_t i = 0; i < 7; i++) {
        uint8_t out[8];
        size_t len = 99;
        assert_int_equal(dec(enc[i], SGC_B64, out, sizeof(out), &len), SGC_OK);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(out, plain[i], len);
        assert_int_equal(dec(url[i], SGC_B64URL, out, sizeof(out), &len), SGC_OK);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(out, plain[i], len);
    }
}

/* The cap is the decoded size: exactly enough is taken, one byte less refused, nothing written
 * past it (the agent decodes into stack buffers). */
static void test_cap_exact(void **state)
{
    uint8_t out[8];
    size_t len = 0;
    (void)state;
    memset(out, 0xAA, sizeof(out));
    assert_int_equal(dec("Zm9vYmE=", SGC_B64, out, 5, &len), SGC_OK);
    assert_int_equal(len, 5);
    assert_int_equal(out[5], 0xAA);
    memset(out, 0xAA, sizeof(out));
    assert_int_equal(dec("Zm9vYmE=", SGC_B64, out, 4, &len), SGC_E_TOO_LARGE);
    assert_int_equal(len, 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xAA);
    assert_int_equal(dec("", SGC_B64, out, 0, &len), SGC_OK);
    assert_int_equal(len, 0);
}

/* What the agent's own decoder used to accept and the strict one refuses: non-zero trailing
 * bits ("Zh==" and "Zg==" both read as "f"). */
static void test_one_text_per_value(void **state)
{
    uint8_t out[8];
    size_t len;
    (void)state;
    assert_int_equal(dec("Zh==", SGC_B64, out, sizeof(out), &len), SGC_E_FORMAT);
    assert_int_equal(dec("Zm9=", SGC_B64, out, sizeof(out), &len), SGC_E_FORMAT);
    assert_int_equal(dec("Zh", SGC_B64URL, out, sizeof(out), &len), SGC_E_FORMAT);
    assert_int_equal(dec("Zm9v\n", SGC_B64, out, sizeof(out), &len), SGC_E_FORMAT);
    assert_int_equal(dec("Zm9v====", SGC_B64, out, sizeof(out), &len), SGC_E_FORMAT);
    assert_int_equal(dec("Zg=", SGC_B64, out, sizeof(out), &len), SGC_E_FORMAT);
    assert_int_equal(dec("Zg==", SGC_B64URL, out, sizeof(out), &len), SGC_E_FORMAT);
    assert_int_equal(dec("Zm9vY", SGC_B64URL, out, sizeof(out), &len), SGC_E_FORMAT);
}

/* An embedded NUL is a character like any other: refused, not an end of text. */
static void test_embedded_nul(void **state)
{
    uint8_t out[8];
    size_t len;
    (void)state;
    assert_int_equal(sgc_b64_decode("Zm9v\0Zm9", 8, SGC_B64, out, sizeof(out), &len, NULL, 0),
                     SGC_E_FORMAT);
}

static void test_alloc(void **state)
{
    uint8_t *out = (uint8_t *)1;
    size_t len = 9;
    char why[64];
    (void)state;
    assert_int_equal(sgc_b64_decode_alloc("", 0, SGC_B64, 0, &out, &len, why, sizeof(why)), SGC_OK);
    assert_non_null(out); /* never NULL on success, even when empty */
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(sgc_b64_decode_alloc("Zm9vYmFy", 8, SGC_B64, 5, &out, &len, why, sizeof(why)),
                     SGC_E_TOO_LARGE);
    assert_null(out);
    assert_string_equal(why, "decoded value exceeds 5 bytes");
    assert_int_equal(sgc_b64_decode_alloc("Zm9*", 4, SGC_B64, 5, &out, &len, why, sizeof(why)),
                     SGC_E_FORMAT);
    assert_string_equal(why, "invalid base64 character at offset 3");
    assert_null(out);
    assert_int_equal(len, 0);
}

static void test_encode_lengths(void **state)
{
    uint8_t bytes[64];
    (void)state;
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(bytes); n++) {
        char *e = sgc_b64_encode(bytes, n), *u = sgc_b64url_encode(bytes, n);
        uint8_t back[64];
        size_t len = 0;
        assert_non_null(e);
        assert_non_null(u);
        assert_int_equal(strlen(e), 4 * ((n + 2) / 3));
        assert_int_equal(strlen(u), (4 * n + 2) / 3);
        assert_int_equal(dec(e, SGC_B64, back, n, &len), SGC_OK);
        assert_int_equal(len, n);
        assert_memory_equal(back, bytes, n);
        assert_int_equal(dec(u, SGC_B64URL, back, n, &len), SGC_OK);
        assert_int_equal(len, n);
        assert_memory_equal(back, bytes, n);
        free(e);
        free(u);
    }
}

static void test_hex(void **state)
{
    static const uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
    char out[9];
    (void)state;
    sgc_hex_encode(bytes, 4, out);
    assert_string_equal(out, "000fa0ff");
    sgc_hex_encode(bytes, 0, out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_into_buffer),
        cmocka_unit_test(test_cap_exact),
        cmocka_unit_test(test_one_text_per_value),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_encode_lengths),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
