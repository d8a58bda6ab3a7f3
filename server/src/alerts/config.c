/* The alerts configuration file (alerts_config in signum-server.conf): a JSON document of
 * rules and webhooks, validated whole at start-up (docs/alerts.md); and the small helpers the
 * rule engine (rules.c) and the webhook sender (webhook.c) share. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../common/json.h"
#include "../common/util.h"
#include "alerts_internal.h"

srv_status alert_wrap(srv_error *err, const char *prefix)
{
    char msg[sizeof(err->message)];
    snprintf(msg, sizeof(msg), "%s", err->message);
    return srv_fail(err, SRV_E_CONFIG, "%s%s", prefix, msg);
}

/* alert_wrap with a printf prefix. */
static srv_status wrapf(srv_error *err, const char *what, const char *name, size_t i)
{
    char prefix[160];
    if (name)
        snprintf(prefix, sizeof(prefix), "%s \"%s\": ", what, name);
    else
        snprintf(prefix, sizeof(prefix), "%s[%zu]: ", what, i);
    return alert_wrap(err, prefix);
}

const char *alert_type_name(alert_type t)
{
    switch (t) {
    case ALERT_SIGN_COUNT: return "sign_count";
    case ALERT_SIGN_RATE: return "sign_rate";
    case ALERT_OUTSIDE_HOURS: return "outside_hours";
    case ALERT_DENIAL_BURST: return "denial_burst";
    case ALERT_HSM_ERROR: return "hsm_error";
    case ALERT_JOB_QUEUE: return "job_queue";
    }
    return "?";
}

int alert_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int alert_parse_url(const char *url, int *tls, char *host, size_t host_len, char *port,
                    size_t port_len, char *path, size_t path_len)
{
    const char *auth, *end, *hp_end;
    size_t n;

    if (strncasecmp(url, "https://", 8) == 0) {
        *tls = 1;
        auth = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        *tls = 0;
        auth = url + 7;
    } else {
        return 0;
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 32 || *p == 127)
            return 0;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth)))
        return 0; /* no credentials in the URL: the secret has its own file */
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(end - auth));
        if (!close || (close + 1 != end && close[1] != ':'))
            return 0;
        n = (size_t)(close - auth - 1);
        hp_end = close + 1;
    } else {
        const char *colon = memchr(auth, ':', (size_t)(end - auth));
        hp_end = colon ? colon : end;
        n = (size_t)(hp_end - auth);
        auth--; /* so that auth + 1 below is the host's first character */
    }
    if (n == 0 || n >= host_len)
        return 0;
    memcpy(host, auth + 1, n);
    host[n] = '\0';
    if (hp_end < end && *hp_end == ':') {
        size_t pn = (size_t)(end - hp_end - 1);
        long v;
        char *e;
        if (pn == 0 || pn >= port_len || pn > 5)
            return 0;
        memcpy(port, hp_end + 1, pn);
        port[pn] = '\0';
        v = strtol(port, &e, 10);
        if (*e || v < 1 || v > 65535)
            return 0;
    } else if (hp_end != end) {
        return 0;
    } else {
        snprintf(port, port_len, "%s", *tls ? "443" : "80");
    }
    if (*end == '#')
        return 0;
    n = strcspn(end, "#");
    if (end[n] || n + 2 > path_len)
        return 0;
    snprintf(path, path_len, "%s%s", *end == '/' ? "" : "/", end);
    return 1;
}

void alert_hmac_hex(const unsigned char *key, size_t key_len, const char *body, size_t len,
                    char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)body, len, mac, &mac_len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    out[64] = '\0';
}

int alert_hours_inside(const policy_rule *hours, int wday, int minute)
{
    for (size_t i = 0; i < hours->nwindows; i++) {
        const policy_window *w = &hours->windows[i];
        int prev = (wday + 6) % 7;
        if (w->start < w->end) {
            if ((w->days & (1u << wday)) && minute >= w->start && minute < w->end)
                return 1;
        } else if (((w->days & (1u << wday)) && minute >= w->start) ||
                   ((w->days & (1u << prev)) && minute < w->end)) {
            return 1; /* wraps past midnight: the day names the day the window opens */
        }
    }
    return 0;
}

