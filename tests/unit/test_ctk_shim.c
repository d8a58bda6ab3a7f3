/* Unit tests of the macOS token's C shim (macos-ctk/shim): the algorithm table and how each
 * algorithm's data becomes a digest, DigestInfo parsing, object ids, the configured names and
 * the one map of every client status to a TKErrorCode. Signing itself is tested against a real
 * server in tests/ctk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sgtk.h"
#include "signum/crypto.h"

static void test_algorithm_table(void **state)
{
    static const struct {
        sgtk_alg alg;
        sg_mech mech;
        sg_hash hash;
        sgtk_key_kind kind;
        size_t len;
    } want[] = {
        {SGTK_ALG_RSA_PKCS1_SHA256, SG_MECH_RSA_PKCS1, SG_HASH_SHA256, SGTK_KEY_RSA, 32},
        {SGTK_ALG_RSA_PKCS1_SHA384, SG_MECH_RSA_PKCS1, SG_HASH_SHA384, SGTK_KEY_RSA, 48},
        {SGTK_ALG_RSA_PKCS1_SHA512, SG_MECH_RSA_PKCS1, SG_HASH_SHA512, SGTK_KEY_RSA, 64},
        {SGTK_ALG_RSA_PSS_SHA256, SG_MECH_RSA_PSS, SG_HASH_SHA256, SGTK_KEY_RSA, 32},
        {SGTK_ALG_RSA_PSS_SHA384, SG_MECH_RSA_PSS, SG_HASH_SHA384, SGTK_KEY_RSA, 48},
        {SGTK_ALG_RSA_PSS_SHA512, SG_MECH_RSA_PSS, SG_HASH_SHA512, SGTK_KEY_RSA, 64},
        {SGTK_ALG_ECDSA_X962_SHA256, SG_MECH_ECDSA, SG_HASH_SHA256, SGTK_KEY_EC, 32},
        {SGTK_ALG_ECDSA_X962_SHA384, SG_MECH_ECDSA, SG_HASH_SHA384, SGTK_KEY_EC, 48},
        {SGTK_ALG_ECDSA_X962_SHA512, SG_MECH_ECDSA, SG_HASH_SHA512, SGTK_KEY_EC, 64},
    };
    uint8_t digest[64];
    char why[256];
    sgtk_request r;
    (void)state;

    memset(digest, 0xab, sizeof(digest));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(sgtk_prepare(want[i].alg, digest, want[i].len, &r, why, sizeof(why)),
                         SGTK_OK);
        assert_int_equal(r.mech, want[i].mech);
        assert_int_equal(r.hash, want[i].hash);
        assert_ptr_equal(r.digest, digest);
        assert_int_equal(r.digest_len, want[i].len);
        assert_int_equal(r.der_output, want[i].mech == SG_MECH_ECDSA);
        assert_true(sgtk_alg_fits(want[i].alg, want[i].kind));
        assert_false(
            sgtk_alg_fits(want[i].alg, want[i].kind == SGTK_KEY_RSA ? SGTK_KEY_EC : SGTK_KEY_RSA));
        assert_false(sgtk_alg_fits(want[i].alg, SGTK_KEY_UNKNOWN));
        /* One byte short, one too many, and no data: refused before any round trip. */
        assert_int_equal(sgtk_prepare(want[i].alg, digest, want[i].len - 1, &r, why, sizeof(why)),
                         SGTK_E_BAD_PARAMETER);
        assert_non_null(strstr(why, "digest has"));
        assert_int_equal(sgtk_prepare(want[i].alg, digest, want[i].len + 1, &r, why, sizeof(why)),
                         SGTK_E_BAD_PARAMETER);
        assert_int_equal(sgtk_prepare(want[i].alg, NULL, 0, &r, why, sizeof(why)),
                         SGTK_E_BAD_PARAMETER);
    }
    assert_int_equal(sgtk_prepare(SGTK_ALG_COUNT, digest, 32, &r, why, sizeof(why)),
                     SGTK_E_NOT_IMPLEMENTED);
    assert_false(sgtk_alg_fits(SGTK_ALG_COUNT, SGTK_KEY_RSA));
    assert_string_equal(sgtk_alg_name(SGTK_ALG_RSA_PSS_SHA384), "RSASignatureDigestPSSSHA384");
    assert_string_equal(sgtk_alg_name(SGTK_ALG_COUNT), "unknown");
    assert_int_equal(sgtk_key_kind_of("rsa3072"), SGTK_KEY_RSA);
    assert_int_equal(sgtk_key_kind_of("ec-p384"), SGTK_KEY_EC);
    assert_int_equal(sgtk_key_kind_of("ed25519"), SGTK_KEY_UNKNOWN);
}

