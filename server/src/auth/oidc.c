/* CI OIDC: loading issuers, JWKS keys and mapping rules; verifying ID tokens against them. */
#include "oidc.h"

#include <libgen.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/json.h"
#include "../common/log.h"
#include "../common/util.h"
#include "jwt.h"

#define FILE_MAX        (1024 * 1024) /* the config and each JWKS file */
#define ISSUERS_MAX     32
#define RULES_MAX       256
#define RULE_CLAIMS_MAX 16
#define KEYS_MAX        64
#define CLAIM_VALUE_MAX 512
#define RSA_MIN_BITS    2048
#define RSA_N_MAX       1024 /* bytes: 8192-bit moduli */
#define RSA_E_MAX       8
#define P256_COORD_LEN  32

typedef struct {
    const char *kid; /* inside the issuer's JWKS document */
    srv_jwt_alg alg;
    EVP_PKEY *key;
} oidc_key;

typedef struct {
    const cJSON *claims; /* object of strings, inside the config document */
    const char *service_account;
} oidc_rule;

typedef struct {
    const char *issuer;
    const char *audience;
    cJSON *jwks;
    oidc_key keys[KEYS_MAX];
    size_t nkeys;
    oidc_rule *rules;
    size_t nrules;
} oidc_issuer;

struct srv_oidc {
    cJSON *doc;
    oidc_issuer issuers[ISSUERS_MAX];
    size_t nissuers;
};

/* A configuration error, prefixed with where in which file it is. */
static srv_status bad(srv_error *err, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static srv_status bad(srv_error *err, const char *where, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return srv_fail(err, SRV_E_CONFIG, "%s: %s", where, msg);
}

static srv_status read_json(const char *path, const char *where, cJSON **out, srv_error *err)
{
    char *text = NULL;
    size_t len = 0;
    srv_error inner;
    srv_status st = srv_read_file(path, FILE_MAX, &text, &len, &inner);
    if (st != SRV_OK)
        return bad(err, where, "%s", inner.message);
    st = srv_json_parse_object(text, len, FILE_MAX, out, &inner);
    free(text);
    if (st != SRV_OK)
        return bad(err, where, "%s is not a JSON object: %s", path, inner.message);
    return SRV_OK;
}

static const char *string_member(const cJSON *obj, const char *name, size_t max)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(item) || !*item->valuestring || strlen(item->valuestring) > max)
        return NULL;
    return item->valuestring;
}

/* ---- JWKS ----------------------------------------------------------------------------------- */

static BIGNUM *b64url_bn(const cJSON *jwk, const char *name, size_t max, size_t *len_out)
{
    const char *text = string_member(jwk, name, 2 * max);
    uint8_t *raw = NULL;
    size_t len = 0;
    BIGNUM *bn = NULL;
    if (text && srv_b64url_decode(text, strlen(text), max, &raw, &len, NULL) == SRV_OK && len > 0)
        bn = BN_bin2bn(raw, (int)len, NULL);
    free(raw);
    if (len_out)
        *len_out = len;
    return bn;
}

static EVP_PKEY *key_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *key = NULL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    /* fromdata takes the numbers as given; make sure they form a usable public key. */
    if (key && (!(check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) ||
                EVP_PKEY_public_check(check) != 1)) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    ERR_clear_error();
    return key;
}

static srv_status rsa_key(const cJSON *jwk, const char *where, EVP_PKEY **out, srv_error *err)
{
    BIGNUM *n = b64url_bn(jwk, "n", RSA_N_MAX, NULL), *e = b64url_bn(jwk, "e", RSA_E_MAX, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    srv_status st = SRV_OK;

    *out = NULL;
    if (!n || !e) {
        st = bad(err, where, "RSA key needs base64url n (at most %d bytes) and e", RSA_N_MAX);
        goto out;
    }
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        !(*out = key_from_params("RSA", bld))) {
        st = bad(err, where, "RSA key n/e do not form a valid public key");
        goto out;
    }
    if (EVP_PKEY_get_bits(*out) < RSA_MIN_BITS) {
        st = bad(err, where, "RSA key of %d bits; at least %d", EVP_PKEY_get_bits(*out),
                 RSA_MIN_BITS);
        EVP_PKEY_free(*out);
        *out = NULL;
    }
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return st;
}

