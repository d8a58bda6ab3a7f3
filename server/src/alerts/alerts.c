/* Starting and stopping the alerts (the rule engine and the webhook sender), and what the
 * admin API shows of them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/util.h"
#include "alerts_internal.h"

srv_status srv_alerts_start(const srv_config *cfg, srv_writer *writer, srv_hsm *hsm,
                            srv_alerts **out, srv_error *err)
{
    srv_alerts *a;
    pthread_condattr_t attr;
    char *text = NULL;
    size_t len = 0;
    srv_status st;

    *out = NULL;
    if (!cfg->alerts_config[0])
        return SRV_OK;
    if ((st = srv_read_file(cfg->alerts_config, ALERT_CONFIG_MAX, &text, &len, err)) != SRV_OK) {
        char prefix[PATH_MAX + 40];
        snprintf(prefix, sizeof(prefix), "cannot read alerts_config %s: ", cfg->alerts_config);
        return alert_wrap(err, prefix);
    }
    if (!(a = calloc(1, sizeof(*a)))) {
        free(text);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    st = alert_config_parse(text, len, cfg->dir, &a->cfg, err);
    free(text);
    if (st != SRV_OK) {
        char prefix[PATH_MAX + 4];
        free(a);
        snprintf(prefix, sizeof(prefix), "%s: ", cfg->alerts_config);
        return alert_wrap(err, prefix);
    }
    a->writer = writer;
    a->hsm = hsm;
    a->sending_fd = -1;
    snprintf(a->db_path, sizeof(a->db_path), "%s", cfg->database);
    if (gethostname(a->hostname, sizeof(a->hostname) - 1) != 0)
        snprintf(a->hostname, sizeof(a->hostname), "-");
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &attr);
    pthread_cond_init(&a->wake_rules, &attr);
    pthread_condattr_destroy(&attr);
    /* A receiver that goes away must not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&a->engine, NULL, alert_engine_main, a) != 0) {
        srv_alerts_stop(a);
        return srv_fail(err, SRV_E_INTERNAL, "cannot start the alert rule engine");
    }
    a->engine_started = 1;
    if (a->cfg.nwebhooks) {
        if (pthread_create(&a->sender, NULL, alert_sender_main, a) != 0) {
            srv_alerts_stop(a);
            return srv_fail(err, SRV_E_INTERNAL, "cannot start the alert webhook sender");
        }
        a->sender_started = 1;
    }
    srv_log(SRV_LOG_INFO, "alerts", "%zu alert rule(s), %zu webhook(s)", a->cfg.nrules,
            a->cfg.nwebhooks);
    *out = a;
    return SRV_OK;
}

void srv_alerts_stop(srv_alerts *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    /* A delivery in progress ends now rather than at its timeouts. */
    if (a->sending_fd >= 0)
        shutdown(a->sending_fd, SHUT_RDWR);
    pthread_cond_broadcast(&a->wake);
    pthread_cond_broadcast(&a->wake_rules);
    pthread_mutex_unlock(&a->lock);
    if (a->engine_started)
        pthread_join(a->engine, NULL);
    if (a->sender_started)
        pthread_join(a->sender, NULL);
    for (size_t i = 0; i < a->cfg.nrules; i++)
        alert_counters_free(&a->cfg.rules[i]);
    alert_config_clear(&a->cfg);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->wake_rules);
    free(a);
}

const char *srv_alerts_webhook_cursor(srv_alerts *a, size_t i)
{
    return a && i < a->cfg.nwebhooks ? a->cfg.webhooks[i].cursor : NULL;
}

static void add_time(cJSON *o, const char *name, int64_t t)
{
    char buf[32];
    if (!t) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    srv_format_time_ms(t * 1000, buf, sizeof(buf));
    cJSON_AddStringToObject(o, name, buf);
}

void srv_alerts_describe(srv_alerts *a, cJSON *doc)
{
    cJSON *rules = cJSON_AddArrayToObject(doc, "rules"),
          *hooks = cJSON_AddArrayToObject(doc, "webhooks");
    cJSON_AddBoolToObject(doc, "enabled", a != NULL);
    if (!a)
        return;
    for (size_t i = 0; i < a->cfg.nrules; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", a->cfg.rules[i].name);
        cJSON_AddStringToObject(r, "type", alert_type_name(a->cfg.rules[i].type));
        cJSON_AddStringToObject(r, "severity", a->cfg.rules[i].severity);
        cJSON_AddItemToArray(rules, r);
    }
    pthread_mutex_lock(&a->lock);
    cJSON_AddNumberToObject(doc, "raised", (double)a->raised);
    cJSON_AddNumberToObject(doc, "dropped", (double)a->dropped);
    cJSON_AddNumberToObject(doc, "outbox_max", (double)a->cfg.outbox_max);
    for (size_t i = 0; i < a->cfg.nwebhooks; i++) {
        const alert_webhook *w = &a->cfg.webhooks[i];
        cJSON *o = cJSON_CreateObject();
        /* The URL without its query: it may carry a receiver's token. */
        char url[1024];
        snprintf(url, sizeof(url), "%.*s", (int)strcspn(w->url, "?"), w->url);
        cJSON_AddStringToObject(o, "url", url);
        cJSON_AddStringToObject(o, "cursor", w->cursor);
        cJSON_AddNumberToObject(o, "delivered_id", (double)w->delivered_id);
        cJSON_AddNumberToObject(o, "delivered", (double)w->delivered);
        cJSON_AddNumberToObject(o, "attempts", (double)w->attempts);
        cJSON_AddNumberToObject(o, "failures", (double)w->failures);
        add_time(o, "last_attempt", w->last_attempt);
        add_time(o, "last_success", w->last_success);
        if (w->last_status)
            cJSON_AddNumberToObject(o, "last_status", w->last_status);
        else
            cJSON_AddNullToObject(o, "last_status");
        if (w->last_error[0])
            cJSON_AddStringToObject(o, "last_error", w->last_error);
        else
            cJSON_AddNullToObject(o, "last_error");
        cJSON_AddItemToArray(hooks, o);
    }
    pthread_mutex_unlock(&a->lock);
}
