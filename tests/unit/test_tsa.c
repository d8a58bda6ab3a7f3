/* The TSA's request checks (tsa/tsa_req.c) and its TimeStampResp encoding (tsa/tsa_token.c),
 * the latter read back by OpenSSL's own decoder: every PKIFailureInfo bit we send must be the
 * one OpenSSL sees, the status text too, and the DER must be exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/objects.h>
#include <openssl/ts.h>

#include "tsa/tsa.h"

static srv_tsa tsa;

static int setup(void **state)
{
    (void)state;
    memset(&tsa, 0, sizeof(tsa));
    tsa.policy = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
    snprintf(tsa.policy_text, sizeof(tsa.policy_text), "1.3.6.1.4.1.99999.1");
    return tsa.policy ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ASN1_OBJECT_free(tsa.policy);
    return 0;
}

/* A TimeStampReq made by OpenSSL's encoder. */
static unsigned char *make_req(int nid, size_t imprint_len, const char *policy, int nonce,
                               int cert_req, int *len)
{
    TS_REQ *req = TS_REQ_new();
    TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_INTEGER *n = ASN1_INTEGER_new();
    ASN1_OBJECT *pol = policy ? OBJ_txt2obj(policy, 1) : NULL;
    unsigned char imprint[64] = {1, 2, 3}, *der = NULL;

    assert_true(req && mi && alg && n);
    assert_true(X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_NULL, NULL));
    assert_true(TS_MSG_IMPRINT_set_algo(mi, alg));
    assert_true(TS_MSG_IMPRINT_set_msg(mi, imprint, (int)imprint_len));
    assert_true(TS_REQ_set_version(req, 1));
    assert_true(TS_REQ_set_msg_imprint(req, mi));
    if (pol)
        assert_true(TS_REQ_set_policy_id(req, pol));
    if (nonce) {
        assert_true(ASN1_INTEGER_set(n, nonce));
        assert_true(TS_REQ_set_nonce(req, n));
    }
    assert_true(TS_REQ_set_cert_req(req, cert_req));
    *len = i2d_TS_REQ(req, &der);
    assert_true(*len > 0);
    ASN1_OBJECT_free(pol);
    ASN1_INTEGER_free(n);
    X509_ALGOR_free(alg);
    TS_MSG_IMPRINT_free(mi);
    TS_REQ_free(req);
    return der;
}

static int parse(const unsigned char *der, int len, srv_tsa_request *out, int *bit)
{
    char why[200];
    *bit = -1;
    return srv_tsa_parse_request(&tsa, der, (size_t)len, out, bit, why, sizeof(why));
}

static void test_accepts_sha2_with_nonce_and_policy(void **state)
{
    static const struct {
        int nid;
        size_t len;
        const char *name;
    } algs[] = {{NID_sha256, 32, "sha256"}, {NID_sha384, 48, "sha384"}, {NID_sha512, 64, "sha512"}};
    (void)state;
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        srv_tsa_request req;
        int len, bit;
        unsigned char *der =
            make_req(algs[i].nid, algs[i].len, "1.3.6.1.4.1.99999.1", 4242, (int)(i % 2), &len);
        assert_int_equal(parse(der, len, &req, &bit), 0);
        assert_string_equal(req.hash_name, algs[i].name);
        assert_int_equal(req.cert_req, (int)(i % 2));
        assert_non_null(req.nonce);
        assert_int_equal(ASN1_INTEGER_get(req.nonce), 4242);
        assert_int_equal(strlen(req.imprint_hex), 2 * algs[i].len);
        srv_tsa_request_clear(&req);
        OPENSSL_free(der);
    }
}

static void test_refusals(void **state)
{
    srv_tsa_request req;
    unsigned char *der, junk[40] = {0x30, 0x03, 0x02, 0x01};
    int len, bit;
    (void)state;

    der = make_req(NID_sha1, 20, NULL, 0, 0, &len);
    assert_int_equal(parse(der, len, &req, &bit), -1);
    assert_int_equal(bit, SRV_TSA_FAIL_BAD_ALG);
    OPENSSL_free(der);

    der = make_req(NID_md5, 16, NULL, 0, 0, &len);
    assert_int_equal(parse(der, len, &req, &bit), -1);
    assert_int_equal(bit, SRV_TSA_FAIL_BAD_ALG);
    OPENSSL_free(der);

    der = make_req(NID_sha256, 31, NULL, 0, 0, &len);
    assert_int_equal(parse(der, len, &req, &bit), -1);
    assert_int_equal(bit, SRV_TSA_FAIL_BAD_DATA_FORMAT);
    OPENSSL_free(der);

    der = make_req(NID_sha256, 32, "1.2.3.4", 0, 0, &len);
    assert_int_equal(parse(der, len, &req, &bit), -1);
    assert_int_equal(bit, SRV_TSA_FAIL_UNACCEPTED_POLICY);
    /* Every proper prefix is refused as bad data, never read past its end. */
    for (int cut = 0; cut < len; cut++) {
        assert_int_equal(parse(der, cut, &req, &bit), -1);
        assert_int_equal(bit, SRV_TSA_FAIL_BAD_DATA_FORMAT);
    }
    OPENSSL_free(der);

    assert_int_equal(parse(junk, sizeof(junk), &req, &bit), -1);
    assert_int_equal(bit, SRV_TSA_FAIL_BAD_DATA_FORMAT);
    assert_null(req.imprint);
}

/* Our TimeStampResp, decoded by OpenSSL: status, text and each failure bit. */
static void test_response_encoding(void **state)
{
    static const int bits[] = {SRV_TSA_FAIL_BAD_ALG,           SRV_TSA_FAIL_BAD_REQUEST,
                               SRV_TSA_FAIL_BAD_DATA_FORMAT,   SRV_TSA_FAIL_TIME_NOT_AVAILABLE,
                               SRV_TSA_FAIL_UNACCEPTED_POLICY, SRV_TSA_FAIL_UNACCEPTED_EXTENSION,
                               SRV_TSA_FAIL_SYSTEM_FAILURE};
    (void)state;
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        uint8_t *der = NULL, *again = NULL;
        size_t len = 0;
        const unsigned char *p;
        TS_RESP *resp;
        TS_STATUS_INFO *si;
        const ASN1_BIT_STRING *fi;
        srv_error err;
        int n;

        assert_int_equal(
            srv_tsa_response(SRV_TSA_REJECTION, bits[i], "why not", NULL, 0, &der, &len, &err),
            SRV_OK);
        p = der;
        resp = d2i_TS_RESP(NULL, &p, (long)len);
        assert_non_null(resp);
        assert_ptr_equal(p, der + len);
        si = TS_RESP_get_status_info(resp);
        assert_int_equal(ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(si)), 2);
        fi = TS_STATUS_INFO_get0_failure_info(si);
        assert_non_null(fi);
        for (int b = 0; b < 32; b++)
            assert_int_equal(ASN1_BIT_STRING_get_bit(fi, b), b == bits[i]);
        assert_int_equal(sk_ASN1_UTF8STRING_num(TS_STATUS_INFO_get0_text(si)), 1);
        assert_null(TS_RESP_get_token(resp));
        /* DER: OpenSSL re-encodes it to the very same bytes. */
        n = i2d_TS_RESP(resp, &again);
        assert_int_equal(n, (int)len);
        assert_memory_equal(again, der, len);
        OPENSSL_free(again);
        TS_RESP_free(resp);
        free(der);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_sha2_with_nonce_and_policy),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_response_encoding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
