/* Audit checkpoints: signing the chain head with the HSM audit key, the HSM high-water mark,
 * and full verification (chain + checkpoints + mark). */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../tsa/tsa.h"
#include "signum/common/buf.h"
#include "signum/common/rfc3339.h"

static const char zero_hash[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static void fingerprint_of(const uint8_t *spki, size_t len, char out[65])
{
    uint8_t d[SRV_SHA256_LEN];
    srv_sha256(spki, len, d);
    srv_hex_encode(d, sizeof(d), out);
}

static void signer_bind(srv_hsm *hsm, srv_audit_signer *s)
{
    s->hsm = hsm;
    s->key.type = s->row.type;
    s->key.ckaid = s->row.ckaid;
    s->key.ckaid_len = SRV_CKAID_LEN;
    s->key.spki = s->row.spki;
    s->key.spki_len = s->row.spki_len;
    fingerprint_of(s->row.spki, s->row.spki_len, s->fingerprint);
}

srv_status srv_audit_key_create(srv_hsm *hsm, srv_db *db, srv_audit_head *head,
                                srv_audit_signer *out, srv_error *err)
{
    srv_audit_event ev;
    cJSON *detail = NULL;
    srv_status st;

    memset(out, 0, sizeof(*out));
    out->row.type = SRV_KEY_EC_P256;
    if ((st = srv_random(out->row.ckaid, SRV_CKAID_LEN, err)) != SRV_OK ||
        (st = srv_hsm_generate_key(hsm, out->row.type, out->row.ckaid, SRV_CKAID_LEN,
                                   SRV_AUDIT_KEY_LABEL, &out->row.spki, &out->row.spki_len, err)) !=
            SRV_OK)
        return st;
    if ((st = srv_db_audit_key_insert(db, &out->row, err)) != SRV_OK)
        goto fail;
    signer_bind(hsm, out);
    detail = cJSON_CreateObject();
    if (!detail || !cJSON_AddStringToObject(detail, "key_type", srv_key_type_name(out->row.type)) ||
        !cJSON_AddStringToObject(detail, "spki_sha256", out->fingerprint)) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    memset(&ev, 0, sizeof(ev));
    ev.actor = "system";
    ev.action = "audit.key.create";
    ev.outcome = "ok";
    ev.detail = detail;
    if ((st = srv_audit_append(db, head, &ev, err)) != SRV_OK)
        goto fail;
    cJSON_Delete(detail);
    return SRV_OK;
fail:
    cJSON_Delete(detail);
    srv_hsm_destroy_key(hsm, out->row.ckaid, SRV_CKAID_LEN, NULL);
    srv_audit_signer_clear(out);
    return st;
}

srv_status srv_audit_signer_load(srv_hsm *hsm, srv_db *db, srv_audit_signer *out, srv_error *err)
{
    srv_status st;
    memset(out, 0, sizeof(*out));
    st = srv_db_audit_key_latest(db, &out->row, err);
    if (st == SRV_OK)
        signer_bind(hsm, out);
    return st;
}

void srv_audit_signer_clear(srv_audit_signer *s)
{
    srv_audit_key_row_clear(&s->row);
    memset(s, 0, sizeof(*s));
}

static EVP_PKEY *pkey_from_spki(const uint8_t *spki, size_t len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);
    if (pkey && p != spki + len) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

srv_status srv_audit_key_write_pem(const srv_audit_signer *s, const char *path, srv_error *err)
{
    EVP_PKEY *pkey = pkey_from_spki(s->row.spki, s->row.spki_len);
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    srv_status st;

    if (!pkey || !bio || !PEM_write_bio_PUBKEY(bio, pkey)) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot encode the audit public key");
    } else {
        BIO_get_mem_ptr(bio, &mem);
        st = srv_write_file(path, mem->data, mem->length, 0644, err);
    }
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return st;
}

static int take_last(const srv_checkpoint_row *cp, void *ctx)
{
    srv_checkpoint_state *out = ctx;
    uint8_t d[SRV_SHA256_LEN];
    out->seq = cp->seq;
    srv_sha256(cp->payload, strlen(cp->payload), d);
    srv_hex_encode(d, sizeof(d), out->payload_hash);
    return 1;
}

