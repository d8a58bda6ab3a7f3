/* Searching the audit log: the records after a cursor that match every given filter, oldest
 * first. Each call examines a bounded window of records, so a filter that matches rarely
 * costs a page of work, never a scan of the whole log. */
#ifndef SRV_AUDIT_QUERY_DB_H
#define SRV_AUDIT_QUERY_DB_H

#include "db.h"

typedef struct {
    int64_t after;  /* records with seq > after */
    int64_t window; /* examine at most seq in (after, after + window] */
    long limit;     /* at most this many matches */
    /* Filters; NULL matches anything. since/until: RFC 3339 UTC text as the log writes it. */
    const char *actor, *action, *outcome, *key, *request_id, *since, *until, *project;
} srv_audit_query;

/* Calls cb for each match (cb returns non-zero to stop). *scanned_to receives the highest seq
 * the search covered, the cursor to continue from; *more whether records follow it. */
srv_status srv_db_audit_search(srv_db *db, const srv_audit_query *q, srv_audit_cb cb, void *ctx,
                               int64_t *scanned_to, int *more, srv_error *err);

/* An exporter's progress: the last seq its sink took (0 if none yet), when, and the log's
 * last seq. */
srv_status srv_db_export_state(srv_db *db, const char *sink, int64_t *delivered,
                               int64_t *updated_at, int64_t *head, srv_error *err);

#endif
