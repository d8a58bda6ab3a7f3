/* Who is calling: the bearer token or the console session cookie of a request (authenticate),
 * and the enrolled machine its verified client certificate names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "../audit/denials.h"
#include "../auth/credentials.h"
#include "../common/b64.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../store/usage_db.h"
#include "internal.h"

/* ---- authentication ----------------------------------------------------------------------- */

static srv_status authenticate_token(api_call *c, const uint8_t hash[32], const char *cookie,
                                     srv_error *err);

srv_status api_authenticate(api_call *c, srv_error *err)
{
    const char *h = c->ex->authorization;
    char cookie[SRV_TOKEN_TEXT_MAX + 1] = "";
    uint8_t hash[32];
    int console = 0;
    srv_status st;

    /* No Authorization header: a console session in its cookie, or nothing. */
    if ((!h || !*h) && api_console_cookie_token(c, cookie)) {
        console = 1;
        if (!srv_token_parse(cookie, hash)) {
            OPENSSL_cleanse(cookie, sizeof(cookie));
            return srv_fail(err, SRV_E_TOKEN_INVALID, "malformed console session cookie");
        }
    } else if (!h || !*h) {
        return srv_fail(err, SRV_E_UNAUTHENTICATED,
                        "missing Authorization header; get a token from /api/v1/auth/token");
    } else if (strncasecmp(h, "Bearer ", 7) != 0) {
        return srv_fail(err, SRV_E_TOKEN_INVALID, "Authorization must use the Bearer scheme");
    } else if (!srv_token_parse(h + 7, hash)) {
        return srv_fail(err, SRV_E_TOKEN_INVALID, "malformed access token");
    }
    st = authenticate_token(c, hash, console ? cookie : NULL, err);
    OPENSSL_cleanse(cookie, sizeof(cookie));
    return st;
}

/* The access token (hash) is good: known, unrevoked, unexpired, of an enabled user, with the
 * machine it is bound to; from a cookie, a live console session too. */
static srv_status authenticate_token(api_call *c, const uint8_t hash[32], const char *cookie,
                                     srv_error *err)
{
    int64_t user_id = 0, expires_at = 0, bound = 0;
    srv_status st;

    st = srv_db_token_find(c->w->db, hash, &user_id, &expires_at, err);
    if (st != SRV_OK)
        return st;
    if (expires_at <= srv_now())
        return srv_fail(err, SRV_E_TOKEN_EXPIRED, "access token expired; request a new one");
    st = srv_db_user_get_by_id(c->w->db, user_id, &c->user, err);
    if (st == SRV_E_USER_NOT_FOUND)
        return srv_fail(err, SRV_E_TOKEN_INVALID, "access token belongs to no user");
    if (st != SRV_OK)
        return st;
    if (c->user.disabled)
        return srv_fail(err, SRV_E_TOKEN_INVALID, "user is disabled");
    /* A token issued over mTLS is only good with that machine's certificate. */
    if ((st = srv_db_token_machine(c->w->db, hash, &bound, err)) != SRV_OK)
        return st;
    if (bound && bound != c->machine_id) {
        srv_machine m;
        memset(&m, 0, sizeof(m));
        srv_db_machine_get_by_id(c->w->db, bound, &m, NULL);
        return srv_fail(err, SRV_E_TOKEN_INVALID,
                        "access token is bound to machine \"%s\": send it over mTLS with that "
                        "machine's client certificate",
                        m.name);
    }
    if (cookie && (st = api_console_authenticate(c, hash, cookie, err)) != SRV_OK)
        return st;
    memcpy(c->token_hash, hash, sizeof(c->token_hash));
    c->authenticated = 1;
    api_set_actor(c);
    return SRV_OK;
}

srv_status api_caller_current(api_call *c, srv_db *db, srv_error *err)
{
    int64_t user_id = 0, expires_at = 0;
    srv_status st;

    if (!c->authenticated)
        return SRV_OK;
    st = srv_db_token_find(db, c->token_hash, &user_id, &expires_at, err);
    if (st != SRV_OK)
        return st;
    if (user_id != c->user.id)
        return srv_fail(err, SRV_E_TOKEN_INVALID, "access token belongs to another user");
    return api_principal_current(db, user_id, c->machine_id, err);
}

srv_status api_principal_current(srv_db *db, int64_t user_id, int64_t machine_id, srv_error *err)
{
    srv_user u;
    srv_status st;

    if ((st = srv_db_user_get_by_id(db, user_id, &u, err)) == SRV_E_USER_NOT_FOUND)
        return srv_fail(err, SRV_E_TOKEN_INVALID, "access token belongs to no user");
    if (st != SRV_OK)
        return st;
    if (u.disabled)
        return srv_fail(err, SRV_E_TOKEN_INVALID, "user is disabled");
    if (machine_id) {
        srv_machine m;
        memset(&m, 0, sizeof(m));
        if ((st = srv_db_machine_get_by_id(db, machine_id, &m, err)) != SRV_OK)
            return st;
        if (m.revoked)
            return srv_fail(err, SRV_E_BAD_CREDENTIALS, "machine \"%s\" is revoked", m.name);
    }
    return SRV_OK;
}

/* Maps a verified client certificate to its enrolled machine; any other one is refused, so a
 * request either carries a machine identity that is a fact or none at all. */
srv_status api_identify_machine(api_call *c, srv_error *err)
{
    srv_http_exchange *ex = c->ex;
    srv_machine m;
    srv_status st;

    if (ex->peer_cert == SRV_PEER_CERT_NONE)
        return SRV_OK;
    if (ex->peer_cert == SRV_PEER_CERT_UNVERIFIED)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "client certificate does not verify against this server's CA: %s",
                        ex->peer_cert_error);
    st = srv_db_machine_by_cert(c->w->db, ex->peer_cert_sha256, &m, err);
    if (st == SRV_E_NOT_FOUND)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "client certificate belongs to no enrolled machine (a later enrollment "
                        "of the machine replaces its certificate)");
    if (st != SRV_OK)
        return st;
    if (m.revoked)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "machine \"%s\" is revoked", m.name);
    c->machine_id = m.id;
    snprintf(c->machine, sizeof(c->machine), "%s", m.name);
    return SRV_OK;
}