static void test_ecdsa_any_hash(void **state)
{
    uint8_t digest[64] = {0};
    char why[256];
    sgtk_request r;
    (void)state;

    assert_int_equal(sgtk_prepare(SGTK_ALG_ECDSA_X962, digest, 32, &r, why, sizeof(why)), SGTK_OK);
    assert_int_equal(r.hash, SG_HASH_SHA256);
    assert_int_equal(sgtk_prepare(SGTK_ALG_ECDSA_X962, digest, 48, &r, why, sizeof(why)), SGTK_OK);
    assert_int_equal(r.hash, SG_HASH_SHA384);
    assert_int_equal(sgtk_prepare(SGTK_ALG_ECDSA_X962, digest, 64, &r, why, sizeof(why)), SGTK_OK);
    assert_int_equal(r.hash, SG_HASH_SHA512);
    assert_true(r.der_output);
    /* SHA-1 (20) and SHA-224 (28) are not hashes the server signs. */
    assert_int_equal(sgtk_prepare(SGTK_ALG_ECDSA_X962, digest, 20, &r, why, sizeof(why)),
                     SGTK_E_BAD_PARAMETER);
    assert_non_null(strstr(why, "20-byte digest"));
    assert_int_equal(sgtk_prepare(SGTK_ALG_ECDSA_X962, digest, 28, &r, why, sizeof(why)),
                     SGTK_E_BAD_PARAMETER);
}

static void test_digestinfo(void **state)
{
    uint8_t digest[64], di[SG_MAX_DIGESTINFO], bad[SG_MAX_DIGESTINFO + 1];
    /* SHA-1's DigestInfo (RFC 8017 9.2 note 1): a hash the token does not sign. */
    static const uint8_t sha1_di[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03,
                                      0x02, 0x1a, 0x05, 0x00, 0x04, 0x14, 1,    2,    3,
                                      4,    5,    6,    7,    8,    9,    10,   11,   12,
                                      13,   14,   15,   16,   17,   18,   19,   20};
    char why[256];
    sgtk_request r;
    (void)state;

    for (size_t i = 0; i < sizeof(digest); i++)
        digest[i] = (uint8_t)i;
    for (int h = SG_HASH_SHA256; h <= SG_HASH_SHA512; h++) {
        size_t len = sizeof(di);
        assert_int_equal(sg_digestinfo_build((sg_hash)h, digest, sg_hash_len((sg_hash)h), di, &len),
                         SG_OK);
        assert_int_equal(sgtk_prepare(SGTK_ALG_RSA_PKCS1_DIGESTINFO, di, len, &r, why, sizeof(why)),
                         SGTK_OK);
        assert_int_equal(r.mech, SG_MECH_RSA_PKCS1);
        assert_int_equal(r.hash, h);
        assert_int_equal(r.digest_len, sg_hash_len((sg_hash)h));
        assert_memory_equal(r.digest, digest, r.digest_len);
        assert_ptr_equal(r.digest, di + len - r.digest_len);
        /* Truncated, extended, or one byte of the algorithm changed: not a DigestInfo. */
        assert_int_equal(
            sgtk_prepare(SGTK_ALG_RSA_PKCS1_DIGESTINFO, di, len - 1, &r, why, sizeof(why)),
            SGTK_E_BAD_PARAMETER);
        memcpy(bad, di, len);
        bad[len] = 0;
        assert_int_equal(
            sgtk_prepare(SGTK_ALG_RSA_PKCS1_DIGESTINFO, bad, len + 1, &r, why, sizeof(why)),
            SGTK_E_BAD_PARAMETER);
        bad[10] ^= 1;
        assert_int_equal(
            sgtk_prepare(SGTK_ALG_RSA_PKCS1_DIGESTINFO, bad, len, &r, why, sizeof(why)),
            SGTK_E_BAD_PARAMETER);
    }
    /* A bare digest is not a DigestInfo either. */
    assert_int_equal(sgtk_prepare(SGTK_ALG_RSA_PKCS1_DIGESTINFO, digest, 32, &r, why, sizeof(why)),
                     SGTK_E_BAD_PARAMETER);
    assert_int_equal(
        sgtk_prepare(SGTK_ALG_RSA_PKCS1_DIGESTINFO, sha1_di, sizeof(sha1_di), &r, why, sizeof(why)),
        SGTK_E_BAD_PARAMETER);
    assert_non_null(strstr(why, "not a DigestInfo"));
}

