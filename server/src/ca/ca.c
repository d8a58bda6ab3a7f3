/* The built-in CA: builds certificates and CSRs with OpenSSL, has the HSM sign their
 * to-be-signed bytes, and checks certificate chains imported for HSM keys. */
#include "ca.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/util.h"

#define NAME_MAX_CHARS  64 /* X.520 ub-common-name and ub-organization-name */
#define VALIDITY_MAX    3650
#define SAN_MAX         16
#define DNS_NAME_MAX    253
#define SERIAL_BYTES    16
#define CLOCK_SKEW_SECS 300
#define CHAIN_MAX_BYTES (256 * 1024) /* the import call's body cap */
#define CHAIN_MAX_CERTS 8
#define RSA_MIN_BITS    2048
#define DIGESTINFO_MAX  (19 + 64) /* SHA-512 prefix and digest */

/* ---- small helpers ------------------------------------------------------------------------ */

/* Fails with OpenSSL's reason appended, and clears its error queue so the entry cannot be
 * mistaken later for the cause of an unrelated failure on this thread. */
static srv_status ossl_fail(srv_error *err, srv_status status, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    srv_status st = srv_fail(err, status, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
    ERR_clear_error();
    return st;
}

int srv_ca_sig_alg(srv_key_type type, srv_hash *hash, int *nid)
{
    switch (type) {
    case SRV_KEY_RSA_2048:
    case SRV_KEY_RSA_3072:
    case SRV_KEY_RSA_4096:
        *hash = SRV_HASH_SHA256;
        *nid = NID_sha256WithRSAEncryption;
        return 1;
    case SRV_KEY_EC_P256:
        *hash = SRV_HASH_SHA256;
        *nid = NID_ecdsa_with_SHA256;
        return 1;
    case SRV_KEY_EC_P384:
        *hash = SRV_HASH_SHA384;
        *nid = NID_ecdsa_with_SHA384;
        return 1;
    default: return 0;
    }
}

/* RFC 4055 wants NULL parameters for RSA; RFC 5758 wants them absent for ECDSA. */
static int set_sig_alg(X509_ALGOR *alg, int nid)
{
    int ptype = nid == NID_sha256WithRSAEncryption ? V_ASN1_NULL : V_ASN1_UNDEF;
    return X509_ALGOR_set0(alg, OBJ_nid2obj(nid), ptype, NULL);
}

static const EVP_MD *hash_md(srv_hash hash)
{
    switch (hash) {
    case SRV_HASH_SHA256: return EVP_sha256();
    case SRV_HASH_SHA384: return EVP_sha384();
    case SRV_HASH_SHA512: return EVP_sha512();
    default: return NULL;
    }
}

/* Longest DER ECDSA-Sig-Value for a curve whose r and s are `half` bytes: each INTEGER may
 * need a leading zero byte. */
static size_t ecdsa_der_max(size_t half)
{
    size_t body = 2 * (2 + half + 1);
    return body + (body < 0x80 ? 2 : 3);
}

/* Parses a whole DER SubjectPublicKeyInfo; trailing bytes mean it is not the key we think. */
static EVP_PKEY *parse_spki(const uint8_t *spki, size_t spki_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pkey;

    if (!spki || spki_len == 0 || spki_len > LONG_MAX)
        return NULL;
    pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
    if (pkey && p != spki + spki_len) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    if (!pkey)
        ERR_clear_error();
    return pkey;
}

static int spki_equals(X509_PUBKEY *pub, const uint8_t *spki, size_t spki_len)
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(pub, &der);
    int same = len > 0 && (size_t)len == spki_len && memcmp(der, spki, spki_len) == 0;
    OPENSSL_free(der);
    return same;
}

/* Checks that an HSM key description is usable for signing and that its SPKI really is a key
 * of its declared type, so the algorithm we announce matches the signature the HSM makes.
 * Gives the key's public key and its signature algorithm NID. */
static srv_status check_hsm_key(const srv_hsm_key *key, EVP_PKEY **pub, int *sig_nid,
                                srv_error *err)
{
    srv_hash hash;
    int bits;
    char group[32];
    EVP_PKEY *pkey;

    *pub = NULL;
    if (!key || !srv_ca_sig_alg(key->type, &hash, sig_nid))
        return srv_fail(err, SRV_E_INVALID_FIELD, "unsupported HSM key type");
    if (!key->ckaid || key->ckaid_len == 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "HSM key has no CKA_ID");
    pkey = parse_spki(key->spki, key->spki_len);
    if (!pkey)
        return srv_fail(err, SRV_E_INVALID_FIELD, "HSM key's public key is not a DER SPKI");
    bits = EVP_PKEY_get_bits(pkey);
    if (srv_key_type_is_rsa(key->type)) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA ||
            (size_t)bits != srv_key_type_sig_len(key->type) * 8)
            goto mismatch;
    } else {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
            !EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) ||
            strcmp(group, key->type == SRV_KEY_EC_P256 ? SN_X9_62_prime256v1 : SN_secp384r1))
            goto mismatch;
    }
    *pub = pkey;
    return SRV_OK;
