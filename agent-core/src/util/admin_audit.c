/* signum-util admin audit|usage|alerts: the audit log through GET /api/v1/admin/audit,
 * filtered by actor, action, outcome, key, request id and time, page by page behind the
 * server's cursor; usage per day, key and signer through GET /api/v1/admin/usage; the newest
 * alerts and their webhooks' delivery through GET /api/v1/admin/alerts. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "util.h"

#define PAGES_MAX 1000 /* --all follows at most this many pages */

/* Appends "&name=value" to q, value percent-encoded; 0 if q would overflow. */
static int add_param(char *q, size_t cap, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(q);
    int w = snprintf(q + n, cap - n, "%s%s=", n ? "&" : "", name);
    if (w < 0 || (size_t)w >= cap - n)
        return 0;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (n + 4 > cap)
            return 0;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            q[n++] = (char)*p;
        } else {
            q[n++] = '%';
            q[n++] = hex[*p >> 4];
            q[n++] = hex[*p & 15];
        }
    }
    q[n] = '\0';
    return 1;
}

static void print_records(const cJSON *doc)
{
    const cJSON *e;
    printf("%-7s %-24s %-24s %-22s %-8s %s\n", "SEQ", "TIME", "ACTOR", "ACTION", "OUTCOME",
           "KEY / CODE");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "records"))
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "detail");
        const char *what = adm_str(d, "key") ? adm_str(d, "key") : adm_str(d, "code");
        char b1[24];
        printf("%-7s %-24s %-24s %-22s %-8s %s\n", adm_text(e, "seq", b1, sizeof(b1)),
               adm_str(e, "time") ? adm_str(e, "time") : "-",
               adm_str(e, "actor") ? adm_str(e, "actor") : "-",
               adm_str(e, "action") ? adm_str(e, "action") : "-",
               adm_str(e, "outcome") ? adm_str(e, "outcome") : "-", what ? what : "-");
    }
}

static const char audit_usage[] =
    "Usage: signum-util admin audit [--actor A] [--action A] [--outcome O] [--key K]\n"
    "         [--project P] [--request-id R] [--since T] [--until T] [--after SEQ] [--limit N]\n"
    "         [--all] [--json]\n"
    "The audit log, oldest first. T is RFC 3339 or unix seconds; A is e.g. user:alice or\n"
    "service:ci. One page (--limit, at most 1000) from --after on; --all follows the cursor\n"
    "to the end.\n";

int util_cmd_admin_audit(int argc, char **argv, int json)
{
    static const char *const opts[] = {"actor",      "action",  "outcome", "key",
                                       "request-id", "since",   "until",   "after",
                                       "limit",      "project", NULL};
    static const char *const params[] = {"actor", "action", "outcome", "key",   "request_id",
                                         "since", "until",  "after",   "limit", "project"};
    const char *v[10], *pos[1];
    char query[1400] = "", path[1500], next[32] = "";
    int npos = 0, all = 0, rc = EXIT_OK, n = 0;

    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--all")) {
            all = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
            argc--;
            i--;
        } else if (!strcmp(argv[i], "--help")) {
            fputs(audit_usage, stdout);
            return EXIT_OK;
        }
    if ((rc = adm_parse("admin audit", argc - 1, argv + 1, opts, v, pos, 0, &npos)) != EXIT_OK) {
        fputs(audit_usage, stderr);
        return rc;
    }
    for (int i = 0; i < 10; i++) {
        char num[32];
        const char *value = v[i];
        if (!value || (i == 7 && all))
            continue;
        if (i == 5 || i == 6) {
            long long t = adm_parse_time(value);
            if (t < 0) {
                fprintf(stderr, "signum-util admin audit: --%s takes RFC 3339 or unix seconds\n",
                        opts[i]);
                return EXIT_USAGE;
            }
            snprintf(num, sizeof(num), "%lld", t);
            value = num;
        }
        if (!add_param(query, sizeof(query), params[i], value)) {
            fprintf(stderr, "signum-util admin audit: the filters are too long\n");
            return EXIT_USAGE;
        }
    }
    snprintf(next, sizeof(next), "%s", all ? "0" : "");
    do {
        char *raw = NULL;
        cJSON *doc = NULL;
        long status = 0;
        const cJSON *more, *after;
        snprintf(path, sizeof(path), "/api/v1/admin/audit%s%s%s%s", query[0] || next[0] ? "?" : "",
                 query, query[0] && next[0] ? "&" : "", next[0] ? "after=" : "");
        if (next[0])
            strncat(path, next, sizeof(path) - strlen(path) - 1);
        rc = adm_api("admin audit", "GET", path, NULL, &status, &raw, &doc);
        if (rc != EXIT_OK)
            return rc;
        if (json)
            printf("%s\n", raw);
        else
            print_records(doc);
        more = cJSON_GetObjectItemCaseSensitive(doc, "more");
        after = cJSON_GetObjectItemCaseSensitive(doc, "next_after");
        if (cJSON_IsNumber(after))
            snprintf(next, sizeof(next), "%.0f", after->valuedouble);
        if (!all && cJSON_IsTrue(more) && !json)
            printf("(more: --after %s, or --all)\n", next);
        all = all && cJSON_IsTrue(more) && ++n < PAGES_MAX;
        cJSON_Delete(doc);
        sg_api_answer_free(raw);
    } while (all);
    return EXIT_OK;
}

