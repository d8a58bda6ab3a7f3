/* Signature encodings for keys in the HSM: the DigestInfo an RSA PKCS#1 v1.5 signature covers,
 * ECDSA r||s to DER, and a whole message signed with the algorithm X.509 expects for the key's
 * type (certificates, CSRs and CRLs of the built-in CA; the audit checkpoints). */
#ifndef SRV_SIG_ENCODING_H
#define SRV_SIG_ENCODING_H

#include <stddef.h>
#include <stdint.h>

#include "hsm.h"

/* A key held in the HSM, described enough to sign with it. */
typedef struct {
    srv_key_type type;
    const uint8_t *ckaid;
    size_t ckaid_len;
    const uint8_t *spki; /* DER SubjectPublicKeyInfo */
    size_t spki_len;
} srv_hsm_key;

/* The X.509 signature algorithm for a key type: the hash follows the key's strength
 * (SHA-384 for P-384, SHA-256 otherwise) and *nid is the AlgorithmIdentifier's. */
int srv_hsm_sig_alg(srv_key_type type, srv_hash *hash, int *nid);

/* Signs `msg` with an HSM key the way X.509 expects: RSA keys sha256WithRSAEncryption
 * (PKCS#1 v1.5, the DigestInfo built here); EC keys ecdsa-with-SHA256 (P-256) or
 * ecdsa-with-SHA384 (P-384), DER-encoded ECDSA-Sig-Value. *sig_len is the buffer size on
 * entry and the signature's length on return (sig NULL: the bound); *sig_nid, if given,
 * receives the AlgorithmIdentifier NID. */
srv_status srv_hsm_sign_message(srv_hsm *hsm, const srv_hsm_key *key, const uint8_t *msg,
                                size_t msg_len, uint8_t *sig, size_t *sig_len, int *sig_nid,
                                srv_error *err);

/* Converts raw r||s to a DER ECDSA-Sig-Value (the sign API's "der" format). */
srv_status srv_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der, size_t *der_len,
                                srv_error *err);

/* Builds the DER DigestInfo for a digest (used for RSA PKCS#1 v1.5 signing). */
srv_status srv_digestinfo(srv_hash hash, const uint8_t *digest, size_t digest_len, uint8_t *out,
                          size_t *out_len, srv_error *err);

#endif