mismatch:
    EVP_PKEY_free(pkey);
    return srv_fail(err, SRV_E_INVALID_FIELD, "HSM key's public key is not a %s key",
                    srv_key_type_name(key->type));
}

/* ---- signature encodings ------------------------------------------------------------------ */

/* DER DigestInfo prefixes (RFC 8017 section 9.2, note 1): SEQUENCE { AlgorithmIdentifier
 * { OID, NULL }, OCTET STRING header }, to which the digest is appended. */
static const uint8_t digestinfo_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t digestinfo_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t digestinfo_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x03, 0x05, 0x00, 0x04, 0x40};

/* As with srv_hsm_sign, *out_len is the buffer size on entry and the length on return; a NULL
 * out only asks for the length. The same holds for the two signature functions below. */
srv_status srv_digestinfo(srv_hash hash, const uint8_t *digest, size_t digest_len, uint8_t *out,
                          size_t *out_len, srv_error *err)
{
    const uint8_t *prefix;
    size_t prefix_len;

    switch (hash) {
    case SRV_HASH_SHA256:
        prefix = digestinfo_sha256;
        prefix_len = sizeof(digestinfo_sha256);
        break;
    case SRV_HASH_SHA384:
        prefix = digestinfo_sha384;
        prefix_len = sizeof(digestinfo_sha384);
        break;
    case SRV_HASH_SHA512:
        prefix = digestinfo_sha512;
        prefix_len = sizeof(digestinfo_sha512);
        break;
    default: return srv_fail(err, SRV_E_INVALID_FIELD, "unknown hash algorithm");
    }
    if (digest_len != srv_hash_len(hash))
        return srv_fail(err, SRV_E_DIGEST_LENGTH, "a %s digest is %zu bytes, not %zu",
                        srv_hash_name(hash), srv_hash_len(hash), digest_len);
    if (!out) {
        *out_len = prefix_len + digest_len;
        return SRV_OK;
    }
    if (*out_len < prefix_len + digest_len)
        return srv_fail(err, SRV_E_INTERNAL, "DigestInfo buffer of %zu bytes is too small",
                        *out_len);
    memcpy(out, prefix, prefix_len);
    memcpy(out + prefix_len, digest, digest_len);
    *out_len = prefix_len + digest_len;
    return SRV_OK;
}

srv_status srv_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der, size_t *der_len,
                                srv_error *err)
{
    BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG *sig = NULL;
    unsigned char *p;
    size_t half = raw_len / 2;
    int len;
    srv_status st = SRV_OK;

    if (!raw || (raw_len != 64 && raw_len != 96))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "raw ECDSA signature of %zu bytes; expected 64 (P-256) or 96 (P-384)",
                        raw_len);
    r = BN_bin2bn(raw, (int)half, NULL);
    s = BN_bin2bn(raw + half, (int)half, NULL);
    sig = ECDSA_SIG_new();
    if (!r || !s || !sig) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    if (BN_is_zero(r) || BN_is_zero(s)) {
        st = srv_fail(err, SRV_E_INVALID_FIELD, "raw ECDSA signature has a zero r or s");
        goto out;
    }
    if (!ECDSA_SIG_set0(sig, r, s)) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot build ECDSA signature");
        goto out;
    }
    r = s = NULL; /* owned by sig now */
    len = i2d_ECDSA_SIG(sig, NULL);
    if (len <= 0) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot encode ECDSA signature");
        goto out;
    }
    if (!der) {
        *der_len = (size_t)len;
        goto out;
    }
    if (*der_len < (size_t)len) {
        st = srv_fail(err, SRV_E_INTERNAL, "DER signature buffer of %zu bytes is too small",
                      *der_len);
        goto out;
    }
    p = der;
    *der_len = (size_t)i2d_ECDSA_SIG(sig, &p);
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return st;
}

