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
#include "ca_internal.h"

#define NAME_MAX_CHARS 64 /* X.520 ub-common-name and ub-organization-name */
#define VALIDITY_MAX   3650
#define SAN_MAX        16
#define DNS_NAME_MAX   253
#define SERIAL_BYTES   16
#define RSA_MIN_BITS   2048

int srv_ca_set_sig_alg(X509_ALGOR *alg, int nid)
{
    int ptype = nid == NID_sha256WithRSAEncryption ? V_ASN1_NULL : V_ASN1_UNDEF;
    return X509_ALGOR_set0(alg, OBJ_nid2obj(nid), ptype, NULL);
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

int srv_ca_spki_equals(X509_PUBKEY *pub, const uint8_t *spki, size_t spki_len)
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
srv_status srv_ca_check_hsm_key(const srv_hsm_key *key, EVP_PKEY **pub, int *sig_nid,
                                srv_error *err)
{
    srv_hash hash;
    int bits;
    char group[32];
    EVP_PKEY *pkey;

    *pub = NULL;
    if (!key || !srv_hsm_sig_alg(key->type, &hash, sig_nid))
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

srv_status srv_ca_check_subject(const char *common_name, const char *organization, srv_error *err)
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
    if ((unsigned)req->profile > SRV_CERT_TIMESTAMPING)
        return srv_fail(err, SRV_E_INVALID_FIELD, "unknown certificate profile");
    if (req->validity_days < 1 || req->validity_days > VALIDITY_MAX)
        return srv_fail(err, SRV_E_INVALID_FIELD, "validity_days must be 1..%d, not %u",
                        VALIDITY_MAX, req->validity_days);
    return srv_ca_check_subject(req->common_name, req->organization, err);
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
    /* RFC 3161 section 2.3: the one EKU, critical; relying parties refuse anything more. */
    [SRV_CERT_TIMESTAMPING] = {"critical,CA:FALSE", "critical,digitalSignature",
                               "critical,digitalSignature", "critical,timeStamping"},
};

X509_NAME *srv_ca_make_name(const char *common_name, const char *organization)
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
        st = srv_ossl_fail(err, SRV_E_NOMEM, "cannot set the serial number");
    BN_free(bn);
    return st;
}

static srv_status add_conf_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value,
                               srv_error *err)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    srv_status st = SRV_OK;

    if (!ext || !X509_add_ext(cert, ext, -1))
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot add a certificate extension");
    X509_EXTENSION_free(ext);
    return st;
}

static srv_status add_i2d_ext(X509 *cert, int nid, void *value, srv_error *err)
{
    if (X509_add1_ext_i2d(cert, nid, value, 0, X509V3_ADD_DEFAULT) != 1)
        return srv_ossl_fail(err, SRV_E_INTERNAL, "cannot add a certificate extension");
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
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot compute the subject key identifier");
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
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot compute the authority key identifier");
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
    if (!srv_ca_set_sig_alg((X509_ALGOR *)X509_get0_tbs_sigalg(tbs_cert), sig_nid)) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot set the signature algorithm");
        goto out;
    }
    tbs_len = i2d_re_X509_tbs(tbs_cert, &tbs);
    alg_len = i2d_X509_ALGOR(X509_get0_tbs_sigalg(tbs_cert), &alg);
    if (tbs_len <= 0 || alg_len <= 0) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate");
        goto out;
    }
    st = srv_hsm_sign_message(hsm, key, tbs, (size_t)tbs_len, sig, &sig_len, NULL, err);
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
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "the assembled certificate does not parse");
        goto out;
    }
    if (X509_verify(cert, signer_pub) != 1) {
        st = srv_ossl_fail(err, SRV_E_HSM,
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
    X509_NAME *subject = srv_ca_make_name(req->common_name, req->organization);
    time_t now = (time_t)srv_now();
    srv_status st;

    if (!cert || !subject) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot build the certificate subject");
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
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot fill in the certificate");
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
    st = srv_ca_check_hsm_key(key, &pub, &sig_nid, err);
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
    st = srv_ca_check_hsm_key(&ca->key, pub, sig_nid, err);
    if (st != SRV_OK)
        return st;
    if (!srv_ca_spki_equals(X509_get_X509_PUBKEY(ca->cert), ca->key.spki, ca->key.spki_len))
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
