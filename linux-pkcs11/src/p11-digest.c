/* Message digests (CKM_SHA256, CKM_SHA384, CKM_SHA512), computed locally. */
#include <string.h>

#include "p11.h"

static CK_RV digest_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech)
{
    p11_session *s;
    const p11_mech *m;
    CK_RV rv = p11_session_lookup(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (!mech)
        return CKR_ARGUMENTS_BAD;
    if (s->digest.state != P11_OP_NONE)
        return CKR_OPERATION_ACTIVE;
    m = p11_mech_find(mech->mechanism);
    if (!m || m->family != P11_FAM_DIGEST)
        return CKR_MECHANISM_INVALID;
    if (mech->ulParameterLen)
        return CKR_MECHANISM_PARAM_INVALID;
    if (sg_digest_init(&s->digest.dctx, m->hash) != SG_OK)
        return CKR_GENERAL_ERROR;
    s->digest.hash = m->hash;
    s->digest.state = P11_OP_ACTIVE;
    return CKR_OK;
}

P11_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = digest_init(hSession, pMechanism);
    return p11_leave(rv, __func__);
}

static CK_RV active_digest(CK_SESSION_HANDLE h, p11_session **s)
{
    CK_RV rv = p11_session_lookup(h, s);
    if (rv == CKR_OK && (*s)->digest.state == P11_OP_NONE)
        rv = CKR_OPERATION_NOT_INITIALIZED;
    return rv;
}

/* Size questions leave the operation running; anything else but success ends it. */
static CK_RV digest_out(p11_digest_op *op, CK_BYTE_PTR out, CK_ULONG_PTR out_len, int *done)
{
    CK_ULONG need = sg_hash_len(op->hash);
    size_t n = need;
    *done = 0;
    if (!out) {
        *out_len = need;
        return CKR_OK;
    }
    if (*out_len < need) {
        *out_len = need;
        return CKR_BUFFER_TOO_SMALL;
    }
    *done = 1;
    if (sg_digest_final(&op->dctx, out, &n) != SG_OK)
        return CKR_GENERAL_ERROR;
    *out_len = n;
    return CKR_OK;
}

static CK_RV digest_once(CK_SESSION_HANDLE h, const uint8_t *data, CK_ULONG len, CK_BYTE_PTR out,
                         CK_ULONG_PTR out_len)
{
    p11_session *s;
    int done;
    CK_RV rv = active_digest(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (!out_len || (!data && len)) {
        p11_digest_op_end(&s->digest);
        return CKR_ARGUMENTS_BAD;
    }
    if (s->digest.multipart)
        return CKR_OPERATION_ACTIVE;
    if (out && *out_len >= sg_hash_len(s->digest.hash) &&
        sg_digest_update(&s->digest.dctx, data, len) != SG_OK) {
        p11_digest_op_end(&s->digest);
        return CKR_GENERAL_ERROR;
    }
    rv = digest_out(&s->digest, out, out_len, &done);
    if (done)
        p11_digest_op_end(&s->digest);
    return rv;
}

P11_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                          CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = digest_once(hSession, pData, ulDataLen, pDigest, pulDigestLen);
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    p11_session *s;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = active_digest(hSession, &s);
    if (rv == CKR_OK && !pPart && ulPartLen)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK && sg_digest_update(&s->digest.dctx, pPart, ulPartLen) != SG_OK)
        rv = CKR_GENERAL_ERROR;
    if (rv == CKR_OK)
        s->digest.multipart = 1;
    else if (s && rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_OPERATION_NOT_INITIALIZED)
        p11_digest_op_end(&s->digest);
    return p11_leave(rv, __func__);
}

/* Every object here is a key kept in the HSM or a certificate: none can be digested. */
P11_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    p11_session *s;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = active_digest(hSession, &s);
    if (rv == CKR_OK)
        rv = p11_object_get(hKey) ? CKR_KEY_INDIGESTIBLE : CKR_KEY_HANDLE_INVALID;
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest,
                               CK_ULONG_PTR pulDigestLen)
{
    p11_session *s;
    int done = 0;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = active_digest(hSession, &s);
    if (rv == CKR_OK && !pulDigestLen) {
        rv = CKR_ARGUMENTS_BAD;
        done = 1;
    } else if (rv == CKR_OK) {
        rv = digest_out(&s->digest, pDigest, pulDigestLen, &done);
    }
    if (done)
        p11_digest_op_end(&s->digest);
    return p11_leave(rv, __func__);
}
