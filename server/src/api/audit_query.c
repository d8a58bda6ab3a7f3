/* GET /api/v1/admin/audit: the audit log, filtered by actor, action, outcome, key, request id
 * and time range, a page at a time behind a cursor. Each page examines a bounded window of
 * records, so an admin's query never costs a scan of the whole log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../store/audit_query_db.h"
#include "internal.h"

/* Largest `after`: next_after must stay an integer a JSON number carries exactly (2^53 - 1). */
#define AUDIT_AFTER_MAX 9007199254740991LL
#define AUDIT_WINDOW    50000 /* records one page examines at most */
#define QUERY_VALUE_MAX 160   /* a filter value, decoded */

/* The raw value of query parameter `name`, or NULL; *len receives its length. A parameter
 * given twice is ambiguous and refused. */
static srv_status query_raw(const char *query, const char *name, const char **out, size_t *len,
                            srv_error *err)
{
    size_t n = strlen(name);
    const char *p = query;
    *out = NULL;
    while (p && *p) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            if (*out)
                return srv_fail(err, SRV_E_INVALID_FIELD, "query parameter %s is given twice",
                                name);
            *out = p + n + 1;
            *len = strcspn(*out, "&");
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return SRV_OK;
}

/* A query parameter as plain decimal digits: dflt when absent, values over clamp_max lowered
 * to it; anything else (sign, junk, empty, out of [min, max]) is invalid_field naming it. */
static srv_status query_int(const char *query, const char *name, long long dflt, long long min,
                            long long max, long long clamp_max, long long *out, srv_error *err)
{
    const char *v;
    size_t len = 0, digits;
    unsigned long long x = 0;
    srv_status st = query_raw(query, name, &v, &len, err);

    *out = dflt;
    if (st != SRV_OK || !v)
        return st;
    digits = strspn(v, "0123456789");
    /* At most 19 digits: below 10^19, so x never wraps. */
    for (size_t i = 0; i < digits && i < 19; i++)
        x = x * 10 + (unsigned long long)(v[i] - '0');
    if (digits == 0 || digits != len || digits > 19 || x > (unsigned long long)max ||
        (long long)x < min)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "query parameter %s must be an integer from %lld to %lld", name, min, max);
    *out = (long long)x > clamp_max ? clamp_max : (long long)x;
    return SRV_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A text filter, percent-decoded ('+' is a space) into out: at most QUERY_VALUE_MAX bytes of
 * UTF-8 without control characters. */
static srv_status query_text(const char *query, const char *name, char *out, const char **value,
                             srv_error *err)
{
    const char *v;
    size_t len = 0, n = 0;
    srv_status st = query_raw(query, name, &v, &len, err);

    *value = NULL;
    if (st != SRV_OK || !v)
        return st;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)v[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(v[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(v[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return srv_fail(err, SRV_E_INVALID_FIELD,
                                "query parameter %s has a broken %%-escape", name);
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (n == QUERY_VALUE_MAX || c < 0x20 || c == 0x7f)
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "query parameter %s must be 1-%d bytes without control characters",
                            name, QUERY_VALUE_MAX);
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (n == 0 || !srv_utf8_valid(out, n))
        return srv_fail(err, SRV_E_INVALID_FIELD, "query parameter %s must be 1-%d bytes of UTF-8",
                        name, QUERY_VALUE_MAX);
    *value = out;
    return SRV_OK;
}

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
    static const char *const text_filters[] = {"actor", "action",     "outcome",
                                               "key",   "request_id", NULL};
    char values[5][QUERY_VALUE_MAX + 1], since_text[40], until_text[40];
    const char *filters[5];
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
    if (query_int(q, "after", 0, 0, AUDIT_AFTER_MAX, AUDIT_AFTER_MAX, &after, &err) != SRV_OK ||
        query_int(q, "limit", 100, 1, INT64_MAX, 1000, &limit, &err) != SRV_OK ||
        query_int(q, "since", -1, 0, 253402300799LL, 253402300799LL, &since, &err) != SRV_OK ||
        query_int(q, "until", -1, 0, 253402300799LL, 253402300799LL, &until, &err) != SRV_OK)
        goto fail;
    for (int i = 0; text_filters[i]; i++)
        if (query_text(q, text_filters[i], values[i], &filters[i], &err) != SRV_OK)
            goto fail;
    query.after = after;
    query.window = AUDIT_WINDOW;
    query.limit = (long)limit;
    query.actor = filters[0];
    query.action = filters[1];
    query.outcome = filters[2];
    query.key = filters[3];
    query.request_id = filters[4];
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
