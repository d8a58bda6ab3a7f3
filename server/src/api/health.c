/* /healthz (HSM and database state), /metrics (Prometheus text) and the public CA certificate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "internal.h"

void api_healthz(api_call *c)
{
    srv_app *app = c->w->app;
    char hsm_detail[160];
    srv_error err;
    int hsm_ok = srv_hsm_health(app->hsm, hsm_detail, sizeof(hsm_detail)) == SRV_OK;
    int db_ok = srv_db_ping(c->w->db, &err) == SRV_OK;
    cJSON *doc = cJSON_CreateObject(), *h, *d;

    cJSON_AddStringToObject(doc, "status", hsm_ok && db_ok ? "ok" : "degraded");
    h = cJSON_AddObjectToObject(doc, "hsm");
    cJSON_AddBoolToObject(h, "ok", hsm_ok);
    cJSON_AddStringToObject(h, "detail", hsm_detail);
    cJSON_AddNumberToObject(h, "session_reopens", (double)srv_hsm_reopen_count(app->hsm));
    d = cJSON_AddObjectToObject(doc, "database");
    cJSON_AddBoolToObject(d, "ok", db_ok);
    cJSON_AddNumberToObject(d, "schema_version", srv_db_schema_version(c->w->db));
    if (!db_ok)
        cJSON_AddStringToObject(d, "detail", err.message);
    api_reply(c, hsm_ok && db_ok ? 200 : 503, doc);
}

void api_metrics(api_call *c)
{
    srv_app *app = c->w->app;
    unsigned long commits = 0, jobs = 0;
    char *text = NULL, *phases = srv_phase_metrics();
    int n;

    srv_writer_stats(app->writer, &commits, &jobs);
    n = asprintf(&text,
                 "# TYPE signum_requests_total counter\nsignum_requests_total %lu\n"
                 "# TYPE signum_signatures_total counter\nsignum_signatures_total %lu\n"
                 "# TYPE signum_denials_total counter\nsignum_denials_total %lu\n"
                 "# TYPE signum_tls_handshakes_total counter\nsignum_tls_handshakes_total %ld\n"
                 "# TYPE signum_db_commits_total counter\nsignum_db_commits_total %lu\n"
                 "# TYPE signum_db_jobs_total counter\nsignum_db_jobs_total %lu\n"
                 "# TYPE signum_hsm_session_reopens_total counter\n"
                 "signum_hsm_session_reopens_total %lu\n%s",
                 atomic_load(&app->requests), atomic_load(&app->signatures),
                 atomic_load(&app->denials), srv_http_tls_handshakes(app->tls), commits, jobs,
                 srv_hsm_reopen_count(app->hsm), phases ? phases : "");
    free(phases);
    if (n < 0) {
        srv_error err;
        srv_fail(&err, SRV_E_NOMEM, "out of memory");
        api_reply_error(c, &err);
        return;
    }
    c->ex->status = 200;
    c->ex->response = text;
    c->ex->response_len = (size_t)n;
    c->ex->response_type = "text/plain; version=0.0.4";
}

void api_ca(api_call *c)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "certificate_pem", c->w->app->ca_pem);
    api_reply(c, 200, doc);
}
