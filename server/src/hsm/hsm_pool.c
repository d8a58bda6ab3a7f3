/* The pool of logged-in sessions and recovery from a failed HSM. A lost session is replaced
 * on the spot; when a fresh session does not cure the error either, the HSM is marked down:
 * operations then fail fast with SRV_E_HSM_UNAVAILABLE (never "key not found") while one
 * thread re-initialises the module (C_Finalize + C_Initialize + login) with exponential
 * back-off until the token answers again. No server restart is needed. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/util.h"
#include "hsm_internal.h"

static srv_status session_open(srv_hsm *hsm, CK_SESSION_HANDLE *out, CK_RV *why, srv_error *err)
{
    CK_RV rv =
        hsm->m.fn->C_OpenSession(hsm->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, out);
    const char *what = "C_OpenSession";
    if (rv == CKR_OK) {
        /* Login applies to every session of the application; a second one is harmless. */
        rv = hsm->m.fn->C_Login(*out, CKU_USER, (CK_UTF8CHAR_PTR)hsm->pin, strlen(hsm->pin));
        if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
            return SRV_OK;
        hsm->m.fn->C_CloseSession(*out);
        what = "C_Login";
    }
    *out = CK_INVALID_HANDLE;
    if (why)
        *why = rv;
    return hsm_fail(err, what, rv);
}

/* Lock held. */
static srv_status describe_down_locked(srv_hsm *hsm, srv_error *err)
{
    return srv_fail(err, SRV_E_HSM_UNAVAILABLE,
                    "the HSM is unavailable (%s: %s); the server reconnects on its own, retry "
                    "later",
                    hsm->down_what, hsm_ckr_name(hsm->down_rv));
}

srv_status hsm_mark_down(srv_hsm *hsm, const char *what, CK_RV rv, srv_error *err)
{
    srv_status st;
    pthread_mutex_lock(&hsm->lock);
    if (!hsm->down) {
        uint64_t now = srv_monotonic_us();
        hsm->down = 1;
        hsm->down_rv = rv;
        snprintf(hsm->down_what, sizeof(hsm->down_what), "%s", what);
        hsm->down_since_us = now;
        hsm->backoff_us = HSM_BACKOFF_MIN_US;
        /* The first attempt right away: a restarted HSM is back in one re-init. */
        hsm->next_try_us = now;
        hsm->failed_attempts = 0;
        srv_log(SRV_LOG_ERROR, "hsm", "HSM unavailable (%s: %s); recovering in the background",
                what, hsm_ckr_name(rv));
        pthread_cond_signal(&hsm->recovery_wake);
    }
    st = describe_down_locked(hsm, err);
    pthread_mutex_unlock(&hsm->lock);
    return st;
}

/* Gives a session back to the pool (lock not held). */
static void pool_put(srv_hsm *hsm, const pooled *s)
{
    pthread_mutex_lock(&hsm->lock);
    hsm->free_sessions[hsm->free_count++] = *s;
    pthread_cond_signal(&hsm->available);
    pthread_mutex_unlock(&hsm->lock);
}

srv_status hsm_op_begin(srv_hsm *hsm, pooled *s, srv_error *err)
{
    unsigned gen;
    CK_RV why = CKR_OK;

    s->h = CK_INVALID_HANDLE;
    s->gen = 0;
    /* Checked before the module lock, which the recovery may hold for a slow C_Initialize:
     * a caller must hear 503 at once, not wait for the HSM. */
    pthread_mutex_lock(&hsm->lock);
    if (hsm->down) {
        srv_status st = describe_down_locked(hsm, err);
        pthread_mutex_unlock(&hsm->lock);
        return st;
    }
    pthread_mutex_unlock(&hsm->lock);

    pthread_rwlock_rdlock(&hsm->module_lock);
    pthread_mutex_lock(&hsm->lock);
    if (hsm->down) {
        srv_status st = describe_down_locked(hsm, err);
        pthread_mutex_unlock(&hsm->lock);
        pthread_rwlock_unlock(&hsm->module_lock);
        return st;
    }
    while (hsm->free_count == 0)
        pthread_cond_wait(&hsm->available, &hsm->lock);
    *s = hsm->free_sessions[--hsm->free_count];
    gen = hsm->gen;
    pthread_mutex_unlock(&hsm->lock);
    if (s->h != CK_INVALID_HANDLE && s->gen == gen)
        return SRV_OK;
    /* Lost earlier, or from a generation the HSM forgot: open a fresh one. */
    s->gen = gen;
    if (session_open(hsm, &s->h, &why, err) == SRV_OK)
        return SRV_OK;
    pool_put(hsm, s);
    pthread_rwlock_unlock(&hsm->module_lock);
    if (hsm_rv_unavailable(why))
        return hsm_mark_down(hsm, "C_OpenSession", why, err);
    return err ? err->status : SRV_E_HSM;
}

