/* Objects: their attributes (answered locally, never a round trip), search and the bulk
 * C_GetAttributeValue rules (fill what can be filled, mark the rest). The token is read-only. */
#include <stdlib.h>
#include <string.h>

#include "p11.h"

int p11_object_visible(const p11_object *o)
{
    return o->cls != CKO_PRIVATE_KEY || p11.logged_in;
}

p11_object *p11_object_get(CK_OBJECT_HANDLE h)
{
    return p11_handle_get(&p11.handles, h, P11_H_OBJECT);
}

typedef enum { ATTR_ABSENT = 0, ATTR_PRESENT, ATTR_SENSITIVE } attr_result;

/* Room for the values that are not slices of the listing. */
typedef union {
    CK_ULONG ul;
    CK_BBOOL b;
    CK_MECHANISM_TYPE mechs[16];
} attr_scratch;

typedef struct {
    const void *ptr;
    size_t len;
} attr_value;

#define BOOL(v)                                                                                    \
    do {                                                                                           \
        s->b = (v) ? CK_TRUE : CK_FALSE;                                                           \
        out->ptr = &s->b;                                                                          \
        out->len = sizeof(s->b);                                                                   \
        return ATTR_PRESENT;                                                                       \
    } while (0)
#define ULONG(v)                                                                                   \
    do {                                                                                           \
        s->ul = (CK_ULONG)(v);                                                                     \
        out->ptr = &s->ul;                                                                         \
        out->len = sizeof(s->ul);                                                                  \
        return ATTR_PRESENT;                                                                       \
    } while (0)
#define BYTES(p, n)                                                                                \
    do {                                                                                           \
        out->ptr = (p);                                                                            \
        out->len = (n);                                                                            \
        return ATTR_PRESENT;                                                                       \
    } while (0)

static attr_result common_attr(const p11_object *o, CK_ATTRIBUTE_TYPE t, attr_scratch *s,
                               attr_value *out)
{
    switch (t) {
    case CKA_CLASS: ULONG(o->cls);
    case CKA_TOKEN: BOOL(1);
    case CKA_PRIVATE: BOOL(o->cls == CKO_PRIVATE_KEY);
    case CKA_MODIFIABLE: BOOL(0);
    case CKA_COPYABLE: BOOL(0);
    case CKA_DESTROYABLE: BOOL(0);
    case CKA_LABEL: BYTES(o->label, strlen(o->label));
    case CKA_ID: BYTES(o->id, o->id_len);
    default: return ATTR_ABSENT;
    }
}