srv_status srv_ca_sign_tbs(srv_hsm *hsm, const srv_hsm_key *key, const uint8_t *tbs, size_t tbs_len,
                           uint8_t *sig, size_t *sig_len, int *sig_nid, srv_error *err)
{
    uint8_t md[EVP_MAX_MD_SIZE], digestinfo[DIGESTINFO_MAX], raw[SRV_MAX_SIG_LEN];
    size_t digestinfo_len = sizeof(digestinfo), raw_len = sizeof(raw), key_sig_len, need;
    unsigned md_len = 0;
    srv_hash hash;
    int nid;
    srv_status st;

    if (!key || !srv_ca_sig_alg(key->type, &hash, &nid))
        return srv_fail(err, SRV_E_INVALID_FIELD, "unsupported HSM key type");
    if (!key->ckaid || key->ckaid_len == 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "HSM key has no CKA_ID");
    if (!tbs && tbs_len > 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "no data to sign");
    key_sig_len = srv_key_type_sig_len(key->type);
    /* The DER length of an ECDSA signature is known only once it exists: answer the bound. */
    need = srv_key_type_is_rsa(key->type) ? key_sig_len : ecdsa_der_max(key_sig_len / 2);
    if (sig_nid)
        *sig_nid = nid;
    if (!sig) {
        *sig_len = need;
        return SRV_OK;
    }
    if (*sig_len < need)
        return srv_fail(err, SRV_E_INTERNAL, "signature buffer of %zu bytes is too small",
                        *sig_len);
    if (!EVP_Digest(tbs, tbs_len, md, &md_len, hash_md(hash), NULL))
        return ossl_fail(err, SRV_E_INTERNAL, "cannot hash the to-be-signed data");

    if (srv_key_type_is_rsa(key->type)) {
        st = srv_digestinfo(hash, md, md_len, digestinfo, &digestinfo_len, err);
        if (st != SRV_OK)
            return st;
        st = srv_hsm_sign(hsm, key->ckaid, key->ckaid_len, SRV_MECH_RSA_PKCS1, hash, 0, digestinfo,
                          digestinfo_len, sig, sig_len, err);
        if (st == SRV_OK && *sig_len != key_sig_len)
            st = srv_fail(err, SRV_E_HSM, "HSM returned a %zu-byte signature for a %s key",
                          *sig_len, srv_key_type_name(key->type));
        return st;
    }
    st = srv_hsm_sign(hsm, key->ckaid, key->ckaid_len, SRV_MECH_ECDSA, hash, 0, md, md_len, raw,
                      &raw_len, err);
    if (st != SRV_OK)
        return st;
    if (raw_len != key_sig_len)
        return srv_fail(err, SRV_E_HSM, "HSM returned a %zu-byte signature for a %s key", raw_len,
                        srv_key_type_name(key->type));
    return srv_ecdsa_raw_to_der(raw, raw_len, sig, sig_len, err);
}

/* ---- request validation ------------------------------------------------------------------- */

/* Name attributes are bounded in characters, not bytes, so count UTF-8 code points; control
 * characters and broken UTF-8 have no business in a certificate subject. */
static int valid_name_text(const char *s, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strnlen(s, max_chars * 4 + 1), chars = 0;

    if (left > max_chars * 4)
        return 0;
    while (left > 0) {
        unsigned long c;
        int n = UTF8_getc(p, (int)left, &c);
        if (n <= 0 || c < 0x20 || (c >= 0x7f && c < 0xa0) || (c >= 0xd800 && c <= 0xdfff) ||
            c > 0x10ffff)
            return 0;
        p += n;
        left -= (size_t)n;
        if (++chars > max_chars)
            return 0;
    }
    return chars >= 1;
}

/* Host names as RFC 1123 letter-digit-hyphen labels; a leading "*." is the TLS wildcard. */
static int valid_dns_name(const char *name)
{
    size_t len = strnlen(name, DNS_NAME_MAX + 1), label = 0, i = 0;

    if (len == 0 || len > DNS_NAME_MAX)
        return 0;
    if (len > 2 && name[0] == '*' && name[1] == '.')
        i = 2;
    for (; i < len; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-')
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            if ((label == 0 && c == '-') || ++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && name[len - 1] != '-';
}

static srv_status check_subject(const char *common_name, const char *organization, srv_error *err)
{
    if (!common_name || !valid_name_text(common_name, NAME_MAX_CHARS))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "common_name must be 1..%d characters of printable UTF-8", NAME_MAX_CHARS);
    if (organization && !valid_name_text(organization, NAME_MAX_CHARS))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "organization must be 1..%d characters of printable UTF-8", NAME_MAX_CHARS);
    return SRV_OK;
}

static srv_status check_request(const srv_cert_request *req, srv_error *err)
{
    if (!req)
        return srv_fail(err, SRV_E_INVALID_FIELD, "no certificate request");
    if ((unsigned)req->profile > SRV_CERT_TLS_CLIENT)
        return srv_fail(err, SRV_E_INVALID_FIELD, "unknown certificate profile");
    if (req->validity_days < 1 || req->validity_days > VALIDITY_MAX)
        return srv_fail(err, SRV_E_INVALID_FIELD, "validity_days must be 1..%d, not %u",
                        VALIDITY_MAX, req->validity_days);
    return check_subject(req->common_name, req->organization, err);
}

static int push_general_name(GENERAL_NAMES *names, int gen_type, int str_type, const void *data,
                             size_t len)
{
    ASN1_STRING *value = ASN1_STRING_type_new(str_type);
    GENERAL_NAME *name = GENERAL_NAME_new();

    if (!value || !name || len > INT_MAX || !ASN1_STRING_set(value, data, (int)len)) {
        ASN1_STRING_free(value);
        GENERAL_NAME_free(name);
        return 0;
    }
    GENERAL_NAME_set0_value(name, gen_type, value);
    if (!sk_GENERAL_NAME_push(names, name)) {
        GENERAL_NAME_free(name);
        return 0;
    }
    return 1;
}

/* Validates the subjectAltName entries and builds them; *out stays NULL when there are none.
 * Only TLS servers carry names: silently dropping them elsewhere would surprise the caller. */