static void test_object_ids(void **state)
{
    /* SHA-256("abc") (FIPS 180-2) as the "certificate": the id is its hex. */
    const char *abc_hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    char key[SGTK_OBJECT_ID_MAX], cert[SGTK_OBJECT_ID_MAX], bad[SGTK_OBJECT_ID_MAX];
    uint8_t h[32];
    sgtk_obj_kind kind;
    (void)state;

    assert_int_equal(sgtk_object_id(SGTK_OBJ_KEY, (const uint8_t *)"abc", 3, key), SGTK_OK);
    assert_int_equal(sgtk_object_id(SGTK_OBJ_CERT, (const uint8_t *)"abc", 3, cert), SGTK_OK);
    assert_string_equal(key + strlen("signum-key:"), abc_hex);
    assert_memory_equal(key, "signum-key:", 11);
    assert_string_equal(cert + strlen("signum-cert:"), abc_hex);
    assert_int_equal(sgtk_object_id(SGTK_OBJ_KEY, NULL, 0, bad), SGTK_E_BAD_PARAMETER);

    assert_int_equal(sgtk_object_id_parse(key, strlen(key), &kind, h), SGTK_OK);
    assert_int_equal(kind, SGTK_OBJ_KEY);
    assert_int_equal(h[0], 0xba);
    assert_int_equal(h[31], 0xad);
    assert_int_equal(sgtk_object_id_parse(cert, strlen(cert), &kind, h), SGTK_OK);
    assert_int_equal(kind, SGTK_OBJ_CERT);
    /* Shortened, uppercase hex, another prefix, not NUL-terminated within the length. */
    assert_int_equal(sgtk_object_id_parse(key, strlen(key) - 1, &kind, h), SGTK_E_OBJECT_NOT_FOUND);
    snprintf(bad, sizeof(bad), "signum-key:%s",
             "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
    assert_int_equal(sgtk_object_id_parse(bad, strlen(bad), &kind, h), SGTK_E_OBJECT_NOT_FOUND);
    snprintf(bad, sizeof(bad), "other-key:%s", abc_hex);
    assert_int_equal(sgtk_object_id_parse(bad, strlen(bad), &kind, h), SGTK_E_OBJECT_NOT_FOUND);
    assert_int_equal(sgtk_object_id_parse(NULL, 0, &kind, h), SGTK_E_OBJECT_NOT_FOUND);
}

static void test_names(void **state)
{
    char names[SGTK_NAMES_MAX][65], why[256], *text = NULL, *next = NULL, long_name[80];
    (void)state;

    assert_int_equal(sgtk_names_apply(NULL, SGTK_NAMES_ADD, "rel-rsa", &text, why, sizeof(why)),
                     SGTK_OK);
    assert_string_equal(text, "rel-rsa\n");
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_ADD, "rel-ec", &next, why, sizeof(why)),
                     SGTK_OK);
    free(text);
    text = next;
    assert_string_equal(text, "rel-rsa\nrel-ec\n");
    /* Adding twice keeps one. */
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_ADD, "rel-ec", &next, why, sizeof(why)),
                     SGTK_OK);
    assert_string_equal(next, "rel-rsa\nrel-ec\n");
    free(next);
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_REMOVE, "rel-rsa", &next, why, sizeof(why)),
                     SGTK_OK);
    assert_string_equal(next, "rel-ec\n");
    free(next);
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_REMOVE, "nope", &next, why, sizeof(why)),
                     SGTK_E_OBJECT_NOT_FOUND);
    assert_null(next);
    assert_non_null(strstr(why, "nope is not in the keychain"));
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_ADD, "a b", &next, why, sizeof(why)),
                     SGTK_E_BAD_PARAMETER);
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_ADD, "a\nb", &next, why, sizeof(why)),
                     SGTK_E_BAD_PARAMETER);
    memset(long_name, 'k', 65);
    long_name[65] = '\0';
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_ADD, long_name, &next, why, sizeof(why)),
                     SGTK_E_BAD_PARAMETER);
    free(text);
    /* Split skips empty, overlong and malformed lines. */
    assert_int_equal(sgtk_names_split("a\n\nb c\nd\n", names, SGTK_NAMES_MAX), 2);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "d");
    /* A full list takes no more names. */
    text = NULL;
    for (int i = 0; i < SGTK_NAMES_MAX; i++) {
        char n[16];
        snprintf(n, sizeof(n), "k%d", i);
        assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_ADD, n, &next, why, sizeof(why)),
                         SGTK_OK);
        free(text);
        text = next;
    }
    assert_int_equal(sgtk_names_split(text, names, SGTK_NAMES_MAX), SGTK_NAMES_MAX);
    assert_int_equal(sgtk_names_apply(text, SGTK_NAMES_ADD, "one-more", &next, why, sizeof(why)),
                     SGTK_E_BAD_PARAMETER);
    free(text);
}

