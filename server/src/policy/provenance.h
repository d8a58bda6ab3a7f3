/* Build provenance: what a sign request may carry (an in-toto statement with a SLSA provenance
 * predicate in a DSSE envelope, or only its digest and a reference, and an SBOM digest), and the
 * require rules that gate signing on it (docs/provenance.md).
 *
 * provenance.c parses the request's "provenance" member, verifies the caller's CI ID token and
 * describes it all for the audit record; provenance_rule.c parses a require rule's
 * "provenance" member, verifies DSSE signatures and decides the gate. */
#ifndef SRV_POLICY_PROVENANCE_H
#define SRV_POLICY_PROVENANCE_H

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "policy.h"

#define SRV_PROV_ENVELOPE_MAX (256 * 1024) /* bytes of the DSSE envelope as sent */
#define SRV_PROV_URI_MAX      2048
#define SRV_PROV_SIGS_MAX     8    /* signatures in one envelope */
#define SRV_PROV_SUBJECTS_MAX 1024 /* subjects of one statement */
#define SRV_PROV_VALUE_MAX    1024 /* builder id, repository, ref, workflow; rule patterns */
#define SRV_PROV_KEYS_MAX     16   /* trusted builder keys of one rule */
#define SRV_PROV_CLAIMS_MAX   16   /* OIDC claims one rule names */

#define SRV_PROV_PAYLOAD_TYPE "application/vnd.in-toto+json"

struct srv_oidc;

typedef struct srv_provenance {
    int present; /* the request had a "provenance" member */
    /* The DSSE envelope as sent (inline), its sha256, and what it holds. */
    uint8_t *envelope;
    size_t envelope_len;
    char envelope_sha256[65];
    cJSON *env;
    uint8_t *payload; /* the statement's bytes (the envelope's payload, decoded) */
    size_t payload_len;
    char statement_sha256[65];
    cJSON *statement;
    const char *statement_type, *predicate_type; /* into statement */
    int slsa_v1;                                 /* else v0.2 */
    /* Read from the predicate (docs/provenance.md has the mapping); NULL when absent. */
    char *builder_id, *repository, *ref, *workflow;
    /* Reference only: the envelope's sha256 and where it lives (recorded, never fetched). */
    char ref_digest[65];
    const char *uri; /* into the request body */
    /* What the caller declares: the artifact's sha256 and its SBOM's digest. */
    int has_artifact;
    char artifact_sha256[65];
    char sbom_digest[8 + 128 + 1]; /* "sha256:HEX" (or sha384, sha512) */
    const char *id_token;          /* the caller's CI OIDC ID token; into the request body */
    /* Set by srv_prov_check_oidc(): 1 verified, -1 refused, 0 none sent. */
    int oidc_state;
    char oidc_error[200];
    char oidc_account[65]; /* the service account the token maps to */
    cJSON *oidc_claims;    /* the verified token's claims */
    /* The digests the request signs (srv_prov_bind_digests()); not owned. */
    const char *hash;
    uint8_t *const *digests;
    size_t ndigests;
} srv_provenance;

/* Parses a sign request's "provenance" member (obj may be NULL: nothing sent). Strings point
 * into obj. SRV_E_PROVENANCE_TOO_LARGE or SRV_E_PROVENANCE_INVALID with the precise reason. */
srv_status srv_prov_parse(const cJSON *obj, srv_provenance *p, srv_error *err);
void srv_prov_clear(srv_provenance *p);
/* Verifies p->id_token (if any) with the server's OIDC issuers, as the token exchange does;
 * records the outcome in p (a refused token is not an error here: a gate names it). */
void srv_prov_check_oidc(const struct srv_oidc *oidc, srv_provenance *p, int64_t now);
/* Adds "provenance" (digests, reference, SBOM digest, what the statement says) to an audit
 * record's detail; nothing when no provenance was sent. */
void srv_prov_describe(const srv_provenance *p, cJSON *detail);

/* A require rule's "provenance" member, parsed. */
typedef struct policy_prov_rule {
    const char *builder_id, *repository, *ref, *workflow; /* fnmatch(3) patterns; NULL: any */
    int bind_signed_digest; /* the signed digest must be the artifact's sha256 */
    EVP_PKEY *keys[SRV_PROV_KEYS_MAX];
    char key_ids[SRV_PROV_KEYS_MAX][72]; /* "sha256:" + hex of the key's SubjectPublicKeyInfo */
    size_t nkeys;
    const cJSON *oidc_claims; /* object of patterns, or NULL: the OIDC route is closed */
} policy_prov_rule;

/* Validates r's "provenance" member against r's effect: required for, and only for, effect
 * require, which takes no where, when or conditions. Sets r->prov. */
srv_status policy_prov_rule_parse(const cJSON *doc, policy_rule *r, srv_error *err);
void policy_prov_rule_free(policy_prov_rule *pr);

/* Applies every enabled require rule whose scope covers q to an allowing decision d (allowed
 * or approval required): the first unmet one turns d into POLICY_PROVENANCE_DENIED naming it
 * and what was missing. Each met one is appended to *gates (created on first use) as
 * {"rule", "via": "builder_key"|"oidc", "key"|"account"}. */
void policy_prov_gate(const policy_set *set, const policy_request *q, policy_decision *d,
                      cJSON **gates);

/* Whether one of the envelope's signatures verifies, over the DSSE pre-authentication
 * encoding, under one of keys; *which is its index. */
int srv_prov_dsse_verified(const srv_provenance *p, EVP_PKEY *const *keys, size_t nkeys,
                           size_t *which);

#endif
