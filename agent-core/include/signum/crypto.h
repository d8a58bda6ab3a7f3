/* Local crypto for providers, over mbedTLS (static, symbols hidden): SHA-2 in one or many
 * parts, DigestInfo, and the X.509/public-key facts a provider must show (modulus, exponent,
 * EC parameters and point, subject, issuer, serial). */
#ifndef SIGNUM_CRYPTO_H
#define SIGNUM_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_MAX_DIGEST     64
#define SG_MAX_DIGESTINFO (19 + SG_MAX_DIGEST)

size_t sg_hash_len(sg_hash hash);
const char *sg_hash_name(sg_hash hash);
const char *sg_mech_name(sg_mech mech);

/* Multi-part hashing; the context is opaque and sized for any SHA-2. */
typedef struct {
    sg_hash hash;
    uint64_t opaque[64];
} sg_digest_ctx;

sg_status sg_digest_init(sg_digest_ctx *ctx, sg_hash hash);
sg_status sg_digest_update(sg_digest_ctx *ctx, const void *data, size_t len);
sg_status sg_digest_final(sg_digest_ctx *ctx, uint8_t *out, size_t *out_len);
void sg_digest_free(sg_digest_ctx *ctx);
sg_status sg_digest(sg_hash hash, const void *data, size_t len, uint8_t *out, size_t *out_len);

/* DigestInfo (PKCS#1 v1.5): build for a hash and digest; parse one back (exact DER only). */
sg_status sg_digestinfo_build(sg_hash hash, const uint8_t *digest, size_t digest_len, uint8_t *out,
                              size_t *out_len);
sg_status sg_digestinfo_parse(const uint8_t *der, size_t der_len, sg_hash *hash,
                              const uint8_t **digest, size_t *digest_len);

/* What a public key (DER SubjectPublicKeyInfo) is, with its parts as PKCS#11 wants them. */
typedef struct {
    int is_rsa;
    unsigned bits;
    uint8_t modulus[512];
    size_t modulus_len;
    uint8_t exponent[8];
    size_t exponent_len;
    uint8_t ec_params[16]; /* DER OID of the named curve */
    size_t ec_params_len;
    uint8_t ec_point[133]; /* DER OCTET STRING around the uncompressed point (CKA_EC_POINT) */
    size_t ec_point_len;
} sg_pubkey_info;

sg_status sg_pubkey_parse(const uint8_t *spki, size_t spki_len, sg_pubkey_info *out);

/* The certificate's DER subject, issuer and serial (INTEGER) as slices of `der`. */
typedef struct {
    const uint8_t *subject, *issuer, *serial;
    size_t subject_len, issuer_len, serial_len;
} sg_cert_info;

sg_status sg_cert_parse(const uint8_t *der, size_t der_len, sg_cert_info *out);

/* ECDSA raw r||s to DER ECDSA-Sig-Value, and back. */
sg_status sg_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der, size_t *der_len);
sg_status sg_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t half, uint8_t *raw,
                              size_t *raw_len);

#ifdef __cplusplus
}
#endif

#endif
