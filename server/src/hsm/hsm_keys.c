/* Keys: finding objects (and telling "absent" from "cannot see it"), public key export, key
 * generation and destruction. The CKA_ID -> handle cache is hsm_cache.c's. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "hsm_internal.h"

/* DER OIDs for CKA_EC_PARAMS. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

CK_RV hsm_confirm_absent(srv_hsm *hsm, CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO si;
    CK_TOKEN_INFO ti;
    CK_RV rv = hsm->m.fn->C_GetSessionInfo(s, &si);
    if (rv != CKR_OK)
        return rv;
    /* A session that lost its login (the HSM restarted behind a proxy, a token re-inserted)
     * sees no private object at all: that is an HSM failure, not an unknown key. */
    if (si.state != CKS_RW_USER_FUNCTIONS && si.state != CKS_RO_USER_FUNCTIONS)
        return CKR_USER_NOT_LOGGED_IN;
    rv = hsm->m.fn->C_GetTokenInfo(si.slotID, &ti);
    if (rv != CKR_OK)
        return rv;
    return (ti.flags & CKF_TOKEN_INITIALIZED) ? CKR_OK : CKR_TOKEN_NOT_RECOGNIZED;
}

CK_RV hsm_find_object(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const uint8_t *id,
                      size_t id_len, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, id_len},
    };
    CK_ULONG n = 0;
    CK_RV rv = hsm->m.fn->C_FindObjectsInit(s, tmpl, 2);
    if (rv != CKR_OK)
        return rv;
    rv = hsm->m.fn->C_FindObjects(s, out, 1, &n);
    hsm->m.fn->C_FindObjectsFinal(s);
    if (rv == CKR_OK && n == 0) {
        rv = hsm_confirm_absent(hsm, s);
        return rv == CKR_OK ? CKR_KEY_HANDLE_INVALID : rv;
    }
    return rv;
}

/* ---- public key export -------------------------------------------------------------------- */

static srv_status spki_from_pkey_params(const char *alg, OSSL_PARAM_BLD *bld, uint8_t **spki,
                                        size_t *spki_len, srv_error *err)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    EVP_PKEY *pkey = NULL;
    unsigned char *der = NULL;
    int len;
    srv_status st = SRV_OK;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        st = srv_fail(err, SRV_E_HSM, "HSM returned an unusable public key");
        goto out;
    }
    len = i2d_PUBKEY(pkey, &der);
    if (len <= 0) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot encode public key");
        goto out;
    }
    *spki = malloc((size_t)len);
    if (!*spki) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*spki, der, (size_t)len);
    *spki_len = (size_t)len;
out:
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return st;
}

srv_status hsm_read_attr(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                         CK_ATTRIBUTE_TYPE type, uint8_t **val, CK_ULONG *len, srv_error *err)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = hsm->m.fn->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK)
        return hsm_fail(err, "C_GetAttributeValue", rv);
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 4096)
        return srv_fail(err, SRV_E_HSM, "the HSM gave no usable value for attribute 0x%lx",
                        (unsigned long)type);
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (!a.pValue)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    rv = hsm->m.fn->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return hsm_fail(err, "C_GetAttributeValue", rv);
    }
    *val = a.pValue;
    *len = a.ulValueLen;
    return SRV_OK;
}

static srv_status export_public(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
                                srv_key_type type, uint8_t **spki, size_t *spki_len, srv_error *err)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    uint8_t *a = NULL, *b = NULL;
    CK_ULONG alen = 0, blen = 0;
    BIGNUM *n = NULL, *e = NULL;
    srv_status st;

    if (!bld)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    if (srv_key_type_is_rsa(type)) {
        st = hsm_read_attr(hsm, s, pub, CKA_MODULUS, &a, &alen, err);
        if (st == SRV_OK)
            st = hsm_read_attr(hsm, s, pub, CKA_PUBLIC_EXPONENT, &b, &blen, err);
        if (st != SRV_OK)
            goto out;
        n = BN_bin2bn(a, (int)alen, NULL);
        e = BN_bin2bn(b, (int)blen, NULL);
        if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
        st = spki_from_pkey_params("RSA", bld, spki, spki_len, err);
    } else {
        const uint8_t *point;
        size_t point_len;
        st = hsm_read_attr(hsm, s, pub, CKA_EC_POINT, &a, &alen, err);
        if (st != SRV_OK)
            goto out;
        /* CKA_EC_POINT is a DER OCTET STRING around the uncompressed point. */
        if (alen >= 3 && a[0] == 0x04 && a[1] < 0x80 && (CK_ULONG)a[1] + 2 == alen) {
            point = a + 2;
            point_len = a[1];
        } else if (alen >= 4 && a[0] == 0x04 && a[1] == 0x81 && (CK_ULONG)a[2] + 3 == alen) {
            point = a + 3;
            point_len = a[2];
        } else {
            point = a; /* some modules return the raw point */
            point_len = alen;
        }
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                             type == SRV_KEY_EC_P256 ? "P-256" : "P-384", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len)) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
        st = spki_from_pkey_params("EC", bld, spki, spki_len, err);
    }
