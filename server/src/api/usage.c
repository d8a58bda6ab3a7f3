/* Usage, for administrators: GET /api/v1/admin/usage (signatures and denials per day, key and
 * signer, filtered), and a key's limit on its total signatures (PUT .../usage-limit). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/util.h"
#include "../store/usage_db.h"
#include "internal.h"

#define USAGE_ROWS_MAX    5000
#define USAGE_DEFAULT_DAY 30      /* days back when `from` is not given */
#define DAY_MAX           2932896 /* 9999-12-31 */

/* "YYYY-MM-DD" to days since 1970-01-01; -1 if it is not a date. */
static int64_t parse_day(const char *s)
{
    int y, m, d, n = 0;
    struct tm tm;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] || y < 1970 || m < 1 || m > 12 ||
        d < 1 || d > 31)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = 12;
    return (int64_t)timegm(&tm) / 86400;
}

static void format_day(int64_t day, char *out, size_t len)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d", &tm);
}

typedef struct {
    cJSON *rows;
    long long signatures, denials;
} usage_page;

static void add_row(const srv_usage_row *row, void *ctx)
{
    usage_page *p = ctx;
    cJSON *o = cJSON_CreateObject();
    char day[16];
    format_day(row->day, day, sizeof(day));
    cJSON_AddStringToObject(o, "day", day);
    cJSON_AddStringToObject(o, "key", row->key ? row->key : "");
    cJSON_AddStringToObject(o, "signer", row->user ? row->user : "");
    if (row->project)
        cJSON_AddStringToObject(o, "project", row->project);
    else
        cJSON_AddNullToObject(o, "project");
    cJSON_AddNumberToObject(o, "signatures", (double)row->signatures);
    cJSON_AddNumberToObject(o, "denials", (double)row->denials);
    cJSON_AddItemToArray(p->rows, o);
    p->signatures += row->signatures;
    p->denials += row->denials;
}

static srv_status query_day(const char *q, const char *name, int64_t dflt, int64_t *out,
                            srv_error *err)
{
    char buf[API_QUERY_VALUE_MAX + 1];
    const char *v = NULL;
    srv_status st = api_query_text(q, name, buf, &v, err);
    *out = dflt;
    if (st != SRV_OK || !v)
        return st;
    *out = parse_day(v);
    if (*out < 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "query parameter %s must be a date YYYY-MM-DD",
                        name);
    return SRV_OK;
}

/* The usage rows f selects (from, to and limit read from the query here), answered. */
static void usage_reply(api_call *c, srv_usage_filter *f)
{
    const char *q = c->ex->query;
    int64_t today = srv_now() / 86400;
    long long limit = 0;
    usage_page page = {NULL, 0, 0};
    cJSON *doc, *totals;
    int more = 0;
    srv_error err;

    if (query_day(q, "from", today - USAGE_DEFAULT_DAY, &f->from_day, &err) != SRV_OK ||
        query_day(q, "to", today, &f->to_day, &err) != SRV_OK ||
        api_query_int(q, "limit", 1000, 1, INT64_MAX, USAGE_ROWS_MAX, &limit, &err) != SRV_OK)
        goto fail;
    if (f->from_day > f->to_day || f->to_day > DAY_MAX) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "from must not be after to");
        goto fail;
    }
    f->limit = (long)limit;
    doc = cJSON_CreateObject();
    page.rows = cJSON_AddArrayToObject(doc, "usage");
    if (srv_db_usage_list(c->w->db, f, add_row, &page, &more, &err) != SRV_OK) {
        cJSON_Delete(doc);
        goto fail;
    }
    totals = cJSON_AddObjectToObject(doc, "totals");
    cJSON_AddNumberToObject(totals, "signatures", (double)page.signatures);
    cJSON_AddNumberToObject(totals, "denials", (double)page.denials);
    cJSON_AddBoolToObject(doc, "truncated", more);
    api_reply(c, 200, doc);
    return;
fail:
    api_reply_error(c, &err);
}

/* GET /api/v1/admin/usage?key=K&signer=S&project=P&from=YYYY-MM-DD&to=YYYY-MM-DD&limit=N:
 * global admins, or the admin of project P. */
