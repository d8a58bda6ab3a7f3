/* The provenance a sign request carries: parsing and checking the DSSE envelope and its in-toto
 * statement, reading the SLSA predicate's builder and source, verifying the caller's CI ID
 * token, and describing it all for the audit record. Nothing here decides: the require rules
 * do (provenance_rule.c). */
#include "provenance.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/oidc.h"
#include "../common/b64.h"
#include "../common/json.h"
#include "../common/util.h"

#define STATEMENT_V1   "https://in-toto.io/Statement/v1"
#define STATEMENT_V01  "https://in-toto.io/Statement/v0.1"
#define SLSA_V1        "https://slsa.dev/provenance/v1"
#define SLSA_V02       "https://slsa.dev/provenance/v0.2"
#define ID_TOKEN_MAX   16384
#define B64_MAX(bytes) (((bytes) + 2) / 3 * 4)

static srv_status bad(srv_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static srv_status bad(srv_error *err, const char *fmt, ...)
{
    char msg[220];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return srv_fail(err, SRV_E_PROVENANCE_INVALID, "provenance: %s", msg);
}

static void sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    uint8_t md[SRV_SHA256_LEN];
    srv_sha256(data, len, md);
    srv_hex_encode(md, sizeof(md), out);
}

/* Lower-case hex of exactly n characters into out (n + 1 bytes). */
static int hex_ok(const char *s, size_t n, char *out)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return 0;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[n] = '\0';
    return 1;
}

/* "sha256:HEX" (or a bare 64-digit HEX) into lower-case hex. */
static int sha256_ref_ok(const char *s, char out[65])
{
    if (strncmp(s, "sha256:", 7) == 0)
        s += 7;
    return hex_ok(s, 64, out);
}

/* DSSE allows standard and URL-safe base64, padded or not. */
static srv_status b64_any(const char *text, size_t max, uint8_t **out, size_t *len, srv_error *err)
{
    size_t n = strlen(text);
    char *norm = malloc(n + 4);
    srv_status st;
    if (!norm)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        norm[i] = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
    while (n % 4)
        norm[n++] = '=';
    norm[n] = '\0';
    st = srv_b64_decode(norm, n, max, out, len, err);
    free(norm);
    return st;
}

/* A copy of the string at path (member names, NULL-terminated) in obj, or NULL. */
static const char *str_at(const cJSON *obj, ...)
{
    va_list ap;
    const char *name;
    va_start(ap, obj);
    while (obj && (name = va_arg(ap, const char *)))
        obj = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    va_end(ap);
    return cJSON_IsString(obj) ? obj->valuestring : NULL;
}

static srv_status keep(char **dst, const char *src, size_t len, const char *what, srv_error *err)
{
    if (len > SRV_PROV_VALUE_MAX)
        return bad(err, "the statement's %s is longer than %d bytes", what, SRV_PROV_VALUE_MAX);
    if (!(*dst = strndup(src, len)))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    return SRV_OK;
}

/* "git+https://host/org/repo@refs/heads/main" into repository and ref (either may be set). */
static srv_status split_git_uri(srv_provenance *p, const char *uri, srv_error *err)
{
    const char *at;
    srv_status st;
    const char *path;
    if (strncmp(uri, "git+", 4) == 0)
        uri += 4;
    /* The ref follows the last '@' of the path: "ssh://git@host/org/repo" has none. */
    path = strstr(uri, "://");
    path = strchr(path ? path + 3 : uri, '/');
    at = strrchr(uri, '@');
    if (at && (!path || at < path))
        at = NULL;
    if (!p->repository && (st = keep(&p->repository, uri, at ? (size_t)(at - uri) : strlen(uri),
                                     "source repository", err)) != SRV_OK)
        return st;
    if (at && !p->ref && (st = keep(&p->ref, at + 1, strlen(at + 1), "ref", err)) != SRV_OK)
        return st;
    return SRV_OK;
}

/* SLSA v1: runDetails.builder.id; buildDefinition.externalParameters.workflow.{repository,
 * ref, path} (the GitHub Actions layout), else the first git+ resolvedDependencies[].uri.
 * SLSA v0.2: builder.id; invocation.configSource.{uri (git+REPO@REF), entryPoint}. */