static void test_error_map(void **state)
{
    static const sgtk_error want[SG_STATUS_COUNT] = {
        [SG_OK] = SGTK_OK,
        [SG_ERR_AGENT_UNAVAILABLE] = SGTK_E_COMMUNICATION,
        [SG_ERR_NOT_LOGGED_IN] = SGTK_E_AUTHENTICATION_NEEDED,
        [SG_ERR_AUTH_FAILED] = SGTK_E_AUTHENTICATION_FAILED,
        [SG_ERR_DENIED] = SGTK_E_AUTHENTICATION_FAILED,
        [SG_ERR_KEY_NOT_FOUND] = SGTK_E_OBJECT_NOT_FOUND,
        [SG_ERR_NETWORK] = SGTK_E_COMMUNICATION,
        [SG_ERR_TIMEOUT] = SGTK_E_COMMUNICATION,
        [SG_ERR_SERVER] = SGTK_E_COMMUNICATION,
        [SG_ERR_HSM] = SGTK_E_COMMUNICATION,
        [SG_ERR_BAD_INPUT] = SGTK_E_BAD_PARAMETER,
        [SG_ERR_PROTOCOL] = SGTK_E_CORRUPTED_DATA,
        [SG_ERR_NOMEM] = SGTK_E_COMMUNICATION,
        [SG_ERR_BUFFER_TOO_SMALL] = SGTK_E_COMMUNICATION,
        [SG_ERR_UNSUPPORTED] = SGTK_E_NOT_IMPLEMENTED,
        [SG_ERR_INTERNAL] = SGTK_E_COMMUNICATION,
        [SG_ERR_QUOTA_EXCEEDED] = SGTK_E_AUTHENTICATION_FAILED,
    };
    (void)state;

    for (int st = 0; st < SG_STATUS_COUNT; st++)
        assert_int_equal(sgtk_map_status((sg_status)st), want[st]);
    assert_int_equal(sgtk_map_status(SG_STATUS_COUNT), SGTK_E_COMMUNICATION);
    /* The values are CryptoTokenKit's (TKError.h), passed through unchanged. */
    assert_int_equal(SGTK_E_OBJECT_NOT_FOUND, -6);
    assert_int_equal(SGTK_E_AUTHENTICATION_NEEDED, -9);
    for (int e = -9; e <= 0; e++)
        assert_string_not_equal(sgtk_error_name((sgtk_error)e), "unknown");
    assert_string_equal(sgtk_error_name(SGTK_E_BAD_PARAMETER), "TKErrorCodeBadParameter");
    assert_string_equal(sgtk_error_name((sgtk_error)-10), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_algorithm_table), cmocka_unit_test(test_ecdsa_any_hash),
        cmocka_unit_test(test_digestinfo),      cmocka_unit_test(test_object_ids),
        cmocka_unit_test(test_names),           cmocka_unit_test(test_error_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