static srv_status p256_key(const cJSON *jwk, const char *where, EVP_PKEY **out, srv_error *err)
{
    const char *x = string_member(jwk, "x", 64), *y = string_member(jwk, "y", 64);
    uint8_t *xb = NULL, *yb = NULL, point[1 + 2 * P256_COORD_LEN];
    size_t xl = 0, yl = 0;
    OSSL_PARAM_BLD *bld = NULL;
    srv_status st = SRV_OK;

    *out = NULL;
    if (!x || !y || srv_b64url_decode(x, strlen(x), 64, &xb, &xl, NULL) != SRV_OK ||
        srv_b64url_decode(y, strlen(y), 64, &yb, &yl, NULL) != SRV_OK || xl != P256_COORD_LEN ||
        yl != P256_COORD_LEN) {
        st = bad(err, where, "P-256 key needs base64url x and y of %d bytes each", P256_COORD_LEN);
        goto out;
    }
    point[0] = 0x04; /* uncompressed point */
    memcpy(point + 1, xb, P256_COORD_LEN);
    memcpy(point + 1 + P256_COORD_LEN, yb, P256_COORD_LEN);
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) ||
        !(*out = key_from_params("EC", bld)))
        st = bad(err, where, "x/y are not a point on P-256");
out:
    OSSL_PARAM_BLD_free(bld);
    free(xb);
    free(yb);
    return st;
}

/* Loads one JWK into iss->keys, or skips (with a warning) a key this server cannot use for
 * signatures; only a malformed RSA or P-256 key is an error. */
static srv_status load_jwk(oidc_issuer *iss, const cJSON *jwk, const char *where, srv_error *err)
{
    const char *kty = string_member(jwk, "kty", 16), *kid = string_member(jwk, "kid", 256);
    const char *use = string_member(jwk, "use", 16), *alg = string_member(jwk, "alg", 16);
    const char *crv = string_member(jwk, "crv", 16);
    oidc_key *k = &iss->keys[iss->nkeys];
    srv_status st;

    if (!cJSON_IsObject(jwk) || !kty)
        return bad(err, where, "each key must be an object with a kty");
    if (!kid || (use && strcmp(use, "sig") != 0)) {
        srv_log(SRV_LOG_WARN, "auth", "%s: skipped (no kid, or not a signing key)", where);
        return SRV_OK;
    }
    if (strcmp(kty, "RSA") == 0 && (!alg || strcmp(alg, "RS256") == 0)) {
        k->alg = SRV_JWT_RS256;
        st = rsa_key(jwk, where, &k->key, err);
    } else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0 &&
               (!alg || strcmp(alg, "ES256") == 0)) {
        k->alg = SRV_JWT_ES256;
        st = p256_key(jwk, where, &k->key, err);
    } else {
        srv_log(SRV_LOG_WARN, "auth", "%s: key %s skipped: only RS256 and ES256 (P-256) are used",
                where, kid);
        return SRV_OK;
    }
    if (st != SRV_OK)
        return st;
    for (size_t i = 0; i < iss->nkeys; i++) {
        if (strcmp(iss->keys[i].kid, kid) == 0) {
            EVP_PKEY_free(k->key);
            k->key = NULL;
            return bad(err, where, "kid \"%.64s\" appears twice", kid);
        }
    }
    k->kid = kid;
    iss->nkeys++;
    return SRV_OK;
}

static srv_status load_jwks(oidc_issuer *iss, const char *path, const char *where, srv_error *err)
{
    const cJSON *keys, *jwk;
    char at[160];
    size_t i = 0;
    srv_status st = read_json(path, where, &iss->jwks, err);
    if (st != SRV_OK)
        return st;
    keys = cJSON_GetObjectItemCaseSensitive(iss->jwks, "keys");
    if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) > KEYS_MAX)
        return bad(err, where, "%s needs a \"keys\" array of at most %d keys", path, KEYS_MAX);
    cJSON_ArrayForEach(jwk, keys)
    {
        snprintf(at, sizeof(at), "%.120s keys[%zu]", where, i++);
        if ((st = load_jwk(iss, jwk, at, err)) != SRV_OK)
            return st;
    }
    if (iss->nkeys == 0)
        return bad(err, where, "%s has no usable RS256 or ES256 signing key", path);
    return SRV_OK;
}

/* ---- issuers and rules ---------------------------------------------------------------------- */

static srv_status load_rule(oidc_rule *rule, const cJSON *obj, const char *where, srv_error *err)
{
    static const char *const fields[] = {"claims", "service_account", NULL};
    const cJSON *claims = cJSON_GetObjectItemCaseSensitive(obj, "claims"), *c;
    srv_error inner;

    if (!cJSON_IsObject(obj))
        return bad(err, where, "a rule must be an object");
    if (srv_json_check_fields(obj, fields, &inner) != SRV_OK)
        return bad(err, where, "%s", inner.message);
    rule->service_account = string_member(obj, "service_account", SRV_NAME_MAX);
    if (!rule->service_account || !srv_valid_name(rule->service_account, SRV_NAME_MAX))
        return bad(err, where, "service_account must be 1-64 characters of [A-Za-z0-9._-]");
    /* A rule without claims would hand the account to every token of the issuer. */
    if (!cJSON_IsObject(claims) || !claims->child || cJSON_GetArraySize(claims) > RULE_CLAIMS_MAX)
        return bad(err, where, "claims must be an object of 1-%d claims", RULE_CLAIMS_MAX);
    cJSON_ArrayForEach(c, claims)
    {
        if (!cJSON_IsString(c) || strlen(c->valuestring) > CLAIM_VALUE_MAX)
            return bad(err, where, "claim \"%.64s\" must be a string of at most %d characters",
                       c->string, CLAIM_VALUE_MAX);
        for (const cJSON *other = c->next; other; other = other->next)
            if (strcmp(other->string, c->string) == 0)
                return bad(err, where, "claim \"%.64s\" appears twice", c->string);
    }
    rule->claims = claims;
    return SRV_OK;
}