static attr_result key_attr(const p11_object *o, CK_ATTRIBUTE_TYPE t, attr_scratch *s,
                            attr_value *out)
{
    const p11_key *k = p11_key_of(o);
    const sg_pubkey_info *pub = &k->pub;
    int priv = o->cls == CKO_PRIVATE_KEY, rsa = k->type == CKK_RSA;

    switch (t) {
    case CKA_KEY_TYPE: ULONG(k->type);
    case CKA_START_DATE:
    case CKA_END_DATE: BYTES("", 0);
    case CKA_DERIVE: BOOL(0);
    case CKA_LOCAL: BOOL(1); /* generated inside the HSM */
    case CKA_KEY_GEN_MECHANISM: ULONG(rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN);
    case CKA_ALLOWED_MECHANISMS: {
        size_t n = p11_mech_for_key(k->type, s->mechs, sizeof(s->mechs) / sizeof(s->mechs[0]));
        BYTES(s->mechs, n * sizeof(s->mechs[0]));
    }
    case CKA_SUBJECT: BYTES(k->cert.subject, k->has_cert ? k->cert.subject_len : 0);
    case CKA_PUBLIC_KEY_INFO: BYTES(k->k->public_key, k->k->public_key_len);
    case CKA_MODULUS:
        if (!rsa)
            return ATTR_ABSENT;
        BYTES(pub->modulus, pub->modulus_len);
    case CKA_PUBLIC_EXPONENT:
        if (!rsa)
            return ATTR_ABSENT;
        BYTES(pub->exponent, pub->exponent_len);
    case CKA_EC_PARAMS:
        if (rsa)
            return ATTR_ABSENT;
        BYTES(pub->ec_params, pub->ec_params_len);
    default: break;
    }
    if (priv) {
        switch (t) {
        case CKA_SENSITIVE: BOOL(1);
        case CKA_ALWAYS_SENSITIVE: BOOL(1);
        case CKA_EXTRACTABLE: BOOL(0);
        case CKA_NEVER_EXTRACTABLE: BOOL(1);
        case CKA_SIGN: BOOL(1);
        case CKA_SIGN_RECOVER: BOOL(0);
        case CKA_DECRYPT: BOOL(0);
        case CKA_UNWRAP: BOOL(0);
        case CKA_WRAP_WITH_TRUSTED: BOOL(0);
        case CKA_ALWAYS_AUTHENTICATE: BOOL(0);
        case CKA_PRIVATE_EXPONENT:
        case CKA_PRIME_1:
        case CKA_PRIME_2:
        case CKA_EXPONENT_1:
        case CKA_EXPONENT_2:
        case CKA_COEFFICIENT: return rsa ? ATTR_SENSITIVE : ATTR_ABSENT;
        case CKA_VALUE: return rsa ? ATTR_ABSENT : ATTR_SENSITIVE;
        default: return ATTR_ABSENT;
        }
    }
    switch (t) {
    case CKA_ENCRYPT: BOOL(0);
    case CKA_VERIFY: BOOL(1);
    case CKA_VERIFY_RECOVER: BOOL(0);
    case CKA_WRAP: BOOL(0);
    case CKA_TRUSTED: BOOL(0);
    case CKA_MODULUS_BITS:
        if (!rsa)
            return ATTR_ABSENT;
        ULONG(k->bits);
    case CKA_EC_POINT:
        if (rsa)
            return ATTR_ABSENT;
        BYTES(pub->ec_point, pub->ec_point_len);
    default: return ATTR_ABSENT;
    }
}

static attr_result cert_attr(const p11_object *o, CK_ATTRIBUTE_TYPE t, attr_scratch *s,
                             attr_value *out)
{
    switch (t) {
    case CKA_CERTIFICATE_TYPE: ULONG(CKC_X_509);
    case CKA_TRUSTED: BOOL(0);
    /* 1: token user, 2: authority (PKCS#11 section 4.6.2). */
    case CKA_CERTIFICATE_CATEGORY: ULONG(o->is_ca ? 2 : 1);
    case CKA_SUBJECT: BYTES(o->cert.subject, o->cert.subject_len);
    case CKA_ISSUER: BYTES(o->cert.issuer, o->cert.issuer_len);
    case CKA_SERIAL_NUMBER: BYTES(o->cert.serial, o->cert.serial_len);
    case CKA_VALUE: BYTES(o->der, o->der_len);
    case CKA_START_DATE:
    case CKA_END_DATE:
    case CKA_URL:
    case CKA_HASH_OF_SUBJECT_PUBLIC_KEY:
    case CKA_HASH_OF_ISSUER_PUBLIC_KEY: BYTES("", 0);
    case CKA_JAVA_MIDP_SECURITY_DOMAIN: ULONG(0);
    default: return ATTR_ABSENT;
    }
}

static attr_result object_attr(const p11_object *o, CK_ATTRIBUTE_TYPE t, attr_scratch *s,
                               attr_value *out)
{
    attr_result r = common_attr(o, t, s, out);
    if (r != ATTR_ABSENT)
        return r;
    return o->cls == CKO_CERTIFICATE ? cert_attr(o, t, s, out) : key_attr(o, t, s, out);
}

#undef BOOL
#undef ULONG
#undef BYTES

/* An object the application may see: known, and not private before a login (a private key
 * is then out of sight, as C_FindObjects shows). */