/* The secret: a file only its owner can read, 16 to 1024 bytes, trailing newline dropped. */
static srv_status read_secret(const char *path, alert_webhook *w, srv_error *err)
{
    struct stat sb;
    char *text = NULL;
    size_t len = 0;
    srv_status st;
    if (stat(path, &sb) != 0)
        return srv_fail(err, SRV_E_CONFIG, "cannot read webhook secret_file %s: %s", path,
                        strerror(errno));
    if (sb.st_mode & (S_IRWXG | S_IRWXO))
        return srv_fail(err, SRV_E_CONFIG, "%s is readable by others (mode %o); chmod 600 it", path,
                        (unsigned)(sb.st_mode & 0777));
    if ((st = srv_read_file(path, 1024, &text, &len, err)) != SRV_OK)
        return st;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len < 16) {
        OPENSSL_cleanse(text, len);
        free(text);
        return srv_fail(err, SRV_E_CONFIG, "%s: a webhook secret needs at least 16 bytes", path);
    }
    w->secret = (unsigned char *)text;
    w->secret_len = len;
    return SRV_OK;
}

static srv_status parse_webhook(const cJSON *o, size_t i, const char *dir, alert_webhook *w,
                                srv_error *err)
{
    static const char *const fields[] = {"url", "secret_file", "ca_file", "insecure", NULL};
    const char *url = NULL, *secret = NULL, *ca = NULL;
    char path[PATH_MAX];
    srv_status st;
    if (!cJSON_IsObject(o))
        return srv_fail(err, SRV_E_CONFIG, "webhooks[%zu] must be an object", i);
    if ((st = srv_json_check_fields(o, fields, err)) != SRV_OK ||
        (st = srv_json_get_string(o, "url", 1, sizeof(w->url) - 1, &url, err)) != SRV_OK ||
        (st = srv_json_get_string(o, "secret_file", 1, PATH_MAX - 1, &secret, err)) != SRV_OK ||
        (st = srv_json_get_string(o, "ca_file", 0, PATH_MAX - 1, &ca, err)) != SRV_OK ||
        (st = srv_json_get_bool(o, "insecure", 0, &w->insecure, err)) != SRV_OK)
        return wrapf(err, "webhooks", NULL, i);
    snprintf(w->url, sizeof(w->url), "%s", url);
    if (!alert_parse_url(url, &w->tls, w->host, sizeof(w->host), w->port, sizeof(w->port), w->path,
                         sizeof(w->path)))
        return srv_fail(err, SRV_E_CONFIG,
                        "webhooks[%zu].url must be https://host[:port][/path] (or http://)", i);
    /* Plain HTTP would show the alerts to the network: only to this machine, or when the
     * operator says so explicitly. */
    if (!w->tls && !w->insecure && !alert_host_is_loopback(w->host))
        return srv_fail(err, SRV_E_CONFIG,
                        "webhooks[%zu]: http:// is allowed only to a loopback address; use "
                        "https:// or set \"insecure\": true",
                        i);
    if (ca && *ca && (st = srv_path_join(w->ca_file, sizeof(w->ca_file), dir, ca, err)) != SRV_OK)
        return st;
    snprintf(w->cursor, sizeof(w->cursor), "webhook:%s:%s%.*s", w->host, w->port,
             (int)strcspn(w->path, "?"), w->path);
    if ((st = srv_path_join(path, sizeof(path), dir, secret, err)) != SRV_OK)
        return st;
    return read_secret(path, w, err);
}

