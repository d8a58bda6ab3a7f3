/* Compact JWS/JWT (RFC 7515, 7519) for the token endpoint: service-account assertions
 * (RFC 7523, ES256) and CI OIDC ID tokens (RS256, ES256). Every part is size-capped before it
 * is decoded; nothing here trusts a claim: callers verify the signature first. Failures are
 * SRV_E_BAD_CREDENTIALS with a message that names what was wrong. */
#ifndef SRV_JWT_H
#define SRV_JWT_H

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

#define SRV_JWT_PART_MAX (8 * 1024) /* each base64url part, as sent */
#define SRV_JWT_TEXT_MAX (3 * SRV_JWT_PART_MAX + 2)

typedef enum { SRV_JWT_ES256, SRV_JWT_RS256 } srv_jwt_alg;

#define SRV_JWT_ALLOW(alg) (1u << (alg))

typedef struct {
    const char *what; /* "assertion" or "ID token", for messages */
    cJSON *header;
    cJSON *claims;
    srv_jwt_alg alg;
    const char *kid;           /* from the header; NULL if absent */
    const char *signing_input; /* "header.payload" inside the caller's text */
    size_t signing_input_len;
    uint8_t *signature;
    size_t signature_len;
} srv_jwt;

/* Splits and decodes `text`; refuses any algorithm not in `allowed` (SRV_JWT_ALLOW bits),
 * "none" and the HMAC ones included, and any header with "crit". `text` must outlive *out. */
srv_status srv_jwt_parse(const char *text, const char *what, unsigned allowed, srv_jwt *out,
                         srv_error *err);
void srv_jwt_clear(srv_jwt *jwt);

/* Checks the signature with `key`, whose type must fit the token's alg (EC P-256 for ES256,
 * RSA for RS256). ES256 signatures are raw r||s (64 bytes, RFC 7518 section 3.4). */
srv_status srv_jwt_verify(const srv_jwt *jwt, EVP_PKEY *key, srv_error *err);

/* A string claim of at most max bytes; a missing optional claim leaves *out untouched. */
srv_status srv_jwt_claim_string(const srv_jwt *jwt, const char *name, int required, size_t max,
                                const char **out, srv_error *err);
/* 1 if "aud" is `audience` or an array holding it. */
int srv_jwt_audience_has(const srv_jwt *jwt, const char *audience);

typedef struct {
    int64_t now;
    int64_t exp_leeway;   /* how long after exp the token is still taken */
    int64_t future_skew;  /* how far iat and nbf may lie ahead of now */
    int64_t max_lifetime; /* largest exp - iat; 0: no limit */
} srv_jwt_time_rules;

/* exp and iat are required, nbf optional; *exp receives exp. */
srv_status srv_jwt_check_time(const srv_jwt *jwt, const srv_jwt_time_rules *rules, int64_t *exp,
                              srv_error *err);

/* Parses a whole DER SubjectPublicKeyInfo that must hold a valid P-256 public key. NULL and
 * SRV_E_INVALID_FIELD (with the reason) otherwise. */
EVP_PKEY *srv_jwt_p256_from_spki(const uint8_t *spki, size_t spki_len, srv_error *err);

#endif