srv_status srv_checkpoint_last(srv_db *db, srv_checkpoint_state *out, srv_error *err)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->payload_hash, zero_hash, sizeof(zero_hash));
    return srv_db_checkpoints_iterate(db, 1, take_last, out, err);
}

srv_status srv_checkpoint_payload(int64_t seq, const char *head_hash,
                                  const srv_checkpoint_state *prev, const char *key_fingerprint,
                                  const char *reason, int64_t time_ms, char **out, srv_error *err)
{
    return srv_checkpoint_payload_tsa(seq, head_hash, prev, key_fingerprint, reason, time_ms, NULL,
                                      out, err);
}

srv_status srv_checkpoint_payload_tsa(int64_t seq, const char *head_hash,
                                      const srv_checkpoint_state *prev, const char *key_fingerprint,
                                      const char *reason, int64_t time_ms, const char *tsa_fpr,
                                      char **out, srv_error *err)
{
    cJSON *obj = cJSON_CreateObject();
    char when[32];

    *out = NULL;
    srv_format_time_ms(time_ms, when, sizeof(when));
    if (!obj || !cJSON_AddStringToObject(obj, "type", SRV_CHECKPOINT_TYPE) ||
        !cJSON_AddNumberToObject(obj, "seq", (double)seq) ||
        !cJSON_AddStringToObject(obj, "head", head_hash) ||
        !cJSON_AddNumberToObject(obj, "prev_seq", (double)prev->seq) ||
        !cJSON_AddStringToObject(obj, "prev", prev->payload_hash) ||
        !cJSON_AddStringToObject(obj, "key", key_fingerprint) ||
        !cJSON_AddStringToObject(obj, "reason", reason) ||
        !cJSON_AddStringToObject(obj, "time", when) ||
        (tsa_fpr && !cJSON_AddStringToObject(obj, "tsa", tsa_fpr))) {
        cJSON_Delete(obj);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    srv_audit_canonicalize(obj);
    *out = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return *out ? SRV_OK : srv_fail(err, SRV_E_NOMEM, "out of memory");
}

srv_status srv_checkpoint_write(srv_db *db, const srv_audit_signer *s, const srv_audit_head *head,
                                const char *reason, const srv_checkpoint_state *last,
                                srv_checkpoint_state *next, srv_error *err)
{
    uint8_t sig[SRV_MAX_SIG_LEN + 16], d[SRV_SHA256_LEN], *token = NULL;
    size_t sig_len = sizeof(sig), token_len = 0;
    char *payload = NULL;
    srv_checkpoint_row row;
    srv_status st;

    st = srv_checkpoint_payload_tsa(head->seq, head->hash, last, s->fingerprint, reason,
                                    srv_now_ms(), s->tsa ? s->tsa->cert_sha256 : NULL, &payload,
                                    err);
    if (st != SRV_OK)
        return st;
    st = srv_hsm_sign_message(s->hsm, &s->key, (const uint8_t *)payload, strlen(payload), sig,
                              &sig_len, NULL, err);
    /* The token dates the signature; its serial comes from this same transaction. */
    if (st == SRV_OK && s->tsa)
        st = srv_tsa_stamp(s->tsa, db, sig, sig_len, "checkpoint", &token, &token_len, err);
    if (st == SRV_OK) {
        memset(&row, 0, sizeof(row));
        row.seq = head->seq;
        row.key_id = s->row.id;
        row.payload = payload;
        row.signature = sig;
        row.signature_len = sig_len;
        row.tsa_token = token;
        row.tsa_token_len = token_len;
        st = srv_db_checkpoint_insert(db, &row, err);
    }
    free(token);
    if (st == SRV_OK) {
        next->seq = head->seq;
        srv_sha256(payload, strlen(payload), d);
        srv_hex_encode(d, sizeof(d), next->payload_hash);
    }
    free(payload);
    return st;
}

srv_status srv_checkpoint_mark(const srv_audit_signer *s, const srv_checkpoint_state *cp,
                               srv_error *err)
{
    char text[96];
    int n = snprintf(text, sizeof(text), "%" PRId64 " %s", cp->seq, cp->payload_hash);
    return srv_hsm_data_put(s->hsm, SRV_AUDIT_MARK_LABEL, (const uint8_t *)text, (size_t)n, err);
}

/* ---- verification ------------------------------------------------------------------------ */

static int payload_string(const cJSON *obj, const char *name, const char *want)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(f) && (!want || strcmp(f->valuestring, want) == 0);
}

