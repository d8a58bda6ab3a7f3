/* Adopting a key pair already in the token (POST /api/v1/admin/keys with "hsm_id"): nodes that
 * share one network HSM, or keys made with the HSM vendor's tools. Only a global admin may, and
 * never the server's own keys: the CA key and the audit keys (by CKA_ID in this database, and
 * by label for another installation's on a shared partition) would otherwise become ordinary
 * signing keys that forge certificates or audit checkpoints. */
#include <stdlib.h>
#include <string.h>

#include "../audit/checkpoint.h"
#include "internal.h"

typedef struct {
    const uint8_t *ckaid;
    int found;
} audit_key_match;

static void match_audit_key(const srv_audit_key_row *row, void *ctx)
{
    audit_key_match *m = ctx;
    if (memcmp(row->ckaid, m->ckaid, SRV_CKAID_LEN) == 0)
        m->found = 1;
}

static srv_status parse_hsm_id(const char *text, uint8_t out[SRV_CKAID_LEN], srv_error *err)
{
    if (strlen(text) != 2 * SRV_CKAID_LEN ||
        strspn(text, "0123456789abcdefABCDEF") != 2 * SRV_CKAID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "hsm_id must be %d hex digits",
                        2 * SRV_CKAID_LEN);
    for (size_t i = 0; i < SRV_CKAID_LEN; i++) {
        char pair[3] = {text[2 * i], text[2 * i + 1], '\0'};
        out[i] = (uint8_t)strtoul(pair, NULL, 16);
    }
    return SRV_OK;
}

srv_status api_adopt_hsm_key(api_call *c, srv_key *key, const char *hsm_id, srv_error *err)
{
    const srv_app *app = c->w->app;
    const char *reserved[] = {app->cfg.ca_key_name, SRV_AUDIT_KEY_LABEL, NULL};
    audit_key_match m;
    srv_status st;

    if (c->user.role != SRV_ROLE_ADMIN)
        return srv_fail(err, SRV_E_FORBIDDEN, "adopting an HSM key (hsm_id) needs the admin role");
    if ((st = parse_hsm_id(hsm_id, key->ckaid, err)) != SRV_OK)
        return st;
    m.ckaid = key->ckaid;
    m.found = app->ca.key.ckaid_len == SRV_CKAID_LEN &&
              memcmp(app->ca.key.ckaid, key->ckaid, SRV_CKAID_LEN) == 0;
    if (!m.found && (st = srv_db_audit_keys_list(c->w->db, match_audit_key, &m, err)) != SRV_OK)
        return st;
    if (m.found)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "hsm_id names the server's CA or audit key, which cannot be adopted");
    return srv_hsm_adopt_key(app->hsm, key->type, key->ckaid, SRV_CKAID_LEN, reserved, &key->spki,
                             &key->spki_len, err);
}
