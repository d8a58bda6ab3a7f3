/* The tamper-evident audit log: each record is canonical JSON (sorted keys, no spaces) that
 * carries the previous record's SHA-256, so editing, deleting or reordering breaks the chain. */
#ifndef SRV_AUDIT_H
#define SRV_AUDIT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../common/status.h"
#include "../store/db.h"

typedef struct {
    int64_t time_ms;     /* when the event happened; 0 means now */
    const char *actor;   /* "user:alice", "system", "anonymous" */
    const char *action;  /* "sign", "key.create", "auth.token", ... */
    const char *outcome; /* "allowed", "denied", "ok", "error" */
    cJSON *detail;       /* an object, may be NULL; not consumed */
} srv_audit_event;

typedef struct {
    int64_t seq;
    char hash[65];
} srv_audit_head;

/* Reorders every object's members by key, recursively, so printing is canonical. */
void srv_audit_canonicalize(cJSON *item);

/* Builds the canonical record text for seq/prev and its hash (lowercase hex). */
srv_status srv_audit_build(int64_t seq, const char *prev_hash, const srv_audit_event *ev,
                           char **record, char hash[65], char time_out[32], srv_error *err);

/* Appends ev after *head on db (inside the caller's transaction) and advances *head. */
srv_status srv_audit_append(srv_db *db, srv_audit_head *head, const srv_audit_event *ev,
                            srv_error *err);

typedef struct {
    int64_t records;   /* records checked */
    int64_t first_bad; /* seq of the first bad record, 0 if none */
    char reason[200];
} srv_audit_report;

/* Called for each record whose hash and link are good, in order; returns NULL to go on or
 * the reason why the record is bad (checkpoint.c checks signed checkpoints this way). */
typedef const char *(*srv_audit_record_hook)(int64_t seq, const char *hash, void *ctx);

/* Walks the whole chain; SRV_OK with first_bad == 0 means intact. */
srv_status srv_audit_verify(srv_db *db, srv_audit_report *report, srv_error *err);
srv_status srv_audit_verify_chain(srv_db *db, srv_audit_record_hook hook, void *hook_ctx,
                                  srv_audit_report *report, srv_error *err);

#endif
