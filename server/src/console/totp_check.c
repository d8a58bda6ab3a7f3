/* One-time codes (RFC 6238) of a user: checked against the secret in the HSM, each code usable
 * once, failures counted (and, past TOTP_MAX_FAILURES in a row, the account's codes refused for
 * TOTP_LOCK_SECONDS); the outcome is recorded where commits are serialised, so two requests
 * racing with one code cannot both pass. */
#include <string.h>

#include "../api/internal.h"
#include "../audit/writer.h"
#include "../auth/totp.h"
#include "../common/util.h"
#include "../store/console_db.h"
#include "console.h"

#define TOTP_MAX_FAILURES 5
#define TOTP_LOCK_SECONDS 300

/* ---- TOTP ---------------------------------------------------------------------------------- */

typedef struct {
    srv_hsm *hsm;
    const uint8_t *ckaid;
} hmac_ctx;

static srv_status hsm_hmac(void *ctx, const uint8_t counter[8], uint8_t out[20], srv_error *err)
{
    hmac_ctx *h = ctx;
    return srv_hsm_hmac_sha1(h->hsm, h->ckaid, SRV_CKAID_LEN, counter, 8, out, err);
}

typedef struct {
    const api_call *c;
    int64_t step; /* > 0: a code of this step was accepted; 0: a failure to count */
    int locked, replayed;
    int confirm; /* the pending enrollment becomes the user's */
} totp_job;

static srv_status run_totp_outcome(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    totp_job *j = ctx;
    srv_totp_row row;
    srv_status st = srv_db_totp_get(db, j->c->user.id, &row, err);
    (void)audit;
    if (st != SRV_OK)
        return st;
    if (j->step > 0 && j->step <= row.last_step) {
        /* Another request spent this step (or a later one) since we read it. */
        j->replayed = 1;
        j->step = 0;
    }
    if (j->step == 0)
        return srv_db_totp_failed(db, j->c->user.id, srv_now(), TOTP_MAX_FAILURES,
                                  TOTP_LOCK_SECONDS, &j->locked, err);
    if (j->confirm)
        return srv_db_totp_confirm(db, j->c->user.id, j->step, srv_now(), err);
    return srv_db_totp_used(db, j->c->user.id, j->step, err);
}

/* Verifies code against the user's secret (row), then records the outcome. */
srv_status api_totp_verify(api_call *c, const srv_totp_row *row, const char *code, int confirm,
                           srv_error *err)
{
    int64_t now = srv_now();
    hmac_ctx h = {c->w->app->hsm, row->ckaid};
    totp_job j = {c, 0, 0, 0, confirm};
    uint32_t value = 0;
    uint64_t step = 0;
    srv_error werr;
    srv_status st;

    if (row->locked_until > now)
        return srv_fail(err, SRV_E_TOO_MANY_ATTEMPTS,
                        "too many wrong one-time codes: try again in %lld s",
                        (long long)(row->locked_until - now));
    if (!code || !*code)
        return srv_fail(err, SRV_E_TOTP_REQUIRED,
                        "give the 6-digit code your authenticator app shows");
    if (srv_totp_parse(code, &value)) {
        st = srv_totp_match(hsm_hmac, &h, (uint64_t)now / SRV_TOTP_PERIOD, (uint64_t)row->last_step,
                            value, &step, &j.replayed, err);
        if (st == SRV_OK)
            j.step = (int64_t)step;
        else if (st != SRV_E_NOT_FOUND)
            return st;
    }
    if (srv_writer_run(c->w->app->writer, run_totp_outcome, &j, &werr) != SRV_OK) {
        *err = werr;
        return werr.status;
    }
    if (j.step > 0)
        return SRV_OK;
    if (j.locked)
        return srv_fail(err, SRV_E_TOO_MANY_ATTEMPTS,
                        "too many wrong one-time codes: locked for %d s", TOTP_LOCK_SECONDS);
    if (j.replayed)
        return srv_fail(err, SRV_E_TOTP_REPLAYED,
                        "that one-time code was used already: wait for the next one");
    return srv_fail(err, SRV_E_TOTP_INVALID, "wrong one-time code");
}

srv_status api_totp_check(api_call *c, const char *code, srv_error *err)
{
    srv_totp_row row;
    srv_status st = srv_db_totp_get(c->w->db, c->user.id, &row, err);
    if (st == SRV_E_NOT_FOUND || (st == SRV_OK && !row.confirmed_at))
        return srv_fail(err, SRV_E_TOTP_REQUIRED,
                        "this admin has no TOTP authenticator yet: log in to the console once "
                        "to enrol one");
    if (st != SRV_OK)
        return st;
    /* Failures past here are the known user's, audited in full (bounded by the lockout). */
    c->authenticated = 1;
    api_set_actor(c);
    return api_totp_verify(c, &row, code, 0, err);
}