static void print_usage(const cJSON *doc)
{
    const cJSON *e, *t = cJSON_GetObjectItemCaseSensitive(doc, "totals");
    char b1[24], b2[24];
    printf("%-10s %-28s %-24s %10s %8s\n", "DAY", "KEY", "SIGNER", "SIGNATURES", "DENIALS");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "usage"))
    {
        printf("%-10s %-28s %-24s %10s %8s\n", adm_str(e, "day"), adm_str(e, "key"),
               adm_str(e, "signer"), adm_text(e, "signatures", b1, sizeof(b1)),
               adm_text(e, "denials", b2, sizeof(b2)));
    }
    printf("%-64s %10s %8s\n", "total", adm_text(t, "signatures", b1, sizeof(b1)),
           adm_text(t, "denials", b2, sizeof(b2)));
}

static const char usage_usage[] =
    "Usage: signum-util admin usage [--key K] [--signer S] [--project P] [--from YYYY-MM-DD]\n"
    "         [--to YYYY-MM-DD] [--json]\n"
    "Signatures and denials per day, key and signer (default: the last 30 days). A project's\n"
    "admin reads its usage with --project.\n";

int util_cmd_admin_usage(int argc, char **argv, int json)
{
    static const char *const opts[] = {"key", "signer", "from", "to", "project", NULL};
    const char *v[5], *pos[1];
    char query[800] = "", path[900];
    int npos = 0, rc;

    if (argc > 1 && !strcmp(argv[1], "--help")) {
        fputs(usage_usage, stdout);
        return EXIT_OK;
    }
    if ((rc = adm_parse("admin usage", argc - 1, argv + 1, opts, v, pos, 0, &npos)) != EXIT_OK) {
        fputs(usage_usage, stderr);
        return rc;
    }
    for (int i = 0; i < 5; i++)
        if (v[i] && !add_param(query, sizeof(query), opts[i], v[i])) {
            fprintf(stderr, "signum-util admin usage: the filters are too long\n");
            return EXIT_USAGE;
        }
    snprintf(path, sizeof(path), "/api/v1/admin/usage%s%s", query[0] ? "?" : "", query);
    return adm_run("admin usage", "GET", path, NULL, json, print_usage);
}

static void print_alerts(const cJSON *doc)
{
    const cJSON *e;
    char b1[24], b2[24], b3[24];
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "enabled"))) {
        printf("No alert rules are configured (alerts_config in signum-server.conf).\n");
        return;
    }
    printf("%-6s %-24s %-20s %-8s %-28s %s\n", "SEQ", "TIME", "RULE", "SEVERITY", "SUBJECT",
           "DELIVERY");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "alerts"))
    {
        printf("%-6s %-24s %-20s %-8s %-28s %s\n", adm_text(e, "seq", b1, sizeof(b1)),
               adm_str(e, "time") ? adm_str(e, "time") : "-",
               adm_str(e, "rule") ? adm_str(e, "rule") : "-",
               adm_str(e, "severity") ? adm_str(e, "severity") : "-",
               adm_str(e, "subject") ? adm_str(e, "subject") : "-",
               adm_str(e, "delivery") ? adm_str(e, "delivery") : "-");
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "webhooks"))
    {
        printf("webhook %s: delivered up to %s, %s failed attempt(s)%s%s\n",
               adm_str(e, "url") ? adm_str(e, "url") : "-",
               adm_text(e, "delivered_id", b2, sizeof(b2)), adm_text(e, "failures", b3, sizeof(b3)),
               adm_str(e, "last_error") ? ": " : "",
               adm_str(e, "last_error") ? adm_str(e, "last_error") : "");
    }
}

static const char alerts_usage[] = "Usage: signum-util admin alerts [--limit N] [--json]\n"
                                   "The newest alerts (default 50, at most 1000), newest first, "
                                   "and how far each\nwebhook has delivered them.\n";

int util_cmd_admin_alerts(int argc, char **argv, int json)
{
    static const char *const opts[] = {"limit", NULL};
    const char *v[1], *pos[1];
    char query[64] = "", path[128];
    int npos = 0, rc;

    if (argc > 1 && !strcmp(argv[1], "--help")) {
        fputs(alerts_usage, stdout);
        return EXIT_OK;
    }
    if ((rc = adm_parse("admin alerts", argc - 1, argv + 1, opts, v, pos, 0, &npos)) != EXIT_OK) {
        fputs(alerts_usage, stderr);
        return rc;
    }
    if (v[0] && !add_param(query, sizeof(query), "limit", v[0])) {
        fprintf(stderr, "signum-util admin alerts: --limit is too long\n");
        return EXIT_USAGE;
    }
    /* The agent passes admin/alerts with a query only ("?" in its allow-list). */
    snprintf(path, sizeof(path), "/api/v1/admin/alerts?%s", query[0] ? query : "limit=50");
    return adm_run("admin alerts", "GET", path, NULL, json, print_alerts);
}
