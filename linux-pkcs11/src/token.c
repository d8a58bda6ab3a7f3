/* The token: one per agent identity, built once per process from the agent's key listing.
 * For each key a private key, a public key and (when issued) its certificate, sharing the key's
 * CKA_ID and name as CKA_LABEL; then each distinct chain certificate once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11.h"

const p11_key *p11_key_of(const p11_object *o)
{
    return &p11.token.keys[o->key];
}

void p11_token_clear(void)
{
    p11_token *t = &p11.token;
    for (size_t i = 0; i < t->nobjects; i++)
        p11_handle_remove(&p11.handles, t->objects[i].handle);
    free(t->objects);
    free(t->keys);
    sg_key_list_free(t->list);
    memset(t, 0, sizeof(*t));
}

/* The last commonName in a DER Name (SEQUENCE OF SET OF SEQUENCE {OID, value}), for a chain
 * certificate's label. Returns 0 if there is none. Reads only within der[0..len). */
static int der_header(const uint8_t *p, size_t avail, uint8_t *tag, size_t *hdr, size_t *body)
{
    size_t n;
    if (avail < 2)
        return -1;
    *tag = p[0];
    if (p[1] < 0x80) {
        *hdr = 2;
        *body = p[1];
    } else {
        size_t k = p[1] & 0x7F;
        if (k == 0 || k > 3 || avail < 2 + k)
            return -1;
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = (n << 8) | p[2 + i];
        *hdr = 2 + k;
        *body = n;
    }
    return *hdr + *body <= avail ? 0 : -1;
}

static int subject_cn(const uint8_t *der, size_t len, char *out, size_t cap)
{
    static const uint8_t oid_cn[] = {0x06, 0x03, 0x55, 0x04, 0x03};
    uint8_t tag;
    size_t hdr, body, pos;
    int found = 0;

    if (der_header(der, len, &tag, &hdr, &body) != 0 || tag != 0x30)
        return 0;
    for (pos = hdr; pos < hdr + body;) {
        size_t shdr, sbody, ahdr, abody, vhdr, vbody;
        uint8_t stag, atag, vtag;
        const uint8_t *set = der + pos, *atv, *val;
        if (der_header(set, hdr + body - pos, &stag, &shdr, &sbody) != 0 || stag != 0x31)
            return found;
        atv = set + shdr;
        if (der_header(atv, sbody, &atag, &ahdr, &abody) == 0 && atag == 0x30 &&
            abody > sizeof(oid_cn) && memcmp(atv + ahdr, oid_cn, sizeof(oid_cn)) == 0) {
            val = atv + ahdr + sizeof(oid_cn);
            if (der_header(val, abody - sizeof(oid_cn), &vtag, &vhdr, &vbody) == 0 && vbody < cap) {
                memcpy(out, val + vhdr, vbody);
                out[vbody] = '\0';
                found = 1;
            }
        }
        pos += shdr + sbody;
    }
    return found;
}

/* Labels are shown by every tool: keep them printable. */
static void clean_label(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            *s = '?';
}

static CK_RV add_object(p11_object *objs, size_t *n, CK_OBJECT_CLASS cls, size_t key,
                        const char *label, const uint8_t *id, size_t id_len)
{
    p11_object *o = &objs[(*n)++];
    memset(o, 0, sizeof(*o));
    o->cls = cls;
    o->key = key;
    snprintf(o->label, sizeof(o->label), "%s", label);
    clean_label(o->label);
    memcpy(o->id, id, id_len);
    o->id_len = id_len;
    return CKR_OK;
}

static int cert_known(const p11_object *objs, size_t n, const uint8_t *der, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (objs[i].cls == CKO_CERTIFICATE && objs[i].der_len == len &&
            memcmp(objs[i].der, der, len) == 0)
            return 1;
    return 0;
}