static srv_status build_sans(const srv_cert_request *req, GENERAL_NAMES **out, srv_error *err)
{
    const char *const *dns = req->dns_names;
    const char *const *ips = req->ip_addresses;
    size_t count = 0, i;
    GENERAL_NAMES *names = NULL;
    srv_status st = SRV_OK;

    *out = NULL;
    for (i = 0; dns && dns[i]; i++)
        count++;
    for (i = 0; ips && ips[i]; i++)
        count++;
    if (count == 0)
        return SRV_OK;
    if (req->profile != SRV_CERT_TLS_SERVER)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "subjectAltName entries are only allowed for TLS server certificates");
    if (count > SAN_MAX)
        return srv_fail(err, SRV_E_INVALID_FIELD, "%zu subjectAltName entries; at most %d", count,
                        SAN_MAX);
    names = GENERAL_NAMES_new();
    if (!names)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    for (i = 0; dns && dns[i]; i++) {
        if (!valid_dns_name(dns[i])) {
            st = srv_fail(err, SRV_E_INVALID_FIELD, "dns_names[%zu] is not a valid host name", i);
            goto out;
        }
        if (!push_general_name(names, GEN_DNS, V_ASN1_IA5STRING, dns[i], strlen(dns[i]))) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
    }
    for (i = 0; ips && ips[i]; i++) {
        uint8_t addr[16];
        size_t addr_len = 4;
        if (inet_pton(AF_INET, ips[i], addr) != 1) {
            addr_len = 16;
            if (inet_pton(AF_INET6, ips[i], addr) != 1) {
                st = srv_fail(err, SRV_E_INVALID_FIELD,
                              "ip_addresses[%zu] is not an IPv4 or IPv6 address", i);
                goto out;
            }
        }
        if (!push_general_name(names, GEN_IPADD, V_ASN1_OCTET_STRING, addr, addr_len)) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
    }
    *out = names;
    names = NULL;
out:
    GENERAL_NAMES_free(names);
    return st;
}

/* Subject keys may come from outside the HSM (agents enrolling for a client certificate). */
static srv_status check_subject_key(EVP_PKEY *pkey, srv_error *err)
{
    int id = EVP_PKEY_get_base_id(pkey);

    if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS)
        return srv_fail(err, SRV_E_INVALID_FIELD, "RSA subject key of %d bits; at least %d",
                        EVP_PKEY_get_bits(pkey), RSA_MIN_BITS);
    if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC)
        return srv_fail(err, SRV_E_INVALID_FIELD, "subject key is neither RSA nor EC");
    return SRV_OK;
}

/* ---- certificate building ----------------------------------------------------------------- */

static const struct {
    const char *basic_constraints;
    const char *key_usage;
    const char *key_usage_rsa; /* RSA TLS servers may also be sent encrypted premaster secrets */
    const char *ext_key_usage;
} profiles[] = {
    [SRV_CERT_CA] = {"critical,CA:TRUE", "critical,keyCertSign,cRLSign,digitalSignature",
                     "critical,keyCertSign,cRLSign,digitalSignature", NULL},
    [SRV_CERT_CODESIGNING] = {"critical,CA:FALSE", "critical,digitalSignature",
                              "critical,digitalSignature", "codeSigning"},
    [SRV_CERT_TLS_SERVER] = {"critical,CA:FALSE", "critical,digitalSignature",
                             "critical,digitalSignature,keyEncipherment", "serverAuth"},
    [SRV_CERT_TLS_CLIENT] = {"critical,CA:FALSE", "critical,digitalSignature",
                             "critical,digitalSignature", "clientAuth"},
};

static X509_NAME *make_name(const char *common_name, const char *organization)
{
    X509_NAME *name = X509_NAME_new();

    if (!name ||
        (organization &&
         !X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                     (const unsigned char *)organization, -1, -1, 0)) ||
        !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)common_name, -1, -1, 0)) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

static srv_status set_random_serial(X509 *cert, srv_error *err)
{
    uint8_t bytes[SERIAL_BYTES];
    BIGNUM *bn;
    srv_status st;

    st = srv_random(bytes, sizeof(bytes), err);
    if (st != SRV_OK)
        return st;
    /* A clear top bit keeps the positive INTEGER at 16 octets, with no sign-padding byte. */
    bytes[0] &= 0x7f;
    bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        st = ossl_fail(err, SRV_E_NOMEM, "cannot set the serial number");
    BN_free(bn);
    return st;
}

static srv_status add_conf_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value,
                               srv_error *err)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    srv_status st = SRV_OK;

    if (!ext || !X509_add_ext(cert, ext, -1))
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot add a certificate extension");
    X509_EXTENSION_free(ext);
    return st;
}

static srv_status add_i2d_ext(X509 *cert, int nid, void *value, srv_error *err)
{
    if (X509_add1_ext_i2d(cert, nid, value, 0, X509V3_ADD_DEFAULT) != 1)
        return ossl_fail(err, SRV_E_INTERNAL, "cannot add a certificate extension");
    return SRV_OK;
}

/* RFC 5280 section 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
static ASN1_OCTET_STRING *key_id(X509 *cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    ASN1_OCTET_STRING *id;

    if (!X509_pubkey_digest(cert, EVP_sha1(), md, &md_len))
        return NULL;
    id = ASN1_OCTET_STRING_new();
    if (id && !ASN1_OCTET_STRING_set(id, md, (int)md_len)) {
        ASN1_OCTET_STRING_free(id);
        id = NULL;
    }
    return id;
}

/* Adds the profile's extensions. The SANs and identifiers are built as structures rather than
 * configuration strings, so caller-supplied names cannot inject extra entries. */
