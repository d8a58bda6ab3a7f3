/* What the agent proves itself with, besides an API key: a JWT assertion signed with the
 * service account's own P-256 key (RFC 7523, ES256), or a CI job's OIDC ID token. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/b64.h"
#include "agent.h"

#define ASSERTION_LIFETIME 120 /* seconds; the server accepts at most 300 */
#define OIDC_TOKEN_MAX     8192

static char *b64url_json(cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc), *enc;
    if (!text)
        return NULL;
    enc = b64url_encode((const uint8_t *)text, strlen(text));
    free(text);
    return enc;
}

/* Loads the private key, refusing a file others could read or that is not ours. */
static EVP_PKEY *load_key(const char *path, ag_error *err)
{
    struct stat sb;
    EVP_PKEY *key = NULL;
    FILE *f;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "cannot open the service-account key %s", path);
        return NULL;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != getuid() ||
        (sb.st_mode & 077)) {
        close(fd);
        ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                "the service-account key %s must be a file of ours with mode 0600", path);
        return NULL;
    }
    f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        ag_fail(err, SG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 256) {
        EVP_PKEY_free(key);
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "%s is not a P-256 private key in PEM", path);
        return NULL;
    }
    return key;
}

sg_status ag_jwt_assertion(const ag_config *cfg, char **out, ag_error *err)
{
    cJSON *header = cJSON_CreateObject(), *claims = cJSON_CreateObject();
    char *h = NULL, *c = NULL, *signing_input = NULL, *sig64 = NULL;
    uint8_t jti_raw[16], der[80], raw[64];
    const unsigned char *p;
    char jti[33];
    size_t der_len = sizeof(der);
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r, *s;
    time_t now = time(NULL);
    sg_status st = SG_ERR_INTERNAL;

    *out = NULL;
    if (!cfg->service_account[0] || !cfg->key_file[0] || !cfg->key_id[0]) {
        st = ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                     "service-account login needs service_account, key_file and key_id "
                     "(written by 'signum-util enroll service-account')");
        goto out;
    }
    if (!(key = load_key(cfg->key_file, err))) {
        st = err->status;
        goto out;
    }
    if (RAND_bytes(jti_raw, sizeof(jti_raw)) != 1)
        goto fail;
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", jti_raw[i]);
    cJSON_AddStringToObject(header, "alg", "ES256");
    cJSON_AddStringToObject(header, "typ", "JWT");
    cJSON_AddStringToObject(header, "kid", cfg->key_id);
    cJSON_AddStringToObject(claims, "iss", cfg->service_account);
    cJSON_AddStringToObject(claims, "sub", cfg->service_account);
    cJSON_AddStringToObject(claims, "aud", cfg->audience);
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + ASSERTION_LIFETIME));
    cJSON_AddStringToObject(claims, "jti", jti);
    h = b64url_json(header);
    c = b64url_json(claims);
    if (!h || !c || asprintf(&signing_input, "%s.%s", h, c) < 0) {
        signing_input = NULL;
        goto fail;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const uint8_t *)signing_input, strlen(signing_input)) !=
            1)
        goto fail;
    /* JWS wants r||s (RFC 7518 section 3.4), OpenSSL gives DER. */
    p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!sig)
        goto fail;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32)
        goto fail;
    sig64 = b64url_encode(raw, sizeof(raw));
    if (!sig64 || asprintf(out, "%s.%s", signing_input, sig64) < 0) {
        *out = NULL;
        goto fail;
    }
    st = SG_OK;
    goto out;
fail:
    st = ag_fail(err, SG_ERR_INTERNAL, "cannot sign the service-account assertion");
out:
    cJSON_Delete(header);
    cJSON_Delete(claims);
    free(h);
    free(c);
    free(signing_input);
    free(sig64);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return st;
}

sg_status ag_oidc_token(const ag_config *cfg, char **out, ag_error *err)
{
    char *buf;
    size_t n;
    FILE *f;

    *out = NULL;
    if (cfg->oidc_token[0]) {
        *out = strdup(cfg->oidc_token);
        return *out ? SG_OK : ag_fail(err, SG_ERR_NOMEM, "out of memory");
    }
    if (!cfg->oidc_token_file[0])
        return ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                       "OIDC login needs SIGNUM_OIDC_TOKEN or oidc_token_file");
    /* Read at every login: CI systems rotate the file as tokens expire. */
    f = fopen(cfg->oidc_token_file, "re");
    if (!f)
        return ag_fail(err, SG_ERR_NOT_LOGGED_IN, "cannot read the OIDC token file %s",
                       cfg->oidc_token_file);
    buf = malloc(OIDC_TOKEN_MAX + 2);
    n = buf ? fread(buf, 1, OIDC_TOKEN_MAX + 1, f) : 0;
    fclose(f);
    if (!buf)
        return ag_fail(err, SG_ERR_NOMEM, "out of memory");
    if (n == 0 || n > OIDC_TOKEN_MAX) {
        free(buf);
        return ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                       "the OIDC token file %s is empty or over %d "
                       "bytes",
                       cfg->oidc_token_file, OIDC_TOKEN_MAX);
    }
    buf[n] = '\0';
    buf[strcspn(buf, " \t\r\n")] = '\0';
    *out = buf;
    return SG_OK;
}
