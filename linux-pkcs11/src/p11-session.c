/* Sessions and login. Sessions are read-only (the token is write-protected). The login state
 * belongs to the application: while the agent holds a session, the application is logged in
 * from the start and any PIN is accepted (the agent's per-user socket is the boundary); when it
 * holds none, the PIN is an API key handed to the agent. */
#include <stdlib.h>
#include <string.h>

#include "p11.h"

p11_session *p11_session_get(CK_SESSION_HANDLE h)
{
    return p11_handle_get(&p11.handles, h, P11_H_SESSION);
}

CK_RV p11_session_lookup(CK_SESSION_HANDLE h, p11_session **out)
{
    *out = p11_session_get(h);
    return *out ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

void p11_sign_op_end(p11_sign_op *op)
{
    if (op->dctx_live)
        sg_digest_free(&op->dctx);
    memset(op, 0, sizeof(*op));
}

void p11_digest_op_end(p11_digest_op *op)
{
    if (op->state != P11_OP_NONE)
        sg_digest_free(&op->dctx);
    memset(op, 0, sizeof(*op));
}

static void session_free(p11_session *s)
{
    p11_sign_op_end(&s->sign);
    p11_digest_op_end(&s->digest);
    free(s->find.hits);
    p11_handle_remove(&p11.handles, s->handle);
    free(s);
    p11.sessions--;
    /* The last session closed: the application's login state goes back to its start, which
     * is "logged in" while the agent holds a session. */
    if (p11.sessions == 0)
        p11.logged_in = p11.token.loaded && p11.token.has_session;
}

void p11_sessions_close_all(void)
{
    for (size_t i = 0; i < p11.handles.count; i++)
        if (p11.handles.entries[i].kind == P11_H_SESSION)
            session_free(p11.handles.entries[i].ptr);
}

static CK_RV open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE_PTR out)
{
    p11_session *s;
    CK_RV rv;

    if (slot != P11_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (!(flags & CKF_SERIAL_SESSION))
        return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    if (!out)
        return CKR_ARGUMENTS_BAD;
    p11_token_ensure();
    if (!p11.token.reachable)
        return CKR_TOKEN_NOT_PRESENT;
    if (flags & CKF_RW_SESSION)
        return CKR_TOKEN_WRITE_PROTECTED;
    if (p11.sessions >= P11_MAX_SESSIONS)
        return CKR_SESSION_COUNT;
    s = calloc(1, sizeof(*s));
    if (!s)
        return CKR_HOST_MEMORY;
    rv = p11_handle_add(&p11.handles, P11_H_SESSION, s, &s->handle);
    if (rv != CKR_OK) {
        free(s);
        return rv;
    }
    s->flags = flags;
    p11.sessions++;
    *out = s->handle;
    return CKR_OK;
}

P11_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                               CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
    CK_RV rv = p11_enter();
    (void)pApplication; /* the module makes no callbacks */
    (void)Notify;
    if (rv != CKR_OK)
        return rv;
    rv = open_session(slotID, flags, phSession);
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
    p11_session *s;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = p11_session_lookup(hSession, &s);
    if (rv == CKR_OK)
        session_free(s);
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    if (slotID != P11_SLOT_ID)
        rv = CKR_SLOT_ID_INVALID;
    else
        p11_sessions_close_all();
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    p11_session *s;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = p11_session_lookup(hSession, &s);
    if (rv == CKR_OK && !pInfo)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK) {
        memset(pInfo, 0, sizeof(*pInfo));
        pInfo->slotID = P11_SLOT_ID;
        pInfo->state = p11.logged_in ? CKS_RO_USER_FUNCTIONS : CKS_RO_PUBLIC_SESSION;
        pInfo->flags = s->flags;
    }
    return p11_leave(rv, __func__);
}