static srv_status read_predicate(srv_provenance *p, srv_error *err)
{
    const cJSON *pred = cJSON_GetObjectItemCaseSensitive(p->statement, "predicate");
    const char *s;
    srv_status st;
    if (!cJSON_IsObject(pred))
        return bad(err, "the statement has no predicate object");
    if (p->slsa_v1) {
        const cJSON *deps;
        if ((s = str_at(pred, "runDetails", "builder", "id", NULL)) &&
            (st = keep(&p->builder_id, s, strlen(s), "builder id", err)) != SRV_OK)
            return st;
        if ((s = str_at(pred, "buildDefinition", "externalParameters", "workflow", "repository",
                        NULL)) &&
            (st = keep(&p->repository, s, strlen(s), "source repository", err)) != SRV_OK)
            return st;
        if ((s = str_at(pred, "buildDefinition", "externalParameters", "workflow", "ref", NULL)) &&
            (st = keep(&p->ref, s, strlen(s), "ref", err)) != SRV_OK)
            return st;
        if ((s = str_at(pred, "buildDefinition", "externalParameters", "workflow", "path", NULL)) &&
            (st = keep(&p->workflow, s, strlen(s), "workflow", err)) != SRV_OK)
            return st;
        deps = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(pred, "buildDefinition"), "resolvedDependencies");
        for (const cJSON *d = cJSON_IsArray(deps) ? deps->child : NULL;
             d && (!p->repository || !p->ref); d = d->next) {
            if ((s = str_at(d, "uri", NULL)) && strncmp(s, "git+", 4) == 0)
                return split_git_uri(p, s, err);
        }
        return SRV_OK;
    }
    if ((s = str_at(pred, "builder", "id", NULL)) &&
        (st = keep(&p->builder_id, s, strlen(s), "builder id", err)) != SRV_OK)
        return st;
    if ((s = str_at(pred, "invocation", "configSource", "entryPoint", NULL)) &&
        (st = keep(&p->workflow, s, strlen(s), "workflow", err)) != SRV_OK)
        return st;
    if ((s = str_at(pred, "invocation", "configSource", "uri", NULL)))
        return split_git_uri(p, s, err);
    return SRV_OK;
}

static srv_status parse_statement(srv_provenance *p, srv_error *err)
{
    const cJSON *subjects;
    size_t i = 0;
    if (!srv_utf8_valid((const char *)p->payload, p->payload_len) ||
        memchr(p->payload, '\0', p->payload_len) ||
        !(p->statement = cJSON_ParseWithLength((const char *)p->payload, p->payload_len)) ||
        !cJSON_IsObject(p->statement))
        return bad(err, "the envelope's payload is not a JSON object (an in-toto statement)");
    p->statement_type = str_at(p->statement, "_type", NULL);
    p->predicate_type = str_at(p->statement, "predicateType", NULL);
    if (!p->statement_type || (strcmp(p->statement_type, STATEMENT_V1) != 0 &&
                               strcmp(p->statement_type, STATEMENT_V01) != 0))
        return bad(err, "the statement's _type must be %s (or v0.1)", STATEMENT_V1);
    if (!p->predicate_type ||
        (strcmp(p->predicate_type, SLSA_V1) != 0 && strcmp(p->predicate_type, SLSA_V02) != 0))
        return bad(err, "the statement's predicateType must be %s or %s", SLSA_V1, SLSA_V02);
    p->slsa_v1 = strcmp(p->predicate_type, SLSA_V1) == 0;
    subjects = cJSON_GetObjectItemCaseSensitive(p->statement, "subject");
    if (!cJSON_IsArray(subjects) || cJSON_GetArraySize(subjects) < 1 ||
        cJSON_GetArraySize(subjects) > SRV_PROV_SUBJECTS_MAX)
        return bad(err, "the statement's subject must be an array of 1-%d subjects",
                   SRV_PROV_SUBJECTS_MAX);
    for (const cJSON *s = subjects->child; s; s = s->next, i++) {
        const cJSON *dg = cJSON_GetObjectItemCaseSensitive(s, "digest");
        const char *h = str_at(s, "digest", "sha256", NULL);
        char hex[65];
        if (!cJSON_IsObject(s) || !cJSON_IsObject(dg))
            return bad(err, "subject[%zu] must be an object with a digest object", i);
        if (h && !hex_ok(h, 64, hex))
            return bad(err, "subject[%zu].digest.sha256 must be 64 hex digits", i);
    }
    return read_predicate(p, err);
}

