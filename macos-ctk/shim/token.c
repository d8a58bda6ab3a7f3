/* The token's view of the agent: a client, the last key listing, the key behind an object id,
 * and the signature itself. The listing is refreshed when an id is not in it (a key that was
 * published after this process listed, or a rotated certificate). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgtk.h"
#include "signum/crypto.h"

struct sgtk_token {
    sg_client *client;
    pthread_mutex_t lock; /* the listing; signatures run outside it, in parallel */
    sg_key_list *list;
};

/* The token never starts an agent: a process started by the sandboxed extension (or the
 * sandboxed host app) would inherit its sandbox, and with it no network. launchd keeps the
 * agent running (packaging/com.signum.agent.plist); when it is down, the message says how to
 * start it. */
#define AGENT_HINT                                                                                 \
    "; the token does not start the agent: start it with 'launchctl kickstart "                    \
    "gui/$(id -u)/com.signum.agent' (or log out and in)"

/* why = what: the client's last error, and how to start the agent when there is none. */
static void describe(char *why, size_t why_len, const char *what, sg_status st)
{
    snprintf(why, why_len, "%s: %s%s", what, sg_last_error(),
             st == SG_ERR_AGENT_UNAVAILABLE ? AGENT_HINT : "");
}

sgtk_error sgtk_token_new(const char *socket_path, sgtk_token **out)
{
    sg_client_options opts = {socket_path, 1, "signum-ctk", 0};
    sgtk_token *t = calloc(1, sizeof(*t));
    sg_status st;

    *out = NULL;
    if (!t)
        return SGTK_E_COMMUNICATION;
    st = sg_client_new(&opts, &t->client);
    if (st != SG_OK) {
        free(t);
        return sgtk_map_status(st);
    }
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return SGTK_OK;
}