/* Hands the PIN to the agent as an API key, then fetches the listing it unlocks. */
static CK_RV login_with_api_key(const CK_UTF8CHAR *pin, CK_ULONG len)
{
    char secret[P11_MAX_PIN + 1];
    sg_status st;
    CK_RV rv;

    if (len == 0)
        return CKR_PIN_INCORRECT;
    if (len > P11_MAX_PIN)
        return CKR_PIN_LEN_RANGE;
    memcpy(secret, pin, len);
    secret[len] = '\0';
    if (strlen(secret) != len) {
        memset(secret, 0, sizeof(secret));
        return CKR_PIN_INCORRECT; /* a NUL inside the PIN: not an API key */
    }
    st = sg_login(p11.client, secret);
    memset(secret, 0, sizeof(secret));
    if (st != SG_OK) {
        p11_debug("C_Login: the agent refused the PIN as an API key: %s", sg_last_error());
        return p11_map_status(st, P11_CTX_LOGIN);
    }
    p11.token.login_needed = 0;
    p11.token.has_session = 1;
    rv = p11_token_ensure();
    return rv;
}

static CK_RV login(CK_SESSION_HANDLE h, CK_USER_TYPE type, const CK_UTF8CHAR *pin, CK_ULONG len)
{
    p11_session *s;
    CK_RV rv = p11_session_lookup(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (type == CKU_SO)
        return CKR_SESSION_READ_ONLY_EXISTS; /* no security officer on a write-protected token */
    if (type == CKU_CONTEXT_SPECIFIC)
        return CKR_OPERATION_NOT_INITIALIZED; /* no key asks for CKA_ALWAYS_AUTHENTICATE */
    if (type != CKU_USER)
        return CKR_USER_TYPE_INVALID;
    if (!pin && len)
        return CKR_ARGUMENTS_BAD;
    /* Idempotent: the application is logged in already. */
    if (p11.logged_in)
        return CKR_OK;
    /* The agent may have been given credentials since we last asked (signum-util login). */
    p11.token.login_needed = 0;
    rv = p11_token_ensure();
    if (rv == CKR_TOKEN_NOT_PRESENT)
        return CKR_DEVICE_REMOVED;
    if (!p11.token.has_session)
        rv = login_with_api_key(pin, len);
    if (rv == CKR_OK)
        p11.logged_in = 1;
    return rv;
}

P11_EXPORT CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                         CK_ULONG ulPinLen)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = login(hSession, userType, pPin, ulPinLen);
    return p11_leave(rv, __func__);
}

/* 3.0: the user name means nothing to a token whose identity is the agent's. */
P11_EXPORT CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
                             CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername,
                             CK_ULONG ulUsernameLen)
{
    CK_RV rv = p11_enter();
    (void)pUsername;
    (void)ulUsernameLen;
    if (rv != CKR_OK)
        return rv;
    rv = login(hSession, userType, pPin, ulPinLen);
    return p11_leave(rv, __func__);
}

/* Ends the application's login, not the agent's session (other tools share it; that is what
 * `signum-util logout` is for). Operations on private keys end with it. */
static CK_RV logout(CK_SESSION_HANDLE h)
{
    p11_session *s;
    CK_RV rv = p11_session_lookup(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (!p11.logged_in)
        return CKR_USER_NOT_LOGGED_IN;
    p11.logged_in = 0;
    for (size_t i = 0; i < p11.handles.count; i++)
        if (p11.handles.entries[i].kind == P11_H_SESSION)
            p11_sign_op_end(&((p11_session *)p11.handles.entries[i].ptr)->sign);
    return CKR_OK;
}

P11_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = logout(hSession);
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
    p11_session *s;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = p11_session_lookup(hSession, &s);
    if (rv == CKR_OK && (flags & CKF_SIGN))
        p11_sign_op_end(&s->sign);
    if (rv == CKR_OK && (flags & CKF_DIGEST))
        p11_digest_op_end(&s->digest);
    if (rv == CKR_OK && (flags & CKF_FIND_OBJECTS)) {
        free(s->find.hits);
        memset(&s->find, 0, sizeof(s->find));
    }
    return p11_leave(rv, __func__);
}