static srv_status add_extensions(X509 *cert, X509 *issuer, const srv_cert_request *req,
                                 GENERAL_NAMES *sans, int subject_rsa, srv_error *err)
{
    X509V3_CTX ctx;
    ASN1_OCTET_STRING *ski = NULL;
    AUTHORITY_KEYID *aki = NULL;
    const ASN1_OCTET_STRING *issuer_ski;
    srv_status st;

    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    X509V3_set_ctx_nodb(&ctx);
    st = add_conf_ext(cert, &ctx, NID_basic_constraints, profiles[req->profile].basic_constraints,
                      err);
    if (st == SRV_OK)
        st = add_conf_ext(cert, &ctx, NID_key_usage,
                          subject_rsa ? profiles[req->profile].key_usage_rsa
                                      : profiles[req->profile].key_usage,
                          err);
    if (st == SRV_OK && profiles[req->profile].ext_key_usage)
        st = add_conf_ext(cert, &ctx, NID_ext_key_usage, profiles[req->profile].ext_key_usage, err);
    if (st == SRV_OK && sans)
        st = add_i2d_ext(cert, NID_subject_alt_name, sans, err);
    if (st == SRV_OK && req->crl_url) {
        char cdp[300];
        snprintf(cdp, sizeof(cdp), "URI:%s", req->crl_url);
        st = add_conf_ext(cert, &ctx, NID_crl_distribution_points, cdp, err);
    }
    if (st != SRV_OK)
        goto out;

    ski = key_id(cert);
    if (!ski) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot compute the subject key identifier");
        goto out;
    }
    st = add_i2d_ext(cert, NID_subject_key_identifier, ski, err);
    if (st != SRV_OK || !issuer)
        goto out;

    aki = AUTHORITY_KEYID_new();
    if (!aki) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    /* Chain builders match AKI to the issuer's SKI, so copy it; hash the key only for an
     * imported CA certificate that has none, as OpenSSL's "keyid" does. */
    issuer_ski = X509_get0_subject_key_id(issuer);
    aki->keyid = issuer_ski ? ASN1_OCTET_STRING_dup(issuer_ski) : key_id(issuer);
    if (!aki->keyid) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot compute the authority key identifier");
        goto out;
    }
    st = add_i2d_ext(cert, NID_authority_key_identifier, aki, err);
out:
    ASN1_OCTET_STRING_free(ski);
    AUTHORITY_KEYID_free(aki);
    return st;
}

/* Bytes a DER length field takes. */
static size_t der_len_size(size_t len)
{
    size_t n = 1;
    if (len >= 0x80)
        for (; len; len >>= 8)
            n++;
    return n;
}

static uint8_t *der_put_header(uint8_t *p, uint8_t tag, size_t len)
{
    size_t n = der_len_size(len) - 1;

    *p++ = tag;
    if (n == 0) {
        *p++ = (uint8_t)len;
        return p;
    }
    *p++ = (uint8_t)(0x80 | n);
    for (; n > 0; n--)
        *p++ = (uint8_t)(len >> (8 * (n - 1)));
    return p;
}

uint8_t *srv_x509_assemble_signed(const uint8_t *tbs, size_t tbs_len, const uint8_t *alg,
                                  size_t alg_len, const uint8_t *sig, size_t sig_len,
                                  size_t *out_len)
{
    size_t bits_len = sig_len + 1;
    size_t body = tbs_len + alg_len + 1 + der_len_size(bits_len) + bits_len;
    size_t total = 1 + der_len_size(body) + body;
    uint8_t *der = malloc(total), *p;

    if (!der)
        return NULL;
    p = der_put_header(der, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, body);
    memcpy(p, tbs, tbs_len);
    p += tbs_len;
    memcpy(p, alg, alg_len);
    p += alg_len;
    p = der_put_header(p, V_ASN1_BIT_STRING, bits_len);
    *p++ = 0;
    memcpy(p, sig, sig_len);
    *out_len = total;
    return der;
}

/* Has the HSM sign the finished to-be-signed certificate and returns the parsed result,
 * after checking the signature against the signer's public key: a CKA_ID that names another
 * key than the SPKI we were given must not yield a certificate. */
