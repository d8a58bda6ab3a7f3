/* Unit tests of the capped buffer, array growth, the SIGNUM_DEBUG rule and the shared names
 * (common/src/buf.c, debug.c, names.c, ckr.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <p11-kit/pkcs11.h>

#include "signum/common/buf.h"
#include "signum/common/debug.h"
#include "signum/common/names.h"

static void test_buf_cap(void **state)
{
    sgc_buf b;
    char chunk[100];
    size_t len = 0;
    char *d;
    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    sgc_buf_init(&b, 250);
    assert_null(b.data);
    assert_int_equal(sgc_buf_add(&b, chunk, 100), SGC_OK);
    assert_int_equal(sgc_buf_add(&b, chunk, 100), SGC_OK);
    assert_int_equal(sgc_buf_add(&b, chunk, 51), SGC_E_TOO_LARGE); /* 251 > 250 */
    assert_int_equal(b.len, 200);                                  /* nothing added */
    assert_int_equal(sgc_buf_add(&b, chunk, 50), SGC_OK);          /* exactly the cap */
    assert_int_equal(b.len, 250);
    assert_int_equal(b.data[250], '\0');
    assert_true(b.cap <= 251); /* never allocated past the cap and its NUL */
    assert_int_equal(sgc_buf_add(&b, chunk, 1), SGC_E_TOO_LARGE);
    assert_int_equal(sgc_buf_add(&b, chunk, 0), SGC_OK);
    assert_int_equal(sgc_buf_add(&b, chunk, SIZE_MAX), SGC_E_TOO_LARGE); /* no wrap */
    d = sgc_buf_take(&b, &len);
    assert_int_equal(len, 250);
    assert_int_equal(strlen(d), 250);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 250); /* the cap stays */
    free(d);
    assert_null(sgc_buf_take(&b, &len));
    assert_int_equal(len, 0);
    sgc_buf_free(&b);
}

static void test_buf_growth(void **state)
{
    sgc_buf b;
    (void)state;
    sgc_buf_init(&b, SIZE_MAX);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sgc_buf_add_str(&b, "0123456789"), SGC_OK);
    assert_int_equal(b.len, 10000);
    assert_int_equal(strlen(b.data), 10000);
    assert_true(b.cap >= 10001 && b.cap <= 2 * 10001);
    assert_int_equal(sgc_buf_reserve(&b, 100000), SGC_OK);
    assert_true(b.cap >= 110001);
    assert_int_equal(b.len, 10000);
    sgc_buf_free(&b);
    assert_null(b.data);
    /* An empty add still gives a string. */
    sgc_buf_init(&b, 0);
    assert_int_equal(sgc_buf_add(&b, "", 0), SGC_OK);
    assert_string_equal(b.data, "");
    assert_int_equal(sgc_buf_add(&b, "a", 1), SGC_E_TOO_LARGE);
    sgc_buf_free(&b);
}

static void test_array_grow(void **state)
{
    void *items = NULL;
    size_t cap = 0;
    (void)state;
    assert_int_equal(sgc_array_grow(&items, &cap, 1, 64, 100), SGC_OK);
    assert_int_equal(cap, 8); /* 8 items of 64 bytes */
    assert_int_equal(sgc_array_grow(&items, &cap, 8, 64, 100), SGC_OK);
    assert_int_equal(cap, 8); /* enough already */
    assert_int_equal(sgc_array_grow(&items, &cap, 9, 64, 100), SGC_OK);
    assert_int_equal(cap, 16);
    assert_int_equal(sgc_array_grow(&items, &cap, 65, 64, 100), SGC_OK);
    assert_int_equal(cap, 100); /* 128 clamped to the cap */
    assert_int_equal(sgc_array_grow(&items, &cap, 101, 64, 100), SGC_E_TOO_LARGE);
    assert_int_equal(cap, 100);
    memset(items, 0, 100 * 64); /* all of it is there (ASan) */
    free(items);
    items = NULL;
    cap = 0;
    assert_int_equal(sgc_array_grow(&items, &cap, 1, 1, 1000), SGC_OK);
    assert_int_equal(cap, 256); /* bytes: 256 at first */
    free(items);
    items = NULL;
    cap = 0;
    /* need * elem would wrap: refused before any allocation. */
    assert_int_equal(sgc_array_grow(&items, &cap, 3, SIZE_MAX / 2, SIZE_MAX), SGC_E_TOO_LARGE);
    assert_int_equal(sgc_array_grow(&items, &cap, 300, 0, SIZE_MAX), SGC_E_TOO_LARGE);
    free(items);
}