void sgtk_token_free(sgtk_token *t)
{
    if (!t)
        return;
    sg_key_list_free(t->list);
    sg_client_free(t->client);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static sg_status relist(sgtk_token *t)
{
    sg_key_list *fresh = NULL;
    sg_status st = sg_list_keys(t->client, &fresh);
    if (st != SG_OK)
        return st;
    sg_key_list_free(t->list);
    t->list = fresh;
    return SG_OK;
}

static const sg_key *find_by_cert_hash(const sg_key_list *list, const uint8_t want[32])
{
    for (size_t i = 0; list && i < list->count; i++) {
        uint8_t h[SG_MAX_DIGEST];
        size_t hlen = sizeof(h);
        const sg_key *k = &list->keys[i];
        if (k->cert && sg_digest(SG_HASH_SHA256, k->cert, k->cert_len, h, &hlen) == SG_OK &&
            memcmp(h, want, 32) == 0)
            return k;
    }
    return NULL;
}

/* The name and kind of the key behind a key object id (copied out under the lock). */
static sgtk_error resolve(sgtk_token *t, const char *id, size_t id_len, char name[65],
                          sgtk_key_kind *kind, char *why, size_t why_len)
{
    uint8_t want[32];
    sgtk_obj_kind okind;
    const sg_key *k;
    sg_status st = SG_OK;
    sgtk_error e = SGTK_OK;

    if (sgtk_object_id_parse(id, id_len, &okind, want) != SGTK_OK || okind != SGTK_OBJ_KEY) {
        snprintf(why, why_len, "not a Signum key object id");
        return SGTK_E_OBJECT_NOT_FOUND;
    }
    pthread_mutex_lock(&t->lock);
    k = find_by_cert_hash(t->list, want);
    if (!k) {
        st = relist(t);
        k = st == SG_OK ? find_by_cert_hash(t->list, want) : NULL;
    }
    if (k) {
        snprintf(name, 65, "%s", k->name);
        *kind = sgtk_key_kind_of(k->type);
    } else if (st != SG_OK) {
        describe(why, why_len, "listing keys", st);
        e = sgtk_map_status(st);
    } else {
        snprintf(why, why_len,
                 "no key of yours has this certificate any more (run signum-util keychain "
                 "--sync)");
        e = SGTK_E_OBJECT_NOT_FOUND;
    }
    pthread_mutex_unlock(&t->lock);
    return e;
}

int sgtk_supports(sgtk_token *t, const char *key_id, size_t key_id_len, sgtk_alg alg)
{
    char name[65], why[256];
    sgtk_key_kind kind;
    return resolve(t, key_id, key_id_len, name, &kind, why, sizeof(why)) == SGTK_OK &&
           sgtk_alg_fits(alg, kind);
}

sgtk_error sgtk_sign(sgtk_token *t, const char *key_id, size_t key_id_len, sgtk_alg alg,
                     const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len, char *why,
                     size_t why_len)
{
    uint8_t raw[SGTK_SIG_MAX];
    size_t raw_len = sizeof(raw);
    char name[65];
    sgtk_key_kind kind;
    sgtk_request req;
    sg_status st;
    sgtk_error e;

    e = sgtk_prepare(alg, data, len, &req, why, why_len);
    if (e != SGTK_OK)
        return e;
    e = resolve(t, key_id, key_id_len, name, &kind, why, why_len);
    if (e != SGTK_OK)
        return e;
    if (!sgtk_alg_fits(alg, kind)) {
        snprintf(why, why_len, "%s does not sign with key %s", sgtk_alg_name(alg), name);
        return SGTK_E_NOT_IMPLEMENTED;
    }
    {
        const uint8_t *digests[1] = {req.digest};
        uint8_t *sigs[1] = {raw};
        sg_sign_request r = {name, req.mech, req.hash, 0, req.mech == SG_MECH_RSA_PSS,
                             1,    digests,  NULL};
        st = sg_sign(t->client, &r, sigs, &raw_len);
    }
    if (st != SG_OK) {
        char what[96];
        snprintf(what, sizeof(what), "signing with %s", name);
        describe(why, why_len, what, st);
        return sgtk_map_status(st);
    }
    if (req.der_output) {
        st = sg_ecdsa_raw_to_der(raw, raw_len, sig, sig_len);
        if (st != SG_OK)
            snprintf(why, why_len, "encoding the ECDSA signature of %s: %s", name,
                     sg_status_name(st));
        return sgtk_map_status(st);
    }
    if (raw_len > *sig_len) {
        snprintf(why, why_len, "a %zu-byte signature does not fit %zu bytes", raw_len, *sig_len);
        return sgtk_map_status(SG_ERR_BUFFER_TOO_SMALL);
    }
    memcpy(sig, raw, raw_len);
    *sig_len = raw_len;
    return SGTK_OK;
}

sgtk_error sgtk_entry_of(sgtk_token *t, const char *name, sgtk_entry *out, char *why,
                         size_t why_len)
{
    const sg_key *k = NULL;
    sg_pubkey_info pk;
    sg_status st;
    sgtk_error e = SGTK_OK;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&t->lock);
    st = relist(t);
    if (st != SG_OK) {
        describe(why, why_len, "listing keys", st);
        e = sgtk_map_status(st);
        goto out;
    }
    for (size_t i = 0; i < t->list->count && !k; i++)
        if (!strcmp(t->list->keys[i].name, name))
            k = &t->list->keys[i];
    if (!k) {
        snprintf(why, why_len, "no key %s among the keys you may sign with", name);
        e = SGTK_E_OBJECT_NOT_FOUND;
        goto out;
    }
    if (!k->cert) {
        snprintf(why, why_len,
                 "key %s has no certificate: the keychain shows identities, and an identity "
                 "needs one",
                 name);
        e = SGTK_E_BAD_PARAMETER;
        goto out;
    }
    snprintf(out->name, sizeof(out->name), "%s", k->name);
    out->kind = sgtk_key_kind_of(k->type);
    if (sg_pubkey_parse(k->public_key, k->public_key_len, &pk) == SG_OK)
        out->bits = pk.bits;
    out->cert = k->cert;
    out->cert_len = k->cert_len;
    sgtk_object_id(SGTK_OBJ_KEY, k->cert, k->cert_len, out->key_id);
    sgtk_object_id(SGTK_OBJ_CERT, k->cert, k->cert_len, out->cert_id);
out:
    pthread_mutex_unlock(&t->lock);
    return e;
}
