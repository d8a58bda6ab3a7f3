/* The alerts outbox (alerts/alerts.h): every alert raised, in order, with the exact JSON body
 * webhooks receive; and the few reads the alert rules make (usual signing rate, job queue). */
#ifndef SRV_ALERT_DB_H
#define SRV_ALERT_DB_H

#include "db.h"

typedef struct {
    int64_t id; /* position in the outbox: delivery order */
    char event_id[40];
    char rule[72];
    char subject[200];
    char severity[16];
    int64_t created_at;
    int dropped;      /* the outbox was full: recorded, but no webhook gets it */
    const char *body; /* valid during the callback */
} srv_alert_row;

typedef void (*srv_alert_cb)(const srv_alert_row *row, void *ctx);

srv_status srv_db_alert_insert(srv_db *db, const srv_alert_row *row, int64_t *id, srv_error *err);
/* The first alert after after_id that webhooks get (not dropped); SRV_E_NOT_FOUND if none.
 * *body is malloc'd. */
srv_status srv_db_alert_next(srv_db *db, int64_t after_id, srv_alert_row *out, char **body,
                             srv_error *err);
/* The newest limit alerts, newest first. */
srv_status srv_db_alerts_recent(srv_db *db, long long limit, srv_alert_cb cb, void *ctx,
                                srv_error *err);
/* Alerts after after_id still waiting for delivery (dropped ones not counted). */
srv_status srv_db_alerts_pending(srv_db *db, int64_t after_id, long long *n, srv_error *err);
/* When rule last fired for subject (0: never, or long enough ago to be pruned). */
srv_status srv_db_alert_last(srv_db *db, const char *rule, const char *subject, int64_t *at,
                             srv_error *err);
/* Deletes alerts up to upto_id (delivered everywhere), and dropped ones, that are not among
 * the newest keep. */
srv_status srv_db_alerts_prune(srv_db *db, int64_t upto_id, long long keep, srv_error *err);

/* Signatures counted in usage_daily for days from_day..to_day (days since 1970 UTC) of a key
 * (by_signer 0) or a signer (by_signer 1, by user name). */
srv_status srv_db_usage_signatures(srv_db *db, int by_signer, const char *name, int64_t from_day,
                                   int64_t to_day, long long *n, srv_error *err);
/* The first audit record at or after time (RFC 3339 UTC, as records carry it), 0 if none. */
srv_status srv_db_audit_first_since(srv_db *db, const char *time, int64_t *seq, srv_error *err);
/* Signing jobs queued or running, and the creation time of the oldest (0 if none). */
srv_status srv_db_job_queue_stats(srv_db *db, long long *depth, int64_t *oldest, srv_error *err);

#endif
