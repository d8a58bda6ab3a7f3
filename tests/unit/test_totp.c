/* TOTP (RFC 6238 appendix B vectors for SHA-1, last 6 digits), base32 (RFC 4648 section 10),
 * code parsing, and the matching window: skew of one step each way, codes usable once. The
 * HMAC is computed here with OpenSSL, as the HSM does in the server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/totp.h"

static const uint8_t rfc_secret[] = "12345678901234567890";

static srv_status openssl_hmac(void *ctx, const uint8_t counter[8], uint8_t out[20], srv_error *err)
{
    unsigned len = 20;
    (void)ctx;
    (void)err;
    HMAC(EVP_sha1(), rfc_secret, 20, counter, 8, out, &len);
    return SRV_OK;
}

static uint32_t code_at(uint64_t t)
{
    uint8_t counter[8], mac[20];
    srv_totp_counter(t / SRV_TOTP_PERIOD, counter);
    openssl_hmac(NULL, counter, mac, NULL);
    return srv_totp_truncate(mac);
}

static void test_rfc6238_vectors(void **state)
{
    (void)state;
    assert_int_equal(code_at(59), 287082);          /* 94287082 */
    assert_int_equal(code_at(1111111109), 81804);   /* 07081804 */
    assert_int_equal(code_at(1111111111), 50471);   /* 14050471 */
    assert_int_equal(code_at(1234567890), 5924);    /* 89005924 */
    assert_int_equal(code_at(2000000000), 279037);  /* 69279037 */
    assert_int_equal(code_at(20000000000), 353130); /* 65353130 */
}

static void test_base32(void **state)
{
    char out[SRV_TOTP_BASE32_MAX];
    (void)state;
    srv_base32_encode(rfc_secret, 20, out, sizeof(out));
    assert_string_equal(out, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    srv_base32_encode((const uint8_t *)"foobar", 6, out, sizeof(out));
    assert_string_equal(out, "MZXW6YTBOI"); /* RFC 4648 section 10, unpadded */
    srv_base32_encode((const uint8_t *)"f", 1, out, sizeof(out));
    assert_string_equal(out, "MY");
    srv_base32_encode((const uint8_t *)"foobar", 6, out, 4); /* truncated, still terminated */
    assert_string_equal(out, "MZX");
}

static void test_parse(void **state)
{
    uint32_t c = 0;
    (void)state;
    assert_true(srv_totp_parse("005924", &c));
    assert_int_equal(c, 5924);
    assert_false(srv_totp_parse("5924", &c));
    assert_false(srv_totp_parse("0059240", &c));
    assert_false(srv_totp_parse("00 924", &c));
    assert_false(srv_totp_parse("-05924", &c));
    assert_false(srv_totp_parse("", &c));
    assert_false(srv_totp_parse(NULL, &c));
}

static void test_window_and_replay(void **state)
{
    uint64_t t = 1234567890, now = t / SRV_TOTP_PERIOD, step = 0;
    int replayed = 0;
    srv_error err;
    (void)state;
    /* The current step, and one step of skew either way. */
    assert_int_equal(srv_totp_match(openssl_hmac, NULL, now, 0, code_at(t), &step, &replayed, &err),
                     SRV_OK);
    assert_int_equal(step, now);
    assert_int_equal(
        srv_totp_match(openssl_hmac, NULL, now, 0, code_at(t - 30), &step, &replayed, &err),
        SRV_OK);
    assert_int_equal(step, now - 1);
    assert_int_equal(
        srv_totp_match(openssl_hmac, NULL, now, 0, code_at(t + 30), &step, &replayed, &err),
        SRV_OK);
    assert_int_equal(step, now + 1);
    /* Two steps away: refused. */
    assert_int_equal(
        srv_totp_match(openssl_hmac, NULL, now, 0, code_at(t + 60), &step, &replayed, &err),
        SRV_E_NOT_FOUND);
    assert_false(replayed);
    /* Once used, that step and every earlier one are spent. */
    assert_int_equal(
        srv_totp_match(openssl_hmac, NULL, now, now, code_at(t), &step, &replayed, &err),
        SRV_E_NOT_FOUND);
    assert_true(replayed);
    assert_int_equal(
        srv_totp_match(openssl_hmac, NULL, now, now, code_at(t + 30), &step, &replayed, &err),
        SRV_OK);
    assert_int_equal(step, now + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6238_vectors),
        cmocka_unit_test(test_base32),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_window_and_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