static srv_status sign_certificate(srv_hsm *hsm, const srv_hsm_key *key, EVP_PKEY *signer_pub,
                                   int sig_nid, X509 *tbs_cert, X509 **out, srv_error *err)
{
    unsigned char *tbs = NULL, *alg = NULL;
    uint8_t sig[SRV_MAX_SIG_LEN], *der = NULL;
    size_t sig_len = sizeof(sig), der_len = 0;
    const unsigned char *p;
    int tbs_len, alg_len;
    X509 *cert = NULL;
    srv_status st;

    /* OpenSSL 3.0 has no setter for the TBS signature field; it is ours to fill in. */
    if (!set_sig_alg((X509_ALGOR *)X509_get0_tbs_sigalg(tbs_cert), sig_nid)) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot set the signature algorithm");
        goto out;
    }
    tbs_len = i2d_re_X509_tbs(tbs_cert, &tbs);
    alg_len = i2d_X509_ALGOR(X509_get0_tbs_sigalg(tbs_cert), &alg);
    if (tbs_len <= 0 || alg_len <= 0) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate");
        goto out;
    }
    st = srv_ca_sign_tbs(hsm, key, tbs, (size_t)tbs_len, sig, &sig_len, NULL, err);
    if (st != SRV_OK)
        goto out;
    der = srv_x509_assemble_signed(tbs, (size_t)tbs_len, alg, (size_t)alg_len, sig, sig_len,
                                   &der_len);
    if (!der) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    p = der;
    cert = d2i_X509(NULL, &p, (long)der_len);
    if (!cert || p != der + der_len) {
        st = ossl_fail(err, SRV_E_INTERNAL, "the assembled certificate does not parse");
        goto out;
    }
    if (X509_verify(cert, signer_pub) != 1) {
        st = ossl_fail(err, SRV_E_HSM,
                       "the HSM's signature does not verify with the signing key's public key");
        goto out;
    }
    *out = cert;
    cert = NULL;
out:
    X509_free(cert);
    free(der);
    OPENSSL_free(tbs);
    OPENSSL_free(alg);
    return st;
}

/* Builds and signs a certificate for subject_pub; issuer is NULL for a self-signed one. */
static srv_status make_certificate(srv_hsm *hsm, const srv_hsm_key *signer, EVP_PKEY *signer_pub,
                                   int sig_nid, X509 *issuer, EVP_PKEY *subject_pub,
                                   const srv_cert_request *req, GENERAL_NAMES *sans, X509 **out,
                                   srv_error *err)
{
    X509 *cert = X509_new();
    X509_NAME *subject = make_name(req->common_name, req->organization);
    time_t now = (time_t)srv_now();
    srv_status st;

    if (!cert || !subject) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot build the certificate subject");
        goto out;
    }
    st = set_random_serial(cert, err);
    if (st != SRV_OK)
        goto out;
    if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_subject_name(cert, subject) ||
        !X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : subject) ||
        /* Back-dated so that a relying party whose clock runs a little slow accepts it. */
        !ASN1_TIME_adj(X509_getm_notBefore(cert), now, 0, -CLOCK_SKEW_SECS) ||
        !ASN1_TIME_adj(X509_getm_notAfter(cert), now, (int)req->validity_days, 0) ||
        !X509_set_pubkey(cert, subject_pub)) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot fill in the certificate");
        goto out;
    }
    if (issuer && ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(issuer)) > 0) {
        st = srv_fail(err, SRV_E_INVALID_FIELD,
                      "validity_days of %u reaches past the CA certificate's notAfter",
                      req->validity_days);
        goto out;
    }
    st = add_extensions(cert, issuer, req, sans, EVP_PKEY_get_base_id(subject_pub) == EVP_PKEY_RSA,
                        err);
    if (st != SRV_OK)
        goto out;
    st = sign_certificate(hsm, signer, signer_pub, sig_nid, cert, out, err);
out:
    X509_free(cert);
    X509_NAME_free(subject);
    return st;
}

srv_status srv_ca_self_sign(srv_hsm *hsm, const srv_hsm_key *key, const srv_cert_request *req,
                            X509 **out, srv_error *err)
{
    EVP_PKEY *pub = NULL;
    GENERAL_NAMES *sans = NULL;
    int sig_nid;
    srv_status st;

    *out = NULL;
    st = check_request(req, err);
    if (st != SRV_OK)
        return st;
    if (req->profile != SRV_CERT_CA)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "a self-signed certificate must use the CA profile");
    st = build_sans(req, &sans, err);
    if (st != SRV_OK)
        goto out;
    st = check_hsm_key(key, &pub, &sig_nid, err);
    if (st != SRV_OK)
        goto out;
    st = make_certificate(hsm, key, pub, sig_nid, NULL, pub, req, sans, out, err);
out:
    GENERAL_NAMES_free(sans);
    EVP_PKEY_free(pub);
    return st;
}

/* The CA certificate must be a CA, must be current and must belong to the CA's HSM key. */
static srv_status check_ca(const srv_ca *ca, EVP_PKEY **pub, int *sig_nid, srv_error *err)
{
    time_t now = (time_t)srv_now();
    srv_status st;

    *pub = NULL;
    if (!ca || !ca->hsm || !ca->cert)
        return srv_fail(err, SRV_E_CONFIG, "the CA has no HSM or certificate");
    st = check_hsm_key(&ca->key, pub, sig_nid, err);
    if (st != SRV_OK)
        return st;
    if (!spki_equals(X509_get_X509_PUBKEY(ca->cert), ca->key.spki, ca->key.spki_len))
        st = srv_fail(err, SRV_E_CERTIFICATE, "the CA certificate is not for the CA's HSM key");
    else if (X509_check_ca(ca->cert) != 1 ||
             ((X509_get_extension_flags(ca->cert) & EXFLAG_KUSAGE) &&
              !(X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN)))
        st = srv_fail(err, SRV_E_CERTIFICATE, "the CA certificate may not sign certificates");
    else if (X509_cmp_time(X509_get0_notAfter(ca->cert), &now) <= 0)
        st = srv_fail(err, SRV_E_CERTIFICATE, "the CA certificate has expired");
    if (st != SRV_OK) {
        EVP_PKEY_free(*pub);
        *pub = NULL;
    }
    return st;
}