CK_RV p11_token_load(sg_key_list *list, const sg_agent_status *status)
{
    p11_token *t = &p11.token;
    size_t max_objects = 0, nkeys = 0, nobj = 0;
    p11_key *keys = NULL;
    p11_object *objs = NULL;

    for (size_t i = 0; i < list->count; i++)
        max_objects += 3 + list->keys[i].chain_count;
    keys = calloc(list->count ? list->count : 1, sizeof(*keys));
    objs = calloc(max_objects ? max_objects : 1, sizeof(*objs));
    if (!keys || !objs) {
        free(keys);
        free(objs);
        sg_key_list_free(list);
        return CKR_HOST_MEMORY;
    }

    for (size_t i = 0; i < list->count; i++) {
        const sg_key *sk = &list->keys[i];
        p11_key *k = &keys[nkeys];
        if (sg_pubkey_parse(sk->public_key, sk->public_key_len, &k->pub) != SG_OK) {
            p11_debug("key %s: public key does not parse (%s); not shown", sk->name,
                      sg_last_error());
            continue;
        }
        k->k = sk;
        k->type = k->pub.is_rsa ? CKK_RSA : CKK_EC;
        k->bits = k->pub.bits;
        k->sig_len = k->pub.is_rsa ? k->pub.modulus_len : 2 * ((k->pub.bits + 7) / 8);
        if (sk->cert && sg_cert_parse(sk->cert, sk->cert_len, &k->cert) == SG_OK)
            k->has_cert = 1;
        else if (sk->cert)
            p11_debug("key %s: certificate does not parse; shown without it", sk->name);
        add_object(objs, &nobj, CKO_PRIVATE_KEY, nkeys, sk->name, sk->id, sk->id_len);
        add_object(objs, &nobj, CKO_PUBLIC_KEY, nkeys, sk->name, sk->id, sk->id_len);
        if (k->has_cert) {
            add_object(objs, &nobj, CKO_CERTIFICATE, nkeys, sk->name, sk->id, sk->id_len);
            objs[nobj - 1].der = sk->cert;
            objs[nobj - 1].der_len = sk->cert_len;
            objs[nobj - 1].cert = k->cert;
        }
        nkeys++;
    }
    /* Chain certificates after every key's own, each once even when several keys share a CA.
     * CKA_ID: a hash of the CA's subject, so its id is its own and stable across keys. */
    for (size_t i = 0; i < nkeys; i++) {
        const sg_key *sk = keys[i].k;
        for (size_t j = 0; j < sk->chain_count; j++) {
            sg_cert_info ci;
            uint8_t h[SG_MAX_DIGEST];
            size_t hlen = sizeof(h);
            char label[128];
            p11_object *o;
            if (cert_known(objs, nobj, sk->chain[j], sk->chain_len[j]) ||
                sg_cert_parse(sk->chain[j], sk->chain_len[j], &ci) != SG_OK ||
                sg_digest(SG_HASH_SHA256, ci.subject, ci.subject_len, h, &hlen) != SG_OK)
                continue;
            if (!subject_cn(ci.subject, ci.subject_len, label, sizeof(label)))
                snprintf(label, sizeof(label), "%s CA %zu", sk->name, j + 1);
            add_object(objs, &nobj, CKO_CERTIFICATE, i, label, h, 20);
            o = &objs[nobj - 1];
            o->is_ca = 1;
            o->der = sk->chain[j];
            o->der_len = sk->chain_len[j];
            o->cert = ci;
        }
    }

    p11_token_clear();
    t->list = list;
    t->keys = keys;
    t->nkeys = nkeys;
    t->objects = objs;
    t->nobjects = nobj;
    for (size_t i = 0; i < nobj; i++) {
        CK_RV rv = p11_handle_add(&p11.handles, P11_H_OBJECT, &objs[i], &objs[i].handle);
        if (rv != CKR_OK) {
            p11_token_clear();
            return rv;
        }
    }
    if (status) {
        snprintf(t->identity, sizeof(t->identity), "%s", status->identity);
        snprintf(t->server, sizeof(t->server), "%s", status->server);
    }
    t->loaded = 1;
    t->reachable = 1;
    t->has_session = 1;
    p11_debug("token for %s at %s: %zu keys, %zu objects", t->identity, t->server, nkeys, nobj);
    return CKR_OK;
}

CK_RV p11_token_ensure(void)
{
    p11_token *t = &p11.token;
    sg_key_list *list = NULL;
    sg_agent_status status;
    sg_status st;

    if (t->loaded)
        return CKR_OK;
    /* Known to need a login: only C_Login changes that, so do not ask again. */
    if (t->reachable && !t->has_session && t->login_needed)
        return CKR_USER_NOT_LOGGED_IN;
    st = sg_list_keys(p11.client, &list);
    if (st == SG_OK) {
        CK_RV rv;
        if (sg_status_get(p11.client, &status) != SG_OK)
            memset(&status, 0, sizeof(status));
        rv = p11_token_load(list, &status);
        /* The agent's session is the login: the application starts logged in. */
        if (rv == CKR_OK)
            p11.logged_in = 1;
        return rv;
    }
    p11_debug("key listing: %s: %s", sg_status_name(st), sg_last_error());
    t->reachable = st != SG_ERR_AGENT_UNAVAILABLE;
    t->has_session = 0;
    if (st == SG_ERR_NOT_LOGGED_IN || st == SG_ERR_AUTH_FAILED) {
        t->login_needed = 1;
        return CKR_USER_NOT_LOGGED_IN;
    }
    return t->reachable ? p11_map_status(st, P11_CTX_GENERAL) : CKR_TOKEN_NOT_PRESENT;
}