void hsm_op_end(srv_hsm *hsm, pooled *s)
{
    pool_put(hsm, s);
    pthread_rwlock_unlock(&hsm->module_lock);
}

srv_status hsm_op_retry(srv_hsm *hsm, pooled *s, const char *what, CK_RV rv, int last_attempt,
                        srv_error *err)
{
    CK_RV why = CKR_OK;

    if (!hsm_rv_session_lost(rv))
        return hsm_fail(err, what, rv);
    if (last_attempt)
        return hsm_mark_down(hsm, what, rv, err);
    if (rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED && s->h != CK_INVALID_HANDLE)
        hsm->m.fn->C_CloseSession(s->h);
    /* The first to notice retires the whole generation: when one session is gone, the others
     * usually went with it. */
    pthread_mutex_lock(&hsm->lock);
    if (s->gen == hsm->gen)
        hsm->gen++;
    s->gen = hsm->gen;
    hsm->reopens++;
    pthread_mutex_unlock(&hsm->lock);
    s->h = CK_INVALID_HANDLE;
    srv_log(SRV_LOG_WARN, "hsm", "HSM session lost (%s: %s); reopening", what, hsm_ckr_name(rv));
    if (session_open(hsm, &s->h, &why, err) == SRV_OK)
        return SRV_OK;
    /* Not even a new session: the HSM (or the way to it) is gone. A token that came back in
     * another slot is found again by the re-initialisation. */
    if (hsm_rv_unavailable(why))
        return hsm_mark_down(hsm, "C_OpenSession", why, err);
    return err ? err->status : SRV_E_HSM;
}

/* ---- recovery ----------------------------------------------------------------------------- */

/* One attempt: re-initialise the module and log in again. Holds the module exclusively, so
 * every pooled session is back in the pool and no caller is inside the module. */
static CK_RV reinit(srv_hsm *hsm, const char **what)
{
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CK_SLOT_ID slot;
    srv_error err;
    CK_RV rv;

    pthread_rwlock_wrlock(&hsm->module_lock);
    /* Drops every session and the login of the old connection; an error here (the module may
     * already be finalised by a failed attempt) changes nothing. */
    hsm->m.fn->C_Finalize(NULL);
    rv = hsm_module_initialize(&hsm->m);
    if (rv != CKR_OK) {
        *what = "C_Initialize";
        goto out;
    }
    /* A token that went away and came back may sit in another slot now. */
    if (hsm_find_slot(&hsm->m, hsm->label, &slot, &err) != SRV_OK) {
        *what = "finding the token";
        rv = CKR_TOKEN_NOT_PRESENT;
        goto out;
    }
    hsm->slot = slot;
    if (session_open(hsm, &h, &rv, NULL) != SRV_OK) {
        *what = "C_OpenSession/C_Login";
        goto out;
    }
    pthread_mutex_lock(&hsm->lock);
    hsm->gen++;
    for (unsigned i = 0; i < hsm->free_count; i++)
        hsm->free_sessions[i].h = CK_INVALID_HANDLE;
    if (hsm->free_count > 0) {
        hsm->free_sessions[hsm->free_count - 1].h = h;
        hsm->free_sessions[hsm->free_count - 1].gen = hsm->gen;
        h = CK_INVALID_HANDLE;
    }
    /* Object handles of the old connection name nothing now, or another object. */
    hsm_cache_clear_locked(hsm);
    hsm->reinits++;
    pthread_mutex_unlock(&hsm->lock);
    if (h != CK_INVALID_HANDLE)
        hsm->m.fn->C_CloseSession(h);
    rv = CKR_OK;
out:
    pthread_rwlock_unlock(&hsm->module_lock);
    return rv;
}

