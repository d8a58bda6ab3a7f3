/* Signing, and the small token data objects the audit log keeps its high-water mark in. */
#include <stdlib.h>
#include <string.h>

#include "hsm_internal.h"

srv_status srv_hsm_sign(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_mech mech,
                        srv_hash hash, unsigned salt_len, const uint8_t *data, size_t data_len,
                        uint8_t *sig, size_t *sig_len, srv_error *err)
{
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM m = {0, NULL, 0};
    pooled s;
    CK_OBJECT_HANDLE key;
    CK_ULONG out_len = 0;
    CK_RV rv = CKR_OK;
    srv_status st;
    const char *what;
    int attempt, cached;

    if (id_len == 0 || id_len > MAX_ID_LEN || (unsigned)hash >= SRV_HASH_COUNT)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad key id or hash");
    switch (mech) {
    case SRV_MECH_RSA_PKCS1: m.mechanism = CKM_RSA_PKCS; break;
    case SRV_MECH_RSA_PSS:
        pss.hashAlg = hsm_hash_mech(hash);
        pss.mgf = hsm_hash_mgf(hash);
        pss.sLen = salt_len;
        m.mechanism = CKM_RSA_PKCS_PSS;
        m.pParameter = &pss;
        m.ulParameterLen = sizeof(pss);
        break;
    case SRV_MECH_ECDSA: m.mechanism = CKM_ECDSA; break;
    default: return srv_fail(err, SRV_E_MECHANISM, "unknown mechanism");
    }

    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (attempt = 0;; attempt++) {
        what = "C_SignInit";
        cached = hsm_cache_get(hsm, id, id_len, &key);
        if (!cached) {
            what = "C_FindObjects";
            rv = hsm_find_object(hsm, s.h, CKO_PRIVATE_KEY, id, id_len, &key);
            /* Only a search the token confirms (logged in, token present) says "no such key". */
            if (rv == CKR_KEY_HANDLE_INVALID) {
                st = srv_fail(err, SRV_E_KEY_NOT_FOUND, "the HSM has no private key with this id");
                goto out;
            }
            if (rv == CKR_OK)
                hsm_cache_put(hsm, id, id_len, key);
        }
        if (rv == CKR_OK || cached)
            rv = hsm->m.fn->C_SignInit(s.h, &m, key);
        if (rv == CKR_OK) {
            what = "C_Sign";
            out_len = *sig_len;
            rv = hsm->m.fn->C_Sign(s.h, (CK_BYTE_PTR)data, data_len, sig, &out_len);
        }
        if (rv == CKR_OK)
            break;
        /* A cached handle the HSM no longer knows: look the key up again. */
        if ((rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) && cached &&
            attempt < 2) {
            hsm_cache_forget(hsm, id, id_len);
            continue;
        }
        st = hsm_op_retry(hsm, &s, what, rv, attempt >= 2, err);
        if (st != SRV_OK)
            goto out;
    }
    *sig_len = out_len;
out:
    hsm_op_end(hsm, &s);
    return st;
}

/* ---- data objects ---------------------------------------------------------------------- */

/* Finds up to max token data objects with this label; *n receives how many. An empty answer
 * is confirmed like a missing key (the objects are private). */
static CK_RV find_data(srv_hsm *hsm, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *out,
                       CK_ULONG max, CK_ULONG *n)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_RV rv = hsm->m.fn->C_FindObjectsInit(s, tmpl, 3);
    *n = 0;
    if (rv != CKR_OK)
        return rv;
    rv = hsm->m.fn->C_FindObjects(s, out, max, n);
    hsm->m.fn->C_FindObjectsFinal(s);
    if (rv == CKR_OK && *n == 0)
        rv = hsm_confirm_absent(hsm, s);
    return rv;
}

#define DATA_OBJECTS_MAX 8

/* find_data with one session replacement, as every operation gets. */
static CK_RV find_data_retry(srv_hsm *hsm, pooled *s, const char *label, CK_OBJECT_HANDLE *out,
                             CK_ULONG max, CK_ULONG *n, srv_status *st, srv_error *err)
{
    CK_RV rv = find_data(hsm, s->h, label, out, max, n);
    if (rv != CKR_OK && (*st = hsm_op_retry(hsm, s, "C_FindObjects", rv, 0, err)) == SRV_OK) {
        rv = find_data(hsm, s->h, label, out, max, n);
        if (rv != CKR_OK)
            *st = hsm_op_retry(hsm, s, "C_FindObjects", rv, 1, err);
    }
    return rv;
}

srv_status srv_hsm_data_put(srv_hsm *hsm, const char *label, const uint8_t *value, size_t len,
                            srv_error *err)
{
    static const char application[] = "signum-server";
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_HANDLE old[DATA_OBJECTS_MAX], obj;
    CK_ULONG n = 0;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_APPLICATION, (void *)application, sizeof(application) - 1},
        {CKA_VALUE, (void *)value, len},
    };
    pooled s;
    srv_status st;
    CK_RV rv;

    if (len > 4096)
        return srv_fail(err, SRV_E_INVALID_FIELD, "HSM data object too large");
    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    rv = find_data_retry(hsm, &s, label, old, DATA_OBJECTS_MAX, &n, &st, err);
    if (rv != CKR_OK)
        goto out;
    /* CKA_VALUE of a data object may be read-only (SoftHSMv2): write a new object, then drop
     * the old ones, so that a crash in between leaves two objects rather than none. */
    rv = hsm->m.fn->C_CreateObject(s.h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
        rv = hsm->m.fn->C_DestroyObject(s.h, old[i]);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "storing a data object", rv);
        if (hsm_rv_unavailable(rv))
            hsm_mark_down(hsm, "storing a data object", rv, NULL);
    }
out:
    hsm_op_end(hsm, &s);
    return st;
}

srv_status srv_hsm_data_get(srv_hsm *hsm, const char *label, uint8_t **value, size_t *len,
                            srv_error *err)
{
    CK_OBJECT_HANDLE obj[2];
    CK_ULONG n = 0, vlen = 0;
    pooled s;
    srv_status st;
    CK_RV rv;

    *value = NULL;
    *len = 0;
    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    rv = find_data_retry(hsm, &s, label, obj, 2, &n, &st, err);
    if (rv != CKR_OK)
        goto out;
    if (n == 0)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no HSM data object \"%s\"", label);
    else if (n > 1)
        st = srv_fail(err, SRV_E_HSM,
                      "several HSM data objects \"%s\" (an update was interrupted; the next "
                      "one repairs it)",
                      label);
    else if ((st = hsm_read_attr(hsm, s.h, obj[0], CKA_VALUE, value, &vlen, err)) == SRV_OK)
        *len = vlen;
out:
    hsm_op_end(hsm, &s);
    return st;
}