static void test_debug_rule(void **state)
{
    (void)state;
    assert_true(sgc_debug_has("p11", "p11"));
    assert_true(sgc_debug_has("http,p11", "p11"));
    assert_true(sgc_debug_has("http, p11", "p11"));
    assert_true(sgc_debug_has("http p11", "p11"));
    assert_true(sgc_debug_has(" ,\tp11,, ", "p11"));
    assert_true(sgc_debug_has("all", "ksp"));
    assert_true(sgc_debug_has("http,all", "csp"));
    assert_false(sgc_debug_has(NULL, "p11"));
    assert_false(sgc_debug_has("", "p11"));
    assert_false(sgc_debug_has(" , ", "p11"));
    assert_false(sgc_debug_has("p11x", "p11")); /* names match whole, not as substrings */
    assert_false(sgc_debug_has("xp11", "p11"));
    assert_false(sgc_debug_has("nokspx", "ksp"));
    assert_false(sgc_debug_has("ball", "ksp"));
    assert_false(sgc_debug_has("P11", "p11"));
    assert_false(sgc_debug_has("ALL", "p11"));
    assert_false(sgc_debug_has("http", ""));
    assert_false(sgc_debug_has("http", NULL));
    assert_true(sgc_debug_has("all", NULL));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(sgc_hash_name(SGC_HASH_SHA256), "sha256");
    assert_string_equal(sgc_hash_name(SGC_HASH_SHA384), "sha384");
    assert_string_equal(sgc_hash_name(SGC_HASH_SHA512), "sha512");
    assert_string_equal(sgc_hash_name(SGC_HASH_COUNT), "unknown");
    assert_string_equal(sgc_hash_name(-1), "unknown");
    assert_int_equal(sgc_hash_len(SGC_HASH_SHA384), 48);
    assert_int_equal(sgc_hash_len(-1), 0);
    for (int h = 0; h < SGC_HASH_COUNT; h++)
        assert_int_equal(sgc_hash_parse(sgc_hash_name(h)), h);
    assert_int_equal(sgc_hash_parse("SHA256"), -1);
    assert_int_equal(sgc_hash_parse("sha1"), -1);
    assert_int_equal(sgc_hash_parse(""), -1);
    assert_int_equal(sgc_hash_parse(NULL), -1);
    for (int m = 0; m < SGC_MECH_COUNT; m++)
        assert_int_equal(sgc_mech_parse(sgc_mech_name(m)), m);
    assert_string_equal(sgc_mech_name(SGC_MECH_RSA_PSS), "rsa-pss");
    assert_string_equal(sgc_mech_name(7), "unknown");
    assert_int_equal(sgc_mech_parse("unknown"), -1);
    assert_int_equal(sgc_mech_parse("ECDSA"), -1);
}

static void test_ecdsa_hash_by_length(void **state)
{
    (void)state;
    assert_int_equal(sgc_hash_for_digest_len(32), SGC_HASH_SHA256);
    assert_int_equal(sgc_hash_for_digest_len(48), SGC_HASH_SHA384);
    assert_int_equal(sgc_hash_for_digest_len(64), SGC_HASH_SHA512);
    assert_int_equal(sgc_hash_for_digest_len(20), -1); /* SHA-1 */
    assert_int_equal(sgc_hash_for_digest_len(28), -1); /* SHA-224 */
    assert_int_equal(sgc_hash_for_digest_len(0), -1);
    assert_int_equal(sgc_hash_for_digest_len(31), -1);
    assert_int_equal(sgc_hash_for_digest_len(33), -1);
    assert_int_equal(sgc_hash_for_digest_len(65), -1);
}

