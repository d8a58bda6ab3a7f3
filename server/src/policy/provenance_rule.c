/* Require rules: what a rule's "provenance" member asks for, the DSSE signature check against
 * its trusted builder keys, and the gate that applies every such rule in scope to an allowing
 * decision (see provenance.h and docs/provenance.md). */
#include <fnmatch.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/json.h"
#include "../common/util.h"
#include "provenance.h"

/* ---- the rule ----------------------------------------------------------------------------- */

static srv_status rule_bad(srv_error *err, const char *why)
{
    return srv_fail(err, SRV_E_INVALID_FIELD, "%s", why);
}

static srv_status get_pattern(const cJSON *obj, const char *name, const char **out, srv_error *err)
{
    srv_error inner;
    if (srv_json_get_string(obj, name, 0, SRV_PROV_VALUE_MAX, out, &inner) != SRV_OK ||
        (*out && !**out))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "provenance.%s must be a non-empty string of at most %d characters (an "
                        "exact value or a glob: * ? [...])",
                        name, SRV_PROV_VALUE_MAX);
    return SRV_OK;
}

static srv_status load_key(policy_prov_rule *pr, const char *pem, size_t i, srv_error *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int der_len, id = key ? EVP_PKEY_get_base_id(key) : 0;
    uint8_t md[SRV_SHA256_LEN];
    BIO_free(bio);
    if (!key)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "provenance.trusted_keys[%zu] is not a PEM public key (-----BEGIN PUBLIC "
                        "KEY-----)",
                        i);
    if (!(id == EVP_PKEY_ED25519 || (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= 2048) ||
          (id == EVP_PKEY_EC &&
           (EVP_PKEY_get_bits(key) == 256 || EVP_PKEY_get_bits(key) == 384)))) {
        EVP_PKEY_free(key);
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "provenance.trusted_keys[%zu] must be ECDSA P-256 or P-384, Ed25519 or "
                        "RSA of 2048 bits or more",
                        i);
    }
    der_len = i2d_PUBKEY(key, &der);
    if (der_len <= 0) {
        EVP_PKEY_free(key);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    srv_sha256(der, (size_t)der_len, md);
    OPENSSL_free(der);
    memcpy(pr->key_ids[pr->nkeys], "sha256:", 7);
    srv_hex_encode(md, sizeof(md), pr->key_ids[pr->nkeys] + 7);
    pr->keys[pr->nkeys++] = key;
    return SRV_OK;
}

