/* JWT/JWS parsing (server/src/auth/jwt.c) as the token endpoint and the OIDC exchange run it:
 * parse, claims, audience, times, signature check, and the P-256 SPKI reader.
 *
 * Input: one mode byte, then the token text. Mode bit 0 replaces the token's signature with a
 * real one over the fuzzer's own header.payload (ES256 or RS256 by bit 1, with keys made at
 * start-up), so the verify path past the signature is reached and checked: a token parsed
 * with a signature made by the key must verify with that key. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <string.h>

#include "auth/jwt.h"
#include "common/b64.h"
#include "fuzz.h"

static EVP_PKEY *ec_key, *rsa_key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!ec_key || !rsa_key)
        abort();
    return 0;
}

/* A base64url signature over text[0..input_len) in JWS form (ES256: raw r||s). */
static char *sign_jws(const char *text, size_t input_len, int rs256)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[600], raw[64];
    size_t der_len = sizeof(der);
    char *out = NULL;
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, rs256 ? rsa_key : ec_key) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const unsigned char *)text, input_len) != 1)
        goto out;
    if (rs256) {
        out = srv_b64url_encode(der, der_len);
    } else {
        const unsigned char *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        if (!sig)
            goto out;
        if (BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32)
            out = srv_b64url_encode(raw, sizeof(raw));
        ECDSA_SIG_free(sig);
    }
out:
    EVP_MD_CTX_free(md);
    return out;
}

static void use_claims(const srv_jwt *jwt)
{
    static const char *const names[] = {"iss", "sub", "jti", "aud", "exp", "email"};
    srv_jwt_time_rules rules[] = {{1700000000, 0, 60, 3600}, {1700000000, 60, 60, 0}};
    srv_error err;
    int64_t exp;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = NULL;
        if (srv_jwt_claim_string(jwt, names[i], (int)(i & 1), 128, &v, &err) == SRV_OK && v)
            FUZZ_CHECK(*v && strlen(v) <= 128);
    }
    (void)srv_jwt_audience_has(jwt, "https://signum.example");
    (void)srv_jwt_audience_has(jwt, "");
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (srv_jwt_check_time(jwt, &rules[i], &exp, &err) == SRV_OK)
            FUZZ_CHECK(exp + rules[i].exp_leeway > rules[i].now);
        else
            FUZZ_CHECK(err.status == SRV_E_BAD_CREDENTIALS);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned mode = size ? data[0] : 0;
    char *text = fuzz_strndup(size ? data + 1 : data, size ? size - 1 : 0), *signed_text = NULL;
    const char *token = text;
    int resigned = 0;
    srv_jwt jwt;
    srv_error err;
    srv_status st;
    EVP_PKEY *spki_key;

    if (!text)
        return 0;
    if (mode & 1) {
        /* header.payload as the fuzzer wrote it, then a real signature. */
        const char *dot1 = strchr(text, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        if (dot2) {
            size_t input_len = (size_t)(dot2 - text);
            char *sig = sign_jws(text, input_len, (mode & 2) != 0);
            if (sig && (signed_text = malloc(input_len + 2 + strlen(sig)))) {
                memcpy(signed_text, text, input_len + 1);
                strcpy(signed_text + input_len + 1, sig);
                token = signed_text;
                resigned = 1;
            }
            free(sig);
        }
    }

    st = srv_jwt_parse(token, "assertion",
                       SRV_JWT_ALLOW(SRV_JWT_ES256) | SRV_JWT_ALLOW(SRV_JWT_RS256), &jwt, &err);
    if (st == SRV_OK) {
        FUZZ_CHECK(jwt.header && jwt.claims && jwt.signature);
        FUZZ_CHECK(jwt.signing_input == token && token[jwt.signing_input_len] == '.');
        use_claims(&jwt);
        st = srv_jwt_verify(&jwt, ec_key, &err);
        if (resigned && !(mode & 2) && jwt.alg == SRV_JWT_ES256)
            FUZZ_CHECK(st == SRV_OK);
        st = srv_jwt_verify(&jwt, rsa_key, &err);
        if (resigned && (mode & 2) && jwt.alg == SRV_JWT_RS256)
            FUZZ_CHECK(st == SRV_OK);
        /* The signature bytes as a public key: the enrolment path's SPKI reader. */
        spki_key = srv_jwt_p256_from_spki(jwt.signature, jwt.signature_len, &err);
        EVP_PKEY_free(spki_key);
        srv_jwt_clear(&jwt);
    } else {
        FUZZ_CHECK(st == SRV_E_BAD_CREDENTIALS || st == SRV_E_NOMEM);
        FUZZ_CHECK(jwt.header == NULL && jwt.claims == NULL && jwt.signature == NULL);
    }
    /* ES256 only, as service-account assertions are taken. */
    if (srv_jwt_parse(token, "assertion", SRV_JWT_ALLOW(SRV_JWT_ES256), &jwt, &err) == SRV_OK) {
        FUZZ_CHECK(jwt.alg == SRV_JWT_ES256);
        srv_jwt_clear(&jwt);
    }
    free(signed_text);
    free(text);
    return 0;
}