static CK_RV object_for(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, p11_object **out)
{
    p11_session *s;
    CK_RV rv = p11_session_lookup(hs, &s);
    if (rv != CKR_OK)
        return rv;
    *out = p11_object_get(ho);
    return *out && p11_object_visible(*out) ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

/* PKCS#11 section 5.7, C_GetAttributeValue: every attribute is answered; the return value
 * names one of the problems when there were any. */
static CK_RV get_attributes(const p11_object *o, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    CK_RV rv = CKR_OK;
    for (CK_ULONG i = 0; i < n; i++) {
        attr_scratch s;
        attr_value v;
        CK_ATTRIBUTE *a = &tmpl[i];
        attr_result r = object_attr(o, a->type, &s, &v);
        if (r == ATTR_SENSITIVE) {
            a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_SENSITIVE;
        } else if (r == ATTR_ABSENT) {
            a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (!a->pValue) {
            a->ulValueLen = v.len;
        } else if (a->ulValueLen < v.len) {
            a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            /* An empty value may have no pointer at all (CKA_SUBJECT of a key without a
             * certificate): memcpy from NULL is undefined even for 0 bytes. */
            if (v.len)
                memcpy(a->pValue, v.ptr, v.len);
            a->ulValueLen = v.len;
        }
    }
    return rv;
}

P11_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    p11_object *o;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = object_for(hSession, hObject, &o);
    if (rv == CKR_OK && !pTemplate && ulCount)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK)
        rv = get_attributes(o, pTemplate, ulCount);
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                 CK_ULONG_PTR pulSize)
{
    p11_object *o;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = object_for(hSession, hObject, &o);
    if (rv == CKR_OK && !pulSize)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK)
        *pulSize = CK_UNAVAILABLE_INFORMATION; /* nothing here takes token memory */
    return p11_leave(rv, __func__);
}

static int matches(const p11_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        attr_scratch s;
        attr_value v;
        if (object_attr(o, tmpl[i].type, &s, &v) != ATTR_PRESENT || v.len != tmpl[i].ulValueLen ||
            (v.len && (!tmpl[i].pValue || memcmp(v.ptr, tmpl[i].pValue, v.len) != 0)))
            return 0;
    }
    return 1;
}

static CK_RV find_init(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    p11_session *s;
    CK_RV rv = p11_session_lookup(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (!tmpl && n)
        return CKR_ARGUMENTS_BAD;
    if (s->find.active)
        return CKR_OPERATION_ACTIVE;
    rv = p11_token_ensure();
    /* Before a login there is nothing the application may see; anything else is an error. */
    if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
        return rv;
    free(s->find.hits);
    memset(&s->find, 0, sizeof(s->find));
    s->find.hits = calloc(p11.token.nobjects ? p11.token.nobjects : 1, sizeof(CK_OBJECT_HANDLE));
    if (!s->find.hits)
        return CKR_HOST_MEMORY;
    for (size_t i = 0; i < p11.token.nobjects; i++) {
        const p11_object *o = &p11.token.objects[i];
        if (p11_object_visible(o) && matches(o, tmpl, n))
            s->find.hits[s->find.count++] = o->handle;
    }
    s->find.active = 1;
    return CKR_OK;
}

P11_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                                   CK_ULONG ulCount)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = find_init(hSession, pTemplate, ulCount);
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                               CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    p11_session *s;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = p11_session_lookup(hSession, &s);
    if (rv == CKR_OK && (!pulObjectCount || (!phObject && ulMaxObjectCount)))
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK && !s->find.active)
        rv = CKR_OPERATION_NOT_INITIALIZED;
    if (rv == CKR_OK) {
        CK_ULONG n = 0;
        while (n < ulMaxObjectCount && s->find.pos < s->find.count)
            phObject[n++] = s->find.hits[s->find.pos++];
        *pulObjectCount = n;
    }
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    p11_session *s;
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = p11_session_lookup(hSession, &s);
    if (rv == CKR_OK && !s->find.active)
        rv = CKR_OPERATION_NOT_INITIALIZED;
    if (rv == CKR_OK) {
        free(s->find.hits);
        memset(&s->find, 0, sizeof(s->find));
    }
    return p11_leave(rv, __func__);
}
