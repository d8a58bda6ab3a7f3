/* The TSA's TimeStampReq checks (srv_tsa_parse_request in server/src/tsa/tsa_req.c, behind the
 * unauthenticated POST /tsa) and the TimeStampResp that answers a refusal.
 *
 * Properties: an accepted request has a SHA-2 imprint of the right length and a nonce within
 * the cap; a refusal names one of the failure bits RFC 3161 defines, and its TimeStampResp (whose
 * text may quote the request's policy OID) decodes with OpenSSL and re-encodes to the same
 * bytes. */
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ts.h>
#include <string.h>

#include "fuzz.h"
#include "tsa/tsa.h"

static srv_tsa tsa;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tsa.policy = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
    snprintf(tsa.policy_text, sizeof(tsa.policy_text), "1.3.6.1.4.1.99999.1");
    if (!tsa.policy)
        abort();
    return 0;
}

static void check_refusal(int bit, const char *why)
{
    uint8_t *der = NULL;
    unsigned char *again = NULL;
    size_t len = 0;
    const unsigned char *p;
    TS_RESP *resp;
    srv_error err;
    int n;

    FUZZ_CHECK(bit == SRV_TSA_FAIL_BAD_ALG || bit == SRV_TSA_FAIL_BAD_REQUEST ||
               bit == SRV_TSA_FAIL_BAD_DATA_FORMAT || bit == SRV_TSA_FAIL_UNACCEPTED_POLICY ||
               bit == SRV_TSA_FAIL_UNACCEPTED_EXTENSION || bit == SRV_TSA_FAIL_SYSTEM_FAILURE);
    FUZZ_CHECK(srv_tsa_response(SRV_TSA_REJECTION, bit, why, NULL, 0, &der, &len, &err) == SRV_OK);
    p = der;
    resp = d2i_TS_RESP(NULL, &p, (long)len);
    FUZZ_CHECK(resp && p == der + len);
    FUZZ_CHECK(ASN1_BIT_STRING_get_bit(
        TS_STATUS_INFO_get0_failure_info(TS_RESP_get_status_info(resp)), bit));
    n = i2d_TS_RESP(resp, &again);
    FUZZ_CHECK(n == (int)len && memcmp(again, der, len) == 0);
    OPENSSL_free(again);
    TS_RESP_free(resp);
    free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    srv_tsa_request req;
    char why[200];
    int bit = -1;

    if (srv_tsa_parse_request(&tsa, data, size, &req, &bit, why, sizeof(why)) == 0) {
        const ASN1_OCTET_STRING *msg = TS_MSG_IMPRINT_get_msg(req.imprint);
        FUZZ_CHECK(req.md && ASN1_STRING_length(msg) == EVP_MD_get_size(req.md));
        FUZZ_CHECK(!req.nonce || ASN1_STRING_length(req.nonce) <= SRV_TSA_NONCE_MAX);
        FUZZ_CHECK(strlen(req.imprint_hex) == 2 * (size_t)EVP_MD_get_size(req.md));
        srv_tsa_request_clear(&req);
    } else {
        FUZZ_CHECK(req.imprint == NULL && req.nonce == NULL);
        check_refusal(bit, why);
    }
    ERR_clear_error();
    return 0;
}
