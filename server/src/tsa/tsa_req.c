/* Parsing and checking a TimeStampReq (RFC 3161 section 2.4.1). Anyone who can reach the TSA
 * sends us these bytes: every refusal names the PKIFailureInfo bit the RFC asks for. */
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/util.h"
#include "tsa.h"

const char *srv_tsa_fail_name(int bit)
{
    switch (bit) {
    case SRV_TSA_FAIL_BAD_ALG: return "badAlg";
    case SRV_TSA_FAIL_BAD_REQUEST: return "badRequest";
    case SRV_TSA_FAIL_BAD_DATA_FORMAT: return "badDataFormat";
    case SRV_TSA_FAIL_TIME_NOT_AVAILABLE: return "timeNotAvailable";
    case SRV_TSA_FAIL_UNACCEPTED_POLICY: return "unacceptedPolicy";
    case SRV_TSA_FAIL_UNACCEPTED_EXTENSION: return "unacceptedExtension";
    case SRV_TSA_FAIL_SYSTEM_FAILURE: return "systemFailure";
    default: return "unknown";
    }
}

void srv_tsa_request_clear(srv_tsa_request *req)
{
    TS_MSG_IMPRINT_free(req->imprint);
    ASN1_INTEGER_free(req->nonce);
    memset(req, 0, sizeof(*req));
}

static int refuse(int *fail_bit, int bit, char *why, size_t why_len, const char *text)
{
    *fail_bit = bit;
    snprintf(why, why_len, "%s", text);
    return -1;
}

/* SHA-2 only: SHA-1 imprints are collision-prone, so a token over one proves little. */
static const EVP_MD *accepted_md(int nid, const char **name)
{
    switch (nid) {
    case NID_sha256: *name = "sha256"; return EVP_sha256();
    case NID_sha384: *name = "sha384"; return EVP_sha384();
    case NID_sha512: *name = "sha512"; return EVP_sha512();
    default: return NULL;
    }
}

