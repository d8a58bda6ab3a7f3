/* Local crypto for providers over mbedTLS 2.28: SHA-2, DigestInfo, public key and certificate
 * parsing, ECDSA signature encodings. */
#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>
#include <mbedtls/x509_crt.h>
#include <string.h>

#include "signum/common/names.h"
#include "signum/crypto.h"

_Static_assert(sizeof(((sg_digest_ctx *)0)->opaque) >= sizeof(mbedtls_sha512_context),
               "sg_digest_ctx too small for SHA-512");
_Static_assert(sizeof(((sg_digest_ctx *)0)->opaque) >= sizeof(mbedtls_sha256_context),
               "sg_digest_ctx too small for SHA-256");

/* DER DigestInfo prefixes (RFC 8017 section 9.2, note 1). */
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

/* Names and lengths are the wire's (signum/common/names.h), in the same order. */
_Static_assert(SG_HASH_SHA256 == (int)SGC_HASH_SHA256 && SG_HASH_SHA384 == (int)SGC_HASH_SHA384 &&
                   SG_HASH_SHA512 == (int)SGC_HASH_SHA512,
               "sg_hash follows sgc_hash");
_Static_assert(SG_MECH_RSA_PKCS1 == (int)SGC_MECH_RSA_PKCS1 &&
                   SG_MECH_RSA_PSS == (int)SGC_MECH_RSA_PSS && SG_MECH_ECDSA == (int)SGC_MECH_ECDSA,
               "sg_mech follows sgc_mech");

static const uint8_t *const di_prefix[] = {
    [SG_HASH_SHA256] = di_sha256,
    [SG_HASH_SHA384] = di_sha384,
    [SG_HASH_SHA512] = di_sha512,
};

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static int hash_ok(sg_hash h)
{
    return (unsigned)h <= SG_HASH_SHA512;
}

size_t sg_hash_len(sg_hash hash)
{
    return sgc_hash_len((int)hash);
}

const char *sg_hash_name(sg_hash hash)
{
    return sgc_hash_name((int)hash);
}

const char *sg_mech_name(sg_mech mech)
{
    return sgc_mech_name((int)mech);
}

/* ---- digests ------------------------------------------------------------------------------ */

sg_status sg_digest_init(sg_digest_ctx *ctx, sg_hash hash)
{
    memset(ctx, 0, sizeof(*ctx));
    if (!hash_ok(hash))
        return SG_ERR_BAD_INPUT;
    ctx->hash = hash;
    if (hash == SG_HASH_SHA256) {
        mbedtls_sha256_context *s = (mbedtls_sha256_context *)ctx->opaque;
        mbedtls_sha256_init(s);
        return mbedtls_sha256_starts_ret(s, 0) == 0 ? SG_OK : SG_ERR_INTERNAL;
    } else {
        mbedtls_sha512_context *s = (mbedtls_sha512_context *)ctx->opaque;
        mbedtls_sha512_init(s);
        return mbedtls_sha512_starts_ret(s, hash == SG_HASH_SHA384) == 0 ? SG_OK : SG_ERR_INTERNAL;
    }
}

sg_status sg_digest_update(sg_digest_ctx *ctx, const void *data, size_t len)
{
    int rc;
    if (ctx->hash == SG_HASH_SHA256)
        rc = mbedtls_sha256_update_ret((mbedtls_sha256_context *)ctx->opaque, data, len);
    else
        rc = mbedtls_sha512_update_ret((mbedtls_sha512_context *)ctx->opaque, data, len);
    return rc == 0 ? SG_OK : SG_ERR_INTERNAL;
}

sg_status sg_digest_final(sg_digest_ctx *ctx, uint8_t *out, size_t *out_len)
{
    uint8_t buf[64];
    size_t n = sg_hash_len(ctx->hash);
    int rc;
    if (!out || *out_len < n) {
        *out_len = n;
        return out ? SG_ERR_BUFFER_TOO_SMALL : SG_OK;
    }
    if (ctx->hash == SG_HASH_SHA256)
        rc = mbedtls_sha256_finish_ret((mbedtls_sha256_context *)ctx->opaque, buf);
    else
        rc = mbedtls_sha512_finish_ret((mbedtls_sha512_context *)ctx->opaque, buf);
    if (rc != 0)
        return SG_ERR_INTERNAL;
    memcpy(out, buf, n);
    *out_len = n;
    sg_digest_free(ctx);
    return SG_OK;
}

