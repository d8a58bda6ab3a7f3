/* /healthz and /healthz/ready (can a signature be made and recorded now: HSM, database, audit
 * commit, and the node is not draining), /healthz/live, /metrics (Prometheus text) and the
 * public CA certificate. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../audit/export.h"
#include "../common/util.h"
#include "../store/audit_query_db.h"
#include "internal.h"

/* Below this much free space on the database's filesystem the audit log is reported at risk:
 * a signature's record (audit row, WAL frames, index pages) needs a few pages per commit. */
#define AUDIT_MIN_FREE_BYTES (1024u * 1024u)
/* The probe's result is reused for this long: /healthz must not become a way to make the
 * server stat and write its disk as fast as requests arrive. */
#define AUDIT_PROBE_CACHE_US 1000000u

/* One server per process: the probe's cache is process-wide. */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint64_t at_us; /* 0: never probed */
    int running, ok;
    unsigned long long free_bytes;
    char detail[400];
} probe;

static srv_status probe_commit(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    char now[32];
    (void)audit;
    (void)ctx;
    snprintf(now, sizeof(now), "%lld", (long long)srv_now());
    return srv_db_meta_set(db, "health_probe", now, err);
}

/* Could the audit writer record a signature now? The latest group commit's outcome plus the
 * free space on the database's filesystem; after a failed commit, one small real commit
 * (a meta row, never an audit record) tells whether the cause is gone. Nothing is written
 * while the writer's latest commit succeeded. */
static void audit_probe(srv_app *app, int *ok, unsigned long long *free_bytes, char *detail,
                        size_t detail_len)
{
    char dir[PATH_MAX], *slash;
    struct statvfs vfs;
    srv_error err;
    uint64_t now = srv_monotonic_us();
    int pok = 1, pg = srv_is_postgresql_url(app->cfg.database);
    unsigned long long avail = 0;
    char text[400] = "";
    srv_writer_commit_state cs;

    srv_writer_last_commit(app->writer, &cs);
    pthread_mutex_lock(&probe_lock);
    /* Fresh enough, or another request is probing: the last answer stands, unless a commit
     * since then says otherwise (one failed after an "ok", one succeeded after a failure). */
    if (probe.at_us && (probe.running || (now - probe.at_us < AUDIT_PROBE_CACHE_US &&
                                          !(cs.at_us > probe.at_us && cs.ok != probe.ok)))) {
        *ok = probe.ok;
        *free_bytes = probe.free_bytes;
        snprintf(detail, detail_len, "%s", probe.detail);
        pthread_mutex_unlock(&probe_lock);
        return;
    }
    probe.running = 1;
    pthread_mutex_unlock(&probe_lock);

    snprintf(dir, sizeof(dir), "%s", app->cfg.database);
    slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (pg) {
        /* The database's disk is the PostgreSQL server's: the commit probe speaks for it. */
    } else if (statvfs(dir, &vfs) != 0) {
        pok = 0;
        snprintf(text, sizeof(text), "cannot check free space under %.200s: %s", dir,
                 strerror(errno));
    } else {
        avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
        if (avail < AUDIT_MIN_FREE_BYTES) {
            pok = 0;
            snprintf(text, sizeof(text),
                     "%llu KiB free on the database's filesystem (under %u KiB): audit records "
                     "cannot be committed",
                     avail / 1024, AUDIT_MIN_FREE_BYTES / 1024);
        }
    }
    if (pok && !cs.ok) {
        if (srv_writer_run(app->writer, probe_commit, NULL, &err) != SRV_OK) {
            pok = 0;
            snprintf(text, sizeof(text),
                     "%lu audit commits failed in a row; a probe commit "
                     "failed too: %s",
                     cs.failures, err.message);
        }
    }
    if (pok && pg)
        snprintf(text, sizeof(text), "commits succeed (PostgreSQL)");
    else if (pok)
        snprintf(text, sizeof(text), "commits succeed, %llu KiB free", avail / 1024);

    pthread_mutex_lock(&probe_lock);
    probe.running = 0;
    probe.at_us = srv_monotonic_us();
    probe.ok = pok;
    probe.free_bytes = avail;
    snprintf(probe.detail, sizeof(probe.detail), "%s", text);
    pthread_mutex_unlock(&probe_lock);
    *ok = pok;
    *free_bytes = avail;
    snprintf(detail, detail_len, "%s", text);
}

/* Each configured exporter's progress: how far behind the log its sink is, and since when it
 * last took records. Informative: an exporter outage never stops signing, so it is never one
 * of the failing components. */