srv_status srv_ca_issue(const srv_ca *ca, const uint8_t *subject_spki, size_t subject_spki_len,
                        const srv_cert_request *req, X509 **out, srv_error *err)
{
    EVP_PKEY *ca_pub = NULL, *subject_pub = NULL;
    GENERAL_NAMES *sans = NULL;
    int sig_nid;
    srv_status st;

    *out = NULL;
    st = check_request(req, err);
    if (st != SRV_OK)
        return st;
    /* Intermediate CAs are not something this server hands out. */
    if (req->profile == SRV_CERT_CA)
        return srv_fail(err, SRV_E_INVALID_FIELD, "the CA issues end-entity certificates only");
    st = build_sans(req, &sans, err);
    if (st != SRV_OK)
        goto out;
    subject_pub = parse_spki(subject_spki, subject_spki_len);
    if (!subject_pub) {
        st = srv_fail(err, SRV_E_INVALID_FIELD, "subject public key is not a DER SPKI");
        goto out;
    }
    st = check_subject_key(subject_pub, err);
    if (st != SRV_OK)
        goto out;
    st = check_ca(ca, &ca_pub, &sig_nid, err);
    if (st != SRV_OK)
        goto out;
    st = make_certificate(ca->hsm, &ca->key, ca_pub, sig_nid, ca->cert, subject_pub, req, sans, out,
                          err);
out:
    GENERAL_NAMES_free(sans);
    EVP_PKEY_free(ca_pub);
    EVP_PKEY_free(subject_pub);
    return st;
}

/* ---- CSRs --------------------------------------------------------------------------------- */

srv_status srv_ca_make_csr(srv_hsm *hsm, const srv_hsm_key *key, const char *common_name,
                           const char *organization, X509_REQ **out, srv_error *err)
{
    EVP_PKEY *pub = NULL;
    X509_REQ *req = NULL;
    X509_NAME *subject = NULL;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *bits = NULL;
    unsigned char *tbs = NULL;
    uint8_t sig[SRV_MAX_SIG_LEN];
    size_t sig_len = sizeof(sig);
    int tbs_len, nid;
    srv_status st;

    *out = NULL;
    st = check_subject(common_name, organization, err);
    if (st != SRV_OK)
        return st;
    st = check_hsm_key(key, &pub, &nid, err);
    if (st != SRV_OK)
        return st;
    req = X509_REQ_new();
    subject = make_name(common_name, organization);
    alg = X509_ALGOR_new();
    bits = ASN1_BIT_STRING_new();
    if (!req || !subject || !alg || !bits || !set_sig_alg(alg, nid) ||
        !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, subject) || !X509_REQ_set_pubkey(req, pub) ||
        !X509_REQ_set1_signature_algo(req, alg)) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot build the certificate request");
        goto out;
    }
    tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbs_len <= 0) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate request");
        goto out;
    }
    st = srv_ca_sign_tbs(hsm, key, tbs, (size_t)tbs_len, sig, &sig_len, NULL, err);
    if (st != SRV_OK)
        goto out;
    if (!ASN1_BIT_STRING_set(bits, sig, (int)sig_len)) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    /* Without BITS_LEFT, DER encoding would trim trailing zero bytes of the signature. */
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    if (X509_REQ_verify(req, pub) != 1) {
        st = ossl_fail(err, SRV_E_HSM,
                       "the HSM's signature does not verify with the key's public key");
        goto out;
    }
    *out = req;
    req = NULL;
out:
    OPENSSL_free(tbs);
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    return st;
}

/* ---- imported chains ---------------------------------------------------------------------- */

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

