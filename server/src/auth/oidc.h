/* CI OIDC token exchange: trusted issuers, their JWKS and the rules that map an ID token's
 * claims to a service account. Loaded once at `serve` start from the JSON file named by the
 * config key oidc_config; read-only afterwards, so workers share it without locks.
 *
 * {"issuers": [{"issuer": "https://ci.example", "jwks_file": "jwks.json", "audience": "signum",
 *               "rules": [{"claims": {"repository": "org/repo"}, "service_account": "ci"}]}]}
 *
 * jwks_file is relative to the directory of the OIDC config file. */
#ifndef SRV_OIDC_H
#define SRV_OIDC_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../common/status.h"
#include "../store/db.h"

#define SRV_OIDC_CLOCK_SKEW 60
#define SRV_OIDC_TEXT_MAX   255 /* sub (OpenID Connect Core 2) and the issuer we record */

typedef struct srv_oidc srv_oidc;

/* SRV_E_CONFIG with the file and the place in it when anything is wrong. */
srv_status srv_oidc_load(const char *path, srv_oidc **out, srv_error *err);
void srv_oidc_free(srv_oidc *oidc);
/* How many issuers were loaded (for the start-up log). */
unsigned srv_oidc_issuer_count(const srv_oidc *oidc);

typedef struct {
    /* As presented by the token (empty if it did not get that far); for denial records. */
    char issuer[SRV_OIDC_TEXT_MAX + 1];
    char subject[SRV_OIDC_TEXT_MAX + 1];
    char kid[SRV_OIDC_TEXT_MAX + 1];
    /* Set on success: the rule that matched and the service account it names. */
    int rule;
    char service_account[SRV_NAME_MAX + 1];
    int64_t expires_at;
} srv_oidc_result;

/* Verifies an ID token (issuer, JWKS signature, audience, exp/nbf/iat with
 * SRV_OIDC_CLOCK_SKEW) and finds the first rule whose every claim equals the token's.
 * SRV_E_BAD_CREDENTIALS with the reason otherwise; *res holds what could be read. */
srv_status srv_oidc_exchange(const srv_oidc *oidc, const char *id_token, int64_t now,
                             srv_oidc_result *res, srv_error *err);

/* The same verification, and on success a copy of the token's claims (*claims, the caller
 * frees it): what the provenance gate compares with a rule's oidc_claims. */
srv_status srv_oidc_verify(const srv_oidc *oidc, const char *id_token, int64_t now,
                           srv_oidc_result *res, cJSON **claims, srv_error *err);

#endif
