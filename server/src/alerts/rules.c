/* The rule engine: one thread that reads the audit log after its cursor (committed records
 * only, with its own read connection, never on a request's path), counts signatures and
 * denials in sliding windows, checks the HSM and the job queue every check_interval seconds,
 * and commits what fired through the writer: an outbox row and an "alert" audit record in one
 * transaction, with the engine's cursor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../store/alert_db.h"
#include "alerts_internal.h"
#include "signum/common/rfc3339.h"

#define ENGINE_CURSOR   "alerts:engine"
#define BUCKETS         60   /* a window is counted in 60 buckets: exact to 1/60 of it */
#define SUBJECTS_MAX    1024 /* per rule; the least recently seen is forgotten beyond */
#define READ_BATCH      500
#define ALERTS_PER_TX   64
#define IDLE_MS         200
#define CURSOR_EVERY_US 5000000u /* the cursor is stored at least this often while records flow */
#define USUAL_TTL_S     600      /* a subject's usual rate is read again after this */

typedef struct {
    char subject[200];
    int64_t idx[BUCKETS];
    long long count[BUCKETS];
    int64_t last_ms;
    int64_t quiet_until; /* cool-down: no alert before this (seconds) */
    double usual;        /* sign_rate: signatures per hour over the baseline days */
    int64_t usual_at;
} subject_slot;

struct alert_counters {
    subject_slot *slots;
    size_t n;
};

typedef struct {
    const alert_rule *rule;
    subject_slot *slot;  /* its cool-down is lifted again if the alert cannot be stored */
    int64_t quiet_until; /* set by commit_fn when the database's cool-down holds it back */
    char subject[200];
    int64_t time_ms;
    cJSON *details; /* owned */
} fired;

typedef struct {
    srv_alerts *a;
    fired alerts[ALERTS_PER_TX];
    size_t n;
    int64_t upto_seq; /* engine cursor to store with them (0: none) */
    int64_t newest_id;
    int skipped; /* another node had evaluated these records already */
    int replay;  /* rebuilding the windows at start-up: count, raise nothing */
    int64_t replay_upto;
} commit_job;

void alert_counters_free(alert_rule *r)
{
    if (r->counters)
        free(r->counters->slots);
    free(r->counters);
    r->counters = NULL;
}

/* ---- counting -------------------------------------------------------------------------- */

static subject_slot *slot_for(alert_rule *r, const char *subject, int64_t t_ms)
{
    struct alert_counters *c = r->counters;
    subject_slot *s, *oldest = NULL;
    for (size_t i = 0; i < c->n; i++) {
        s = &c->slots[i];
        if (strcmp(s->subject, subject) == 0)
            return s;
        if (!oldest || s->last_ms < oldest->last_ms)
            oldest = s;
    }
    s = c->n < SUBJECTS_MAX ? &c->slots[c->n++] : oldest;
    memset(s, 0, sizeof(*s));
    snprintf(s->subject, sizeof(s->subject), "%s", subject);
    s->last_ms = t_ms;
    return s;
}

static int64_t bucket_ms(const alert_rule *r)
{
    int64_t ms = (r->window * 1000 + BUCKETS - 1) / BUCKETS;
    return ms > 0 ? ms : 1;
}

/* Adds n at t_ms and returns the count in the window ending at t_ms. */
static long long slot_add(const alert_rule *r, subject_slot *s, int64_t t_ms, long long n)
{
    int64_t idx = t_ms / bucket_ms(r);
    long long sum = 0;
    int b = (int)(idx % BUCKETS);
    if (s->idx[b] != idx && s->idx[b] < idx) {
        s->idx[b] = idx;
        s->count[b] = 0;
    }
    if (s->idx[b] == idx)
        s->count[b] += n;
    if (t_ms > s->last_ms)
        s->last_ms = t_ms;
    for (int i = 0; i < BUCKETS; i++)
        if (s->idx[i] > idx - BUCKETS && s->idx[i] <= idx)
            sum += s->count[i];
    return sum;
}

