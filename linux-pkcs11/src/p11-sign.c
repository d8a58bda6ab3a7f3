/* Signing: C_SignInit, C_Sign, C_SignUpdate, C_SignFinal. Hashing happens here; only a digest
 * goes to the agent, in one sg_sign call made without the module's lock, so threads sign in
 * parallel. Size queries and too-small buffers are answered before any work. */
#include <stdio.h>
#include <string.h>

#include "p11.h"
#include "signum/common/names.h"

static unsigned next_ticket;

static sg_mech sg_mech_of(p11_family f)
{
    return f == P11_FAM_RSA_PSS ? SG_MECH_RSA_PSS
           : f == P11_FAM_ECDSA ? SG_MECH_ECDSA
                                : SG_MECH_RSA_PKCS1;
}

static CK_RV sign_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech, CK_OBJECT_HANDLE hkey)
{
    p11_session *s;
    p11_object *o;
    const p11_mech *m;
    p11_sign_op *op;
    CK_RV rv = p11_session_lookup(h, &s);

    if (rv != CKR_OK)
        return rv;
    if (!mech)
        return CKR_ARGUMENTS_BAD;
    op = &s->sign;
    if (op->state != P11_OP_NONE)
        return CKR_OPERATION_ACTIVE;
    m = p11_mech_find(mech->mechanism);
    if (!m || m->family == P11_FAM_DIGEST)
        return CKR_MECHANISM_INVALID;
    o = p11_object_get(hkey);
    if (!o)
        return CKR_KEY_HANDLE_INVALID;
    if (!p11_object_visible(o))
        return CKR_USER_NOT_LOGGED_IN;
    if (o->cls != CKO_PRIVATE_KEY)
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    rv = p11_mech_check(m, mech, p11_key_of(o), &op->hash, &op->salt);
    if (rv != CKR_OK)
        return rv;
    if (m->hashes) {
        if (sg_digest_init(&op->dctx, op->hash) != SG_OK)
            return CKR_HOST_MEMORY;
        op->dctx_live = 1;
    }
    op->mech = m;
    op->key = o->key;
    op->ticket = ++next_ticket ? next_ticket : ++next_ticket;
    op->state = P11_OP_ACTIVE;
    return CKR_OK;
}

P11_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hKey)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = sign_init(hSession, pMechanism, hKey);
    return p11_leave(rv, __func__);
}

/* The active operation of a session, or why there is none usable. */
static CK_RV active_op(CK_SESSION_HANDLE h, p11_session **s)
{
    CK_RV rv = p11_session_lookup(h, s);
    if (rv != CKR_OK)
        return rv;
    if ((*s)->sign.state == P11_OP_NONE)
        return CKR_OPERATION_NOT_INITIALIZED;
    if ((*s)->sign.state == P11_OP_BUSY)
        return CKR_OPERATION_ACTIVE; /* another thread is signing on this session */
    return CKR_OK;
}

/* The length question of C_Sign/C_SignFinal: CKR_OK with *len set when the caller only asked
 * (or gave too little room, with CKR_BUFFER_TOO_SMALL); -1 when the caller's buffer fits. */
static int answer_length(const p11_sign_op *op, CK_BYTE_PTR sig, CK_ULONG_PTR len, CK_RV *rv)
{
    CK_ULONG need = p11.token.keys[op->key].sig_len;
    if (!sig) {
        *len = need;
        *rv = CKR_OK;
        return 1;
    }
    if (*len < need) {
        *len = need;
        *rv = CKR_BUFFER_TOO_SMALL;
        return 1;
    }
    return 0;
}

/* One digest to the agent. The lock is dropped for the round trip; the session is looked up
 * again afterwards, since another thread may have closed it meanwhile. Ends the operation. */
static CK_RV sign_remote(CK_SESSION_HANDLE h, p11_session *s, const uint8_t *digest, sg_hash hash,
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    p11_sign_op *op = &s->sign;
    const p11_key *k = &p11.token.keys[op->key];
    char name[sizeof(k->k->name)];
    uint8_t sig[1024];
    size_t sig_len = sizeof(sig);
    unsigned ticket = op->ticket;
    const char *mech_name = op->mech->name; /* static: still valid after the lock is dropped */
    sg_mech mech = sg_mech_of(op->mech->family);
    unsigned salt = op->salt;
    sg_status st;

    snprintf(name, sizeof(name), "%s", k->k->name);
    op->state = P11_OP_BUSY;
    p11_unlock();
    st = sg_sign_one(p11.client, name, mech, hash, salt, digest, sig, &sig_len);
    p11_lock();
    s = p11_session_get(h);
    if (s && s->sign.ticket == ticket)
        p11_sign_op_end(&s->sign);
    if (st != SG_OK) {
        CK_RV rv = p11_map_status(st, P11_CTX_SIGN);
        p11_debug("sign with %s (%s, %s) failed: %s: %s -> %s", name, mech_name, sg_hash_name(hash),
                  sg_status_name(st), sg_last_error(), p11_rv_name(rv));
        return rv;
    }
    if (sig_len > *out_len) {
        *out_len = sig_len;
        return CKR_DEVICE_ERROR; /* the server's signature is not the size the key promised */
    }
    memcpy(out, sig, sig_len);
    *out_len = sig_len;
    return CKR_OK;
}