static void *recovery_main(void *arg)
{
    srv_hsm *hsm = arg;

    pthread_mutex_lock(&hsm->lock);
    while (!hsm->stopping) {
        uint64_t now = srv_monotonic_us();
        const char *what = "re-initialising";
        CK_RV rv;
        if (!hsm->down) {
            pthread_cond_wait(&hsm->recovery_wake, &hsm->lock);
            continue;
        }
        if (now < hsm->next_try_us) {
            srv_cond_wait_us(&hsm->recovery_wake, &hsm->lock, hsm->next_try_us - now);
            continue;
        }
        pthread_mutex_unlock(&hsm->lock);
        rv = reinit(hsm, &what);
        pthread_mutex_lock(&hsm->lock);
        now = srv_monotonic_us();
        if (rv == CKR_OK) {
            srv_log(SRV_LOG_INFO, "hsm", "HSM available again after %llu ms (%lu failed attempts)",
                    (unsigned long long)((now - hsm->down_since_us) / 1000), hsm->failed_attempts);
            hsm->down = 0;
            continue;
        }
        hsm->failed_attempts++;
        hsm->down_rv = rv;
        snprintf(hsm->down_what, sizeof(hsm->down_what), "%s", what);
        /* One line per doubling, then one per cap interval: an outage of hours stays a few
         * hundred lines. */
        if (hsm->backoff_us < HSM_BACKOFF_MAX_US || hsm->failed_attempts % 12 == 0)
            srv_log(SRV_LOG_WARN, "hsm", "HSM still unavailable (%s: %s); next attempt in %u ms",
                    what, hsm_ckr_name(rv), (unsigned)(hsm->backoff_us / 1000));
        hsm->next_try_us = now + hsm->backoff_us;
        hsm->backoff_us =
            hsm->backoff_us * 2 > HSM_BACKOFF_MAX_US ? HSM_BACKOFF_MAX_US : hsm->backoff_us * 2;
    }
    pthread_mutex_unlock(&hsm->lock);
    return NULL;
}

/* ---- open, close, state ------------------------------------------------------------------- */

srv_status srv_hsm_open(const srv_hsm_config *cfg, srv_hsm **out, srv_error *err)
{
    pthread_rwlockattr_t rwattr;
    pthread_condattr_t cattr;
    srv_hsm *hsm;
    srv_status st;
    unsigned i;

    *out = NULL;
    hsm = calloc(1, sizeof(*hsm));
    if (!hsm)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    pthread_mutex_init(&hsm->lock, NULL);
    pthread_cond_init(&hsm->available, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&hsm->recovery_wake, &cattr);
    pthread_condattr_destroy(&cattr);
    pthread_rwlockattr_init(&rwattr);
#ifdef __GLIBC__
    pthread_rwlockattr_setkind_np(&rwattr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&hsm->module_lock, &rwattr);
    pthread_rwlockattr_destroy(&rwattr);
    hsm->pool_size = cfg->pool_size ? cfg->pool_size : 4;
    hsm->pin = strdup(cfg->pin);
    snprintf(hsm->label, sizeof(hsm->label), "%s", cfg->token_label);
    hsm->free_sessions = calloc(hsm->pool_size, sizeof(pooled));
    if (!hsm->pin || !hsm->free_sessions) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    st = hsm_module_load(cfg->module_path, &hsm->m, err);
    if (st != SRV_OK)
        goto fail;
    st = hsm_find_slot(&hsm->m, cfg->token_label, &hsm->slot, err);
    if (st != SRV_OK)
        goto fail;
    for (i = 0; i < hsm->pool_size; i++) {
        st = session_open(hsm, &hsm->free_sessions[i].h, NULL, err);
        if (st != SRV_OK)
            goto fail;
        hsm->free_count++;
    }
    if (pthread_create(&hsm->recovery, NULL, recovery_main, hsm) != 0) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot start the HSM recovery thread");
        goto fail;
    }
    hsm->recovery_running = 1;
    srv_log(SRV_LOG_INFO, "hsm", "token \"%s\" ready with %u sessions", cfg->token_label,
            hsm->pool_size);
    *out = hsm;
    return SRV_OK;
fail:
    srv_hsm_close(hsm);
    return st;
}

