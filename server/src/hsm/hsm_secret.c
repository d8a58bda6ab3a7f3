/* Secret keys for HMAC: created from a value the caller holds only long enough to show it
 * once (a TOTP secret), then sensitive and non-extractable in the HSM, which computes every
 * HMAC over it. */
#include <string.h>

#include "hsm_internal.h"

srv_status srv_hsm_secret_import(srv_hsm *hsm, const uint8_t *id, size_t id_len, const char *label,
                                 const uint8_t *value, size_t len, srv_error *err)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_ID, (void *)id, id_len},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_VALUE, (void *)value, len},
    };
    CK_OBJECT_HANDLE obj;
    pooled s;
    srv_status st;
    CK_RV rv;

    if (id_len == 0 || id_len > MAX_ID_LEN || len == 0 || len > 64)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad secret id or length");
    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (int attempt = 0;; attempt++) {
        rv = hsm->m.fn->C_CreateObject(s.h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
        if (rv == CKR_OK)
            break;
        if ((st = hsm_op_retry(hsm, &s, "C_CreateObject", rv, attempt >= 1, err)) != SRV_OK)
            break;
    }
    hsm_op_end(hsm, &s);
    return st;
}

srv_status srv_hsm_hmac_sha1(srv_hsm *hsm, const uint8_t *id, size_t id_len, const uint8_t *data,
                             size_t len, uint8_t out[20], srv_error *err)
{
    CK_MECHANISM mech = {CKM_SHA_1_HMAC, NULL, 0};
    CK_OBJECT_HANDLE key;
    CK_ULONG out_len;
    pooled s;
    srv_status st;
    CK_RV rv;

    if (id_len == 0 || id_len > MAX_ID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad secret id");
    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (int attempt = 0;; attempt++) {
        out_len = 20;
        rv = hsm_find_object(hsm, s.h, CKO_SECRET_KEY, id, id_len, &key);
        if (rv == CKR_OK)
            rv = hsm->m.fn->C_SignInit(s.h, &mech, key);
        if (rv == CKR_OK)
            rv = hsm->m.fn->C_Sign(s.h, (CK_BYTE_PTR)data, len, out, &out_len);
        if (rv == CKR_OK && out_len != 20)
            rv = CKR_GENERAL_ERROR;
        if (rv == CKR_OK)
            break;
        if (rv == CKR_KEY_HANDLE_INVALID) {
            st = srv_fail(err, SRV_E_NOT_FOUND, "no such secret in the HSM");
            break;
        }
        if ((st = hsm_op_retry(hsm, &s, "C_Sign (HMAC)", rv, attempt >= 1, err)) != SRV_OK)
            break;
    }
    hsm_op_end(hsm, &s);
    return st;
}

srv_status srv_hsm_secret_destroy(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_error *err)
{
    CK_OBJECT_HANDLE obj;
    pooled s;
    srv_status st;
    CK_RV rv;

    if (id_len == 0 || id_len > MAX_ID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad secret id");
    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    rv = hsm_find_object(hsm, s.h, CKO_SECRET_KEY, id, id_len, &obj);
    if (rv == CKR_OK)
        rv = hsm->m.fn->C_DestroyObject(s.h, obj);
    if (rv != CKR_OK && rv != CKR_KEY_HANDLE_INVALID) {
        st = hsm_fail(err, "C_DestroyObject", rv);
        if (hsm_rv_unavailable(rv))
            hsm_mark_down(hsm, "C_DestroyObject", rv, NULL);
    }
    hsm_op_end(hsm, &s);
    return st;
}
