/* GET /api/v1/admin/alerts: the newest alerts from the outbox, each with its event and where
 * it was delivered, and the rules and webhooks with their delivery state (alerts/alerts.h). */
#include <stdio.h>
#include <string.h>

#include "../alerts/alerts.h"
#include "../common/util.h"
#include "../store/alert_db.h"
#include "internal.h"

typedef struct {
    cJSON *arr;
    int64_t cursors[16];
    size_t ncursors;
} list_ctx;

static void add_alert(const srv_alert_row *row, void *ctx)
{
    list_ctx *l = ctx;
    cJSON *o = cJSON_CreateObject(), *ev = row->body ? cJSON_Parse(row->body) : NULL;
    int delivered = 1;
    char when[32];
    if (!o) {
        cJSON_Delete(ev);
        return;
    }
    srv_format_time_ms(row->created_at * 1000, when, sizeof(when));
    cJSON_AddNumberToObject(o, "seq", (double)row->id);
    cJSON_AddStringToObject(o, "id", row->event_id);
    cJSON_AddStringToObject(o, "rule", row->rule);
    cJSON_AddStringToObject(o, "severity", row->severity);
    cJSON_AddStringToObject(o, "subject", row->subject);
    cJSON_AddStringToObject(o, "time", when);
    /* delivered: every webhook has taken it; dropped: the outbox was full, no webhook will. */
    for (size_t i = 0; i < l->ncursors; i++)
        if (l->cursors[i] < row->id)
            delivered = 0;
    if (row->dropped)
        cJSON_AddStringToObject(o, "delivery", "dropped");
    else if (!l->ncursors)
        cJSON_AddStringToObject(o, "delivery", "no_webhooks");
    else
        cJSON_AddStringToObject(o, "delivery", delivered ? "delivered" : "pending");
    if (ev)
        cJSON_AddItemToObject(o, "event", ev);
    cJSON_AddItemToArray(l->arr, o);
}

void api_admin_alerts(api_call *c)
{
    srv_alerts *a = c->w->app->alerts;
    long long limit = 0;
    list_ctx l;
    cJSON *doc;
    srv_error err;
    const char *cursor;

    if (api_query_int(c->ex->query, "limit", 50, 1, 1000, 1000, &limit, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    memset(&l, 0, sizeof(l));
    for (size_t i = 0; (cursor = srv_alerts_webhook_cursor(a, i)) && l.ncursors < 16; i++)
        if (srv_db_cursor_get(c->w->db, cursor, &l.cursors[l.ncursors++], &err) != SRV_OK) {
            api_reply_error(c, &err);
            return;
        }
    doc = cJSON_CreateObject();
    l.arr = cJSON_AddArrayToObject(doc, "alerts");
    if (srv_db_alerts_recent(c->w->db, limit, add_alert, &l, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    srv_alerts_describe(a, doc);
    api_reply(c, 200, doc);
}