void sg_digest_free(sg_digest_ctx *ctx)
{
    if (ctx->hash == SG_HASH_SHA256)
        mbedtls_sha256_free((mbedtls_sha256_context *)ctx->opaque);
    else if (hash_ok(ctx->hash))
        mbedtls_sha512_free((mbedtls_sha512_context *)ctx->opaque);
    memset(ctx, 0, sizeof(*ctx));
}

sg_status sg_digest(sg_hash hash, const void *data, size_t len, uint8_t *out, size_t *out_len)
{
    sg_digest_ctx ctx;
    sg_status st = sg_digest_init(&ctx, hash);
    if (st == SG_OK)
        st = sg_digest_update(&ctx, data, len);
    if (st == SG_OK)
        st = sg_digest_final(&ctx, out, out_len);
    if (st != SG_OK)
        sg_digest_free(&ctx);
    return st;
}

/* ---- DigestInfo --------------------------------------------------------------------------- */

sg_status sg_digestinfo_build(sg_hash hash, const uint8_t *digest, size_t digest_len, uint8_t *out,
                              size_t *out_len)
{
    size_t n;
    if (!hash_ok(hash) || digest_len != sg_hash_len(hash))
        return SG_ERR_BAD_INPUT;
    n = 19 + digest_len;
    if (!out || *out_len < n) {
        *out_len = n;
        return out ? SG_ERR_BUFFER_TOO_SMALL : SG_OK;
    }
    memcpy(out, di_prefix[hash], 19);
    memcpy(out + 19, digest, digest_len);
    *out_len = n;
    return SG_OK;
}

sg_status sg_digestinfo_parse(const uint8_t *der, size_t der_len, sg_hash *hash,
                              const uint8_t **digest, size_t *digest_len)
{
    /* Only the exact DER forms are accepted (NULL parameters present), as signers produce. */
    for (int h = SG_HASH_SHA256; h <= SG_HASH_SHA512; h++) {
        if (der_len == 19 + sg_hash_len(h) && memcmp(der, di_prefix[h], 19) == 0) {
            *hash = (sg_hash)h;
            *digest = der + 19;
            *digest_len = sg_hash_len(h);
            return SG_OK;
        }
    }
    return SG_ERR_BAD_INPUT;
}

/* ---- public keys and certificates --------------------------------------------------------- */

sg_status sg_pubkey_parse(const uint8_t *spki, size_t spki_len, sg_pubkey_info *out)
{
    mbedtls_pk_context pk;
    sg_status st = SG_ERR_BAD_INPUT;

    memset(out, 0, sizeof(*out));
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, spki, spki_len) != 0)
        goto out;
    if (mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
        mbedtls_mpi n, e;
        mbedtls_mpi_init(&n);
        mbedtls_mpi_init(&e);
        out->is_rsa = 1;
        out->bits = (unsigned)mbedtls_pk_get_bitlen(&pk);
        out->modulus_len = mbedtls_rsa_get_len(rsa);
        if (out->modulus_len <= sizeof(out->modulus) &&
            mbedtls_rsa_export(rsa, &n, NULL, NULL, NULL, &e) == 0 &&
            mbedtls_mpi_size(&e) <= sizeof(out->exponent) &&
            mbedtls_mpi_write_binary(&n, out->modulus, out->modulus_len) == 0) {
            out->exponent_len = mbedtls_mpi_size(&e);
            if (mbedtls_mpi_write_binary(&e, out->exponent, out->exponent_len) == 0)
                st = SG_OK;
        }
        mbedtls_mpi_free(&n);
        mbedtls_mpi_free(&e);
    } else if (mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY) {
        mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
        const uint8_t *oid;
        size_t oid_len, point_len = 0;
        if (ec->grp.id == MBEDTLS_ECP_DP_SECP256R1) {
            oid = oid_p256;
            oid_len = sizeof(oid_p256);
        } else if (ec->grp.id == MBEDTLS_ECP_DP_SECP384R1) {
            oid = oid_p384;
            oid_len = sizeof(oid_p384);
        } else {
            st = SG_ERR_UNSUPPORTED;
            goto out;
        }
        out->bits = (unsigned)mbedtls_pk_get_bitlen(&pk);
        memcpy(out->ec_params, oid, oid_len);
        out->ec_params_len = oid_len;
        /* CKA_EC_POINT: DER OCTET STRING around the uncompressed point (<= 97 bytes). */
        if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED,
                                           &point_len, out->ec_point + 2,
                                           sizeof(out->ec_point) - 2) == 0 &&
            point_len < 128) {
            out->ec_point[0] = 0x04;
            out->ec_point[1] = (uint8_t)point_len;
            out->ec_point_len = point_len + 2;
            st = SG_OK;
        }
    } else {
        st = SG_ERR_UNSUPPORTED;
    }
