/* Unit tests of the HSM layer against a real throwaway SoftHSMv2 token: token set-up, key
 * generation attributes, signing, and transparent recovery when every session is lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca.h"
#include "common/util.h"
#include "hsm/hsm.h"
#include "hsm/hsm_internal.h"
#include "test_util.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

static srv_hsm *hsm;

static int verify_sig(const uint8_t *spki, size_t spki_len, srv_mech mech, const uint8_t *digest,
                      size_t dlen, const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new(pkey, NULL) : NULL;
    uint8_t der[160];
    size_t der_len = sizeof(der);
    int ok = 0;

    if (!ctx || EVP_PKEY_verify_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0)
        goto out;
    if (mech == SRV_MECH_RSA_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) <= 0))
        goto out;
    if (mech == SRV_MECH_ECDSA) {
        if (srv_ecdsa_raw_to_der(sig, sig_len, der, &der_len, NULL) != SRV_OK)
            goto out;
        sig = der;
        sig_len = der_len;
    }
    ok = EVP_PKEY_verify(ctx, sig, sig_len, digest, dlen) == 1;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

static void sign_and_verify(srv_key_type type, srv_mech mech, const uint8_t id[16],
                            const uint8_t *spki, size_t spki_len)
{
    uint8_t digest[32], data[128], sig[SRV_MAX_SIG_LEN];
    size_t data_len = sizeof(data), sig_len = sizeof(sig);
    srv_error err;

    srv_sha256("message", 7, digest);
    if (mech == SRV_MECH_RSA_PKCS1)
        assert_int_equal(srv_digestinfo(SRV_HASH_SHA256, digest, 32, data, &data_len, NULL),
                         SRV_OK);
    else {
        memcpy(data, digest, 32);
        data_len = 32;
    }
    if (srv_hsm_sign(hsm, id, 16, mech, SRV_HASH_SHA256, 32, data, data_len, sig, &sig_len, &err) !=
        SRV_OK)
        fail_msg("sign failed: %s", err.message);
    assert_int_equal(sig_len, srv_key_type_sig_len(type));
    assert_true(verify_sig(spki, spki_len, mech, digest, 32, sig, sig_len));
    /* A flipped digest must not verify: the check above is not vacuous. */
    digest[0] ^= 1;
    assert_false(verify_sig(spki, spki_len, mech, digest, 32, sig, sig_len));
}

static void test_generate_and_sign(void **state)
{
    static const struct {
        srv_key_type type;
        srv_mech mech;
    } cases[] = {{SRV_KEY_RSA_2048, SRV_MECH_RSA_PKCS1},
                 {SRV_KEY_RSA_2048, SRV_MECH_RSA_PSS},
                 {SRV_KEY_EC_P256, SRV_MECH_ECDSA},
                 {SRV_KEY_EC_P384, SRV_MECH_ECDSA}};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t id[16], *spki = NULL;
        size_t spki_len = 0;
        memset(id, (int)(0x10 + i), sizeof(id));
        assert_int_equal(
            srv_hsm_generate_key(hsm, cases[i].type, id, 16, "unit", &spki, &spki_len, NULL),
            SRV_OK);
        sign_and_verify(cases[i].type, cases[i].mech, id, spki, spki_len);
        free(spki);
    }
}

static void test_recovers_lost_sessions(void **state)
{
    uint8_t id[16], *spki = NULL;
    size_t spki_len = 0;
    unsigned long before;
    (void)state;
    memset(id, 0x42, sizeof(id));
    assert_int_equal(
        srv_hsm_generate_key(hsm, SRV_KEY_EC_P256, id, 16, "recover", &spki, &spki_len, NULL),
        SRV_OK);
    before = srv_hsm_reopen_count(hsm);
    /* Every session the pool holds dies, as when an HSM connection drops. */
    srv_hsm_drop_sessions(hsm);
    for (int i = 0; i < 10; i++)
        sign_and_verify(SRV_KEY_EC_P256, SRV_MECH_ECDSA, id, spki, spki_len);
    assert_true(srv_hsm_reopen_count(hsm) > before);
    free(spki);
}

static void test_destroy_and_unknown_key(void **state)
{
    uint8_t id[16], *spki = NULL, sig[SRV_MAX_SIG_LEN], digest[32] = {0};
    size_t spki_len = 0, sig_len = sizeof(sig);
    srv_error err;
    (void)state;
    memset(id, 0x77, sizeof(id));
    assert_int_equal(
        srv_hsm_generate_key(hsm, SRV_KEY_EC_P256, id, 16, "gone", &spki, &spki_len, NULL), SRV_OK);
    assert_int_equal(srv_hsm_destroy_key(hsm, id, 16, &err), SRV_OK);
    assert_int_equal(srv_hsm_sign(hsm, id, 16, SRV_MECH_ECDSA, SRV_HASH_SHA256, 0, digest, 32, sig,
                                  &sig_len, &err),
                     SRV_E_KEY_NOT_FOUND);
    free(spki);
}