/* The table's values are typed in by hand: each is checked against a real pkcs11.h. */
static void test_ckr_names(void **state)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } want[] = {
#define W(x) {x, #x}
        W(CKR_OK),
        W(CKR_CANCEL),
        W(CKR_HOST_MEMORY),
        W(CKR_SLOT_ID_INVALID),
        W(CKR_GENERAL_ERROR),
        W(CKR_FUNCTION_FAILED),
        W(CKR_ARGUMENTS_BAD),
        W(CKR_NO_EVENT),
        W(CKR_NEED_TO_CREATE_THREADS),
        W(CKR_CANT_LOCK),
        W(CKR_ATTRIBUTE_READ_ONLY),
        W(CKR_ATTRIBUTE_SENSITIVE),
        W(CKR_ATTRIBUTE_TYPE_INVALID),
        W(CKR_ATTRIBUTE_VALUE_INVALID),
        W(CKR_DATA_INVALID),
        W(CKR_DATA_LEN_RANGE),
        W(CKR_DEVICE_ERROR),
        W(CKR_DEVICE_MEMORY),
        W(CKR_DEVICE_REMOVED),
        W(CKR_FUNCTION_CANCELED),
        W(CKR_FUNCTION_NOT_PARALLEL),
        W(CKR_FUNCTION_NOT_SUPPORTED),
        W(CKR_KEY_HANDLE_INVALID),
        W(CKR_KEY_TYPE_INCONSISTENT),
        W(CKR_KEY_FUNCTION_NOT_PERMITTED),
        W(CKR_MECHANISM_INVALID),
        W(CKR_MECHANISM_PARAM_INVALID),
        W(CKR_OBJECT_HANDLE_INVALID),
        W(CKR_OPERATION_ACTIVE),
        W(CKR_OPERATION_NOT_INITIALIZED),
        W(CKR_PIN_INCORRECT),
        W(CKR_PIN_LEN_RANGE),
        W(CKR_PIN_LOCKED),
        W(CKR_SESSION_CLOSED),
        W(CKR_SESSION_COUNT),
        W(CKR_SESSION_HANDLE_INVALID),
        W(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
        W(CKR_SESSION_READ_ONLY),
        W(CKR_TEMPLATE_INCOMPLETE),
        W(CKR_TEMPLATE_INCONSISTENT),
        W(CKR_TOKEN_NOT_PRESENT),
        W(CKR_TOKEN_NOT_RECOGNIZED),
        W(CKR_TOKEN_WRITE_PROTECTED),
        W(CKR_USER_ALREADY_LOGGED_IN),
        W(CKR_USER_NOT_LOGGED_IN),
        W(CKR_USER_TYPE_INVALID),
        W(CKR_RANDOM_NO_RNG),
        W(CKR_BUFFER_TOO_SMALL),
        W(CKR_CRYPTOKI_NOT_INITIALIZED),
        W(CKR_CRYPTOKI_ALREADY_INITIALIZED),
        W(CKR_FUNCTION_REJECTED),
#undef W
    };
    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(sgc_ckr_name(want[i].rv), want[i].name);
    assert_string_equal(sgc_ckr_name(CKR_VENDOR_DEFINED), "CKR_(other)");
    assert_string_equal(sgc_ckr_name(0x4UL), "CKR_(other)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),    cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_array_grow), cmocka_unit_test(test_debug_rule),
        cmocka_unit_test(test_names),      cmocka_unit_test(test_ecdsa_hash_by_length),
        cmocka_unit_test(test_ckr_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