static srv_status load_issuer(srv_oidc *o, const cJSON *obj, const char *dir, const char *where,
                              srv_error *err)
{
    static const char *const fields[] = {"issuer", "jwks_file", "audience", "rules", NULL};
    oidc_issuer *iss = &o->issuers[o->nissuers];
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(obj, "rules"), *r;
    const char *jwks_file;
    char path[PATH_MAX], at[160];
    srv_error inner;
    srv_status st;
    size_t i = 0;

    if (!cJSON_IsObject(obj))
        return bad(err, where, "an issuer must be an object");
    if (srv_json_check_fields(obj, fields, &inner) != SRV_OK)
        return bad(err, where, "%s", inner.message);
    iss->issuer = string_member(obj, "issuer", SRV_OIDC_TEXT_MAX);
    iss->audience = string_member(obj, "audience", SRV_OIDC_TEXT_MAX);
    jwks_file = string_member(obj, "jwks_file", PATH_MAX - 1);
    if (!iss->issuer || !iss->audience || !jwks_file)
        return bad(err, where, "issuer, audience and jwks_file are required strings (at most %d)",
                   SRV_OIDC_TEXT_MAX);
    for (size_t k = 0; k < o->nissuers; k++)
        if (strcmp(o->issuers[k].issuer, iss->issuer) == 0)
            return bad(err, where, "issuer %.100s is configured twice", iss->issuer);
    if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) < 1 ||
        cJSON_GetArraySize(rules) > RULES_MAX)
        return bad(err, where, "rules must be an array of 1-%d rules", RULES_MAX);
    o->nissuers++; /* from here on it owns what it loaded, for srv_oidc_free */
    iss->rules = calloc((size_t)cJSON_GetArraySize(rules), sizeof(*iss->rules));
    if (!iss->rules)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    cJSON_ArrayForEach(r, rules)
    {
        snprintf(at, sizeof(at), "%.100s.rules[%zu]", where, i);
        if ((st = load_rule(&iss->rules[i++], r, at, err)) != SRV_OK)
            return st;
        iss->nrules++;
    }
    if ((st = srv_path_join(path, sizeof(path), dir, jwks_file, err)) != SRV_OK)
        return st;
    snprintf(at, sizeof(at), "%.100s.jwks_file", where);
    return load_jwks(iss, path, at, err);
}

srv_status srv_oidc_load(const char *path, srv_oidc **out, srv_error *err)
{
    static const char *const fields[] = {"issuers", NULL};
    srv_oidc *o = calloc(1, sizeof(*o));
    const cJSON *issuers, *item;
    char dir_buf[PATH_MAX], where[160], *dir;
    srv_error inner;
    srv_status st;
    size_t i = 0;

    *out = NULL;
    if (!o)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    snprintf(where, sizeof(where), "oidc_config");
    if ((st = read_json(path, where, &o->doc, err)) != SRV_OK)
        goto fail;
    if (srv_json_check_fields(o->doc, fields, &inner) != SRV_OK) {
        st = bad(err, where, "%s", inner.message);
        goto fail;
    }
    issuers = cJSON_GetObjectItemCaseSensitive(o->doc, "issuers");
    if (!cJSON_IsArray(issuers) || cJSON_GetArraySize(issuers) < 1 ||
        cJSON_GetArraySize(issuers) > ISSUERS_MAX) {
        st = bad(err, where, "issuers must be an array of 1-%d issuers", ISSUERS_MAX);
        goto fail;
    }
    snprintf(dir_buf, sizeof(dir_buf), "%s", path);
    dir = dirname(dir_buf);
    cJSON_ArrayForEach(item, issuers)
    {
        snprintf(where, sizeof(where), "oidc_config issuers[%zu]", i++);
        if ((st = load_issuer(o, item, dir, where, err)) != SRV_OK)
            goto fail;
    }
    *out = o;
    return SRV_OK;
fail:
    srv_oidc_free(o);
    return st;
}

void srv_oidc_free(srv_oidc *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nissuers; i++) {
        for (size_t k = 0; k < o->issuers[i].nkeys; k++)
            EVP_PKEY_free(o->issuers[i].keys[k].key);
        cJSON_Delete(o->issuers[i].jwks);
        free(o->issuers[i].rules);
    }
    cJSON_Delete(o->doc);
    free(o);
}