static int payload_int(const cJSON *obj, const char *name, int64_t want)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(f) && (int64_t)f->valuedouble == want;
}

static const EVP_MD *md_for(EVP_PKEY *pkey)
{
    /* As srv_hsm_sign_message signs: SHA-384 for P-384, SHA-256 otherwise. */
    return EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_bits(pkey) > 256 ? EVP_sha384() : EVP_sha256();
}

const char *srv_checkpoint_check(const srv_checkpoint_row *cp, const uint8_t *spki, size_t spki_len,
                                 const srv_checkpoint_state *prev, char head_hash[65])
{
    EVP_PKEY *pkey = pkey_from_spki(spki, spki_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cJSON *obj = cJSON_Parse(cp->payload);
    const cJSON *head;
    char fpr[65], *canon = NULL;
    const char *why = NULL;

    fingerprint_of(spki, spki_len, fpr);
    if (!pkey || !md) {
        why = "checkpoint key unusable";
    } else if (EVP_DigestVerifyInit(md, NULL, md_for(pkey), NULL, pkey) != 1 ||
               EVP_DigestVerify(md, cp->signature, cp->signature_len,
                                (const unsigned char *)cp->payload, strlen(cp->payload)) != 1) {
        why = "checkpoint signature does not verify (forged or edited checkpoint)";
    } else if (!obj || !(canon = (srv_audit_canonicalize(obj), cJSON_PrintUnformatted(obj))) ||
               strcmp(canon, cp->payload) != 0 ||
               !payload_string(obj, "type", SRV_CHECKPOINT_TYPE)) {
        why = "checkpoint payload is not a canonical checkpoint";
    } else if (!payload_int(obj, "seq", cp->seq)) {
        why = "checkpoint was signed for another record (moved)";
    } else if (!payload_string(obj, "key", fpr)) {
        why = "checkpoint names another key than the one that signed it";
    } else if (!payload_int(obj, "prev_seq", prev->seq) ||
               !payload_string(obj, "prev", prev->payload_hash)) {
        why = "checkpoint does not follow the previous checkpoint (a checkpoint was deleted)";
    } else if (!(head = cJSON_GetObjectItemCaseSensitive(obj, "head")) || !cJSON_IsString(head) ||
               strlen(head->valuestring) != 64) {
        why = "checkpoint payload has no head hash";
    } else {
        memcpy(head_hash, head->valuestring, 65);
    }
    cJSON_free(canon);
    cJSON_Delete(obj);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    return why;
}

typedef struct {
    int64_t id;
    uint8_t *spki;
    size_t spki_len;
} key_entry;

typedef struct {
    int64_t seq;
    char head[65];
    char payload_hash[65];
    const char *bad; /* why this checkpoint is bad, NULL if good */
} cp_entry;

typedef struct {
    key_entry *keys;
    size_t nkeys, cap_keys;
    cp_entry *cps;
    size_t ncps, cap_cps, next; /* next: index the chain walk is at */
    srv_checkpoint_state prev;
    const srv_verify_options *opts;
    srv_verify_report *report;
    int nomem;
} verify_ctx;

static void collect_key(const srv_audit_key_row *key, void *arg)
{
    verify_ctx *v = arg;
    key_entry *k;
    void *items = v->keys;
    if (sgc_array_grow(&items, &v->cap_keys, v->nkeys + 1, sizeof(*v->keys), SIZE_MAX) != SGC_OK) {
        v->nomem = 1;
        return;
    }
    v->keys = items;
    k = &v->keys[v->nkeys];
    if (!(k->spki = malloc(key->spki_len))) {
        v->nomem = 1;
        return;
    }
    memcpy(k->spki, key->spki, key->spki_len);
    k->spki_len = key->spki_len;
    k->id = key->id;
    v->nkeys++;
}

/* Payload times are srv_format_time_ms's: YYYY-MM-DDTHH:MM:SS.mmmZ. */
static int64_t payload_time_ms(const cJSON *obj)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, "time");
    int64_t ms;
    return cJSON_IsString(f) && sgc_rfc3339_parse_ms(f->valuestring, &ms) == SGC_OK ? ms : 0;
}

