/* signum-server.conf: "key = value" lines inside the state directory; relative paths are
 * resolved against that directory. Unknown keys are errors, so typos do not pass silently. */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "common/status.h"

#define SRV_CONFIG_FILE    "signum-server.conf"
#define SRV_PUBLIC_URL_MAX 255

typedef struct {
    char dir[PATH_MAX];
    char listen[64];
    char public_url[SRV_PUBLIC_URL_MAX + 1]; /* "" : https://localhost:PORT */
    int port;
    unsigned workers;
    unsigned hsm_sessions;
    int token_ttl;      /* seconds */
    int http_timeout;   /* seconds a connection may stall */
    int header_timeout; /* seconds: TLS handshake + request headers, in total */
    int body_timeout;   /* seconds: a request body, in total */
    unsigned max_connections;
    unsigned max_connections_per_address;
    size_t max_body; /* transport cap in bytes */
    char database[PATH_MAX];
    char hsm_module[PATH_MAX];
    char hsm_token[33];
    char hsm_pin_file[PATH_MAX];
    char softhsm_conf[PATH_MAX]; /* exported as SOFTHSM2_CONF when set */
    char tls_cert[PATH_MAX];
    char tls_key[PATH_MAX];
    char ca_cert[PATH_MAX];
    char ca_key_name[65];
    char auth_audience[256];    /* the aud service-account assertions must carry */
    char oidc_config[PATH_MAX]; /* CI OIDC issuers (JSON); empty: token exchange is off */
    int enrollment_token_ttl;   /* seconds an enrollment token stays usable */
    /* Audit checkpoints and exporters (server/API.md, "The audit log"). */
    unsigned audit_checkpoint_records; /* sign the chain head after this many records */
    unsigned audit_checkpoint_seconds; /* ... or this long after the last checkpoint */
    char export_syslog_tcp[300];       /* host:port; empty: off */
    char export_syslog_tls[300];
    char export_syslog_tls_ca[PATH_MAX]; /* CA that issued the receiver's certificate */
    char export_syslog_udp[300];
    char export_hec_url[1024];            /* https://host:port/services/collector/event */
    char export_hec_token_file[PATH_MAX]; /* the HEC token, mode 0600 */
    char export_hec_ca[PATH_MAX];
    unsigned export_batch;       /* records per delivery */
    unsigned export_backoff_max; /* seconds: cap of the retry back-off */
    /* 1 (audit_sync = full, the default): every audit commit is fsynced before the signature
     * it records leaves. 0 (normal, opt-in): not synced; a crash may lose the last records. */
    int audit_sync_full;
    /* An approved sign request must be collected within this many seconds of its approval. */
    int approval_collect_ttl;
    /* Denials of unauthenticated requests (audit/denials.h): per source address and error
     * code, `audit_denial_burst` individual records per window of `audit_denial_window`
     * seconds; the rest are counted into one aggregated record per window. */
    int audit_denial_window;
    int audit_denial_burst;
    /* The console (server/API.md, "Console"): a session ends after this many seconds without
     * a request, and this many after its login in any case. */
    int console_idle_timeout;
    int console_session_ttl;
    /* 1: admins need a TOTP code for API tokens too (POST /api/v1/auth/token), not only for
     * the console. */
    int admin_api_totp;
    /* Seconds a drain (SIGTERM) waits for in-flight requests before the server exits anyway
     * (exit status 1). Keep it under the orchestrator's grace period (Kubernetes: 30 s). */
    int drain_timeout;
    /* Asynchronous signing jobs (server/API.md, "Signing jobs"): worker threads per node (0:
     * this node signs no jobs, it still takes them), seconds a claimed chunk stays a worker's
     * before another node may claim it again, attempts at a chunk the HSM fails before the
     * job fails, and the digests a user may have waiting in jobs. */
    unsigned job_workers;
    int job_lease_seconds;
    int job_max_attempts;
    long job_user_max_pending;
    /* The time-stamping authority (server/API.md, "Time-stamping authority"): off, open to
     * anyone who reaches the port, or for callers with an access token; its key type, policy
     * OID, accuracy, certificate subject, and how far the clock may seem to go back (against
     * the newest token issued) before it refuses with timeNotAvailable. */
    int tsa_mode;
    char tsa_key_type[16];
    char tsa_policy[128];
    unsigned tsa_accuracy_ms;
    char tsa_name[65];
    int tsa_max_skew_seconds;
    /* Tokens a second one address (tsa_rate_per_address) and all addresses together
     * (tsa_rate) may have from an open TSA, which signs and audits each: 0 is no bound. */
    int tsa_rate_per_address, tsa_rate;
    /* Alert rules and webhooks (docs/alerts.md): a JSON file; empty: no alerts. */
    char alerts_config[PATH_MAX];
} srv_config;

enum { SRV_TSA_MODE_OFF, SRV_TSA_MODE_OPEN, SRV_TSA_MODE_TOKEN };
/* A policy OID of this project's own under the UUID arc (X.667), for TSAs not given one. */
#define SRV_TSA_DEFAULT_POLICY "2.25.330552714153707047874252638116543826072"

void srv_config_defaults(srv_config *cfg, const char *dir);
srv_status srv_config_load(const char *dir, srv_config *cfg, srv_error *err);
/* Renders cfg (with the paths relative to cfg->dir as given) as a config file. */
srv_status srv_config_render(const srv_config *cfg, char **out, srv_error *err);

#endif