static srv_status parse_envelope(srv_provenance *p, const char *b64, srv_error *err)
{
    static const char *const fields[] = {"payloadType", "payload", "signatures", NULL};
    const cJSON *sigs;
    const char *type, *payload;
    srv_error inner;
    size_t i = 0;

    /* Decoded with room to say by how much a large one is over. */
    if (strlen(b64) > B64_MAX(SRV_PROV_ENVELOPE_MAX)) {
        /* What it decodes to, from its length alone (exact for well-formed base64). */
        size_t n = strlen(b64), bytes = n / 4 * 3;
        if (n % 4)
            bytes += n % 4 - 1;
        else
            bytes -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
        return srv_fail(err, SRV_E_PROVENANCE_TOO_LARGE,
                        "provenance.envelope is %zu bytes; the server takes at most %d", bytes,
                        SRV_PROV_ENVELOPE_MAX);
    }
    if (b64_any(b64, SRV_PROV_ENVELOPE_MAX + 3, &p->envelope, &p->envelope_len, &inner) != SRV_OK)
        return bad(err, "envelope must be the base64 of the DSSE envelope file (%s)",
                   inner.message);
    if (p->envelope_len > SRV_PROV_ENVELOPE_MAX)
        return srv_fail(err, SRV_E_PROVENANCE_TOO_LARGE,
                        "provenance.envelope is %zu bytes; the server takes at most %d",
                        p->envelope_len, SRV_PROV_ENVELOPE_MAX);
    sha256_hex(p->envelope, p->envelope_len, p->envelope_sha256);
    if (memchr(p->envelope, '\0', p->envelope_len) ||
        !srv_utf8_valid((const char *)p->envelope, p->envelope_len) ||
        !(p->env = cJSON_ParseWithLength((const char *)p->envelope, p->envelope_len)) ||
        !cJSON_IsObject(p->env))
        return bad(err, "the envelope is not a JSON object (a DSSE envelope)");
    if (srv_json_check_fields(p->env, fields, &inner) != SRV_OK)
        return bad(err, "envelope: %s", inner.message);
    type = str_at(p->env, "payloadType", NULL);
    payload = str_at(p->env, "payload", NULL);
    if (!type || strcmp(type, SRV_PROV_PAYLOAD_TYPE) != 0)
        return bad(err, "the envelope's payloadType must be %s", SRV_PROV_PAYLOAD_TYPE);
    if (!payload ||
        b64_any(payload, SRV_PROV_ENVELOPE_MAX, &p->payload, &p->payload_len, &inner) != SRV_OK)
        return bad(err, "the envelope's payload must be base64");
    sha256_hex(p->payload, p->payload_len, p->statement_sha256);
    sigs = cJSON_GetObjectItemCaseSensitive(p->env, "signatures");
    if (!cJSON_IsArray(sigs) || cJSON_GetArraySize(sigs) > SRV_PROV_SIGS_MAX)
        return bad(err, "the envelope's signatures must be an array of at most %d",
                   SRV_PROV_SIGS_MAX);
    for (const cJSON *s = sigs->child; s; s = s->next, i++) {
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(s, "keyid");
        if (!cJSON_IsObject(s) || !str_at(s, "sig", NULL) || (kid && !cJSON_IsString(kid)))
            return bad(err, "signatures[%zu] must be {\"keyid\": \"...\", \"sig\": BASE64}", i);
    }
    return parse_statement(p, err);
}