int srv_tsa_parse_request(const srv_tsa *tsa, const uint8_t *der, size_t len, srv_tsa_request *out,
                          int *fail_bit, char *why, size_t why_len)
{
    const unsigned char *p = der;
    TS_REQ *req = NULL;
    TS_MSG_IMPRINT *mi;
    X509_ALGOR *alg;
    ASN1_OCTET_STRING *msg;
    const ASN1_OBJECT *policy;
    const ASN1_INTEGER *nonce;
    const char *name = NULL;
    int rc = -1, ptype = V_ASN1_UNDEF;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > SRV_TSA_QUERY_MAX) {
        refuse(fail_bit, SRV_TSA_FAIL_BAD_DATA_FORMAT, why, why_len,
               len ? "the query is larger than 16 KiB" : "the query is empty");
        goto out;
    }
    req = d2i_TS_REQ(NULL, &p, (long)len);
    if (!req || p != der + len) {
        refuse(fail_bit, SRV_TSA_FAIL_BAD_DATA_FORMAT, why, why_len,
               req ? "trailing bytes after the TimeStampReq"
                   : "the query is not a DER TimeStampReq");
        goto out;
    }
    if (TS_REQ_get_version(req) != 1) {
        refuse(fail_bit, SRV_TSA_FAIL_BAD_REQUEST, why, why_len, "TimeStampReq version is not 1");
        goto out;
    }
    mi = TS_REQ_get_msg_imprint(req);
    alg = mi ? TS_MSG_IMPRINT_get_algo(mi) : NULL;
    msg = mi ? TS_MSG_IMPRINT_get_msg(mi) : NULL;
    if (!alg || !msg) {
        refuse(fail_bit, SRV_TSA_FAIL_BAD_DATA_FORMAT, why, why_len, "no messageImprint");
        goto out;
    }
    if (OBJ_obj2nid(alg->algorithm) == NID_sha1) {
        refuse(fail_bit, SRV_TSA_FAIL_BAD_ALG, why, why_len,
               "SHA-1 message imprints are refused; use sha256, sha384 or sha512");
        goto out;
    }
    out->md = accepted_md(OBJ_obj2nid(alg->algorithm), &name);
    if (alg->parameter)
        ptype = ASN1_TYPE_get(alg->parameter);
    if (!out->md || (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)) {
        refuse(fail_bit, SRV_TSA_FAIL_BAD_ALG, why, why_len,
               "unsupported hash algorithm; use sha256, sha384 or sha512");
        goto out;
    }
    if (ASN1_STRING_length(msg) != EVP_MD_get_size(out->md)) {
        snprintf(why, why_len, "a %s imprint is %d bytes, not %d", name, EVP_MD_get_size(out->md),
                 ASN1_STRING_length(msg));
        *fail_bit = SRV_TSA_FAIL_BAD_DATA_FORMAT;
        goto out;
    }
    policy = TS_REQ_get_policy_id(req);
    if (policy && OBJ_cmp(policy, tsa->policy) != 0) {
        char text[SRV_TSA_POLICY_MAX];
        if (OBJ_obj2txt(text, sizeof(text), policy, 1) <= 0)
            snprintf(text, sizeof(text), "?");
        snprintf(why, why_len, "policy %s is not this TSA's (%s)", text, tsa->policy_text);
        *fail_bit = SRV_TSA_FAIL_UNACCEPTED_POLICY;
        goto out;
    }
    if (TS_REQ_get_exts(req) && sk_X509_EXTENSION_num(TS_REQ_get_exts(req)) > 0) {
        refuse(fail_bit, SRV_TSA_FAIL_UNACCEPTED_EXTENSION, why, why_len,
               "this TSA accepts no request extensions");
        goto out;
    }
    nonce = TS_REQ_get_nonce(req);
    if (nonce && ASN1_STRING_length(nonce) > SRV_TSA_NONCE_MAX) {
        refuse(fail_bit, SRV_TSA_FAIL_BAD_DATA_FORMAT, why, why_len,
               "the nonce is longer than 64 bytes");
        goto out;
    }
    out->imprint = TS_MSG_IMPRINT_dup(mi);
    out->nonce = nonce ? ASN1_INTEGER_dup(nonce) : NULL;
    if (!out->imprint || (nonce && !out->nonce)) {
        refuse(fail_bit, SRV_TSA_FAIL_SYSTEM_FAILURE, why, why_len, "out of memory");
        goto out;
    }
    out->cert_req = TS_REQ_get_cert_req(req);
    snprintf(out->hash_name, sizeof(out->hash_name), "%s", name);
    srv_hex_encode(ASN1_STRING_get0_data(msg), (size_t)ASN1_STRING_length(msg), out->imprint_hex);
    rc = 0;
out:
    if (rc != 0) {
        srv_tsa_request_clear(out);
        ERR_clear_error();
    }
    TS_REQ_free(req);
    return rc;
}

srv_status srv_tsa_request_for(const uint8_t *data, size_t len, srv_tsa_request *out,
                               srv_error *err)
{
    uint8_t d[SRV_SHA256_LEN];
    X509_ALGOR *alg = X509_ALGOR_new();

    memset(out, 0, sizeof(*out));
    srv_sha256(data, len, d);
    out->imprint = TS_MSG_IMPRINT_new();
    out->md = EVP_sha256();
    if (!alg || !out->imprint ||
        !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_UNDEF, NULL) ||
        !TS_MSG_IMPRINT_set_algo(out->imprint, alg) ||
        !TS_MSG_IMPRINT_set_msg(out->imprint, d, sizeof(d))) {
        X509_ALGOR_free(alg);
        srv_tsa_request_clear(out);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    X509_ALGOR_free(alg); /* set_algo copied it */
    out->cert_req = 1;    /* a checkpoint's token must verify on its own */
    snprintf(out->hash_name, sizeof(out->hash_name), "sha256");
    srv_hex_encode(d, sizeof(d), out->imprint_hex);
    return SRV_OK;
}