/* How far a token's genTime may lie from the checkpoint's own time: the token is made in the
 * same transaction, right after the signature. */
#define TOKEN_EARLY_MS 2000
#define TOKEN_LATE_MS  60000

/* The checkpoint's timestamp token (tsa/tsa.h), over its signature. NULL if good or absent. */
static const char *check_timestamp(verify_ctx *v, const srv_checkpoint_row *cp)
{
    cJSON *obj = cJSON_Parse(cp->payload);
    const cJSON *tsa = obj ? cJSON_GetObjectItemCaseSensitive(obj, "tsa") : NULL;
    int64_t when = obj ? payload_time_ms(obj) : 0, gen = 0;
    char signer[65];
    const char *why = NULL;

    if (!cp->tsa_token) {
        if (cJSON_IsString(tsa))
            why = "checkpoint's timestamp token is missing (the signed checkpoint names a TSA; "
                  "the token was removed)";
        else
            v->report->untimestamped++;
        goto out;
    }
    if (!cJSON_IsString(tsa)) {
        why = "checkpoint carries a timestamp token its signed payload does not announce";
        goto out;
    }
    if (!v->opts || !v->opts->tsa_ca) {
        v->report->tokens_unchecked++;
        goto out;
    }
    why = srv_tsa_check_token(cp->tsa_token, cp->tsa_token_len, cp->signature, cp->signature_len,
                              v->opts->tsa_ca, &gen, signer);
    if (why)
        goto out;
    if (strcmp(signer, tsa->valuestring) != 0)
        why = "checkpoint's timestamp token is signed by another TSA certificate than the one "
              "the checkpoint names";
    else if (!when || gen < when - TOKEN_EARLY_MS || gen > when + TOKEN_LATE_MS)
        why = "checkpoint's timestamp token has a genTime inconsistent with the checkpoint's time";
    if (!why) {
        v->report->timestamped++;
        memcpy(v->report->tsa_fingerprint, signer, sizeof(signer));
    }
out:
    cJSON_Delete(obj);
    return why;
}

static int collect_checkpoint(const srv_checkpoint_row *cp, void *arg)
{
    verify_ctx *v = arg;
    const key_entry *key = NULL;
    cp_entry *e;
    uint8_t d[SRV_SHA256_LEN];
    void *items = v->cps;

    if (sgc_array_grow(&items, &v->cap_cps, v->ncps + 1, sizeof(*v->cps), SIZE_MAX) != SGC_OK) {
        v->nomem = 1;
        return 1;
    }
    v->cps = items;
    e = &v->cps[v->ncps++];
    memset(e, 0, sizeof(*e));
    e->seq = cp->seq;
    for (size_t i = 0; i < v->nkeys; i++)
        if (v->keys[i].id == cp->key_id)
            key = &v->keys[i];
    if (!key)
        e->bad = "checkpoint signed by an unknown audit key";
    else if (v->opts && v->opts->pinned_spki &&
             (key->spki_len != v->opts->pinned_spki_len ||
              memcmp(key->spki, v->opts->pinned_spki, key->spki_len) != 0))
        e->bad = "checkpoint signed by another key than the pinned audit key";
    else
        e->bad = srv_checkpoint_check(cp, key->spki, key->spki_len, &v->prev, e->head);
    if (!e->bad)
        e->bad = check_timestamp(v, cp);
    if (!e->bad) {
        v->report->checkpoints++;
        fingerprint_of(key->spki, key->spki_len, v->report->key_fingerprint);
    }
    /* Whatever this one's state, the next must follow it as stored. */
    srv_sha256(cp->payload, strlen(cp->payload), d);
    srv_hex_encode(d, sizeof(d), e->payload_hash);
    v->prev.seq = cp->seq;
    memcpy(v->prev.payload_hash, e->payload_hash, sizeof(e->payload_hash));
    return 0;
}

static const char *check_record(int64_t seq, const char *hash, void *arg)
{
    verify_ctx *v = arg;
    v->report->last_record = seq;
    while (v->next < v->ncps && v->cps[v->next].seq < seq)
        v->next++; /* seq <= 0: never matches a record; reported after the walk */
    if (v->next < v->ncps && v->cps[v->next].seq == seq) {
        const cp_entry *e = &v->cps[v->next++];
        if (e->bad)
            return e->bad;
        if (strcmp(e->head, hash) != 0)
            return "record does not match the signed checkpoint at its seq (edited and rehashed)";
        v->report->last_checkpoint = seq;
    }
    return NULL;
}

