/* Usage, counted cheaply: per day, key and signer, one row updated per request (signatures
 * and denials), and each key's running total against its optional limit. */
#ifndef SRV_USAGE_DB_H
#define SRV_USAGE_DB_H

#include "db.h"

/* Adds to the counters of the UTC day of now for (key, user), and of its hour for the whole
 * server (the dashboard's chart). */
srv_status srv_db_usage_record(srv_db *db, int64_t now, int64_t key_id, int64_t user_id,
                               long long signatures, long long denials, srv_error *err);
/* The server's signatures and denials per hour for from_hour <= hour <= to_hour (hours since
 * 1970 UTC), hours without any left out. */
typedef void (*srv_usage_hour_cb)(int64_t hour, long long signatures, long long denials, void *ctx);
srv_status srv_db_usage_hours(srv_db *db, int64_t from_hour, int64_t to_hour, srv_usage_hour_cb cb,
                              void *ctx, srv_error *err);
/* Adds n to the key's total unless that passes its limit: SRV_E_KEY_USAGE_LIMIT then, with
 * nothing changed. */
srv_status srv_db_key_total_add(srv_db *db, int64_t key_id, long long n, srv_error *err);
/* The key's total and limit (-1: none). */
srv_status srv_db_key_usage(srv_db *db, int64_t key_id, long long *total, long long *limit,
                            srv_error *err);
/* Sets (limit >= 0) or lifts (limit < 0) the key's limit on its total signatures. */
srv_status srv_db_key_set_limit(srv_db *db, int64_t key_id, long long limit, srv_error *err);

typedef struct {
    int64_t day;
    const char *key, *user; /* names, valid during the callback */
    const char *project;    /* the key's project now, NULL if none */
    long long signatures, denials;
} srv_usage_row;
typedef void (*srv_usage_cb)(const srv_usage_row *row, void *ctx);
/* What a usage listing selects: NULL matches anything. A project's usage is that of the keys
 * it holds now. */
typedef struct {
    int64_t from_day, to_day; /* from_day <= day <= to_day */
    const char *key, *user, *project;
    long limit;
} srv_usage_filter;
/* Rows matching f, by day, key and user; at most f->limit rows (*more set when there were
 * more). */
srv_status srv_db_usage_list(srv_db *db, const srv_usage_filter *f, srv_usage_cb cb, void *ctx,
                             int *more, srv_error *err);

#endif