out:
    mbedtls_pk_free(&pk);
    return st;
}

sg_status sg_cert_parse(const uint8_t *der, size_t der_len, sg_cert_info *out)
{
    mbedtls_x509_crt crt;
    sg_status st = SG_ERR_BAD_INPUT;
    size_t off;

    memset(out, 0, sizeof(*out));
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der, der_len) != 0 || crt.raw.len != der_len)
        goto out;
    /* mbedTLS parses a copy; translate its offsets back into the caller's buffer. */
    out->subject = der + (crt.subject_raw.p - crt.raw.p);
    out->subject_len = crt.subject_raw.len;
    out->issuer = der + (crt.issuer_raw.p - crt.raw.p);
    out->issuer_len = crt.issuer_raw.len;
    off = (size_t)(crt.serial.p - crt.raw.p);
    /* CKA_SERIAL_NUMBER is the DER INTEGER: step back over its tag and length. */
    if (crt.serial.len < 128 && off >= 2 && der[off - 2] == MBEDTLS_ASN1_INTEGER &&
        der[off - 1] == crt.serial.len) {
        out->serial = der + off - 2;
        out->serial_len = crt.serial.len + 2;
        st = SG_OK;
    }
out:
    mbedtls_x509_crt_free(&crt);
    return st;
}

/* ---- ECDSA encodings ---------------------------------------------------------------------- */

sg_status sg_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der, size_t *der_len)
{
    uint8_t buf[160], *p = buf + sizeof(buf);
    mbedtls_mpi r, s;
    size_t half = raw_len / 2;
    int len = 0, n;
    sg_status st = SG_ERR_BAD_INPUT;

    if (raw_len == 0 || raw_len % 2 || half > 66)
        return SG_ERR_BAD_INPUT;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_mpi_read_binary(&r, raw, half) != 0 ||
        mbedtls_mpi_read_binary(&s, raw + half, half) != 0)
        goto out;
    /* asn1write writes backwards from the end of the buffer. */
    if ((n = mbedtls_asn1_write_mpi(&p, buf, &s)) < 0)
        goto out;
    len += n;
    if ((n = mbedtls_asn1_write_mpi(&p, buf, &r)) < 0)
        goto out;
    len += n;
    if ((n = mbedtls_asn1_write_len(&p, buf, (size_t)len)) < 0)
        goto out;
    len += n;
    if ((n = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
        goto out;
    len += n;
    if (!der || *der_len < (size_t)len) {
        *der_len = (size_t)len;
        st = der ? SG_ERR_BUFFER_TOO_SMALL : SG_OK;
        goto out;
    }
    memcpy(der, p, (size_t)len);
    *der_len = (size_t)len;
    st = SG_OK;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return st;
}

sg_status sg_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t half, uint8_t *raw,
                              size_t *raw_len)
{
    unsigned char *p = (unsigned char *)der;
    const unsigned char *end = der + der_len;
    mbedtls_mpi r, s;
    size_t len;
    sg_status st = SG_ERR_BAD_INPUT;

    if (half == 0 || half > 66)
        return SG_ERR_BAD_INPUT;
    if (!raw || *raw_len < 2 * half) {
        *raw_len = 2 * half;
        return raw ? SG_ERR_BUFFER_TOO_SMALL : SG_OK;
    }
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) ||
        p + len != end || mbedtls_asn1_get_mpi(&p, end, &r) || mbedtls_asn1_get_mpi(&p, end, &s) ||
        p != end || mbedtls_mpi_size(&r) > half || mbedtls_mpi_size(&s) > half ||
        mbedtls_mpi_write_binary(&r, raw, half) || mbedtls_mpi_write_binary(&s, raw + half, half))
        goto out;
    *raw_len = 2 * half;
    st = SG_OK;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return st;
}