static srv_status parse_hours(const cJSON *o, alert_rule *r, srv_error *err)
{
    cJSON *doc = NULL, *when, *tz, *wins;
    srv_status st;
    tz = cJSON_GetObjectItemCaseSensitive(o, "time_zone");
    wins = cJSON_GetObjectItemCaseSensitive(o, "windows");
    if (!wins)
        return srv_fail(err, SRV_E_CONFIG, "rule \"%s\": outside_hours needs \"windows\"", r->name);
    /* The windows are a policy rule's "when" (server/API.md): the same syntax, parsed and
     * checked by the policy code, time zones from the same tz database. */
    doc = cJSON_Parse("{\"name\":\"alert-hours\",\"effect\":\"allow\","
                      "\"subjects\":{\"users\":[\"*\"]},\"keys\":{\"names\":[\"*\"]},"
                      "\"when\":{}}");
    when = doc ? cJSON_GetObjectItemCaseSensitive(doc, "when") : NULL;
    if (!when || (tz && !cJSON_AddItemToObject(when, "time_zone", cJSON_Duplicate(tz, 1))) ||
        !cJSON_AddItemToObject(when, "windows", cJSON_Duplicate(wins, 1))) {
        cJSON_Delete(doc);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    st = policy_rule_parse(doc, &r->hours, err);
    cJSON_Delete(doc);
    if (st != SRV_OK)
        return wrapf(err, "rule", r->name, 0);
    r->has_hours = 1;
    return SRV_OK;
}

static srv_status parse_rule(const cJSON *o, size_t i, alert_rule *r, srv_error *err)
{
    static const char *const fields[] = {"name",
                                         "type",
                                         "per",
                                         "severity",
                                         "threshold",
                                         "window_seconds",
                                         "cooldown_seconds",
                                         "factor",
                                         "min_count",
                                         "baseline_days",
                                         "time_zone",
                                         "windows",
                                         "max_depth",
                                         "max_age_seconds",
                                         NULL};
    static const char *const types[] = {"sign_count",   "sign_rate", "outside_hours",
                                        "denial_burst", "hsm_error", "job_queue"};
    const char *name = NULL, *type = NULL, *per = NULL, *sev = "warning";
    const cJSON *factor;
    srv_status st;
    size_t t;

    if (!cJSON_IsObject(o))
        return srv_fail(err, SRV_E_CONFIG, "rules[%zu] must be an object", i);
    memset(r, 0, sizeof(*r));
    if ((st = srv_json_check_fields(o, fields, err)) != SRV_OK ||
        (st = srv_json_get_string(o, "name", 1, ALERT_NAME_MAX, &name, err)) != SRV_OK ||
        (st = srv_json_get_string(o, "type", 1, 32, &type, err)) != SRV_OK ||
        (st = srv_json_get_string(o, "per", 0, 16, &per, err)) != SRV_OK ||
        (st = srv_json_get_string(o, "severity", 0, 15, &sev, err)) != SRV_OK)
        return wrapf(err, "rules", NULL, i);
    if (!*name ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            strlen(name))
        return srv_fail(err, SRV_E_CONFIG, "rules[%zu].name must be 1-%d of [A-Za-z0-9._-]", i,
                        ALERT_NAME_MAX);
    snprintf(r->name, sizeof(r->name), "%s", name);
    for (t = 0; t < sizeof(types) / sizeof(types[0]) && strcmp(type, types[t]) != 0; t++)
        ;
    if (t == sizeof(types) / sizeof(types[0]))
        return srv_fail(err, SRV_E_CONFIG,
                        "rule \"%s\": type must be sign_count, sign_rate, outside_hours, "
                        "denial_burst, hsm_error or job_queue",
                        name);
    r->type = (alert_type)t;
    if (strcmp(sev, "info") != 0 && strcmp(sev, "warning") != 0 && strcmp(sev, "high") != 0 &&
        strcmp(sev, "critical") != 0)
        return srv_fail(err, SRV_E_CONFIG,
                        "rule \"%s\": severity must be info, warning, high or critical", name);
    snprintf(r->severity, sizeof(r->severity), "%s", sev);
    /* per: key or signer for signature rules, caller or all for denials. */
    r->per = r->type == ALERT_DENIAL_BURST ? ALERT_PER_ALL : ALERT_PER_KEY;
    if (per) {
        int sig = r->type == ALERT_SIGN_COUNT || r->type == ALERT_SIGN_RATE ||
                  r->type == ALERT_OUTSIDE_HOURS;
        if (sig && strcmp(per, "key") == 0)
            r->per = ALERT_PER_KEY;
        else if (sig && strcmp(per, "signer") == 0)
            r->per = ALERT_PER_SIGNER;
        else if (r->type == ALERT_DENIAL_BURST && strcmp(per, "caller") == 0)
            r->per = ALERT_PER_SIGNER;
        else if (r->type == ALERT_DENIAL_BURST && strcmp(per, "all") == 0)
            r->per = ALERT_PER_ALL;
        else
            return srv_fail(err, SRV_E_CONFIG,
                            "rule \"%s\": per must be key or signer (signature rules), caller or "
                            "all (denial_burst), and is not taken by the others",
                            name);
    }
    r->window = 600;
    r->cooldown = 3600;
    r->baseline_days = 7;
    r->min_count = 10;
    r->factor = 5;
    if ((st = srv_json_get_int(o, "threshold",
                               r->type == ALERT_SIGN_COUNT || r->type == ALERT_DENIAL_BURST, 1,
                               100000000, &r->threshold, err)) != SRV_OK ||
        (st = srv_json_get_int(o, "window_seconds", 0, 1, 7 * 86400, &r->window, err)) != SRV_OK ||
        (st = srv_json_get_int(o, "cooldown_seconds", 0, 0, 30 * 86400, &r->cooldown, err)) !=
            SRV_OK ||
        (st = srv_json_get_int(o, "min_count", 0, 1, 100000000, &r->min_count, err)) != SRV_OK ||
        (st = srv_json_get_int(o, "baseline_days", 0, 1, 90, &r->baseline_days, err)) != SRV_OK ||
        (st = srv_json_get_int(o, "max_depth", 0, 1, 100000000, &r->max_depth, err)) != SRV_OK ||
        (st = srv_json_get_int(o, "max_age_seconds", 0, 1, 30 * 86400, &r->max_age, err)) != SRV_OK)
        return wrapf(err, "rule", name, 0);
    factor = cJSON_GetObjectItemCaseSensitive(o, "factor");
    if (factor && (!cJSON_IsNumber(factor) || factor->valuedouble < 1 || factor->valuedouble > 1e6))
        return srv_fail(err, SRV_E_CONFIG, "rule \"%s\": factor must be a number in [1, 1000000]",
                        name);
    if (factor)
        r->factor = factor->valuedouble;
    if (r->type == ALERT_JOB_QUEUE && !r->max_depth && !r->max_age)
        return srv_fail(err, SRV_E_CONFIG,
                        "rule \"%s\": job_queue needs max_depth, max_age_seconds or both", name);
    if (r->type == ALERT_OUTSIDE_HOURS)
        return parse_hours(o, r, err);
    if (cJSON_GetObjectItemCaseSensitive(o, "windows") ||
        cJSON_GetObjectItemCaseSensitive(o, "time_zone"))
        return srv_fail(err, SRV_E_CONFIG,
                        "rule \"%s\": windows and time_zone are for "
                        "outside_hours rules only",
                        name);
    return SRV_OK;
}

srv_status alert_config_parse(const char *text, size_t len, const char *dir, alert_config *out,
                              srv_error *err)
{
    static const char *const fields[] = {"rules",           "webhooks", "check_interval_seconds",
                                         "outbox_max",      "keep",     "backoff_max_seconds",
                                         "timeout_seconds", NULL};
    cJSON *doc = NULL;
    const cJSON *rules, *hooks, *o;
    long long v;
    srv_status st;
    size_t i = 0;

    memset(out, 0, sizeof(*out));
    out->check_interval = 10;
    out->outbox_max = 10000;
    out->keep = 1000;
    out->backoff_max = 300;
    out->timeout = 10;
    if ((st = srv_json_parse_object(text, len, ALERT_CONFIG_MAX, &doc, err)) != SRV_OK)
        return alert_wrap(err, "");
    if ((st = srv_json_check_fields(doc, fields, err)) != SRV_OK)
        goto bad;
#define GET_INT(name, field, lo, hi)                                                               \
    v = (long long)out->field;                                                                     \
    if ((st = srv_json_get_int(doc, name, 0, lo, hi, &v, err)) != SRV_OK)                          \
        goto bad;                                                                                  \
    out->field = (__typeof__(out->field))v;
    GET_INT("check_interval_seconds", check_interval, 1, 3600)
    GET_INT("outbox_max", outbox_max, 1, 10000000)
    GET_INT("keep", keep, 1, 1000000)
    GET_INT("backoff_max_seconds", backoff_max, 1, 3600)
    GET_INT("timeout_seconds", timeout, 1, 120)
#undef GET_INT
    rules = cJSON_GetObjectItemCaseSensitive(doc, "rules");
    if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) < 1 ||
        cJSON_GetArraySize(rules) > ALERT_RULES_MAX) {
        st = srv_fail(err, SRV_E_CONFIG, "\"rules\" must be an array of 1-%d rules",
                      ALERT_RULES_MAX);
        goto bad;
    }
    cJSON_ArrayForEach(o, rules)
    {
        if ((st = parse_rule(o, i, &out->rules[i], err)) != SRV_OK)
            goto out;
        out->nrules = ++i;
        for (size_t j = 0; j + 1 < i; j++)
            if (strcmp(out->rules[j].name, out->rules[i - 1].name) == 0) {
                st = srv_fail(err, SRV_E_CONFIG, "two rules are named \"%s\"", out->rules[j].name);
                goto out;
            }
    }
    hooks = cJSON_GetObjectItemCaseSensitive(doc, "webhooks");
    if (hooks && (!cJSON_IsArray(hooks) || cJSON_GetArraySize(hooks) > ALERT_WEBHOOKS_MAX)) {
        st = srv_fail(err, SRV_E_CONFIG, "\"webhooks\" must be an array of at most %d",
                      ALERT_WEBHOOKS_MAX);
        goto bad;
    }
    i = 0;
    cJSON_ArrayForEach(o, hooks)
    {
        if ((st = parse_webhook(o, i, dir, &out->webhooks[i], err)) != SRV_OK) {
            out->nwebhooks = i + 1; /* so that its secret, if read, is wiped */
            goto out;
        }
        out->nwebhooks = ++i;
        for (size_t j = 0; j + 1 < i; j++)
            if (strcmp(out->webhooks[j].cursor, out->webhooks[i - 1].cursor) == 0) {
                st = srv_fail(err, SRV_E_CONFIG, "two webhooks share %s", out->webhooks[j].url);
                goto out;
            }
    }
    goto out;