/* What CKM_RSA_PKCS, CKM_RSA_PKCS_PSS and CKM_ECDSA are given is already a digest (inside a
 * DigestInfo for CKM_RSA_PKCS): find its hash. */
static CK_RV raw_input_digest(const p11_sign_op *op, const uint8_t *data, CK_ULONG len,
                              uint8_t *digest, sg_hash *hash)
{
    const p11_key *k = &p11.token.keys[op->key];
    const uint8_t *d;
    size_t dlen;

    switch (op->mech->family) {
    case P11_FAM_RSA_PKCS:
        if (len > k->sig_len - 11)
            return CKR_DATA_LEN_RANGE;
        /* The server signs digests only: raw data that is not a DigestInfo cannot be signed. */
        if (sg_digestinfo_parse(data, len, hash, &d, &dlen) != SG_OK)
            return CKR_DATA_INVALID;
        memcpy(digest, d, dlen);
        return CKR_OK;
    case P11_FAM_RSA_PSS:
        if (len != sg_hash_len(op->hash))
            return CKR_DATA_LEN_RANGE;
        *hash = op->hash;
        memcpy(digest, data, len);
        return CKR_OK;
    case P11_FAM_ECDSA: {
        /* The server needs the hash that matches the digest's length. */
        int h = sgc_hash_for_digest_len(len);
        if (h < 0)
            return CKR_DATA_LEN_RANGE;
        *hash = (sg_hash)h;
        memcpy(digest, data, len);
        return CKR_OK;
    }
    case P11_FAM_DIGEST: break;
    }
    return CKR_MECHANISM_INVALID;
}

static CK_RV sign_once(CK_SESSION_HANDLE h, const uint8_t *data, CK_ULONG len, CK_BYTE_PTR sig,
                       CK_ULONG_PTR sig_len)
{
    p11_session *s;
    uint8_t digest[SG_MAX_DIGEST];
    size_t dlen = sizeof(digest);
    sg_hash hash;
    CK_RV rv = active_op(h, &s);

    if (rv != CKR_OK)
        return rv;
    if (!sig_len || (!data && len)) {
        p11_sign_op_end(&s->sign);
        return CKR_ARGUMENTS_BAD;
    }
    if (s->sign.multipart)
        return CKR_OPERATION_ACTIVE; /* C_SignUpdate began a multi-part signature */
    if (answer_length(&s->sign, sig, sig_len, &rv))
        return rv;
    if (s->sign.mech->hashes) {
        hash = s->sign.hash;
        if (sg_digest_update(&s->sign.dctx, data, len) != SG_OK ||
            sg_digest_final(&s->sign.dctx, digest, &dlen) != SG_OK)
            rv = CKR_GENERAL_ERROR;
        s->sign.dctx_live = 0;
    } else {
        rv = raw_input_digest(&s->sign, data, len, digest, &hash);
    }
    if (rv != CKR_OK) {
        p11_sign_op_end(&s->sign);
        return rv;
    }
    return sign_remote(h, s, digest, hash, sig, sig_len);
}

P11_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                        CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = sign_once(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
    return p11_leave(rv, __func__);
}

static CK_RV sign_update(CK_SESSION_HANDLE h, const uint8_t *part, CK_ULONG len)
{
    p11_session *s;
    CK_RV rv = active_op(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (!part && len) {
        p11_sign_op_end(&s->sign);
        return CKR_ARGUMENTS_BAD;
    }
    /* CKM_RSA_PKCS, CKM_RSA_PKCS_PSS and CKM_ECDSA are single-part (PKCS#11 mechanisms 2.1). */
    if (!s->sign.mech->hashes) {
        p11_sign_op_end(&s->sign);
        return CKR_FUNCTION_NOT_SUPPORTED;
    }
    if (sg_digest_update(&s->sign.dctx, part, len) != SG_OK) {
        p11_sign_op_end(&s->sign);
        return CKR_GENERAL_ERROR;
    }
    s->sign.multipart = 1;
    return CKR_OK;
}

P11_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = sign_update(hSession, pPart, ulPartLen);
    return p11_leave(rv, __func__);
}

static CK_RV sign_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    p11_session *s;
    uint8_t digest[SG_MAX_DIGEST];
    size_t dlen = sizeof(digest);
    CK_RV rv = active_op(h, &s);

    if (rv != CKR_OK)
        return rv;
    if (!sig_len) {
        p11_sign_op_end(&s->sign);
        return CKR_ARGUMENTS_BAD;
    }
    if (!s->sign.mech->hashes) {
        p11_sign_op_end(&s->sign);
        return CKR_FUNCTION_NOT_SUPPORTED;
    }
    if (answer_length(&s->sign, sig, sig_len, &rv))
        return rv;
    s->sign.dctx_live = 0;
    if (sg_digest_final(&s->sign.dctx, digest, &dlen) != SG_OK) {
        p11_sign_op_end(&s->sign);
        return CKR_GENERAL_ERROR;
    }
    return sign_remote(h, s, digest, s->sign.hash, sig, sig_len);
}

P11_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                             CK_ULONG_PTR pulSignatureLen)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = sign_final(hSession, pSignature, pulSignatureLen);
    return p11_leave(rv, __func__);
}
