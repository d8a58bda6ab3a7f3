/* Generation and parsing of API keys and access tokens. */
#include "credentials.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/util.h"

#define SECRET_LEN     32
#define SECRET_B64_LEN 43 /* unpadded base64url of 32 bytes */

static int is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static srv_status new_secret(char *text, srv_error *err)
{
    uint8_t secret[SECRET_LEN];
    char *enc;
    srv_status st = srv_random(secret, sizeof(secret), err);
    if (st != SRV_OK)
        return st;
    enc = srv_b64url_encode(secret, sizeof(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    if (!enc)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    memcpy(text, enc, SECRET_B64_LEN + 1);
    OPENSSL_cleanse(enc, strlen(enc));
    free(enc);
    return SRV_OK;
}

srv_status srv_apikey_new(char key[SRV_APIKEY_TEXT_MAX + 1], char prefix[SRV_APIKEY_PREFIX_LEN + 1],
                          uint8_t hash[32], srv_error *err)
{
    uint8_t pfx[SRV_APIKEY_PREFIX_LEN / 2];
    char secret[SECRET_B64_LEN + 1];
    srv_status st = srv_random(pfx, sizeof(pfx), err);
    if (st == SRV_OK)
        st = new_secret(secret, err);
    if (st != SRV_OK)
        return st;
    srv_hex_encode(pfx, sizeof(pfx), prefix);
    snprintf(key, SRV_APIKEY_TEXT_MAX + 1, "sgk_%s_%s", prefix, secret);
    srv_sha256(secret, SECRET_B64_LEN, hash);
    OPENSSL_cleanse(secret, sizeof(secret));
    return SRV_OK;
}

int srv_apikey_parse(const char *key, char prefix[SRV_APIKEY_PREFIX_LEN + 1], uint8_t hash[32])
{
    const size_t len = 4 + SRV_APIKEY_PREFIX_LEN + 1 + SECRET_B64_LEN;
    if (strlen(key) != len || strncmp(key, "sgk_", 4) != 0 || key[4 + SRV_APIKEY_PREFIX_LEN] != '_')
        return 0;
    for (size_t i = 4; i < 4 + SRV_APIKEY_PREFIX_LEN; i++)
        if (!strchr("0123456789abcdef", key[i]) || key[i] == '\0')
            return 0;
    if (!is_b64url(key + 5 + SRV_APIKEY_PREFIX_LEN, SECRET_B64_LEN))
        return 0;
    memcpy(prefix, key + 4, SRV_APIKEY_PREFIX_LEN);
    prefix[SRV_APIKEY_PREFIX_LEN] = '\0';
    srv_sha256(key + 5 + SRV_APIKEY_PREFIX_LEN, SECRET_B64_LEN, hash);
    return 1;
}

/* A bearer secret with a 4-character type prefix, hashed whole. */
static srv_status prefixed_new(const char *prefix, char token[SRV_TOKEN_TEXT_MAX + 1],
                               uint8_t hash[32], srv_error *err)
{
    char secret[SECRET_B64_LEN + 1];
    srv_status st = new_secret(secret, err);
    if (st != SRV_OK)
        return st;
    snprintf(token, SRV_TOKEN_TEXT_MAX + 1, "%s%s", prefix, secret);
    srv_sha256(token, strlen(token), hash);
    OPENSSL_cleanse(secret, sizeof(secret));
    return SRV_OK;
}

static int prefixed_parse(const char *prefix, const char *token, uint8_t hash[32])
{
    if (strlen(token) != 4 + SECRET_B64_LEN || strncmp(token, prefix, 4) != 0 ||
        !is_b64url(token + 4, SECRET_B64_LEN))
        return 0;
    srv_sha256(token, strlen(token), hash);
    return 1;
}

srv_status srv_token_new(char token[SRV_TOKEN_TEXT_MAX + 1], uint8_t hash[32], srv_error *err)
{
    return prefixed_new("sgt_", token, hash, err);
}

int srv_token_parse(const char *token, uint8_t hash[32])
{
    return prefixed_parse("sgt_", token, hash);
}

srv_status srv_enroll_token_new(char token[SRV_TOKEN_TEXT_MAX + 1], uint8_t hash[32],
                                srv_error *err)
{
    return prefixed_new("sge_", token, hash, err);
}

int srv_enroll_token_parse(const char *token, uint8_t hash[32])
{
    return prefixed_parse("sge_", token, hash);
}
