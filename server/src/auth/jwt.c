/* Compact JWT parsing, ES256/RS256 signature checks and claim access. */
#include "jwt.h"

#include <limits.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/b64.h"
#include "../common/json.h"

#define ES256_SIG_LEN 64
/* NumericDate values past 2^53 cannot be told apart as doubles; nothing real is that late. */
#define NUMERIC_DATE_MAX 9007199254740992.0

static const char *alg_name(srv_jwt_alg alg)
{
    return alg == SRV_JWT_ES256 ? "ES256" : "RS256";
}

/* Decodes one base64url part of at most SRV_JWT_PART_MAX characters. */
static srv_status decode_part(const char *what, const char *part_name, const char *text, size_t len,
                              uint8_t **out, size_t *out_len, srv_error *err)
{
    srv_error inner;
    if (len > SRV_JWT_PART_MAX)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s %s is over %d characters", what, part_name,
                        SRV_JWT_PART_MAX);
    if (srv_b64url_decode(text, len, SRV_JWT_PART_MAX, out, out_len, &inner) != SRV_OK)
        return srv_fail(err, inner.status == SRV_E_NOMEM ? SRV_E_NOMEM : SRV_E_BAD_CREDENTIALS,
                        "%s %s is not unpadded base64url: %s", what, part_name, inner.message);
    return SRV_OK;
}

static srv_status decode_json_part(const char *what, const char *part_name, const char *text,
                                   size_t len, cJSON **out, srv_error *err)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    srv_error inner;
    srv_status st = decode_part(what, part_name, text, len, &raw, &raw_len, err);
    if (st != SRV_OK)
        return st;
    st = srv_json_parse_object((const char *)raw, raw_len, SRV_JWT_PART_MAX, out, &inner);
    free(raw);
    if (st != SRV_OK)
        return srv_fail(err, st == SRV_E_NOMEM ? SRV_E_NOMEM : SRV_E_BAD_CREDENTIALS, "%s %s: %s",
                        what, part_name, inner.message);
    return SRV_OK;
}

static srv_status check_header(srv_jwt *jwt, unsigned allowed, srv_error *err)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jwt->header, "alg");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(jwt->header, "typ");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwt->header, "kid");
    const char *want = allowed == SRV_JWT_ALLOW(SRV_JWT_ES256) ? "ES256" : "RS256 or ES256";

    if (!cJSON_IsString(alg))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s header has no alg", jwt->what);
    if (strcmp(alg->valuestring, "ES256") == 0 && (allowed & SRV_JWT_ALLOW(SRV_JWT_ES256)))
        jwt->alg = SRV_JWT_ES256;
    else if (strcmp(alg->valuestring, "RS256") == 0 && (allowed & SRV_JWT_ALLOW(SRV_JWT_RS256)))
        jwt->alg = SRV_JWT_RS256;
    else
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s alg \"%.32s\" is not accepted; use %s",
                        jwt->what, alg->valuestring, want);
    if (typ && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s header typ must be \"JWT\"", jwt->what);
    /* Extensions we would have to understand (RFC 7515 section 4.1.11): we understand none. */
    if (cJSON_GetObjectItemCaseSensitive(jwt->header, "crit"))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s header has crit extensions", jwt->what);
    if (kid) {
        if (!cJSON_IsString(kid) || !*kid->valuestring || strlen(kid->valuestring) > 256)
            return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                            "%s header kid must be a string of 1-256 characters", jwt->what);
        jwt->kid = kid->valuestring;
    }
    return SRV_OK;
}

srv_status srv_jwt_parse(const char *text, const char *what, unsigned allowed, srv_jwt *out,
                         srv_error *err)
{
    const char *dot1, *dot2, *sig;
    srv_status st;

    memset(out, 0, sizeof(*out));
    out->what = what;
    dot1 = strchr(text, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || strchr(dot2 + 1, '.'))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "%s is not a compact JWT (three base64url parts separated by dots)", what);
    sig = dot2 + 1;
    if (dot1 == text || dot2 == dot1 + 1)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s has an empty header or payload", what);
    st = decode_json_part(what, "header", text, (size_t)(dot1 - text), &out->header, err);
    if (st == SRV_OK)
        st = check_header(out, allowed, err);
    if (st == SRV_OK)
        st = decode_json_part(what, "payload", dot1 + 1, (size_t)(dot2 - dot1 - 1), &out->claims,
                              err);
    if (st == SRV_OK && !*sig)
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s is not signed", what);
    if (st == SRV_OK)
        st = decode_part(what, "signature", sig, strlen(sig), &out->signature, &out->signature_len,
                         err);
    if (st != SRV_OK) {
        srv_jwt_clear(out);
        return st;
    }
    out->signing_input = text;
    out->signing_input_len = (size_t)(dot2 - text);
    return SRV_OK;
}

void srv_jwt_clear(srv_jwt *jwt)
{
    cJSON_Delete(jwt->header);
    cJSON_Delete(jwt->claims);
    free(jwt->signature);
    memset(jwt, 0, sizeof(*jwt));
}

/* ---- signatures ----------------------------------------------------------------------------- */

static int is_p256(EVP_PKEY *key)
{
    char group[32];
    size_t len = 0;
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          &len) == 1 &&
           strcmp(group, SN_X9_62_prime256v1) == 0;
}

/* Raw r||s to the DER ECDSA-Sig-Value OpenSSL verifies. */
static int es256_to_der(const uint8_t *raw, unsigned char **der)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, ES256_SIG_LEN / 2, NULL);
    BIGNUM *s = BN_bin2bn(raw + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL);
    int len = -1;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL; /* owned by sig now */
        len = i2d_ECDSA_SIG(sig, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return len;
}