srv_status policy_prov_rule_parse(const cJSON *doc, policy_rule *r, srv_error *err)
{
    static const char *const fields[] = {
        "builder_id",         "repository",   "ref",         "workflow",
        "bind_signed_digest", "trusted_keys", "oidc_claims", NULL};
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(doc, "provenance"), *keys, *claims;
    policy_prov_rule *pr;
    srv_error inner;
    srv_status st;
    size_t i = 0;

    if (r->effect != POLICY_REQUIRE)
        return obj ? rule_bad(err, "provenance belongs to rules of effect require") : SRV_OK;
    if (!obj)
        return rule_bad(err, "a rule of effect require needs a provenance object");
    if (cJSON_GetObjectItemCaseSensitive(doc, "where") ||
        cJSON_GetObjectItemCaseSensitive(doc, "when") ||
        cJSON_GetObjectItemCaseSensitive(doc, "conditions"))
        return rule_bad(err,
                        "a rule of effect require takes subjects, keys and provenance only (no "
                        "where, when or conditions)");
    if (!cJSON_IsObject(obj))
        return rule_bad(err, "field \"provenance\" must be an object");
    if (srv_json_check_fields(obj, fields, &inner) != SRV_OK)
        return srv_fail(err, inner.status, "provenance: %s", inner.message);
    if (!(pr = r->prov = calloc(1, sizeof(*pr))))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    if ((st = get_pattern(obj, "builder_id", &pr->builder_id, err)) != SRV_OK ||
        (st = get_pattern(obj, "repository", &pr->repository, err)) != SRV_OK ||
        (st = get_pattern(obj, "ref", &pr->ref, err)) != SRV_OK ||
        (st = get_pattern(obj, "workflow", &pr->workflow, err)) != SRV_OK)
        return st;
    if (srv_json_get_bool(obj, "bind_signed_digest", 0, &pr->bind_signed_digest, &inner) != SRV_OK)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "provenance.bind_signed_digest must be a boolean");
    keys = cJSON_GetObjectItemCaseSensitive(obj, "trusted_keys");
    if (keys && (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) < 1 ||
                 cJSON_GetArraySize(keys) > SRV_PROV_KEYS_MAX))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "provenance.trusted_keys must be an array of 1-%d PEM public keys",
                        SRV_PROV_KEYS_MAX);
    for (const cJSON *k = keys ? keys->child : NULL; k; k = k->next, i++) {
        if (!cJSON_IsString(k) || strlen(k->valuestring) > 16384)
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "provenance.trusted_keys[%zu] must be a PEM public key", i);
        if ((st = load_key(pr, k->valuestring, i, err)) != SRV_OK)
            return st;
    }
    claims = cJSON_GetObjectItemCaseSensitive(obj, "oidc_claims");
    if (claims) {
        int n = cJSON_IsObject(claims) ? cJSON_GetArraySize(claims) : 0;
        const cJSON *c;
        if (n < 1 || n > SRV_PROV_CLAIMS_MAX)
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "provenance.oidc_claims must be an object of 1-%d claims",
                            SRV_PROV_CLAIMS_MAX);
        cJSON_ArrayForEach(c, claims)
        {
            if (!cJSON_IsString(c) || !*c->valuestring ||
                strlen(c->valuestring) > SRV_PROV_VALUE_MAX)
                return srv_fail(err, SRV_E_INVALID_FIELD,
                                "provenance.oidc_claims.%.64s must be a non-empty string (an "
                                "exact value or a glob)",
                                c->string);
        }
        pr->oidc_claims = claims;
    }
    if (!pr->nkeys && !pr->oidc_claims)
        return rule_bad(err,
                        "provenance needs trusted_keys (builder keys that sign the envelope) or "
                        "oidc_claims (the caller's CI identity), or both");
    return SRV_OK;
}

void policy_prov_rule_free(policy_prov_rule *pr)
{
    if (!pr)
        return;
    for (size_t i = 0; i < pr->nkeys; i++)
        EVP_PKEY_free(pr->keys[i]);
    free(pr);
}

/* ---- DSSE --------------------------------------------------------------------------------- */

/* PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body. */
static uint8_t *pae(const srv_provenance *p, size_t *len)
{
    char head[128];
    int n = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(SRV_PROV_PAYLOAD_TYPE),
                     SRV_PROV_PAYLOAD_TYPE, p->payload_len);
    uint8_t *out = malloc((size_t)n + p->payload_len);
    if (!out)
        return NULL;
    memcpy(out, head, (size_t)n);
    memcpy(out + n, p->payload, p->payload_len);
    *len = (size_t)n + p->payload_len;
    return out;
}

/* An ECDSA signature given as raw r||s (as some signers write it) into DER. */
static uint8_t *ecdsa_raw_to_der(const uint8_t *sig, size_t len, size_t *der_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)(len / 2), NULL),
           *s = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
    unsigned char *der = NULL;
    int n = -1;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL;
        n = i2d_ECDSA_SIG(es, &der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    if (n <= 0)
        return NULL;
    *der_len = (size_t)n;
    return der;
}

static int verify_one(EVP_PKEY *key, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                      size_t sig_len)
{
    int id = EVP_PKEY_get_base_id(key), ok = 0, bits = EVP_PKEY_get_bits(key);
    const EVP_MD *md = id == EVP_PKEY_ED25519 ? NULL : bits == 384 ? EVP_sha384() : EVP_sha256();
    uint8_t *der = NULL;
    size_t der_len = 0;

    if (id == EVP_PKEY_EC && sig_len == (size_t)((bits + 7) / 8) * 2 &&
        (der = ecdsa_raw_to_der(sig, sig_len, &der_len))) {
        sig = der;
        sig_len = der_len;
    }
    for (int pss = 0; pss < (id == EVP_PKEY_RSA ? 2 : 1) && !ok; pss++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        if (ctx && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key) == 1 &&
            (!pss || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1)))
            ok = EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
        EVP_MD_CTX_free(ctx);
    }
    OPENSSL_free(der);
    return ok;
}