out:
    BN_free(n);
    BN_free(e);
    free(a);
    free(b);
    OSSL_PARAM_BLD_free(bld);
    return st;
}

/* ---- operations --------------------------------------------------------------------------- */

srv_status srv_hsm_generate_key(srv_hsm *hsm, srv_key_type type, const uint8_t *id, size_t id_len,
                                const char *label, uint8_t **spki, size_t *spki_len, srv_error *err)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = srv_key_type_bits(type);
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    CK_MECHANISM mech = {
        srv_key_type_is_rsa(type) ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[8], priv[12];
    CK_ULONG npub = 0, npriv = 0;
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    pooled s;
    CK_RV rv;
    srv_status st;
    int attempt;

    *spki = NULL;
    if ((unsigned)type >= SRV_KEY_TYPE_COUNT || id_len == 0 || id_len > MAX_ID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad key type or id");

#define ATTR(arr, n, t, v, l)                                                                      \
    (arr[n].type = (t), arr[n].pValue = (void *)(v), arr[n].ulValueLen = (l), n++)
    ATTR(pub, npub, CKA_TOKEN, &yes, sizeof(yes));
    ATTR(pub, npub, CKA_VERIFY, &yes, sizeof(yes));
    ATTR(pub, npub, CKA_ENCRYPT, &no, sizeof(no));
    ATTR(pub, npub, CKA_WRAP, &no, sizeof(no));
    ATTR(pub, npub, CKA_ID, id, id_len);
    ATTR(pub, npub, CKA_LABEL, label, strlen(label));
    if (srv_key_type_is_rsa(type)) {
        ATTR(pub, npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
        ATTR(pub, npub, CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent));
    } else if (type == SRV_KEY_EC_P256) {
        ATTR(pub, npub, CKA_EC_PARAMS, oid_p256, sizeof(oid_p256));
    } else {
        ATTR(pub, npub, CKA_EC_PARAMS, oid_p384, sizeof(oid_p384));
    }
    ATTR(priv, npriv, CKA_TOKEN, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_PRIVATE, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_EXTRACTABLE, &no, sizeof(no));
    ATTR(priv, npriv, CKA_SIGN, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_DECRYPT, &no, sizeof(no));
    ATTR(priv, npriv, CKA_UNWRAP, &no, sizeof(no));
    ATTR(priv, npriv, CKA_DERIVE, &no, sizeof(no));
    ATTR(priv, npriv, CKA_ID, id, id_len);
    ATTR(priv, npriv, CKA_LABEL, label, strlen(label));
#undef ATTR

    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (attempt = 0;; attempt++) {
        rv = hsm->m.fn->C_GenerateKeyPair(s.h, &mech, pub, npub, priv, npriv, &hpub, &hpriv);
        if (rv == CKR_OK)
            break;
        st = hsm_op_retry(hsm, &s, "C_GenerateKeyPair", rv, attempt >= 1, err);
        if (st != SRV_OK)
            goto out;
    }
    st = export_public(hsm, s.h, hpub, type, spki, spki_len, err);
    if (st != SRV_OK) {
        /* A key we cannot describe is useless: take it out again. */
        hsm->m.fn->C_DestroyObject(s.h, hpriv);
        hsm->m.fn->C_DestroyObject(s.h, hpub);
        goto out;
    }
    hsm_cache_put(hsm, id, id_len, hpriv);
out:
    hsm_op_end(hsm, &s);
    return st;
}

srv_status srv_hsm_destroy_key(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_error *err)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    pooled s;
    srv_status st;

    if (id_len == 0 || id_len > MAX_ID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad key id");
    hsm_cache_forget(hsm, id, id_len);
    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        CK_OBJECT_HANDLE obj;
        CK_RV rv = hsm_find_object(hsm, s.h, classes[i], id, id_len, &obj);
        if (rv == CKR_OK)
            rv = hsm->m.fn->C_DestroyObject(s.h, obj);
        if (rv != CKR_OK && rv != CKR_KEY_HANDLE_INVALID && st == SRV_OK) {
            st = hsm_fail(err, "C_DestroyObject", rv);
            if (hsm_rv_unavailable(rv))
                hsm_mark_down(hsm, "C_DestroyObject", rv, NULL);
        }
    }
    hsm_op_end(hsm, &s);
    return st;
}

/* ---- adopting a key made elsewhere -------------------------------------------------------- */

/* The private key must be one no one can take out of the token, usable for signing, and of
 * the type the caller names; its public half is read from the public key object. */