bad:
    st = alert_wrap(err, "");
out:
    cJSON_Delete(doc);
    if (st != SRV_OK)
        alert_config_clear(out);
    return st;
}

void alert_config_clear(alert_config *c)
{
    for (size_t i = 0; i < c->nrules; i++)
        if (c->rules[i].has_hours) {
            policy_rule_clear(&c->rules[i].hours);
            c->rules[i].has_hours = 0;
        }
    for (size_t i = 0; i < c->nwebhooks; i++)
        if (c->webhooks[i].secret) {
            OPENSSL_cleanse(c->webhooks[i].secret, c->webhooks[i].secret_len);
            free(c->webhooks[i].secret);
            c->webhooks[i].secret = NULL;
        }
    c->nrules = c->nwebhooks = 0;
}

/* Shared by the engine (rules.c) and the sender (webhook.c). */
int alert_pause(srv_alerts *a, pthread_cond_t *cond, unsigned ms)
{
    uint64_t until = srv_monotonic_us() + (uint64_t)ms * 1000u, now;
    int stopping;
    pthread_mutex_lock(&a->lock);
    while (!a->stopping && (now = srv_monotonic_us()) < until)
        srv_cond_wait_us(cond, &a->lock, until - now);
    stopping = a->stopping;
    pthread_mutex_unlock(&a->lock);
    return stopping;
}
