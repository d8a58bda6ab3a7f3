/* Unit tests of API key and access token generation and parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/credentials.h"

static void test_apikey_roundtrip(void **state)
{
    char key[SRV_APIKEY_TEXT_MAX + 1], prefix[SRV_APIKEY_PREFIX_LEN + 1],
        p2[SRV_APIKEY_PREFIX_LEN + 1];
    uint8_t hash[32], h2[32];
    (void)state;
    assert_int_equal(srv_apikey_new(key, prefix, hash, NULL), SRV_OK);
    assert_int_equal(strncmp(key, "sgk_", 4), 0);
    assert_int_equal(strlen(key), 4 + 12 + 1 + 43);
    assert_true(srv_apikey_parse(key, p2, h2));
    assert_string_equal(prefix, p2);
    assert_memory_equal(hash, h2, 32);
    /* A different secret with the same prefix hashes differently. */
    key[20] = key[20] == 'A' ? 'B' : 'A';
    assert_true(srv_apikey_parse(key, p2, h2));
    assert_memory_not_equal(hash, h2, 32);
}

static void test_apikey_malformed(void **state)
{
    char prefix[SRV_APIKEY_PREFIX_LEN + 1];
    uint8_t hash[32];
    (void)state;
    assert_false(srv_apikey_parse("", prefix, hash));
    assert_false(srv_apikey_parse("sgk_", prefix, hash));
    assert_false(srv_apikey_parse("sgk_0123456789ab_short", prefix, hash));
    assert_false(srv_apikey_parse("sgx_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                  prefix, hash));
    assert_false(srv_apikey_parse("sgk_0123456789aG_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                  prefix, hash));
    assert_false(srv_apikey_parse("sgk_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
                                  prefix, hash));
    assert_true(srv_apikey_parse("sgk_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                 prefix, hash));
}

static void test_tokens(void **state)
{
    char t1[SRV_TOKEN_TEXT_MAX + 1], t2[SRV_TOKEN_TEXT_MAX + 1];
    uint8_t h1[32], h2[32], h3[32];
    (void)state;
    assert_int_equal(srv_token_new(t1, h1, NULL), SRV_OK);
    assert_int_equal(srv_token_new(t2, h2, NULL), SRV_OK);
    assert_string_not_equal(t1, t2);
    assert_true(srv_token_parse(t1, h3));
    assert_memory_equal(h1, h3, 32);
    assert_false(srv_token_parse("sgt_abc", h3));
    assert_false(srv_token_parse("Bearer x", h3));
    t1[10] = '!';
    assert_false(srv_token_parse(t1, h3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_apikey_roundtrip),
                                       cmocka_unit_test(test_apikey_malformed),
                                       cmocka_unit_test(test_tokens)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