unsigned srv_oidc_issuer_count(const srv_oidc *o)
{
    return o ? (unsigned)o->nissuers : 0;
}

/* ---- exchange ------------------------------------------------------------------------------- */

static int rule_matches(const oidc_rule *rule, const cJSON *claims)
{
    const cJSON *want;
    cJSON_ArrayForEach(want, rule->claims)
    {
        const cJSON *got = cJSON_GetObjectItemCaseSensitive(claims, want->string);
        if (!cJSON_IsString(got) || strcmp(got->valuestring, want->valuestring) != 0)
            return 0;
    }
    return 1;
}

/* Copies a presented value for the record; a value too long to keep whole is left out. */
static void keep(char *dst, const char *src)
{
    if (src && strlen(src) <= SRV_OIDC_TEXT_MAX)
        snprintf(dst, SRV_OIDC_TEXT_MAX + 1, "%s", src);
}

static srv_status verify_token(const srv_oidc *o, const char *id_token, int64_t now,
                               srv_oidc_result *res, cJSON **claims, srv_error *err)
{
    srv_jwt_time_rules times = {now, SRV_OIDC_CLOCK_SKEW, SRV_OIDC_CLOCK_SKEW, 0};
    const oidc_issuer *iss = NULL;
    const oidc_key *key = NULL;
    const char *issuer = NULL, *subject = NULL;
    srv_jwt jwt;
    srv_status st;
    size_t i;

    memset(res, 0, sizeof(*res));
    res->rule = -1;
    st = srv_jwt_parse(id_token, "ID token",
                       SRV_JWT_ALLOW(SRV_JWT_RS256) | SRV_JWT_ALLOW(SRV_JWT_ES256), &jwt, err);
    if (st != SRV_OK)
        return st;
    keep(res->kid, jwt.kid);
    if ((st = srv_jwt_claim_string(&jwt, "iss", 1, SRV_OIDC_TEXT_MAX, &issuer, err)) != SRV_OK)
        goto out;
    keep(res->issuer, issuer);
    if ((st = srv_jwt_claim_string(&jwt, "sub", 1, SRV_OIDC_TEXT_MAX, &subject, err)) != SRV_OK)
        goto out;
    keep(res->subject, subject);
    for (i = 0; i < o->nissuers && !iss; i++)
        if (strcmp(o->issuers[i].issuer, issuer) == 0)
            iss = &o->issuers[i];
    if (!iss) {
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "ID token issuer \"%.100s\" is not configured",
                      issuer);
        goto out;
    }
    if (!jwt.kid) {
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "ID token header has no kid");
        goto out;
    }
    for (i = 0; i < iss->nkeys && !key; i++)
        if (strcmp(iss->keys[i].kid, jwt.kid) == 0)
            key = &iss->keys[i];
    if (!key) {
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "no key with kid \"%.64s\" in the JWKS of %.100s",
                      jwt.kid, iss->issuer);
        goto out;
    }
    if (key->alg != jwt.alg) {
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "ID token alg does not fit key \"%.64s\" (%s)",
                      jwt.kid, key->alg == SRV_JWT_RS256 ? "RS256" : "ES256");
        goto out;
    }
    if ((st = srv_jwt_verify(&jwt, key->key, err)) != SRV_OK)
        goto out;
    if (!srv_jwt_audience_has(&jwt, iss->audience)) {
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "ID token audience does not include \"%.100s\"",
                      iss->audience);
        goto out;
    }
    if ((st = srv_jwt_check_time(&jwt, &times, &res->expires_at, err)) != SRV_OK)
        goto out;
    for (i = 0; i < iss->nrules; i++) {
        if (rule_matches(&iss->rules[i], jwt.claims)) {
            res->rule = (int)i;
            snprintf(res->service_account, sizeof(res->service_account), "%s",
                     iss->rules[i].service_account);
            goto out;
        }
    }
    st = srv_fail(err, SRV_E_BAD_CREDENTIALS,
                  "no rule of issuer %.100s matches the ID token's claims", iss->issuer);
out:
    if (st == SRV_OK && claims && !(*claims = cJSON_Duplicate(jwt.claims, 1)))
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
    srv_jwt_clear(&jwt);
    return st;
}

srv_status srv_oidc_exchange(const srv_oidc *o, const char *id_token, int64_t now,
                             srv_oidc_result *res, srv_error *err)
{
    return verify_token(o, id_token, now, res, NULL, err);
}

srv_status srv_oidc_verify(const srv_oidc *o, const char *id_token, int64_t now,
                           srv_oidc_result *res, cJSON **claims, srv_error *err)
{
    *claims = NULL;
    return verify_token(o, id_token, now, res, claims, err);
}
