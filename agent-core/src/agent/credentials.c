/* What the agent proves itself with, besides an API key: a JWT assertion signed with the
 * service account's own P-256 key (RFC 7523, ES256), or a CI job's OIDC ID token. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../client/client_os.h"
#include "signum/common/b64.h"
#include "agent.h"

#define ASSERTION_LIFETIME 120 /* seconds; the server accepts at most 300 */
#define OIDC_TOKEN_MAX     8192
#ifdef _WIN32
#define READ_MODE "r" /* the Windows C runtime knows no "e" (close-on-exec) */
#else
#define READ_MODE "re"
#endif

static char *b64url_json(cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc), *enc;
    if (!text)
        return NULL;
    enc = sgc_b64url_encode((const uint8_t *)text, strlen(text));
    free(text);
    return enc;
}

/* "a.b", malloc'd. */
static char *join_dot(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *out = malloc(la + lb + 2);
    if (out) {
        memcpy(out, a, la);
        out[la] = '.';
        memcpy(out + la + 1, b, lb + 1);
    }
    return out;
}

sg_status ag_jwt_assertion(const ag_config *cfg, char **out, ag_error *err)
{
    cJSON *header = cJSON_CreateObject(), *claims = cJSON_CreateObject();
    char *h = NULL, *c = NULL, *signing_input = NULL, *sig64 = NULL;
    uint8_t jti_raw[16], raw[64];
    char jti[33];
    time_t now = time(NULL);
    sg_status st = SG_ERR_INTERNAL;

    *out = NULL;
    if (!cfg->service_account[0] || !cfg->key_file[0] || !cfg->key_id[0]) {
        st = ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                     "service-account login needs service_account, key_file and key_id "
                     "(written by 'signum-util enroll service-account')");
        goto out;
    }
    if (sg_os_random(jti_raw, sizeof(jti_raw)) != 0)
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
    if (!h || !c || !(signing_input = join_dot(h, c)))
        goto fail;
    /* JWS wants r||s (RFC 7518 section 3.4). */
    st = ag_es256_sign(cfg->key_file, signing_input, strlen(signing_input), raw, err);
    if (st != SG_OK)
        goto out;
    sig64 = sgc_b64url_encode(raw, sizeof(raw));
    if (!sig64 || !(*out = join_dot(signing_input, sig64)))
        goto fail;
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
    f = fopen(cfg->oidc_token_file, READ_MODE);
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