void api_admin_usage(api_call *c)
{
    char key_buf[API_QUERY_VALUE_MAX + 1], user_buf[API_QUERY_VALUE_MAX + 1],
        project_buf[API_QUERY_VALUE_MAX + 1];
    const char *q = c->ex->query;
    srv_usage_filter f;
    srv_error err;

    memset(&f, 0, sizeof(f));
    if (api_query_text(q, "project", project_buf, &f.project, &err) != SRV_OK ||
        api_require_admin_or_project(c, f.project, &err) != SRV_OK ||
        api_query_text(q, "key", key_buf, &f.key, &err) != SRV_OK ||
        api_query_text(q, "signer", user_buf, &f.user, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    usage_reply(c, &f);
}

/* GET /api/v1/usage?key=K&from=&to=&limit=: the caller's own usage, any role. */
void api_usage_mine(api_call *c)
{
    char key_buf[API_QUERY_VALUE_MAX + 1];
    srv_usage_filter f;
    srv_error err;

    memset(&f, 0, sizeof(f));
    f.user = c->user.name;
    if (api_query_text(c->ex->query, "key", key_buf, &f.key, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    usage_reply(c, &f);
}

typedef struct {
    cJSON *arr;
    int64_t next; /* the next hour to write; hours without a row are zeros */
} hours_page;

static void add_hour_entry(cJSON *arr, int64_t hour, long long sigs, long long denials)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "start", (double)(hour * 3600));
    cJSON_AddNumberToObject(o, "signatures", (double)sigs);
    cJSON_AddNumberToObject(o, "denials", (double)denials);
    cJSON_AddItemToArray(arr, o);
}

static void add_hour(int64_t hour, long long sigs, long long denials, void *ctx)
{
    hours_page *p = ctx;
    for (; p->next < hour; p->next++)
        add_hour_entry(p->arr, p->next, 0, 0);
    add_hour_entry(p->arr, hour, sigs, denials);
    p->next = hour + 1;
}

/* GET /api/v1/admin/usage/hourly?hours=N: the server's signatures and denials per hour for the
 * last N hours (1-720, default 48), oldest first, every hour present. */
void api_admin_usage_hourly(api_call *c)
{
    long long hours = 0;
    int64_t now_hour = srv_now() / 3600;
    hours_page p;
    cJSON *doc;
    srv_error err;

    if (api_query_int(c->ex->query, "hours", 48, 1, 720, 720, &hours, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    p.arr = cJSON_AddArrayToObject(doc, "hours");
    p.next = now_hour - hours + 1;
    if (srv_db_usage_hours(c->w->db, p.next, now_hour, add_hour, &p, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    for (; p.next <= now_hour; p.next++)
        add_hour_entry(p.arr, p.next, 0, 0);
    api_reply(c, 200, doc);
}

typedef struct {
    const api_call *c;
    long long limit; /* -1: lift it */
    const char *reason;
    long long total;
} limit_job;

static srv_status run_set_limit(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    limit_job *j = ctx;
    long long old = -1;
    srv_key key;
    cJSON *detail;
    srv_status st;

    memset(&key, 0, sizeof(key));
    if ((st = srv_db_key_get(db, j->c->params[0], &key, err)) != SRV_OK)
        return st;
    if (key.is_ca)
        st = srv_fail(err, SRV_E_FORBIDDEN, "the CA key cannot be used through this call");
    if (st == SRV_OK && (st = srv_db_key_usage(db, key.id, &j->total, &old, err)) == SRV_OK)
        st = srv_db_key_set_limit(db, key.id, j->limit, err);
    if (st == SRV_OK) {
        detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "key", key.name);
        cJSON_AddStringToObject(detail, "reason", j->reason);
        if (j->limit >= 0)
            cJSON_AddNumberToObject(detail, "usage_limit", (double)j->limit);
        else
            cJSON_AddNullToObject(detail, "usage_limit");
        cJSON_AddNumberToObject(detail, "signatures_total", (double)j->total);
        st = api_audit(j->c, db, audit, "key.usage_limit", detail, err);
        cJSON_Delete(detail);
    }
    srv_key_clear(&key);
    return st;
}

/* PUT /api/v1/admin/keys/{name}/usage-limit {"limit": N or null, "reason": "..."} */
void api_admin_key_usage_limit(api_call *c)
{
    static const char *const fields[] = {"limit", "reason", NULL};
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(c->body, "limit");
    limit_job job;
    cJSON *doc;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    job.limit = -1;
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "reason", 1, 512, &job.reason, &err) != SRV_OK)
        goto fail;
    if (!*job.reason || !limit || (!cJSON_IsNull(limit) && !cJSON_IsNumber(limit))) {
        srv_fail(&err, SRV_E_INVALID_FIELD,
                 "limit (a whole number of signatures, or null to lift it) and a reason are "
                 "required");
        goto fail;
    }
    if (cJSON_IsNumber(limit) &&
        srv_json_get_int(c->body, "limit", 1, 0, 1000000000000LL, &job.limit, &err) != SRV_OK)
        goto fail;
    if (srv_writer_run(c->w->app->writer, run_set_limit, &job, &err) != SRV_OK)
        goto fail;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "key", c->params[0]);
    if (job.limit >= 0)
        cJSON_AddNumberToObject(doc, "usage_limit", (double)job.limit);
    else
        cJSON_AddNullToObject(doc, "usage_limit");
    cJSON_AddNumberToObject(doc, "signatures_total", (double)job.total);
    api_reply(c, 200, doc);
    return;
fail:
    api_reply_error(c, &err);
}