/* A signature in standard or URL-safe base64, padded or not (DSSE allows either). */
static uint8_t *decode_sig(const char *text, size_t *len)
{
    size_t n = strlen(text);
    char *norm = n <= 4096 ? malloc(n + 4) : NULL;
    uint8_t *sig = NULL;
    srv_error err;
    if (!norm)
        return NULL;
    for (size_t i = 0; i < n; i++)
        norm[i] = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
    while (n % 4)
        norm[n++] = '=';
    norm[n] = '\0';
    if (srv_b64_decode(norm, n, 2048, &sig, len, &err) != SRV_OK)
        sig = NULL;
    free(norm);
    return sig;
}

int srv_prov_dsse_verified(const srv_provenance *p, EVP_PKEY *const *keys, size_t nkeys,
                           size_t *which)
{
    const cJSON *sigs = p->env ? cJSON_GetObjectItemCaseSensitive(p->env, "signatures") : NULL, *s;
    size_t msg_len = 0;
    uint8_t *msg;
    int ok = 0;
    if (!cJSON_GetArraySize(sigs) || !nkeys || !(msg = pae(p, &msg_len)))
        return 0;
    cJSON_ArrayForEach(s, sigs)
    {
        const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(s, "sig");
        size_t sig_len = 0;
        uint8_t *sig = cJSON_IsString(b64) ? decode_sig(b64->valuestring, &sig_len) : NULL;
        /* Every key is tried: a keyid is a hint the signer chose, not something we trust. */
        for (size_t k = 0; sig && k < nkeys && !ok; k++)
            if (verify_one(keys[k], msg, msg_len, sig, sig_len)) {
                ok = 1;
                *which = k;
            }
        free(sig);
        if (ok)
            break;
    }
    free(msg);
    return ok;
}

/* ---- the gate ----------------------------------------------------------------------------- */

static int matches(const char *pattern, const char *value)
{
    return !pattern || (value && fnmatch(pattern, value, 0) == 0);
}

/* Whether the verified token's claims satisfy the rule's; *bad names the first that does not. */
static int claims_match(const policy_prov_rule *pr, const cJSON *claims, const cJSON **bad)
{
    const cJSON *want;
    cJSON_ArrayForEach(want, pr->oidc_claims)
    {
        const cJSON *got = cJSON_GetObjectItemCaseSensitive(claims, want->string);
        if (!cJSON_IsString(got) || fnmatch(want->valuestring, got->valuestring, 0) != 0) {
            *bad = want;
            return 0;
        }
    }
    return 1;
}

/* Why the envelope is not authentic for rule pr, or NULL when it is; *via says how it is. */
static const char *authentic(const policy_prov_rule *pr, const srv_provenance *p,
                             const policy_request *q, char *buf, size_t len, cJSON *via)
{
    size_t which = 0;
    const cJSON *bad = NULL, *got;
    if (pr->nkeys && srv_prov_dsse_verified(p, pr->keys, pr->nkeys, &which)) {
        cJSON_AddStringToObject(via, "via", "builder_key");
        cJSON_AddStringToObject(via, "key", pr->key_ids[which]);
        return NULL;
    }
    if (pr->oidc_claims && p->oidc_state == 1) {
        if (!q->subject_is_service || strcmp(p->oidc_account, q->subject) != 0) {
            snprintf(buf, len, "the CI ID token maps to service:%s, not to the caller",
                     p->oidc_account);
            return buf;
        }
        if (!claims_match(pr, p->oidc_claims, &bad)) {
            got = cJSON_GetObjectItemCaseSensitive(p->oidc_claims, bad->string);
            snprintf(buf, len, "the CI ID token's claim %.32s is \"%.60s\", not \"%.60s\"",
                     bad->string, cJSON_IsString(got) ? got->valuestring : "(absent)",
                     bad->valuestring);
            return buf;
        }
        cJSON_AddStringToObject(via, "via", "oidc");
        cJSON_AddStringToObject(via, "account", p->oidc_account);
        return NULL;
    }
    if (pr->oidc_claims && p->oidc_state == -1 && (!pr->nkeys || p->id_token)) {
        snprintf(buf, len, "the CI ID token was refused: %.150s", p->oidc_error);
        return buf;
    }
    if (!pr->nkeys)
        return "no CI ID token was sent (the rule accepts the caller's verified OIDC identity "
               "only)";
    if (!cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p->env, "signatures")))
        return pr->oidc_claims ? "the envelope is unsigned and no CI ID token was sent"
                               : "the envelope is unsigned";
    return "envelope signature not by a trusted builder key";
}