/* Decodes one PEM certificate block; headers (encryption) and trailing DER are refused. */
static X509 *parse_pem_block(const char *block, size_t len)
{
    BIO *bio = BIO_new_mem_buf(block, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    const unsigned char *p;
    long data_len = 0;
    X509 *cert = NULL;

    if (bio && PEM_read_bio(bio, &name, &header, &data, &data_len) == 1 &&
        strcmp(name, PEM_STRING_X509) == 0 && header[0] == '\0') {
        p = data;
        cert = d2i_X509(NULL, &p, data_len);
        if (cert && p != data + data_len) {
            X509_free(cert);
            cert = NULL;
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return cert;
}

srv_status srv_ca_parse_chain(const char *pem, size_t pem_len, const uint8_t *key_spki,
                              size_t key_spki_len, STACK_OF(X509) * *out, srv_error *err)
{
    STACK_OF(X509) *chain = NULL;
    size_t pos = 0, begin_len = sizeof(pem_begin) - 1, end_len = sizeof(pem_end) - 1;
    int i, n;
    srv_status st = SRV_OK;

    *out = NULL;
    if (!key_spki || key_spki_len == 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "no public key to match the chain against");
    if (!pem || pem_len == 0)
        return srv_fail(err, SRV_E_CERTIFICATE, "the certificate chain is empty");
    if (pem_len > CHAIN_MAX_BYTES)
        return srv_fail(err, SRV_E_CERTIFICATE, "the certificate chain exceeds %d bytes",
                        CHAIN_MAX_BYTES);
    chain = sk_X509_new_null();
    if (!chain)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");

    /* Our own scan, not PEM_read_bio_X509 in a loop: that silently skips other PEM blocks
     * (a private key pasted by mistake, say), and we accept certificates and nothing else.
     * Explanatory text between blocks ("Bag Attributes", "subject=" lines) is skipped, as
     * RFC 7468 section 2 asks of parsers. */
    for (;;) {
        const char *end;
        size_t block_len;
        X509 *cert;

        while (pos < pem_len &&
               (pem[pos] == ' ' || pem[pos] == '\t' || pem[pos] == '\r' || pem[pos] == '\n'))
            pos++;
        if (pos == pem_len)
            break;
        if (pem_len - pos < begin_len || memcmp(pem + pos, pem_begin, begin_len) != 0) {
            const char *eol;
            if (pem_len - pos >= 11 && memcmp(pem + pos, "-----BEGIN ", 11) == 0) {
                st = srv_fail(err, SRV_E_CERTIFICATE,
                              "PEM block at byte %zu is not a certificate; only certificates "
                              "are accepted",
                              pos);
                goto out;
            }
            eol = memchr(pem + pos, '\n', pem_len - pos);
            pos = eol ? (size_t)(eol - pem) + 1 : pem_len;
            continue;
        }
        if (sk_X509_num(chain) == CHAIN_MAX_CERTS) {
            st = srv_fail(err, SRV_E_CERTIFICATE, "the chain has more than %d certificates",
                          CHAIN_MAX_CERTS);
            goto out;
        }
        end = memmem(pem + pos, pem_len - pos, pem_end, end_len);
        if (!end) {
            st = srv_fail(err, SRV_E_CERTIFICATE, "certificate %d has no END line",
                          sk_X509_num(chain));
            goto out;
        }
        block_len = (size_t)(end - (pem + pos)) + end_len;
        cert = parse_pem_block(pem + pos, block_len);
        if (!cert) {
            ERR_clear_error();
            st = srv_fail(err, SRV_E_CERTIFICATE, "certificate %d is not a valid certificate",
                          sk_X509_num(chain));
            goto out;
        }
        if (!sk_X509_push(chain, cert)) {
            X509_free(cert);
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
        pos += block_len;
    }

    n = sk_X509_num(chain);
    if (n == 0) {
        st = srv_fail(err, SRV_E_CERTIFICATE, "the certificate chain is empty");
        goto out;
    }
    if (!spki_equals(X509_get_X509_PUBKEY(sk_X509_value(chain, 0)), key_spki, key_spki_len)) {
        st = srv_fail(err, SRV_E_CERTIFICATE, "the first certificate is not for this key");
        goto out;
    }
    for (i = 0; i + 1 < n; i++) {
        X509 *subject = sk_X509_value(chain, i), *issuer = sk_X509_value(chain, i + 1);
        if (X509_check_issued(issuer, subject) != X509_V_OK ||
            X509_verify(subject, X509_get0_pubkey(issuer)) != 1) {
            ERR_clear_error();
            st = srv_fail(err, SRV_E_CERTIFICATE,
                          "certificate %d is not issued and signed by certificate %d", i, i + 1);
            goto out;
        }
    }
    *out = chain;
    chain = NULL;
out:
    sk_X509_pop_free(chain, X509_free);
    return st;
}

/* ---- encodings ---------------------------------------------------------------------------- */

srv_status srv_cert_to_der(X509 *cert, uint8_t **der, size_t *der_len, srv_error *err)
{
    unsigned char *p;
    int len = i2d_X509(cert, NULL);

    *der = NULL;
    if (len <= 0)
        return ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate");
    *der = malloc((size_t)len);
    if (!*der)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    p = *der;
    *der_len = (size_t)i2d_X509(cert, &p);
    return SRV_OK;
}

srv_status srv_cert_to_pem(X509 *cert, char **pem, srv_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;
    srv_status st = SRV_OK;

    *pem = NULL;
    if (!bio || !PEM_write_bio_X509(bio, cert)) {
        st = ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate as PEM");
        goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    *pem = malloc((size_t)len + 1);
    if (!*pem) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*pem, data, (size_t)len);
    (*pem)[len] = '\0';
out:
    BIO_free(bio);
    return st;
}

srv_status srv_cert_from_der(const uint8_t *der, size_t der_len, X509 **out, srv_error *err)
{
    const unsigned char *p = der;
    X509 *cert;

    *out = NULL;
    if (!der || der_len == 0 || der_len > LONG_MAX)
        return srv_fail(err, SRV_E_CERTIFICATE, "no certificate");
    cert = d2i_X509(NULL, &p, (long)der_len);
    if (!cert || p != der + der_len) {
        X509_free(cert);
        return ossl_fail(err, SRV_E_CERTIFICATE, "not a DER certificate");
    }
    *out = cert;
    return SRV_OK;
}

int64_t srv_cert_not_after(const X509 *cert)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}