/* "2026-12-02T11:17:46.123Z" -> ms since the epoch; 0 if unreadable. */
static int64_t parse_ms(const char *iso)
{
    int64_t ms;
    return sgc_rfc3339_parse_ms(iso, &ms) == SGC_OK ? ms : 0;
}

/* Queues an alert unless the rule's cool-down for subject runs (record time t_ms). */
static void fire(commit_job *j, alert_rule *r, subject_slot *s, int64_t t_ms, cJSON *details)
{
    fired *f;
    if (s && t_ms / 1000 < s->quiet_until) {
        cJSON_Delete(details);
        return;
    }
    if (s)
        s->quiet_until = t_ms / 1000 + r->cooldown;
    if (j->replay) { /* it fired before the restart (the outbox has it): only the cool-down */
        cJSON_Delete(details);
        return;
    }
    if (j->n == ALERTS_PER_TX) {
        srv_log(SRV_LOG_WARN, "alerts",
                "rule %s: more than %d alerts at once; this one is only "
                "logged",
                r->name, ALERTS_PER_TX);
        cJSON_Delete(details);
        return;
    }
    f = &j->alerts[j->n++];
    f->rule = r;
    f->slot = s;
    snprintf(f->subject, sizeof(f->subject), "%s", s ? s->subject : r->name);
    f->time_ms = t_ms;
    f->details = details;
}

static cJSON *window_details(const alert_rule *r, const char *what, const char *who, long long n)
{
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return NULL;
    if (who)
        cJSON_AddStringToObject(d, what, who);
    cJSON_AddNumberToObject(d, "count", (double)n);
    cJSON_AddNumberToObject(d, "window_seconds", (double)r->window);
    return d;
}

/* The usual hourly rate of a key or signer: its signatures over the last baseline_days whole
 * days (usage_daily) per hour. */
static double usual_rate(srv_db *db, const alert_rule *r, subject_slot *s, const char *name)
{
    int64_t today = srv_now() / 86400;
    long long n = 0;
    srv_error err;
    if (s->usual_at && srv_now() - s->usual_at < USUAL_TTL_S)
        return s->usual;
    if (srv_db_usage_signatures(db, r->per == ALERT_PER_SIGNER, name, today - r->baseline_days,
                                today - 1, &n, &err) != SRV_OK)
        srv_log(SRV_LOG_WARN, "alerts", "rule %s: cannot read the usual rate of %s: %s", r->name,
                name, err.message);
    s->usual = (double)n / (double)(r->baseline_days * 24);
    s->usual_at = srv_now();
    return s->usual;
}

static void eval_sign(commit_job *j, srv_db *db, alert_rule *r, const char *key, const char *actor,
                      int64_t seq, int64_t t_ms, long long n)
{
    const char *who = r->per == ALERT_PER_SIGNER ? actor : key;
    const char *what = r->per == ALERT_PER_SIGNER ? "signer" : "key";
    char subject[200];
    subject_slot *s;
    long long count;
    snprintf(subject, sizeof(subject), "%s:%s", what, who);
    s = slot_for(r, subject, t_ms);
    if (r->type == ALERT_OUTSIDE_HOURS) {
        struct tm tm;
        cJSON *d;
        char local[32];
        if (!policy_localtime(r->hours.time_zone, t_ms / 1000, &tm) ||
            alert_hours_inside(&r->hours, tm.tm_wday, tm.tm_hour * 60 + tm.tm_min))
            return;
        strftime(local, sizeof(local), "%a %H:%M", &tm);
        if (!(d = cJSON_CreateObject()))
            return;
        cJSON_AddStringToObject(d, "key", key);
        cJSON_AddStringToObject(d, "signer", actor);
        cJSON_AddNumberToObject(d, "seq", (double)seq);
        cJSON_AddStringToObject(d, "time_zone", r->hours.time_zone[0] ? r->hours.time_zone : "UTC");
        cJSON_AddStringToObject(d, "local_time", local);
        fire(j, r, s, t_ms, d);
        return;
    }
    count = slot_add(r, s, t_ms, n);
    if (r->type == ALERT_SIGN_COUNT && count > r->threshold) {
        cJSON *d = window_details(r, what, who, count);
        if (d) {
            cJSON_AddNumberToObject(d, "threshold", (double)r->threshold);
            cJSON_AddNumberToObject(d, "seq", (double)seq);
        }
        fire(j, r, s, t_ms, d);
    } else if (r->type == ALERT_SIGN_RATE && count >= r->min_count) {
        const char *name = who;
        double usual, limit;
        if (r->per == ALERT_PER_SIGNER && strchr(name, ':'))
            name = strchr(name, ':') + 1; /* "user:alice" counts as alice in usage_daily */
        usual = usual_rate(db, r, s, name);
        limit = r->factor * usual * (double)r->window / 3600.0;
        if ((double)count > limit) {
            cJSON *d = window_details(r, what, who, count);
            if (d) {
                cJSON_AddNumberToObject(d, "usual_per_hour", usual);
                cJSON_AddNumberToObject(d, "factor", r->factor);
                cJSON_AddNumberToObject(d, "limit", limit);
                cJSON_AddNumberToObject(d, "baseline_days", (double)r->baseline_days);
                cJSON_AddNumberToObject(d, "seq", (double)seq);
            }
            fire(j, r, s, t_ms, d);
        }
    }
}