/* The module itself forgets us (CKR_CRYPTOKI_NOT_INITIALIZED on every call, as after a lost
 * connection to a networked HSM): the answer is "unavailable", never "no such key", and the
 * layer re-initialises the module on its own. */
static void test_recovers_lost_module(void **state)
{
    uint8_t id[16], *spki = NULL, sig[SRV_MAX_SIG_LEN], digest[32] = {0};
    size_t spki_len = 0, sig_len = sizeof(sig);
    unsigned long before;
    char detail[160];
    srv_error err;
    srv_status st;
    uint64_t deadline;
    (void)state;
    memset(id, 0x55, sizeof(id));
    assert_int_equal(
        srv_hsm_generate_key(hsm, SRV_KEY_EC_P256, id, 16, "module", &spki, &spki_len, NULL),
        SRV_OK);
    sign_and_verify(SRV_KEY_EC_P256, SRV_MECH_ECDSA, id, spki, spki_len);
    before = srv_hsm_reinit_count(hsm);
    srv_hsm_drop_module(hsm);
    st = srv_hsm_sign(hsm, id, 16, SRV_MECH_ECDSA, SRV_HASH_SHA256, 0, digest, 32, sig, &sig_len,
                      &err);
    /* Either the recovery already won the race, or the caller hears "unavailable". */
    if (st != SRV_OK) {
        assert_int_equal(st, SRV_E_HSM_UNAVAILABLE);
        assert_string_equal(srv_status_code(st), "hsm_unavailable");
        assert_int_equal(srv_status_http(st), 503);
    }
    deadline = srv_monotonic_us() + 10000000u;
    while (!srv_hsm_available(hsm) && srv_monotonic_us() < deadline)
        usleep(10000);
    assert_true(srv_hsm_available(hsm));
    assert_int_equal(srv_hsm_health(hsm, detail, sizeof(detail)), SRV_OK);
    /* The cached key handle of the old connection is looked up again. */
    sign_and_verify(SRV_KEY_EC_P256, SRV_MECH_ECDSA, id, spki, spki_len);
    assert_true(srv_hsm_reinit_count(hsm) > before);
    free(spki);
}

/* What a PKCS#11 error becomes: the HSM failing is 503 hsm_unavailable, a refusal 502. */
static void test_error_classes(void **state)
{
    static const CK_RV down[] = {CKR_DEVICE_ERROR,           CKR_DEVICE_MEMORY,
                                 CKR_DEVICE_REMOVED,         CKR_SESSION_CLOSED,
                                 CKR_SESSION_HANDLE_INVALID, CKR_TOKEN_NOT_PRESENT,
                                 CKR_GENERAL_ERROR,          CKR_CRYPTOKI_NOT_INITIALIZED,
                                 CKR_USER_NOT_LOGGED_IN,     CKR_SLOT_ID_INVALID};
    static const CK_RV refused[] = {CKR_MECHANISM_INVALID, CKR_KEY_TYPE_INCONSISTENT,
                                    CKR_DATA_LEN_RANGE, CKR_PIN_INCORRECT, CKR_ARGUMENTS_BAD};
    srv_error err;
    (void)state;
    for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++) {
        assert_true(hsm_rv_unavailable(down[i]));
        assert_int_equal(hsm_fail(&err, "C_Sign", down[i]), SRV_E_HSM_UNAVAILABLE);
        assert_int_equal(srv_status_http(err.status), 503);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_false(hsm_rv_unavailable(refused[i]));
        assert_int_equal(hsm_fail(&err, "C_Sign", refused[i]), SRV_E_HSM);
        assert_int_equal(srv_status_http(err.status), 502);
    }
}

static void test_health(void **state)
{
    char detail[128];
    (void)state;
    assert_int_equal(srv_hsm_health(hsm, detail, sizeof(detail)), SRV_OK);
    assert_non_null(strstr(detail, "token present"));
}

static int setup(void **state)
{
    char conf[PATH_MAX + 32], tokens[PATH_MAX + 32], text[PATH_MAX + 128];
    const srv_hsm_config cfg = {MODULE, "unit", "1234", 4};
    srv_error err;
    FILE *f;
    (void)state;

    snprintf(tokens, sizeof(tokens), "%s/tokens", test_dir);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", test_dir);
    mkdir(tokens, 0700);
    snprintf(text, sizeof(text), "directories.tokendir = %s\nobjectstore.backend = file\n", tokens);
    f = fopen(conf, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        return -1;
    setenv("SOFTHSM2_CONF", conf, 1);
    if (srv_hsm_init_token(MODULE, "unit", "12345678", "1234", &err) != SRV_OK ||
        srv_hsm_open(&cfg, &hsm, &err) != SRV_OK) {
        fprintf(stderr, "HSM setup failed: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    srv_hsm_close(hsm);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_sign),
        cmocka_unit_test(test_recovers_lost_sessions),
        cmocka_unit_test(test_destroy_and_unknown_key),
        cmocka_unit_test(test_recovers_lost_module),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_health),
    };
    test_dir_make();
    return cmocka_run_group_tests(tests, setup, teardown);
}