static void set_bad(srv_verify_report *r, int64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_bad(srv_verify_report *r, int64_t seq, const char *fmt, ...)
{
    va_list ap;
    r->chain.first_bad = seq;
    va_start(ap, fmt);
    vsnprintf(r->chain.reason, sizeof(r->chain.reason), fmt, ap);
    va_end(ap);
}

/* The HSM's high-water mark must name a checkpoint that is still there, unchanged. */
static srv_status check_mark(verify_ctx *v, srv_error *err)
{
    srv_verify_report *r = v->report;
    uint8_t *value = NULL;
    size_t len = 0;
    char text[128], hash[65];
    long long seq = 0;
    srv_status st = srv_hsm_data_get(v->opts->hsm, SRV_AUDIT_MARK_LABEL, &value, &len, err);

    if (st == SRV_E_NOT_FOUND)
        return SRV_OK; /* no checkpoint committed yet: mark_checked stays 0 */
    if (st != SRV_OK)
        return st;
    snprintf(text, sizeof(text), "%.*s", (int)(len < sizeof(text) ? len : sizeof(text) - 1),
             (const char *)value);
    free(value);
    if (sscanf(text, "%lld %64s", &seq, hash) != 2 || strlen(hash) != 64)
        return srv_fail(err, SRV_E_HSM, "the HSM's audit high-water mark is malformed");
    r->mark_seq = seq;
    if (seq > r->last_record) {
        set_bad(r, r->last_record + 1,
                "record missing: the HSM's high-water mark names a checkpoint at record %lld but "
                "the log ends at record %lld (tail truncated)",
                seq, (long long)r->last_record);
        return SRV_OK;
    }
    for (size_t i = 0; i < v->ncps; i++) {
        if (v->cps[i].seq != seq)
            continue;
        if (strcmp(v->cps[i].payload_hash, hash) != 0)
            set_bad(r, seq,
                    "checkpoint at record %lld differs from the one the HSM recorded (replaced)",
                    seq);
        else
            r->mark_checked = 1;
        return SRV_OK;
    }
    set_bad(r, seq,
            "checkpoint missing: the HSM's high-water mark names a checkpoint at record %lld "
            "that is not in the log (deleted)",
            seq);
    return SRV_OK;
}

srv_status srv_audit_verify_full(srv_db *db, const srv_verify_options *opts,
                                 srv_verify_report *report, srv_error *err)
{
    verify_ctx v;
    srv_status st;

    memset(report, 0, sizeof(*report));
    memset(&v, 0, sizeof(v));
    v.opts = opts;
    v.report = report;
    memcpy(v.prev.payload_hash, zero_hash, sizeof(zero_hash));
    if ((st = srv_db_audit_keys_list(db, collect_key, &v, err)) != SRV_OK)
        goto out;
    if (!v.nomem && (st = srv_db_checkpoints_iterate(db, 0, collect_checkpoint, &v, err)) != SRV_OK)
        goto out;
    if (v.nomem) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    st = srv_audit_verify_chain(db, check_record, &v, &report->chain, err);
    if (st != SRV_OK || report->chain.first_bad)
        goto out;
    report->last_record = report->chain.records;
    /* A checkpoint past the end: records it vouched for were cut off. */
    if (v.ncps && v.cps[v.ncps - 1].seq > report->last_record) {
        set_bad(report, report->last_record + 1,
                "record missing: a checkpoint covers records up to %lld but the log ends at "
                "record %lld (tail truncated)",
                (long long)v.cps[v.ncps - 1].seq, (long long)report->last_record);
        goto out;
    }
    for (size_t i = 0; i < v.ncps; i++)
        if (v.cps[i].seq <= 0) {
            set_bad(report, 1, "checkpoint with an impossible seq %lld", (long long)v.cps[i].seq);
            goto out;
        }
    report->unchecked = report->last_record - report->last_checkpoint;
    if (opts && opts->hsm)
        st = check_mark(&v, err);
out:
    for (size_t i = 0; i < v.nkeys; i++)
        free(v.keys[i].spki);
    free(v.keys);
    free(v.cps);
    return st;
}