static srv_status check_adoptable(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                                  CK_OBJECT_HANDLE pub, srv_key_type type, srv_error *err)
{
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, sign = CK_FALSE;
    CK_KEY_TYPE kt = CKK_VENDOR_DEFINED;
    CK_ULONG bits = 0;
    CK_ATTRIBUTE a[] = {
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_SIGN, &sign, sizeof(sign)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
    };
    uint8_t *params = NULL;
    CK_ULONG params_len = 0;
    srv_status st = SRV_OK;
    CK_RV rv = hsm->m.fn->C_GetAttributeValue(s, priv, a, sizeof(a) / sizeof(a[0]));

    if (rv != CKR_OK)
        return hsm_fail(err, "C_GetAttributeValue", rv);
    if (!sensitive || extractable || !sign)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "the HSM key with this id is not a sensitive, non-extractable signing key "
                        "(CKA_SENSITIVE=%d, CKA_EXTRACTABLE=%d, CKA_SIGN=%d)",
                        sensitive, extractable, sign);
    if (srv_key_type_is_rsa(type)) {
        CK_ATTRIBUTE b = {CKA_MODULUS_BITS, &bits, sizeof(bits)};
        if (kt != CKK_RSA || hsm->m.fn->C_GetAttributeValue(s, pub, &b, 1) != CKR_OK ||
            bits != srv_key_type_bits(type))
            st = srv_fail(err, SRV_E_INVALID_FIELD, "the HSM key with this id is not %s",
                          srv_key_type_name(type));
        return st;
    }
    if (kt != CKK_EC)
        return srv_fail(err, SRV_E_INVALID_FIELD, "the HSM key with this id is not %s",
                        srv_key_type_name(type));
    if ((st = hsm_read_attr(hsm, s, pub, CKA_EC_PARAMS, &params, &params_len, err)) != SRV_OK)
        return st;
    if (type == SRV_KEY_EC_P256
            ? params_len != sizeof(oid_p256) || memcmp(params, oid_p256, sizeof(oid_p256))
            : params_len != sizeof(oid_p384) || memcmp(params, oid_p384, sizeof(oid_p384)))
        st = srv_fail(err, SRV_E_INVALID_FIELD, "the HSM key with this id is not %s",
                      srv_key_type_name(type));
    free(params);
    return st;
}

/* The label must not be one the server gives its own keys (another installation's CA or
 * audit key on a shared partition). */
static srv_status check_label(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                              const char *const *reserved, srv_error *err)
{
    uint8_t *label = NULL;
    CK_ULONG len = 0;
    srv_status st;

    if (!reserved || !reserved[0])
        return SRV_OK;
    if ((st = hsm_read_attr(hsm, s, priv, CKA_LABEL, &label, &len, err)) != SRV_OK)
        return st;
    for (size_t i = 0; reserved[i]; i++)
        if (strlen(reserved[i]) == len && memcmp(label, reserved[i], len) == 0)
            st = srv_fail(err, SRV_E_INVALID_FIELD,
                          "the HSM key with this id is labelled \"%s\", a Signum server's own "
                          "key, which cannot be adopted",
                          reserved[i]);
    free(label);
    return st;
}

srv_status srv_hsm_adopt_key(srv_hsm *hsm, srv_key_type type, const uint8_t *id, size_t id_len,
                             const char *const *reserved_labels, uint8_t **spki, size_t *spki_len,
                             srv_error *err)
{
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
    pooled s;
    CK_RV rv;
    srv_status st;
    int attempt;

    *spki = NULL;
    if ((unsigned)type >= SRV_KEY_TYPE_COUNT || id_len == 0 || id_len > MAX_ID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad key type or id");
    st = hsm_op_begin(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (attempt = 0;; attempt++) {
        rv = hsm_find_object(hsm, s.h, CKO_PRIVATE_KEY, id, id_len, &priv);
        if (rv == CKR_OK)
            rv = hsm_find_object(hsm, s.h, CKO_PUBLIC_KEY, id, id_len, &pub);
        if (rv == CKR_OK)
            break;
        /* Confirmed absent by a logged-in session on a present token. */
        if (rv == CKR_KEY_HANDLE_INVALID) {
            st = srv_fail(err, SRV_E_KEY_NOT_FOUND,
                          "the HSM has no private and public key pair with this id");
            goto out;
        }
        st = hsm_op_retry(hsm, &s, "C_FindObjects", rv, attempt >= 1, err);
        if (st != SRV_OK)
            goto out;
    }
    if ((st = check_label(hsm, s.h, priv, reserved_labels, err)) != SRV_OK ||
        (st = check_adoptable(hsm, s.h, priv, pub, type, err)) != SRV_OK ||
        (st = export_public(hsm, s.h, pub, type, spki, spki_len, err)) != SRV_OK)
        goto out;
    hsm_cache_put(hsm, id, id_len, priv);
out:
    hsm_op_end(hsm, &s);
    return st;
}