static int subject_has(const srv_provenance *p, const char *hex)
{
    const cJSON *subjects = cJSON_GetObjectItemCaseSensitive(p->statement, "subject"), *s;
    cJSON_ArrayForEach(s, subjects)
    {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(s, "digest"), "sha256");
        if (cJSON_IsString(h) && strcasecmp(h->valuestring, hex) == 0)
            return 1;
    }
    return 0;
}

/* Why p does not meet rule pr, or NULL when it does (then via says how it was authenticated). */
static const char *unmet(const policy_prov_rule *pr, const srv_provenance *p,
                         const policy_request *q, char *buf, size_t len, cJSON *via)
{
    const char *why;
    if (!p || !p->present || (!p->env && !p->ref_digest[0]))
        return "none sent";
    if (!p->env)
        return "only a digest and reference were sent; the server does not fetch provenance, "
               "send the envelope";
    if ((why = authentic(pr, p, q, buf, len, via)))
        return why;
#define VALUE_CHECK(field, what)                                                                   \
    if (!matches(pr->field, p->field)) {                                                           \
        snprintf(buf, len, what " \"%.60s\" is not \"%.60s\"", p->field ? p->field : "(none)",     \
                 pr->field);                                                                       \
        return buf;                                                                                \
    }
    VALUE_CHECK(builder_id, "builder id")
    VALUE_CHECK(repository, "source repository")
    VALUE_CHECK(ref, "ref")
    VALUE_CHECK(workflow, "workflow")
#undef VALUE_CHECK
    if (!p->has_artifact)
        return "the request declares no artifact_sha256 to match the subject digest against";
    if (!subject_has(p, p->artifact_sha256))
        return "subject digest does not match the artifact digest";
    if (pr->bind_signed_digest) {
        uint8_t want[32];
        for (size_t i = 0; i < 32; i++)
            sscanf(p->artifact_sha256 + 2 * i, "%2hhx", &want[i]);
        if (!p->hash || strcmp(p->hash, "sha256") != 0 || !p->ndigests)
            return "the signed digest is not the artifact digest (the rule binds them: sign "
                   "the artifact file's sha256)";
        for (size_t i = 0; i < p->ndigests; i++)
            if (memcmp(p->digests[i], want, 32) != 0)
                return "the signed digest is not the artifact digest (the rule binds them: sign "
                       "the artifact file's sha256)";
    }
    return NULL;
}

void policy_prov_gate(const policy_set *set, const policy_request *q, policy_decision *d,
                      cJSON **gates)
{
    for (size_t i = 0; i < set->n; i++) {
        const policy_rule *r = &set->rules[i];
        char buf[200];
        const char *why;
        cJSON *via;
        if (!r->enabled || r->effect != POLICY_REQUIRE || !r->prov || !policy_rule_in_scope(r, q))
            continue;
        if (!(via = cJSON_CreateObject())) {
            d->outcome = POLICY_ERROR;
            snprintf(d->message, sizeof(d->message), "out of memory");
            return;
        }
        cJSON_AddStringToObject(via, "rule", r->name);
        why = unmet(r->prov, q->provenance, q, buf, sizeof(buf), via);
        if (why) {
            cJSON_Delete(via);
            d->outcome = POLICY_PROVENANCE_DENIED;
            d->rule = r;
            d->by_grant = POLICY_GRANT_NONE;
            char msg[600];
            snprintf(msg, sizeof(msg), "provenance required by rule \"%s\" for key \"%s\": %s",
                     r->name, q->key, why);
            snprintf(d->message, sizeof(d->message), "%.255s", msg);
            return;
        }
        if (!*gates)
            *gates = cJSON_CreateArray();
        if (*gates)
            cJSON_AddItemToArray(*gates, via);
        else
            cJSON_Delete(via);
    }
}