void srv_hsm_close(srv_hsm *hsm)
{
    unsigned i;
    if (!hsm)
        return;
    if (hsm->recovery_running) {
        pthread_mutex_lock(&hsm->lock);
        hsm->stopping = 1;
        pthread_cond_signal(&hsm->recovery_wake);
        pthread_mutex_unlock(&hsm->lock);
        pthread_join(hsm->recovery, NULL);
    }
    if (hsm->m.fn && !hsm->down) {
        for (i = 0; i < hsm->free_count; i++)
            if (hsm->free_sessions[i].h != CK_INVALID_HANDLE &&
                hsm->free_sessions[i].gen == hsm->gen)
                hsm->m.fn->C_CloseSession(hsm->free_sessions[i].h);
    }
    hsm_module_unload(&hsm->m);
    hsm_cache_clear_locked(hsm);
    if (hsm->pin) {
        OPENSSL_cleanse(hsm->pin, strlen(hsm->pin));
        free(hsm->pin);
    }
    free(hsm->free_sessions);
    pthread_rwlock_destroy(&hsm->module_lock);
    pthread_mutex_destroy(&hsm->lock);
    pthread_cond_destroy(&hsm->available);
    pthread_cond_destroy(&hsm->recovery_wake);
    free(hsm);
}

srv_status srv_hsm_health(srv_hsm *hsm, char *detail, size_t detail_len)
{
    CK_TOKEN_INFO info;
    unsigned free_now;
    CK_RV rv;

    pthread_mutex_lock(&hsm->lock);
    if (hsm->down) {
        uint64_t now = srv_monotonic_us();
        snprintf(
            detail, detail_len,
            "unavailable for %llu ms (%s: %s); %lu recovery attempts failed, next in %llu ms",
            (unsigned long long)((now - hsm->down_since_us) / 1000), hsm->down_what,
            hsm_ckr_name(hsm->down_rv), hsm->failed_attempts,
            (unsigned long long)(hsm->next_try_us > now ? (hsm->next_try_us - now) / 1000 : 0));
        pthread_mutex_unlock(&hsm->lock);
        return SRV_E_HSM_UNAVAILABLE;
    }
    pthread_mutex_unlock(&hsm->lock);
    pthread_rwlock_rdlock(&hsm->module_lock);
    rv = hsm->m.fn->C_GetTokenInfo(hsm->slot, &info);
    pthread_rwlock_unlock(&hsm->module_lock);
    if (rv == CKR_OK && !(info.flags & CKF_TOKEN_INITIALIZED))
        rv = CKR_TOKEN_NOT_RECOGNIZED;
    if (rv != CKR_OK) {
        snprintf(detail, detail_len, "C_GetTokenInfo: %s", hsm_ckr_name(rv));
        /* Seen here first (no signing traffic): start the recovery now. */
        if (hsm_rv_unavailable(rv)) {
            hsm_mark_down(hsm, "C_GetTokenInfo", rv, NULL);
            return SRV_E_HSM_UNAVAILABLE;
        }
        return SRV_E_HSM;
    }
    pthread_mutex_lock(&hsm->lock);
    free_now = hsm->free_count;
    pthread_mutex_unlock(&hsm->lock);
    snprintf(detail, detail_len, "token present, %u of %u sessions idle", free_now, hsm->pool_size);
    return SRV_OK;
}

void srv_hsm_drop_sessions(srv_hsm *hsm)
{
    pthread_rwlock_rdlock(&hsm->module_lock);
    hsm->m.fn->C_CloseAllSessions(hsm->slot);
    pthread_rwlock_unlock(&hsm->module_lock);
}

void srv_hsm_drop_module(srv_hsm *hsm)
{
    pthread_rwlock_rdlock(&hsm->module_lock);
    hsm->m.fn->C_Finalize(NULL);
    pthread_rwlock_unlock(&hsm->module_lock);
}

int srv_hsm_available(srv_hsm *hsm)
{
    int up;
    pthread_mutex_lock(&hsm->lock);
    up = !hsm->down;
    pthread_mutex_unlock(&hsm->lock);
    return up;
}

unsigned long srv_hsm_reopen_count(srv_hsm *hsm)
{
    unsigned long n;
    pthread_mutex_lock(&hsm->lock);
    n = hsm->reopens;
    pthread_mutex_unlock(&hsm->lock);
    return n;
}

unsigned long srv_hsm_reinit_count(srv_hsm *hsm)
{
    unsigned long n;
    pthread_mutex_lock(&hsm->lock);
    n = hsm->reinits;
    pthread_mutex_unlock(&hsm->lock);
    return n;
}
