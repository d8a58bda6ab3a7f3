/* Audit records: canonical JSON, SHA-256 hash chain, and verification of the whole chain. */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/util.h"

void srv_audit_canonicalize(cJSON *item)
{
    cJSON *c;
    if (!item)
        return;
    if (cJSON_IsObject(item)) {
        /* Insertion sort of the member list by key (byte order). */
        cJSON *sorted = NULL, *next;
        for (c = item->child; c; c = next) {
            cJSON **p = &sorted;
            next = c->next;
            while (*p && strcmp((*p)->string, c->string) <= 0)
                p = &(*p)->next;
            c->next = *p;
            *p = c;
        }
        /* Rebuild cJSON's prev links: each member points back, the head at the last. */
        cJSON *prev = NULL;
        item->child = sorted;
        for (c = sorted; c; c = c->next) {
            c->prev = prev;
            prev = c;
        }
        if (sorted)
            sorted->prev = prev;
    }
    for (c = item->child; c; c = c->next)
        srv_audit_canonicalize(c);
}

srv_status srv_audit_build(int64_t seq, const char *prev_hash, const srv_audit_event *ev,
                           char **record, char hash[65], char time_out[32], srv_error *err)
{
    cJSON *rec = cJSON_CreateObject(), *detail = NULL;
    uint8_t digest[SRV_SHA256_LEN];
    char *text = NULL;
    srv_status st = SRV_OK;

    *record = NULL;
    if (!rec)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    srv_format_time_ms(ev->time_ms ? ev->time_ms : srv_now_ms(), time_out, 32);
    detail = ev->detail ? cJSON_Duplicate(ev->detail, 1) : cJSON_CreateObject();
    if (!detail || !cJSON_AddStringToObject(rec, "action", ev->action) ||
        !cJSON_AddStringToObject(rec, "actor", ev->actor) ||
        !cJSON_AddItemToObject(rec, "detail", detail) ||
        !cJSON_AddStringToObject(rec, "outcome", ev->outcome) ||
        !cJSON_AddStringToObject(rec, "prev", prev_hash) ||
        !cJSON_AddNumberToObject(rec, "seq", (double)seq) ||
        !cJSON_AddStringToObject(rec, "time", time_out)) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    detail = NULL;
    srv_audit_canonicalize(rec);
    text = cJSON_PrintUnformatted(rec);
    if (!text) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    srv_sha256(text, strlen(text), digest);
    srv_hex_encode(digest, sizeof(digest), hash);
    *record = text;
out:
    cJSON_Delete(detail);
    cJSON_Delete(rec);
    return st;
}

srv_status srv_audit_append(srv_db *db, srv_audit_head *head, const srv_audit_event *ev,
                            srv_error *err)
{
    srv_audit_row row;
    char *record = NULL, hash[65];
    srv_status st;

    memset(&row, 0, sizeof(row));
    st = srv_audit_build(head->seq + 1, head->hash, ev, &record, hash, row.time, err);
    if (st != SRV_OK)
        return st;
    row.seq = head->seq + 1;
    snprintf(row.actor, sizeof(row.actor), "%s", ev->actor);
    snprintf(row.action, sizeof(row.action), "%s", ev->action);
    snprintf(row.outcome, sizeof(row.outcome), "%s", ev->outcome);
    row.record = record;
    row.hash = hash;
    st = srv_db_audit_insert(db, &row, err);
    if (st == SRV_OK) {
        head->seq = row.seq;
        memcpy(head->hash, hash, sizeof(hash));
    }
    free(record);
    return st;
}

typedef struct {
    srv_audit_report *report;
    int64_t expect_seq;
    char prev[65];
    srv_audit_record_hook hook;
    void *hook_ctx;
} verify_state;

static int verify_bad(verify_state *vs, int64_t seq, const char *why)
{
    vs->report->first_bad = seq;
    snprintf(vs->report->reason, sizeof(vs->report->reason), "%s", why);
    return 1;
}

static int field_is(const cJSON *rec, const char *name, const char *want)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(rec, name);
    return cJSON_IsString(f) && strcmp(f->valuestring, want) == 0;
}

static int verify_row(const srv_audit_row *row, void *ctx)
{
    verify_state *vs = ctx;
    uint8_t digest[SRV_SHA256_LEN];
    char hash[65];
    cJSON *rec;
    const cJSON *seq;
    int bad = 0;

    if (row->seq != vs->expect_seq)
        return verify_bad(vs, vs->expect_seq,
                          row->seq > vs->expect_seq ? "record missing (sequence gap)"
                                                    : "sequence out of order");
    srv_sha256(row->record, strlen(row->record), digest);
    srv_hex_encode(digest, sizeof(digest), hash);
    if (strcmp(hash, row->hash) != 0)
        return verify_bad(vs, row->seq, "record text does not match its hash (edited)");
    rec = cJSON_Parse(row->record);
    if (!rec)
        return verify_bad(vs, row->seq, "record is not valid JSON");
    seq = cJSON_GetObjectItemCaseSensitive(rec, "seq");
    if (!cJSON_IsNumber(seq) || (int64_t)seq->valuedouble != row->seq)
        bad = verify_bad(vs, row->seq, "record sequence number does not match its row");
    else if (!field_is(rec, "prev", vs->prev))
        bad = verify_bad(vs, row->seq, "previous-hash link broken (deleted or reordered record)");
    else if (!field_is(rec, "actor", row->actor) || !field_is(rec, "action", row->action) ||
             !field_is(rec, "outcome", row->outcome) || !field_is(rec, "time", row->time))
        bad = verify_bad(vs, row->seq, "row columns differ from the signed record (edited)");
    cJSON_Delete(rec);
    if (bad)
        return 1;
    if (vs->hook) {
        const char *why = vs->hook(row->seq, hash, vs->hook_ctx);
        if (why)
            return verify_bad(vs, row->seq, why);
    }
    memcpy(vs->prev, hash, sizeof(hash));
    vs->expect_seq++;
    vs->report->records++;
    return 0;
}

srv_status srv_audit_verify(srv_db *db, srv_audit_report *report, srv_error *err)
{
    return srv_audit_verify_chain(db, NULL, NULL, report, err);
}

srv_status srv_audit_verify_chain(srv_db *db, srv_audit_record_hook hook, void *hook_ctx,
                                  srv_audit_report *report, srv_error *err)
{
    verify_state vs;
    memset(report, 0, sizeof(*report));
    memset(&vs, 0, sizeof(vs));
    vs.hook = hook;
    vs.hook_ctx = hook_ctx;
    vs.report = report;
    vs.expect_seq = 1;
    memset(vs.prev, '0', 64);
    return srv_db_audit_iterate(db, 0, verify_row, &vs, err);
}