srv_status srv_jwt_verify(const srv_jwt *jwt, EVP_PKEY *key, srv_error *err)
{
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL;
    const unsigned char *sig = jwt->signature;
    size_t sig_len = jwt->signature_len;
    srv_status st = SRV_OK;
    int rc;

    if (jwt->alg == SRV_JWT_ES256) {
        int der_len;
        if (!is_p256(key))
            return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s is ES256 but key %.64s is not P-256",
                            jwt->what, jwt->kid ? jwt->kid : "");
        if (jwt->signature_len != ES256_SIG_LEN)
            return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                            "%s ES256 signature is %zu bytes; it must be r||s, %d bytes", jwt->what,
                            jwt->signature_len, ES256_SIG_LEN);
        der_len = es256_to_der(jwt->signature, &der);
        if (der_len <= 0) {
            st = srv_fail(err, SRV_E_NOMEM, "cannot encode the ECDSA signature");
            goto out;
        }
        sig = der;
        sig_len = (size_t)der_len;
    } else if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s is RS256 but key %.64s is not RSA",
                        jwt->what, jwt->kid ? jwt->kid : "");
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot set up %s verification", alg_name(jwt->alg));
        goto out;
    }
    rc = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jwt->signing_input,
                          jwt->signing_input_len);
    if (rc != 1)
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s signature does not verify with key %.64s",
                      jwt->what, jwt->kid ? jwt->kid : "");
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return st;
}

/* ---- claims --------------------------------------------------------------------------------- */

srv_status srv_jwt_claim_string(const srv_jwt *jwt, const char *name, int required, size_t max,
                                const char **out, srv_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(jwt->claims, name);
    if (!item) {
        if (required)
            return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s has no %s claim", jwt->what, name);
        return SRV_OK;
    }
    if (!cJSON_IsString(item) || !*item->valuestring || strlen(item->valuestring) > max)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "%s claim %s must be a string of 1-%zu characters", jwt->what, name, max);
    *out = item->valuestring;
    return SRV_OK;
}

int srv_jwt_audience_has(const srv_jwt *jwt, const char *audience)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(jwt->claims, "aud"), *a;
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, audience) == 0;
    if (!cJSON_IsArray(aud))
        return 0;
    cJSON_ArrayForEach(a, aud)
    {
        if (cJSON_IsString(a) && strcmp(a->valuestring, audience) == 0)
            return 1;
    }
    return 0;
}

/* A NumericDate (RFC 7519 section 2): seconds, possibly fractional; *present tells absence. */
static srv_status claim_time(const srv_jwt *jwt, const char *name, int64_t *out, int *present,
                             srv_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(jwt->claims, name);
    *present = item != NULL;
    if (!item)
        return SRV_OK;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < 0 ||
        item->valuedouble > NUMERIC_DATE_MAX)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s claim %s must be a NumericDate", jwt->what,
                        name);
    *out = (int64_t)floor(item->valuedouble);
    return SRV_OK;
}

srv_status srv_jwt_check_time(const srv_jwt *jwt, const srv_jwt_time_rules *rules, int64_t *exp,
                              srv_error *err)
{
    int64_t e = 0, iat = 0, nbf = 0, now = rules->now;
    int has_exp, has_iat, has_nbf;
    srv_status st;

    if ((st = claim_time(jwt, "exp", &e, &has_exp, err)) != SRV_OK ||
        (st = claim_time(jwt, "iat", &iat, &has_iat, err)) != SRV_OK ||
        (st = claim_time(jwt, "nbf", &nbf, &has_nbf, err)) != SRV_OK)
        return st;
    if (!has_exp || !has_iat)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s needs exp and iat claims", jwt->what);
    if (e + rules->exp_leeway <= now)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s expired at %lld (server time %lld)",
                        jwt->what, (long long)e, (long long)now);
    if (iat > now + rules->future_skew)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "%s iat %lld is in the future (server time %lld; %lld s of skew allowed)",
                        jwt->what, (long long)iat, (long long)now, (long long)rules->future_skew);
    if (has_nbf && nbf > now + rules->future_skew)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "%s is not valid before %lld (server time %lld)", jwt->what, (long long)nbf,
                        (long long)now);
    if (e < iat)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "%s exp is before its iat", jwt->what);
    if (rules->max_lifetime && e - iat > rules->max_lifetime)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "%s lifetime exp - iat is %lld s; at most %lld s is accepted", jwt->what,
                        (long long)(e - iat), (long long)rules->max_lifetime);
    *exp = e;
    return SRV_OK;
}

/* ---- keys ----------------------------------------------------------------------------------- */

EVP_PKEY *srv_jwt_p256_from_spki(const uint8_t *spki, size_t spki_len, srv_error *err)
{
    const unsigned char *p = spki;
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *check = NULL;

    if (spki_len == 0 || spki_len > LONG_MAX || !(key = d2i_PUBKEY(NULL, &p, (long)spki_len)) ||
        p != spki + spki_len) {
        srv_fail(err, SRV_E_INVALID_FIELD, "public_key is not a DER SubjectPublicKeyInfo");
        goto fail;
    }
    if (!is_p256(key)) {
        srv_fail(err, SRV_E_INVALID_FIELD, "public_key must be an EC P-256 key (ES256)");
        goto fail;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (!check || EVP_PKEY_public_check(check) != 1) {
        srv_fail(err, SRV_E_INVALID_FIELD, "public_key is not a valid point on P-256");
        goto fail;
    }
    EVP_PKEY_CTX_free(check);
    ERR_clear_error();
    return key;
fail:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return NULL;
}
