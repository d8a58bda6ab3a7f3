/* GET /api/v1/admin/audit: the audit log, filtered by actor, action, outcome, key, project,
 * request id and time range, a page at a time behind a cursor. Each page examines a bounded window
 * of records, so an admin's query never costs a scan of the whole log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../store/audit_query_db.h"
#include "internal.h"

/* Largest `after`: next_after must stay an integer a JSON number carries exactly (2^53 - 1). */
#define AUDIT_AFTER_MAX 9007199254740991LL
#define AUDIT_WINDOW    50000 /* records one page examines at most */

typedef struct {
    cJSON *arr;
} audit_page;

static int add_record(const srv_audit_row *row, void *ctx)
{
    audit_page *p = ctx;
    cJSON *rec = cJSON_Parse(row->record);
    if (rec) {
        cJSON_AddStringToObject(rec, "hash", row->hash);
        cJSON_AddItemToArray(p->arr, rec);
    }
    return 0;
}

static void add_integer(cJSON *doc, const char *name, long long v)
{
    /* Printed as an integer: cJSON would print a number past INT_MAX as a float. */
    char num[24];
    snprintf(num, sizeof(num), "%lld", v);
    cJSON_AddRawToObject(doc, name, num);
}

void api_admin_audit(api_call *c)
{
    static const char *const text_filters[] = {"actor",      "action",  "outcome", "key",
                                               "request_id", "project", NULL};
    char values[6][API_QUERY_VALUE_MAX + 1], since_text[40], until_text[40];
    const char *filters[6];
    long long after = 0, limit = 0, since = -1, until = -1;
    const char *q = c->ex->query;
    srv_audit_query query;
    int64_t scanned_to = 0;
    int more = 0;
    audit_page page;
    cJSON *doc;
    srv_error err;

    memset(&query, 0, sizeof(query));
    /* A larger limit is lowered to 1000 (the documented page cap), never refused. */
    if (api_query_int(q, "after", 0, 0, AUDIT_AFTER_MAX, AUDIT_AFTER_MAX, &after, &err) != SRV_OK ||
        api_query_int(q, "limit", 100, 1, INT64_MAX, 1000, &limit, &err) != SRV_OK ||
        api_query_int(q, "since", -1, 0, 253402300799LL, 253402300799LL, &since, &err) != SRV_OK ||
        api_query_int(q, "until", -1, 0, 253402300799LL, 253402300799LL, &until, &err) != SRV_OK)
        goto fail;
    for (int i = 0; text_filters[i]; i++)
        if (api_query_text(q, text_filters[i], values[i], &filters[i], &err) != SRV_OK)
            goto fail;
    /* A project admin reads the records of their project's keys only. */
    if (api_require_admin_or_project(c, filters[5], &err) != SRV_OK)
        goto fail;
    query.after = after;
    query.window = AUDIT_WINDOW;
    query.limit = (long)limit;
    query.actor = filters[0];
    query.action = filters[1];
    query.outcome = filters[2];
    query.key = filters[3];
    query.request_id = filters[4];
    query.project = filters[5];
    if (since >= 0) {
        srv_format_time_ms(since * 1000, since_text, sizeof(since_text));
        query.since = since_text;
    }
    if (until >= 0) {
        srv_format_time_ms(until * 1000, until_text, sizeof(until_text));
        query.until = until_text;
    }
    doc = cJSON_CreateObject();
    page.arr = cJSON_AddArrayToObject(doc, "records");
    if (srv_db_audit_search(c->w->db, &query, add_record, &page, &scanned_to, &more, &err) !=
        SRV_OK) {
        cJSON_Delete(doc);
        goto fail;
    }
    cJSON_AddBoolToObject(doc, "more", more);
    add_integer(doc, "next_after", scanned_to);
    api_reply(c, 200, doc);
    return;
fail:
    api_reply_error(c, &err);
}
