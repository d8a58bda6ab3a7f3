/* What the alert files share: the parsed configuration (config.c), the rule engine
 * (rules.c) and the webhook sender (webhook.c). */
#ifndef SRV_ALERTS_INTERNAL_H
#define SRV_ALERTS_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../policy/policy.h"
#include "alerts.h"

#define ALERT_NAME_MAX     64
#define ALERT_RULES_MAX    64
#define ALERT_WEBHOOKS_MAX 8
#define ALERT_CONFIG_MAX   (256 * 1024)

typedef enum {
    ALERT_SIGN_COUNT,    /* signatures per key/signer over threshold in window */
    ALERT_SIGN_RATE,     /* ... over factor x the usual hourly rate */
    ALERT_OUTSIDE_HOURS, /* a signature outside the configured windows */
    ALERT_DENIAL_BURST,  /* denials (all, or per caller) over threshold in window */
    ALERT_HSM_ERROR,     /* the HSM health check fails */
    ALERT_JOB_QUEUE      /* open signing jobs over max_depth, or the oldest over max_age */
} alert_type;

typedef enum { ALERT_PER_KEY, ALERT_PER_SIGNER, ALERT_PER_ALL } alert_per;

struct alert_counters; /* rules.c */

typedef struct {
    char name[ALERT_NAME_MAX + 1];
    alert_type type;
    alert_per per;
    char severity[16]; /* info, warning, high, critical */
    long long threshold, window, cooldown, min_count, baseline_days;
    double factor;
    long long max_depth, max_age; /* job_queue; 0: not checked */
    policy_rule hours;            /* outside_hours: time_zone and windows, parsed by policy.c */
    int has_hours;
    struct alert_counters *counters; /* rules.c, engine thread only */
} alert_rule;

typedef struct {
    char url[1024];
    char cursor[600]; /* export_cursors key: "webhook:HOST:PORT/PATH" (no query: it may hold a
                         token) */
    char host[256], port[8], path[1024];
    int tls, insecure;
    char ca_file[PATH_MAX];
    unsigned char *secret;
    size_t secret_len;
    /* Delivery state: the sender writes it, the admin API reads it, under the alerts lock. */
    int64_t delivered_id;
    unsigned long delivered, attempts;
    unsigned failures; /* consecutive */
    int64_t last_attempt, last_success;
    int last_status; /* HTTP status of the last attempt, 0 if none came */
    char last_error[200];
} alert_webhook;

typedef struct {
    alert_rule rules[ALERT_RULES_MAX];
    size_t nrules;
    alert_webhook webhooks[ALERT_WEBHOOKS_MAX];
    size_t nwebhooks;
    unsigned check_interval; /* seconds between health checks */
    long long outbox_max;    /* undelivered alerts kept for webhooks */
    long long keep;          /* delivered alerts kept for the admin API */
    unsigned backoff_max;    /* seconds */
    unsigned timeout;        /* seconds: connect, and each read/write of a delivery */
} alert_config;

/* Parses an alerts configuration document; relative paths resolve against dir. Reads the
 * webhook secrets (files of mode 0600). */
srv_status alert_config_parse(const char *text, size_t len, const char *dir, alert_config *out,
                              srv_error *err);
void alert_config_clear(alert_config *c);
const char *alert_type_name(alert_type t);
/* SRV_E_CONFIG with prefix before err's own message. */
srv_status alert_wrap(srv_error *err, const char *prefix);

/* "http(s)://host[:port][/path]": 0 if malformed. */
int alert_parse_url(const char *url, int *tls, char *host, size_t host_len, char *port,
                    size_t port_len, char *path, size_t path_len);
/* 1 if host is a loopback address (127.0.0.0/8, ::1) or "localhost". */
int alert_host_is_loopback(const char *host);
/* Lowercase hex HMAC-SHA256 of body under key. */
void alert_hmac_hex(const unsigned char *key, size_t key_len, const char *body, size_t len,
                    char out[65]);
/* Whether local time (wday 0 = Sunday, minute of the day) is inside one of rule's windows. */
int alert_hours_inside(const policy_rule *hours, int wday, int minute);

struct srv_alerts {
    alert_config cfg;
    srv_writer *writer;
    srv_hsm *hsm;
    char db_path[PATH_MAX];
    char hostname[256];
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* the sender: a new alert, or stop */
    pthread_cond_t wake_rules; /* the engine: stop */
    int stopping;
    int64_t newest_id; /* the newest alert in the outbox (under lock) */
    int sending_fd;    /* the sender's connection while it has one, else -1 (under lock) */
    pthread_t engine, sender;
    int engine_started, sender_started;
    unsigned long raised, dropped; /* under lock */
};

/* rules.c: the engine thread. webhook.c: the sender thread. */
void *alert_engine_main(void *arg);
void *alert_sender_main(void *arg);
/* Frees a rule's counters (after the engine stopped). */
void alert_counters_free(alert_rule *r);
/* Waits up to ms or until stop (on cond); non-zero when stopping. */
int alert_pause(srv_alerts *a, pthread_cond_t *cond, unsigned ms);

#endif