static void add_exporters(api_call *c, cJSON *doc)
{
    const srv_config *cfg = &c->w->app->cfg;
    const struct {
        const char *sink, *setting;
    } sinks[] = {
        {"syslog-tcp", cfg->export_syslog_tcp},
        {"syslog-tls", cfg->export_syslog_tls},
        {"syslog-udp", cfg->export_syslog_udp},
        {"hec", cfg->export_hec_url},
    };
    cJSON *arr = cJSON_AddArrayToObject(doc, "exporters");
    for (size_t i = 0; i < sizeof(sinks) / sizeof(sinks[0]); i++) {
        int64_t delivered = 0, updated_at = 0, head = 0;
        char name[1100];
        cJSON *o;
        if (!sinks[i].setting[0] ||
            !srv_export_sink_name(sinks[i].sink, sinks[i].setting, name, sizeof(name)) ||
            srv_db_export_state(c->w->db, name, &delivered, &updated_at, &head, NULL) != SRV_OK)
            continue;
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sink", name);
        cJSON_AddStringToObject(o, "kind", sinks[i].sink);
        cJSON_AddNumberToObject(o, "delivered_seq", (double)delivered);
        cJSON_AddNumberToObject(o, "lag_records",
                                (double)(head > delivered ? head - delivered : 0));
        if (updated_at)
            cJSON_AddNumberToObject(o, "updated_at", (double)updated_at);
        else
            cJSON_AddNullToObject(o, "updated_at");
        cJSON_AddItemToArray(arr, o);
    }
}

void api_healthz(api_call *c)
{
    srv_app *app = c->w->app;
    char hsm_detail[200], audit_detail[400];
    srv_error err;
    srv_writer_commit_state cs;
    unsigned long long free_bytes = 0;
    int hsm_ok = srv_hsm_health(app->hsm, hsm_detail, sizeof(hsm_detail)) == SRV_OK;
    int db_ok = srv_db_ping(c->w->db, &err) == SRV_OK;
    int audit_ok = 0, all_ok, draining = srv_http_draining();
    cJSON *doc = cJSON_CreateObject(), *h, *d, *a, *failing;

    audit_probe(app, &audit_ok, &free_bytes, audit_detail, sizeof(audit_detail));
    srv_writer_last_commit(app->writer, &cs);
    all_ok = hsm_ok && db_ok && audit_ok && !draining;
    cJSON_AddStringToObject(doc, "status", all_ok ? "ok" : "degraded");
    /* The components a client or load balancer should look at, by name. */
    failing = cJSON_AddArrayToObject(doc, "failing");
    if (!hsm_ok)
        cJSON_AddItemToArray(failing, cJSON_CreateString("hsm"));
    if (!db_ok)
        cJSON_AddItemToArray(failing, cJSON_CreateString("database"));
    if (!audit_ok)
        cJSON_AddItemToArray(failing, cJSON_CreateString("audit"));
    /* Queued before the drain began, answered after: the node is leaving all the same. */
    if (draining)
        cJSON_AddItemToArray(failing, cJSON_CreateString("draining"));
    cJSON_AddBoolToObject(doc, "draining", draining);
    h = cJSON_AddObjectToObject(doc, "hsm");
    cJSON_AddBoolToObject(h, "ok", hsm_ok);
    cJSON_AddStringToObject(h, "detail", hsm_detail);
    cJSON_AddNumberToObject(h, "session_reopens", (double)srv_hsm_reopen_count(app->hsm));
    cJSON_AddNumberToObject(h, "reinitialisations", (double)srv_hsm_reinit_count(app->hsm));
    d = cJSON_AddObjectToObject(doc, "database");
    cJSON_AddBoolToObject(d, "ok", db_ok);
    cJSON_AddNumberToObject(d, "schema_version", srv_db_schema_version(c->w->db));
    if (!db_ok)
        cJSON_AddStringToObject(d, "detail", err.message);
    a = cJSON_AddObjectToObject(doc, "audit");
    cJSON_AddBoolToObject(a, "ok", audit_ok);
    cJSON_AddStringToObject(a, "detail", audit_detail);
    cJSON_AddBoolToObject(a, "last_commit_ok", cs.ok);
    cJSON_AddNumberToObject(a, "failed_commits_in_a_row", (double)cs.failures);
    cJSON_AddNumberToObject(a, "free_bytes", (double)free_bytes);
    add_exporters(c, doc);
    {
        cJSON *q = cJSON_AddObjectToObject(doc, "queue");
        cJSON_AddNumberToObject(q, "waiting", srv_http_queue_depth());
        cJSON_AddNumberToObject(q, "limit", srv_http_queue_limit());
    }
    api_reply(c, all_ok ? 200 : 503, doc);
}

/* Reached only when the front end does not answer it itself (an encoded path): the process
 * serves, which is all liveness says. */
void api_healthz_live(api_call *c)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "status", "ok");
    cJSON_AddBoolToObject(doc, "draining", srv_http_draining());
    api_reply(c, 200, doc);
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
                 "signum_hsm_session_reopens_total %lu\n"
                 "# TYPE signum_hsm_reinitialisations_total counter\n"
                 "signum_hsm_reinitialisations_total %lu\n"
                 "# TYPE signum_hsm_up gauge\nsignum_hsm_up %d\n%s",
                 atomic_load(&app->requests), atomic_load(&app->signatures),
                 atomic_load(&app->denials), srv_http_tls_handshakes(app->tls), commits, jobs,
                 srv_hsm_reopen_count(app->hsm), srv_hsm_reinit_count(app->hsm),
                 srv_hsm_available(app->hsm), phases ? phases : "");
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
