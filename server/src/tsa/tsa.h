/* The time-stamping authority (RFC 3161, with the ESS signingCertificateV2 of RFC 5816).
 *
 * tsa_req.c parses and checks a TimeStampReq; tsa_token.c builds the TSTInfo, has the HSM sign
 * its signed attributes with the TSA key (the private key never leaves the HSM; OpenSSL only
 * encodes), and assembles the CMS SignedData and the TimeStampResp; tsa_key.c makes the TSA key
 * and its certificate, issues serial numbers from the database and checks the clock;
 * tsa_verify.c checks a token offline (audit checkpoints). */
#ifndef SRV_TSA_H
#define SRV_TSA_H

#include <openssl/ts.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "../ca/ca.h"
#include "../hsm/sig_encoding.h"
#include "../store/db.h"
#include "../store/tsa_db.h"

#define SRV_TSA_QUERY_MAX  (16 * 1024) /* bytes of a TimeStampReq */
#define SRV_TSA_NONCE_MAX  64          /* bytes of a nonce's INTEGER content */
#define SRV_TSA_KEY_LABEL  "signum-tsa"
#define SRV_TSA_CERT_PEM   "tsa/tsa.crt" /* in the state directory, for relying parties */
#define SRV_TSA_POLICY_MAX 128
#define SRV_TSA_QUERY_TYPE "application/timestamp-query"
#define SRV_TSA_REPLY_TYPE "application/timestamp-reply"

/* PKIStatus and the PKIFailureInfo bits of RFC 3161 section 2.4.2. */
enum { SRV_TSA_GRANTED = 0, SRV_TSA_REJECTION = 2 };
enum {
    SRV_TSA_FAIL_BAD_ALG = 0,
    SRV_TSA_FAIL_BAD_REQUEST = 2,
    SRV_TSA_FAIL_BAD_DATA_FORMAT = 5,
    SRV_TSA_FAIL_TIME_NOT_AVAILABLE = 14,
    SRV_TSA_FAIL_UNACCEPTED_POLICY = 15,
    SRV_TSA_FAIL_UNACCEPTED_EXTENSION = 16,
    SRV_TSA_FAIL_SYSTEM_FAILURE = 25,
};
/* The name of a failure bit, as audit records and API.md spell it ("badAlg", ...). */
const char *srv_tsa_fail_name(int bit);

/* What the configuration asks of the TSA. */
typedef struct {
    const char *policy;   /* dotted OID */
    unsigned accuracy_ms; /* 1 .. 60000; below 1000 genTime carries milliseconds */
    int64_t max_skew_ms;  /* how far the clock may seem to go back before we refuse */
} srv_tsa_options;

typedef struct srv_tsa {
    srv_hsm *hsm;
    srv_tsa_key_row row; /* owns the SPKI and the certificate's DER */
    srv_hsm_key key;     /* points into row */
    X509 *cert;
    ASN1_OBJECT *policy;
    char policy_text[SRV_TSA_POLICY_MAX];
    unsigned accuracy_ms;
    int64_t max_skew_ms;
    char cert_sha256[65]; /* SHA-256 of the certificate's DER, hex */
} srv_tsa;

/* Generates the TSA key in the HSM (sensitive, non-extractable, sign-only), has the built-in CA
 * issue its certificate (critical EKU timeStamping only) and stores both, inside the caller's
 * transaction; the caller appends the `tsa.key.create` record (and on failure destroys the
 * key with srv_hsm_destroy_key). */
srv_status srv_tsa_key_create(srv_hsm *hsm, const srv_ca *ca, srv_db *db, srv_key_type type,
                              const char *common_name, srv_tsa_key_row *out, srv_error *err);

/* Makes the TSA from its key row (taken over: row is cleared) and the options. */
srv_status srv_tsa_open(srv_hsm *hsm, srv_tsa_key_row *row, const srv_tsa_options *opts,
                        srv_tsa **out, srv_error *err);
void srv_tsa_free(srv_tsa *tsa);

/* A checked TimeStampReq. */
typedef struct {
    TS_MSG_IMPRINT *imprint; /* as the client sent it (echoed in the TSTInfo) */
    const EVP_MD *md;
    ASN1_INTEGER *nonce; /* NULL if none */
    int cert_req;
    char hash_name[16];
    char imprint_hex[2 * 64 + 1];
} srv_tsa_request;
void srv_tsa_request_clear(srv_tsa_request *req);

/* Parses and checks a DER TimeStampReq against the TSA's policy. On refusal returns -1 with
 * *fail_bit (SRV_TSA_FAIL_*) and why filled in; 0 when acceptable. */
int srv_tsa_parse_request(const srv_tsa *tsa, const uint8_t *der, size_t len, srv_tsa_request *out,
                          int *fail_bit, char *why, size_t why_len);

/* For a token over data the server makes itself (checkpoints): SHA-256 of data. */
srv_status srv_tsa_request_for(const uint8_t *data, size_t len, srv_tsa_request *out,
                               srv_error *err);

/* Inside a writer transaction: checks the clock against the newest token issued (the clock
 * went back by more than max_skew: *clock_bad = 1 and SRV_E_UNAVAILABLE) and stores the
 * token's row, which gives its serial number and genTime. */
srv_status srv_tsa_reserve(const srv_tsa *tsa, srv_db *db, const srv_tsa_request *req,
                           const char *purpose, const char *actor, int64_t *serial,
                           int64_t *gen_time_ms, int *clock_bad, srv_error *err);

/* Builds and signs (in the HSM) the TimeStampToken: a DER ContentInfo (malloc'd). */
srv_status srv_tsa_make_token(const srv_tsa *tsa, const srv_tsa_request *req, int64_t serial,
                              int64_t gen_time_ms, uint8_t **der, size_t *der_len, srv_error *err);

/* srv_tsa_reserve and srv_tsa_make_token in one, inside the caller's transaction. */
srv_status srv_tsa_stamp(const srv_tsa *tsa, srv_db *db, const uint8_t *data, size_t len,
                         const char *purpose, uint8_t **token, size_t *token_len, srv_error *err);

/* A DER TimeStampResp (malloc'd): status granted with the token, or rejection with the
 * failure bit and a text (fail_bit < 0: none). */
srv_status srv_tsa_response(int status, int fail_bit, const char *text, const uint8_t *token,
                            size_t token_len, uint8_t **der, size_t *der_len, srv_error *err);

/* Checks a TimeStampToken offline: CMS signature, signer certificate chaining to ca with the
 * timeStamping EKU, ESS signingCertificate, and a messageImprint equal to SHA-256(data).
 * Returns NULL if good, else why not. *gen_time_ms and signer_sha256 (SHA-256 of the signer's
 * certificate, hex) are set when good. */
const char *srv_tsa_check_token(const uint8_t *token, size_t token_len, const uint8_t *data,
                                size_t data_len, X509 *ca, int64_t *gen_time_ms,
                                char signer_sha256[65]);

#endif