srv_status srv_prov_parse(const cJSON *obj, srv_provenance *p, srv_error *err)
{
    static const char *const fields[] = {"envelope",    "digest",   "uri", "artifact_sha256",
                                         "sbom_digest", "id_token", NULL};
    const char *env = NULL, *digest = NULL, *artifact = NULL, *sbom = NULL;
    srv_error inner;
    srv_status st;

    memset(p, 0, sizeof(*p));
    if (!obj)
        return SRV_OK;
    p->present = 1;
    if (!cJSON_IsObject(obj))
        return bad(err, "must be an object");
    if (srv_json_check_fields(obj, fields, &inner) != SRV_OK)
        return bad(err, "%s", inner.message);
    /* Any length here: the body cap bounds it, and parse_envelope() says by how much it is
     * over. */
    if (srv_json_get_string(obj, "envelope", 0, SIZE_MAX / 2, &env, &inner) != SRV_OK ||
        srv_json_get_string(obj, "digest", 0, 80, &digest, &inner) != SRV_OK ||
        srv_json_get_string(obj, "uri", 0, SRV_PROV_URI_MAX, &p->uri, &inner) != SRV_OK ||
        srv_json_get_string(obj, "artifact_sha256", 0, 80, &artifact, &inner) != SRV_OK ||
        srv_json_get_string(obj, "sbom_digest", 0, 200, &sbom, &inner) != SRV_OK ||
        srv_json_get_string(obj, "id_token", 0, ID_TOKEN_MAX, &p->id_token, &inner) != SRV_OK)
        return bad(err, "%s", inner.message);
    if (env && digest)
        return bad(err, "give the envelope or its digest and uri, not both");
    if (digest && !sha256_ref_ok(digest, p->ref_digest))
        return bad(err, "digest must be sha256:HEX (64 hex digits) of the envelope file");
    if ((digest != NULL) != (p->uri != NULL))
        return bad(err, "digest and uri go together (a reference to the envelope)");
    if (p->uri &&
        (!*p->uri || strspn(p->uri, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-._~:/?#[]@!$&'()*+,;=%") != strlen(p->uri)))
        return bad(err, "uri must be a URI (printable ASCII, no spaces)");
    if (artifact) {
        if (!sha256_ref_ok(artifact, p->artifact_sha256))
            return bad(err, "artifact_sha256 must be 64 hex digits (the artifact file's sha256)");
        p->has_artifact = 1;
    }
    if (sbom) {
        const char *colon = strchr(sbom, ':');
        size_t n = colon ? strlen(colon + 1) : 0;
        char hex[129];
        int ok = colon && ((colon - sbom == 6 && !strncmp(sbom, "sha256", 6) && n == 64) ||
                           (colon - sbom == 6 && !strncmp(sbom, "sha384", 6) && n == 96) ||
                           (colon - sbom == 6 && !strncmp(sbom, "sha512", 6) && n == 128));
        if (!ok || !hex_ok(colon + 1, n, hex))
            return bad(err, "sbom_digest must be sha256:HEX (or sha384:, sha512:)");
        snprintf(p->sbom_digest, sizeof(p->sbom_digest), "%.6s:%s", sbom, hex);
    }
    if (p->id_token && !*p->id_token)
        return bad(err, "id_token is empty");
    if (env && (st = parse_envelope(p, env, err)) != SRV_OK)
        return st;
    return SRV_OK;
}

void srv_prov_clear(srv_provenance *p)
{
    free(p->envelope);
    free(p->payload);
    cJSON_Delete(p->env);
    cJSON_Delete(p->statement);
    free(p->builder_id);
    free(p->repository);
    free(p->ref);
    free(p->workflow);
    cJSON_Delete(p->oidc_claims);
    memset(p, 0, sizeof(*p));
}

void srv_prov_check_oidc(const struct srv_oidc *oidc, srv_provenance *p, int64_t now)
{
    srv_oidc_result res;
    srv_error err;
    if (!p->id_token || p->oidc_state)
        return;
    if (!oidc) {
        p->oidc_state = -1;
        snprintf(p->oidc_error, sizeof(p->oidc_error),
                 "this server trusts no OIDC issuer (oidc_config is not set)");
        return;
    }
    if (srv_oidc_verify(oidc, p->id_token, now, &res, &p->oidc_claims, &err) != SRV_OK) {
        p->oidc_state = -1;
        snprintf(p->oidc_error, sizeof(p->oidc_error), "%.190s", err.message);
        return;
    }
    p->oidc_state = 1;
    snprintf(p->oidc_account, sizeof(p->oidc_account), "%s", res.service_account);
}

void srv_prov_describe(const srv_provenance *p, cJSON *detail)
{
    cJSON *d;
    if (!p || !p->present || !detail)
        return;
    d = cJSON_AddObjectToObject(detail, "provenance");
    if (p->envelope_sha256[0])
        cJSON_AddStringToObject(d, "envelope_sha256", p->envelope_sha256);
    if (p->statement_sha256[0])
        cJSON_AddStringToObject(d, "statement_sha256", p->statement_sha256);
    if (p->predicate_type)
        cJSON_AddStringToObject(d, "predicate_type", p->predicate_type);
    if (p->builder_id)
        cJSON_AddStringToObject(d, "builder_id", p->builder_id);
    if (p->repository)
        cJSON_AddStringToObject(d, "repository", p->repository);
    if (p->ref)
        cJSON_AddStringToObject(d, "ref", p->ref);
    if (p->workflow)
        cJSON_AddStringToObject(d, "workflow", p->workflow);
    if (p->env) {
        const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(p->env, "signatures");
        cJSON_AddNumberToObject(d, "signatures", cJSON_GetArraySize(sigs));
    }
    if (p->ref_digest[0]) {
        cJSON *r = cJSON_AddObjectToObject(d, "reference");
        char text[8 + 65];
        snprintf(text, sizeof(text), "sha256:%s", p->ref_digest);
        cJSON_AddStringToObject(r, "digest", text);
        cJSON_AddStringToObject(r, "uri", p->uri);
    }
    if (p->has_artifact)
        cJSON_AddStringToObject(d, "artifact_sha256", p->artifact_sha256);
    if (p->sbom_digest[0])
        cJSON_AddStringToObject(d, "sbom_digest", p->sbom_digest);
    if (p->oidc_state == 1) {
        char text[100];
        snprintf(text, sizeof(text), "verified: service:%s", p->oidc_account);
        cJSON_AddStringToObject(d, "id_token", text);
    } else if (p->oidc_state == -1) {
        char text[220];
        snprintf(text, sizeof(text), "refused: %s", p->oidc_error);
        cJSON_AddStringToObject(d, "id_token", text);
    } else if (p->id_token) {
        cJSON_AddStringToObject(d, "id_token", "sent");
    }
}
