/* The built-in CA and certificate work for keys that live in the HSM: certificates and CSRs
 * are assembled with OpenSSL, and their to-be-signed bytes are signed by the HSM. */
#ifndef SRV_CA_H
#define SRV_CA_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../hsm/sig_encoding.h"

/* The signer of issued certificates: its HSM key and its certificate. */
typedef struct {
    srv_hsm *hsm;
    srv_hsm_key key;
    X509 *cert;
} srv_ca;

typedef enum {
    SRV_CERT_CA,          /* self-signed root: basicConstraints CA:TRUE, keyCertSign, cRLSign */
    SRV_CERT_CODESIGNING, /* leaf: digitalSignature, EKU codeSigning */
    SRV_CERT_TLS_SERVER,  /* leaf: digitalSignature, keyEncipherment (RSA), EKU serverAuth */
    SRV_CERT_TLS_CLIENT,  /* leaf: digitalSignature, EKU clientAuth */
    SRV_CERT_TIMESTAMPING /* leaf: digitalSignature, critical EKU timeStamping only (RFC 3161) */
} srv_cert_profile;

typedef struct {
    srv_cert_profile profile;
    const char *common_name;         /* required, at most 64 characters */
    const char *organization;        /* optional */
    unsigned validity_days;          /* 1 .. 3650 */
    const char *const *dns_names;    /* subjectAltName DNS entries, NULL-terminated, optional */
    const char *const *ip_addresses; /* subjectAltName IP entries, NULL-terminated, optional */
    const char *crl_url;             /* cRLDistributionPoints URI, optional */
} srv_cert_request;

/* Makes the self-signed CA certificate for `key` (profile must be SRV_CERT_CA). */
srv_status srv_ca_self_sign(srv_hsm *hsm, const srv_hsm_key *key, const srv_cert_request *req,
                            X509 **out, srv_error *err);

/* Issues a certificate for the public key `subject_spki` (DER SPKI) signed by the CA.
 * Serial numbers are 128-bit random; subjectKeyIdentifier and authorityKeyIdentifier set. */
srv_status srv_ca_issue(const srv_ca *ca, const uint8_t *subject_spki, size_t subject_spki_len,
                        const srv_cert_request *req, X509 **out, srv_error *err);

/* Makes a PKCS#10 CSR for an HSM key, signed by that key in the HSM. */
srv_status srv_ca_make_csr(srv_hsm *hsm, const srv_hsm_key *key, const char *common_name,
                           const char *organization, X509_REQ **out, srv_error *err);

/* Parses a PEM chain (leaf first, then intermediates/root; at most 8 certificates, at most
 * 256 KiB) for a key: the leaf's public key must equal key_spki and each certificate must be
 * signed by the next. On success *out holds the parsed certificates (caller frees with
 * sk_X509_pop_free(*out, X509_free)). */
srv_status srv_ca_parse_chain(const char *pem, size_t pem_len, const uint8_t *key_spki,
                              size_t key_spki_len, STACK_OF(X509) * *out, srv_error *err);

/* DER and PEM encodings (caller frees with free()). */
srv_status srv_cert_to_der(X509 *cert, uint8_t **der, size_t *der_len, srv_error *err);
srv_status srv_cert_to_pem(X509 *cert, char **pem, srv_error *err);
srv_status srv_cert_from_der(const uint8_t *der, size_t der_len, X509 **out, srv_error *err);
/* notAfter as seconds since the epoch (0 if unreadable). */
int64_t srv_cert_not_after(const X509 *cert);

/* Certificate and CertificateList ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT
 * STRING } (RFC 5280 sections 4.1, 5.1); a signature is whole bytes, hence zero unused bits.
 * Returns malloc'd DER. */
uint8_t *srv_x509_assemble_signed(const uint8_t *tbs, size_t tbs_len, const uint8_t *alg,
                                  size_t alg_len, const uint8_t *sig, size_t sig_len,
                                  size_t *out_len);

/* One revoked certificate on a CRL. */
typedef struct {
    const char *serial_hex; /* the certificate's serial number, hexadecimal */
    int64_t revoked_at;
    int reason; /* RFC 5280 CRLReason code */
} srv_crl_entry;

/* Makes the CA's CRL (v2, with authorityKeyIdentifier and cRLNumber), signed in the HSM and
 * checked against the CA certificate's key. *der is malloc'd. */
srv_status srv_ca_make_crl(const srv_ca *ca, const srv_crl_entry *entries, size_t n, int64_t number,
                           int64_t this_update, int64_t next_update, uint8_t **der, size_t *der_len,
                           srv_error *err);

#endif