static void eval_denial(commit_job *j, alert_rule *r, const char *caller, const char *action,
                        int64_t seq, int64_t t_ms, long long n)
{
    char subject[200];
    subject_slot *s;
    long long count;
    snprintf(subject, sizeof(subject), "%s", r->per == ALERT_PER_ALL ? "denials:all" : caller);
    s = slot_for(r, subject, t_ms);
    count = slot_add(r, s, t_ms, n);
    if (count > r->threshold) {
        cJSON *d = window_details(r, "caller", r->per == ALERT_PER_ALL ? NULL : caller, count);
        if (d) {
            cJSON_AddNumberToObject(d, "threshold", (double)r->threshold);
            cJSON_AddStringToObject(d, "last_action", action);
            cJSON_AddNumberToObject(d, "seq", (double)seq);
        }
        fire(j, r, s, t_ms, d);
    }
}

static const char *text_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long number_of(const cJSON *o, const char *name, long long dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 1 ? (long long)v->valuedouble : dflt;
}

typedef struct {
    commit_job *job;
    srv_db *db;
    int64_t last_seq;
    size_t n;
} read_state;

static int eval_record(const srv_audit_row *row, void *ctx)
{
    read_state *rs = ctx;
    srv_alerts *a = rs->job->a;
    cJSON *rec, *detail;
    int64_t t_ms;
    if (rs->job->replay && row->seq > rs->job->replay_upto)
        return 1; /* the normal reading takes it from here */
    rec = cJSON_Parse(row->record);
    t_ms = parse_ms(row->time);
    rs->last_seq = row->seq;
    rs->n++;
    if (!rec)
        return rs->n >= READ_BATCH || rs->job->n == ALERTS_PER_TX;
    detail = cJSON_GetObjectItemCaseSensitive(rec, "detail");
    if (strcmp(row->action, "alert") != 0) {
        int sign = strcmp(row->action, "sign") == 0 && strcmp(row->outcome, "allowed") == 0;
        int denied = strcmp(row->outcome, "denied") == 0;
        const char *key = text_of(detail, "key");
        for (size_t i = 0; i < a->cfg.nrules; i++) {
            alert_rule *r = &a->cfg.rules[i];
            if (sign && key &&
                (r->type == ALERT_SIGN_COUNT || r->type == ALERT_SIGN_RATE ||
                 r->type == ALERT_OUTSIDE_HOURS))
                eval_sign(rs->job, rs->db, r, key, row->actor, row->seq, t_ms,
                          number_of(detail, "signatures", 1));
            else if (denied && r->type == ALERT_DENIAL_BURST) {
                /* Aggregated denials of unauthenticated requests count as many as they hold;
                 * their caller is the peer address. */
                int agg = strcmp(row->action, "audit.denials") == 0;
                const char *peer = text_of(detail, "peer");
                char caller[200];
                /* A signed-in caller is its actor; an anonymous one, its address. */
                if (strcmp(row->actor, "anonymous") != 0)
                    peer = NULL;
                snprintf(caller, sizeof(caller), "%s%s%s", row->actor, peer ? "@" : "",
                         peer ? peer : "");
                eval_denial(rs->job, r, caller, agg ? text_of(detail, "action") : row->action,
                            row->seq, t_ms, agg ? number_of(detail, "count", 1) : 1);
            }
        }
    }
    cJSON_Delete(rec);
    return rs->n >= READ_BATCH || rs->job->n == ALERTS_PER_TX;
}

/* ---- health ------------------------------------------------------------------------------ */

static void check_health(commit_job *j, srv_db *db)
{
    srv_alerts *a = j->a;
    int64_t now_ms = srv_now_ms();
    for (size_t i = 0; i < a->cfg.nrules; i++) {
        alert_rule *r = &a->cfg.rules[i];
        subject_slot *s;
        cJSON *d;
        if (r->type == ALERT_HSM_ERROR) {
            char detail[200] = "";
            srv_status st = srv_hsm_health(a->hsm, detail, sizeof(detail));
            if (st == SRV_OK || !(d = cJSON_CreateObject()))
                continue;
            cJSON_AddStringToObject(d, "code", srv_status_code(st));
            cJSON_AddStringToObject(d, "detail", detail);
            s = slot_for(r, "hsm", now_ms);
            fire(j, r, s, now_ms, d);
        } else if (r->type == ALERT_JOB_QUEUE) {
            long long depth = 0;
            int64_t oldest = 0, age;
            srv_error err;
            if (srv_db_job_queue_stats(db, &depth, &oldest, &err) != SRV_OK) {
                srv_log(SRV_LOG_WARN, "alerts", "rule %s: %s", r->name, err.message);
                continue;
            }
            age = oldest ? now_ms / 1000 - oldest : 0;
            if (!((r->max_depth && depth > r->max_depth) || (r->max_age && age > r->max_age)) ||
                !(d = cJSON_CreateObject()))
                continue;
            cJSON_AddNumberToObject(d, "depth", (double)depth);
            cJSON_AddNumberToObject(d, "oldest_age_seconds", (double)age);
            if (r->max_depth)
                cJSON_AddNumberToObject(d, "max_depth", (double)r->max_depth);
            if (r->max_age)
                cJSON_AddNumberToObject(d, "max_age_seconds", (double)r->max_age);
            s = slot_for(r, "jobs", now_ms);
            fire(j, r, s, now_ms, d);
        }
    }
}

/* ---- committing ------------------------------------------------------------------------- */

static cJSON *make_event(srv_alerts *a, const char *id, const char *rule, const char *kind,
                         const char *severity, const char *subject, int64_t time_ms, cJSON *details)
{
    cJSON *ev = cJSON_CreateObject();
    char when[32];
    srv_format_time_ms(time_ms, when, sizeof(when));
    if (!ev || !cJSON_AddStringToObject(ev, "id", id) ||
        !cJSON_AddStringToObject(ev, "type", "signum.alert") ||
        !cJSON_AddStringToObject(ev, "rule", rule) || !cJSON_AddStringToObject(ev, "kind", kind) ||
        !cJSON_AddStringToObject(ev, "severity", severity) ||
        !cJSON_AddStringToObject(ev, "subject", subject) ||
        !cJSON_AddStringToObject(ev, "time", when) ||
        !cJSON_AddStringToObject(ev, "host", a->hostname) ||
        !cJSON_AddItemToObject(ev, "details", details ? details : cJSON_CreateObject())) {
        cJSON_Delete(ev);
        return NULL;
    }
    return ev;
}

/* One alert: the outbox row (its body is what webhooks get, byte for byte) and the audit
 * record, in the caller's transaction. */
static srv_status store_alert(srv_db *db, srv_audit_head *audit, srv_alerts *a, const char *rule,
                              const char *kind, const char *severity, const char *subject,
                              int64_t time_ms, cJSON *details, int dropped, int64_t *id,
                              srv_error *err)
{
    uint8_t rnd[16];
    char event_id[33];
    srv_alert_row row;
    cJSON *ev;
    char *body = NULL;
    srv_status st;

    if ((st = srv_random(rnd, sizeof(rnd), err)) != SRV_OK) {
        cJSON_Delete(details);
        return st;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(event_id + 2 * i, 3, "%02x", rnd[i]);
    if (!(ev = make_event(a, event_id, rule, kind, severity, subject, time_ms, details)) ||
        !(body = cJSON_PrintUnformatted(ev))) {
        cJSON_Delete(ev);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    memset(&row, 0, sizeof(row));
    snprintf(row.event_id, sizeof(row.event_id), "%s", event_id);
    snprintf(row.rule, sizeof(row.rule), "%s", rule);
    snprintf(row.subject, sizeof(row.subject), "%s", subject);
    snprintf(row.severity, sizeof(row.severity), "%s", severity);
    row.created_at = time_ms / 1000;
    row.dropped = dropped;
    row.body = body;
    st = srv_db_alert_insert(db, &row, id, err);
    if (st == SRV_OK) {
        srv_audit_event rec = {0, "system", "alert", "alert", ev};
        if (dropped)
            cJSON_AddTrueToObject(ev, "webhook_dropped");
        st = srv_audit_append(db, audit, &rec, err);
    }
    cJSON_free(body);
    cJSON_Delete(ev);
    return st;
}

/* The smallest webhook cursor: alerts after it are still undelivered somewhere. */
static srv_status min_cursor(srv_db *db, srv_alerts *a, int64_t *out, srv_error *err)
{
    *out = INT64_MAX;
    for (size_t i = 0; i < a->cfg.nwebhooks; i++) {
        int64_t c = 0;
        srv_status st = srv_db_cursor_get(db, a->cfg.webhooks[i].cursor, &c, err);
        if (st != SRV_OK)
            return st;
        if (c < *out)
            *out = c;
    }
    if (*out == INT64_MAX)
        *out = 0;
    return SRV_OK;
}

static srv_status commit_fn(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    commit_job *j = ctx;
    srv_alerts *a = j->a;
    int64_t done = 0, low = 0, id = 0, now = srv_now();
    long long pending = 0;
    srv_status st;

    /* Another node (one shared PostgreSQL database) may have evaluated these records. */
    if (j->upto_seq) {
        if ((st = srv_db_cursor_get(db, ENGINE_CURSOR, &done, err)) != SRV_OK)
            return st;
        if (done >= j->upto_seq) {
            j->skipped = 1;
            return SRV_OK;
        }
    }
    if (j->n && a->cfg.nwebhooks &&
        ((st = min_cursor(db, a, &low, err)) != SRV_OK ||
         (st = srv_db_alerts_pending(db, low, &pending, err)) != SRV_OK))
        return st;
    for (size_t i = 0; i < j->n; i++) {
        fired *f = &j->alerts[i];
        int64_t last = 0;
        int dropped;
        /* The cool-down, again from the database: it holds across restarts and nodes. */
        if ((st = srv_db_alert_last(db, f->rule->name, f->subject, &last, err)) != SRV_OK)
            return st;
        if (last && now < last + f->rule->cooldown) {
            f->quiet_until = last + f->rule->cooldown;
            continue;
        }
        dropped = a->cfg.nwebhooks && pending >= a->cfg.outbox_max;
        if (dropped) {
            pthread_mutex_lock(&a->lock);
            int first = a->dropped++ == 0 || pending == a->cfg.outbox_max;
            pthread_mutex_unlock(&a->lock);
            /* The first alert the full outbox turns away raises one alert of its own, kept
             * past the cap: the receivers learn that alerts are missing (they are still in
             * the audit log and the exporters' streams). */
            if (first) {
                cJSON *d = cJSON_CreateObject();
                if (d) {
                    cJSON_AddNumberToObject(d, "outbox_max", (double)a->cfg.outbox_max);
                    cJSON_AddNumberToObject(d, "pending", (double)pending);
                    cJSON_AddStringToObject(d, "first_dropped_rule", f->rule->name);
                }
                if ((st = store_alert(db, audit, a, "alerts.dropped", "outbox_full", "critical",
                                      "outbox", now * 1000, d, 0, &id, err)) != SRV_OK)
                    return st;
                pending++;
            }
        }
        st = store_alert(db, audit, a, f->rule->name, alert_type_name(f->rule->type),
                         f->rule->severity, f->subject, f->time_ms, f->details, dropped, &id, err);
        f->details = NULL;
        if (st != SRV_OK)
            return st;
        pending += !dropped;
        if (id > j->newest_id)
            j->newest_id = id;
    }
    if (j->upto_seq && (st = srv_db_cursor_set(db, ENGINE_CURSOR, j->upto_seq, err)) != SRV_OK)
        return st;
    /* Delivered everywhere and older than the newest `keep`: gone. */
    if (j->n && (a->cfg.nwebhooks || id) &&
        (st = srv_db_alerts_prune(db, a->cfg.nwebhooks ? low : INT64_MAX, a->cfg.keep, err)) !=
            SRV_OK)
        return st;
    return SRV_OK;
}

static void jobs_clear(commit_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        cJSON_Delete(j->alerts[i].details);
        j->alerts[i].details = NULL;
        j->alerts[i].quiet_until = 0;
    }
    j->n = 0;
    j->upto_seq = 0;
    j->newest_id = 0;
    j->skipped = 0;
}

/* Commits what fired (and the cursor); on failure the records are read again later. */
static int commit(srv_alerts *a, commit_job *j)
{
    srv_error err;
    size_t n = j->n;
    srv_status st = srv_writer_run(a->writer, commit_fn, j, &err);
    if (st != SRV_OK) {
        srv_log(SRV_LOG_ERROR, "alerts", "cannot record %zu alert(s): %s", n, err.message);
        for (size_t i = 0; i < n; i++)
            if (j->alerts[i].slot)
                j->alerts[i].slot->quiet_until = 0;
        jobs_clear(j);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (j->alerts[i].quiet_until && j->alerts[i].slot) {
            j->alerts[i].slot->quiet_until = j->alerts[i].quiet_until; /* no retry each check */
            n--;
        }
    if (n)
        srv_log(SRV_LOG_INFO, "alerts", "%zu alert(s) raised", n);
    pthread_mutex_lock(&a->lock);
    a->raised += n;
    if (j->newest_id > a->newest_id)
        a->newest_id = j->newest_id;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    jobs_clear(j);
    return 1;
}

/* After a restart the windows are empty: the records of the longest window before the
 * cursor are counted again, raising nothing (what fired then is in the outbox; the cool-downs
 * come back with the counts). */
static void replay(srv_alerts *a, commit_job *job, srv_db *db, int64_t cursor)
{
    int64_t longest = 0, from = 0, now_ms = srv_now_ms();
    char since[32];
    srv_error err;
    for (size_t i = 0; i < a->cfg.nrules; i++)
        if (a->cfg.rules[i].type != ALERT_HSM_ERROR && a->cfg.rules[i].type != ALERT_JOB_QUEUE &&
            a->cfg.rules[i].window > longest)
            longest = a->cfg.rules[i].window;
    if (!longest || cursor <= 0)
        return;
    srv_format_time_ms(now_ms - longest * 1000, since, sizeof(since));
    if (srv_db_audit_first_since(db, since, &from, &err) != SRV_OK) {
        srv_log(SRV_LOG_WARN, "alerts", "cannot read the records to replay: %s", err.message);
        return;
    }
    if (!from || from > cursor)
        return;
    job->replay = 1;
    job->replay_upto = cursor;
    for (int64_t at = from - 1; at < cursor;) {
        read_state rs = {job, db, at, 0};
        if (srv_db_audit_iterate(db, at, eval_record, &rs, &err) != SRV_OK || rs.last_seq == at)
            break;
        at = rs.last_seq;
    }
    job->replay = 0;
    jobs_clear(job);
    srv_log(SRV_LOG_INFO, "alerts", "windows rebuilt from audit records %lld to %lld",
            (long long)from, (long long)cursor);
}

void *alert_engine_main(void *arg)
{
    srv_alerts *a = arg;
    commit_job *job = calloc(1, sizeof(*job));
    srv_db *db = NULL;
    int64_t cursor = 0, stored = 0;
    uint64_t next_check = 0, stored_at = srv_monotonic_us();
    char head_hash[65];
    srv_error err;

    for (size_t i = 0; i < a->cfg.nrules && job; i++)
        if (!(a->cfg.rules[i].counters = calloc(1, sizeof(struct alert_counters))) ||
            !(a->cfg.rules[i].counters->slots = calloc(SUBJECTS_MAX, sizeof(subject_slot)))) {
            free(job); /* the counters are freed at stop */
            job = NULL;
        }
    if (!job) {
        srv_log(SRV_LOG_ERROR, "alerts", "out of memory: no alert rules are evaluated");
        return NULL;
    }
    while (srv_db_open(a->db_path, 0, &db, &err) != SRV_OK ||
           srv_db_cursor_get(db, ENGINE_CURSOR, &cursor, &err) != SRV_OK ||
           (cursor == 0 && srv_db_audit_head(db, &cursor, head_hash, &err) != SRV_OK)) {
        srv_log(SRV_LOG_ERROR, "alerts", "cannot read the audit log: %s", err.message);
        srv_db_close(db);
        db = NULL;
        if (alert_pause(a, &a->wake_rules, 5000))
            goto out;
    }
    job->a = a;
    stored = cursor;
    replay(a, job, db, cursor);
    srv_log(SRV_LOG_INFO, "alerts", "evaluating %zu rule(s) on audit records after %lld",
            a->cfg.nrules, (long long)cursor);
    for (;;) {
        read_state rs = {job, db, cursor, 0};
        uint64_t now = srv_monotonic_us();
        pthread_mutex_lock(&a->lock);
        int stopping = a->stopping;
        pthread_mutex_unlock(&a->lock);
        if (stopping)
            break;
        if (srv_db_audit_iterate(db, cursor, eval_record, &rs, &err) != SRV_OK) {
            srv_log(SRV_LOG_WARN, "alerts", "reading the audit log: %s", err.message);
            jobs_clear(job);
            if (alert_pause(a, &a->wake_rules, 1000))
                break;
            continue;
        }
        if (job->n || (rs.last_seq > stored && now - stored_at >= CURSOR_EVERY_US)) {
            int had_alerts = job->n > 0;
            job->upto_seq = rs.last_seq;
            if (commit(a, job)) {
                stored = rs.last_seq;
                stored_at = now;
            } else if (had_alerts) {
                /* Read these records again (their counts go in twice: an alert is not lost,
                 * at worst it comes early). */
                if (alert_pause(a, &a->wake_rules, 1000))
                    break;
                continue;
            }
        }
        cursor = rs.last_seq;
        if (now >= next_check) {
            check_health(job, db);
            if (job->n)
                commit(a, job);
            next_check = now + (uint64_t)a->cfg.check_interval * 1000000u;
        }
        if (rs.n == 0 && alert_pause(a, &a->wake_rules, IDLE_MS))
            break;
    }
    /* Where evaluation stopped, so that a restart does not count these records twice. */
    if (cursor > stored) {
        job->upto_seq = cursor;
        commit(a, job);
    }
out:
    jobs_clear(job);
    free(job);
    srv_db_close(db);
    return NULL;
}
