/* Loading and writing signum-server.conf. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "signum/common/conf.h"

void srv_config_defaults(srv_config *cfg, const char *dir)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->dir, sizeof(cfg->dir), "%s", dir);
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1");
    cfg->port = 8443;
    cfg->workers = 8;
    cfg->hsm_sessions = 8;
    cfg->audit_sync_full = 1;
    cfg->token_ttl = 900;
    cfg->http_timeout = 30;
    cfg->header_timeout = 10;
    cfg->body_timeout = 60;
    cfg->max_connections = 1024;
    cfg->max_connections_per_address = 64;
    cfg->max_body = 1024 * 1024;
    snprintf(cfg->database, sizeof(cfg->database), "signum.db");
    snprintf(cfg->hsm_module, sizeof(cfg->hsm_module), "/usr/lib/softhsm/libsofthsm2.so");
    snprintf(cfg->hsm_token, sizeof(cfg->hsm_token), "signum");
    snprintf(cfg->hsm_pin_file, sizeof(cfg->hsm_pin_file), "hsm/user.pin");
    snprintf(cfg->softhsm_conf, sizeof(cfg->softhsm_conf), "hsm/softhsm2.conf");
    snprintf(cfg->tls_cert, sizeof(cfg->tls_cert), "tls/server.crt");
    snprintf(cfg->tls_key, sizeof(cfg->tls_key), "tls/server.key");
    snprintf(cfg->ca_cert, sizeof(cfg->ca_cert), "ca/ca.crt");
    snprintf(cfg->ca_key_name, sizeof(cfg->ca_key_name), "signum-ca");
    snprintf(cfg->auth_audience, sizeof(cfg->auth_audience), "signum");
    cfg->enrollment_token_ttl = 3600;
    cfg->console_idle_timeout = 900;
    cfg->console_session_ttl = 8 * 3600;
    cfg->approval_collect_ttl = 86400;
    cfg->audit_denial_window = 60;
    cfg->audit_denial_burst = 64;
    cfg->audit_checkpoint_records = 1000;
    cfg->audit_checkpoint_seconds = 60;
    cfg->export_batch = 200;
    cfg->export_backoff_max = 60;
    cfg->drain_timeout = 10;
    cfg->job_workers = 2;
    cfg->job_lease_seconds = 60;
    cfg->job_max_attempts = 5;
    cfg->job_user_max_pending = 100000;
    cfg->tsa_mode = SRV_TSA_MODE_OFF;
    snprintf(cfg->tsa_key_type, sizeof(cfg->tsa_key_type), "ec-p256");
    snprintf(cfg->tsa_policy, sizeof(cfg->tsa_policy), "%s", SRV_TSA_DEFAULT_POLICY);
    cfg->tsa_accuracy_ms = 1000;
    snprintf(cfg->tsa_name, sizeof(cfg->tsa_name), "Signum Time-Stamping Authority");
    cfg->tsa_max_skew_seconds = 1;
    cfg->tsa_rate_per_address = 20;
    cfg->tsa_rate = 200;
}

static srv_status set_int(const char *key, const char *value, long min, long max, long *out,
                          srv_error *err)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < min || v > max)
        return srv_fail(err, SRV_E_CONFIG, "%s must be an integer in [%ld, %ld]", key, min, max);
    *out = v;
    return SRV_OK;
}

static srv_status set_path(srv_config *cfg, char *dst, const char *value, srv_error *err)
{
    return srv_path_join(dst, PATH_MAX, cfg->dir, value, err);
}

/* The database: a SQLite file (a path) or a PostgreSQL URL, taken as it is. */
static srv_status set_database(srv_config *cfg, const char *value, srv_error *err)
{
    if (!srv_is_postgresql_url(value))
        return set_path(cfg, cfg->database, value, err);
    if (strlen(value) >= sizeof(cfg->database))
        return srv_fail(err, SRV_E_CONFIG, "database is too long");
    snprintf(cfg->database, sizeof(cfg->database), "%s", value);
    return SRV_OK;
}

static srv_status apply(srv_config *cfg, const char *key, const char *value, srv_error *err)
{
    long v = 0;
    srv_status st = SRV_OK;
#define TEXT(name, field)                                                                          \
    if (strcmp(key, name) == 0) {                                                                  \
        if (strlen(value) >= sizeof(cfg->field))                                                   \
            return srv_fail(err, SRV_E_CONFIG, "%s is too long", name);                            \
        snprintf(cfg->field, sizeof(cfg->field), "%s", value);                                     \
        return SRV_OK;                                                                             \
    }
#define INT(name, field, lo, hi)                                                                   \
    if (strcmp(key, name) == 0) {                                                                  \
        if ((st = set_int(name, value, lo, hi, &v, err)) == SRV_OK)                                \
            cfg->field = (__typeof__(cfg->field))v;                                                \
        return st;                                                                                 \
    }
#define PATH(name, field)                                                                          \
    if (strcmp(key, name) == 0)                                                                    \
        return set_path(cfg, cfg->field, value, err);
/* An optional path: empty leaves it unset. */
#define OPTIONAL_PATH(name, field)                                                                 \
    if (strcmp(key, name) == 0) {                                                                  \
        cfg->field[0] = '\0';                                                                      \
        return *value ? set_path(cfg, cfg->field, value, err) : SRV_OK;                            \
    }
    TEXT("listen", listen)
    if (strcmp(key, "public_url") == 0) {
        if (strncmp(value, "https://", 8) != 0 && strncmp(value, "http://", 7) != 0)
            return srv_fail(err, SRV_E_CONFIG, "public_url must start with https:// or http://");
        /* It goes into certificates' CRL distribution points: no separators, no spaces. */
        if (strlen(value) > SRV_PUBLIC_URL_MAX ||
            strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                          ".-_~:/[]%") != strlen(value))
            return srv_fail(err, SRV_E_CONFIG,
                            "public_url must be a URL of at most %d characters "
                            "of [A-Za-z0-9.-_~:/[]%%]",
                            SRV_PUBLIC_URL_MAX);
        snprintf(cfg->public_url, sizeof(cfg->public_url), "%s", value);
        size_t n = strlen(cfg->public_url);
        if (n > 0 && cfg->public_url[n - 1] == '/')
            cfg->public_url[n - 1] = '\0';
        return SRV_OK;
    }
    INT("port", port, 0, 65535)
    INT("workers", workers, 1, 256)
    INT("hsm_sessions", hsm_sessions, 1, 256)
    INT("token_ttl", token_ttl, 5, 86400)
    INT("http_timeout", http_timeout, 1, 3600)
    INT("drain_timeout", drain_timeout, 1, 3600)
    INT("job_workers", job_workers, 0, 64)
    INT("job_lease_seconds", job_lease_seconds, 1, 3600)
    INT("job_max_attempts", job_max_attempts, 1, 100)
    INT("job_user_max_pending", job_user_max_pending, 1, 10000000)
    INT("header_timeout", header_timeout, 1, 3600)
    INT("body_timeout", body_timeout, 1, 3600)
    INT("max_connections", max_connections, 1, 1000000)
    INT("max_connections_per_address", max_connections_per_address, 1, 1000000)
    INT("max_body", max_body, 4096, 64 * 1024 * 1024)
    if (strcmp(key, "database") == 0)
        return set_database(cfg, value, err);
    PATH("hsm_module", hsm_module)
    TEXT("hsm_token", hsm_token)
    PATH("hsm_pin_file", hsm_pin_file)
    PATH("softhsm_conf", softhsm_conf)
    PATH("tls_cert", tls_cert)
    PATH("tls_key", tls_key)
    PATH("ca_cert", ca_cert)
    TEXT("ca_key_name", ca_key_name)
    if (strcmp(key, "auth_audience") == 0) {
        if (!*value || strlen(value) >= sizeof(cfg->auth_audience))
            return srv_fail(err, SRV_E_CONFIG, "auth_audience must be 1-255 characters");
        snprintf(cfg->auth_audience, sizeof(cfg->auth_audience), "%s", value);
        return SRV_OK;
    }
    INT("enrollment_token_ttl", enrollment_token_ttl, 60, 7 * 86400)
    INT("approval_collect_ttl", approval_collect_ttl, 1, 30 * 86400)
    INT("audit_denial_window", audit_denial_window, 1, 3600)
    INT("audit_denial_burst", audit_denial_burst, 1, 1000)
    INT("console_idle_timeout", console_idle_timeout, 10, 86400)
    INT("console_session_ttl", console_session_ttl, 60, 7 * 86400)
    if (strcmp(key, "admin_api_totp") == 0) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
            return srv_fail(err, SRV_E_CONFIG, "admin_api_totp must be on or off");
        cfg->admin_api_totp = strcmp(value, "on") == 0;
        return SRV_OK;
    }
    if (strcmp(key, "oidc_config") == 0) {
        /* Optional: an empty value leaves CI OIDC token exchange off. */
        cfg->oidc_config[0] = '\0';
        return *value ? set_path(cfg, cfg->oidc_config, value, err) : SRV_OK;
    }
    INT("audit_checkpoint_records", audit_checkpoint_records, 1, 1000000)
    INT("audit_checkpoint_seconds", audit_checkpoint_seconds, 1, 86400)
    TEXT("export_syslog_tcp", export_syslog_tcp)
    TEXT("export_syslog_tls", export_syslog_tls)
    TEXT("export_syslog_udp", export_syslog_udp)
    TEXT("export_hec_url", export_hec_url)
    INT("export_batch", export_batch, 1, 5000)
    INT("export_backoff_max", export_backoff_max, 1, 3600)
    OPTIONAL_PATH("export_syslog_tls_ca", export_syslog_tls_ca)
    OPTIONAL_PATH("export_hec_token_file", export_hec_token_file)
    OPTIONAL_PATH("export_hec_ca", export_hec_ca)
    OPTIONAL_PATH("alerts_config", alerts_config)
    if (strcmp(key, "audit_sync") == 0) {
        if (strcmp(value, "full") != 0 && strcmp(value, "normal") != 0)
            return srv_fail(err, SRV_E_CONFIG, "audit_sync must be full or normal");
        cfg->audit_sync_full = strcmp(value, "full") == 0;
        return SRV_OK;
    }
    if (strcmp(key, "tsa") == 0) {
        if (strcmp(value, "off") == 0)
            cfg->tsa_mode = SRV_TSA_MODE_OFF;
        else if (strcmp(value, "open") == 0)
            cfg->tsa_mode = SRV_TSA_MODE_OPEN;
        else if (strcmp(value, "token") == 0)
            cfg->tsa_mode = SRV_TSA_MODE_TOKEN;
        else
            return srv_fail(err, SRV_E_CONFIG, "tsa must be off, open or token");
        return SRV_OK;
    }
    TEXT("tsa_key_type", tsa_key_type)
    if (strcmp(key, "tsa_policy") == 0) {
        if (!*value || strlen(value) >= sizeof(cfg->tsa_policy) ||
            strspn(value, "0123456789.") != strlen(value) || value[0] == '.' ||
            value[strlen(value) - 1] == '.' || strstr(value, "..") || !strchr(value, '.'))
            return srv_fail(err, SRV_E_CONFIG, "tsa_policy must be a dotted object identifier");
        snprintf(cfg->tsa_policy, sizeof(cfg->tsa_policy), "%s", value);
        return SRV_OK;
    }
    INT("tsa_accuracy_ms", tsa_accuracy_ms, 1, 60000)
    if (strcmp(key, "tsa_name") == 0) {
        if (!*value || strlen(value) >= sizeof(cfg->tsa_name))
            return srv_fail(err, SRV_E_CONFIG, "tsa_name must be 1-64 characters");
        snprintf(cfg->tsa_name, sizeof(cfg->tsa_name), "%s", value);
        return SRV_OK;
    }
    INT("tsa_max_skew_seconds", tsa_max_skew_seconds, 0, 3600)
    INT("tsa_rate_per_address", tsa_rate_per_address, 0, 100000)
    INT("tsa_rate", tsa_rate, 0, 1000000)
#undef TEXT
#undef INT
#undef PATH
#undef OPTIONAL_PATH
    return srv_fail(err, SRV_E_CONFIG, "unknown setting \"%s\"", key);
}

typedef struct {
    srv_config *cfg;
    srv_error *err;
    srv_status st;
} load_ctx;

static int load_entry(void *arg, const char *key, const char *value, unsigned line)
{
    load_ctx *c = arg;
    if ((c->st = apply(c->cfg, key, value, c->err)) != SRV_OK) {
        char msg[sizeof(c->err->message)];
        snprintf(msg, sizeof(msg), "%s", c->err ? c->err->message : "");
        c->st = srv_fail(c->err, SRV_E_CONFIG, "%s line %u: %s", SRV_CONFIG_FILE, line, msg);
        return -1;
    }
    return 0;
}

srv_status srv_config_load(const char *dir, srv_config *cfg, srv_error *err)
{
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    srv_status st;
    load_ctx ctx = {cfg, err, SRV_OK};
    sgc_conf_error perr;

    srv_config_defaults(cfg, dir);
    if ((st = srv_path_join(path, sizeof(path), dir, SRV_CONFIG_FILE, err)) != SRV_OK)
        return st;
    /* Defaults hold relative paths; resolve them against the state directory first. */
    {
        srv_config d = *cfg;
        if ((st = set_database(cfg, d.database, err)) != SRV_OK ||
            (st = set_path(cfg, cfg->hsm_pin_file, d.hsm_pin_file, err)) != SRV_OK ||
            (st = set_path(cfg, cfg->softhsm_conf, d.softhsm_conf, err)) != SRV_OK ||
            (st = set_path(cfg, cfg->tls_cert, d.tls_cert, err)) != SRV_OK ||
            (st = set_path(cfg, cfg->tls_key, d.tls_key, err)) != SRV_OK ||
            (st = set_path(cfg, cfg->ca_cert, d.ca_cert, err)) != SRV_OK)
            return st;
    }
    st = srv_read_file(path, SGC_CONF_FILE_MAX, &text, &len, err);
    if (st != SRV_OK)
        return srv_fail(err, SRV_E_CONFIG, "%s is not a Signum state directory (cannot read %s)",
                        dir, SRV_CONFIG_FILE);
    switch (sgc_conf_parse(text, len, SGC_CONF_LINE_MAX, load_entry, &ctx, &perr)) {
    case SGC_CONF_OK: st = SRV_OK; break;
    case SGC_CONF_E_CALLBACK: st = ctx.st; break; /* load_entry said why */
    case SGC_CONF_E_NOMEM: st = srv_fail(err, SRV_E_NOMEM, "out of memory"); break;
    default:
        st = srv_fail(err, SRV_E_CONFIG, "%s line %u: %s", path, perr.line, perr.message);
        break;
    }
    free(text);
    return st;
}

srv_status srv_config_render(const srv_config *cfg, char **out, srv_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    fprintf(f,
            "# signum-server configuration. Relative paths are inside this directory.\n"
            "listen = %s\nport = %d\nworkers = %u\nhsm_sessions = %u\ntoken_ttl = %d\n"
            "http_timeout = %d\nmax_body = %zu\ndatabase = %s\n"
            "# Slow clients: the TLS handshake and request headers must arrive within\n"
            "# header_timeout seconds, a body within body_timeout; connections over\n"
            "# max_connections (or max_connections_per_address from one address) are\n"
            "# closed at accept.\n"
            "header_timeout = %d\nbody_timeout = %d\nmax_connections = %u\n"
            "max_connections_per_address = %u\n"
            "# On SIGTERM: /healthz/ready answers 503, in-flight requests finish (up to\n"
            "# drain_timeout seconds), new ones get 503 with Retry-After.\n"
            "# drain_timeout = 10\n"
            "# Any PKCS#11 module works here; softhsm_conf only matters for SoftHSMv2.\n"
            "hsm_module = %s\nhsm_token = %s\nhsm_pin_file = %s\nsofthsm_conf = %s\n"
            "tls_cert = %s\ntls_key = %s\nca_cert = %s\nca_key_name = %s\n"
            "# aud of service-account JWT assertions; enrollment tokens expire after (s):\n"
            "auth_audience = %s\nenrollment_token_ttl = %d\n"
            "# CI OIDC token exchange: a JSON file of issuers, JWKS and rules (server/API.md).\n"
            "# oidc_config = oidc.json\n"
            "# Audit checkpoints: the chain head is signed by the HSM audit key after this\n"
            "# many records, or this many seconds after the last checkpoint, and at stop.\n"
            "audit_checkpoint_records = %u\naudit_checkpoint_seconds = %u\n"
            "# full: each audit commit is on disk (fsync) before its signature leaves.\n"
            "# normal trades that away for speed: a power loss or OS crash may lose the\n"
            "# last records, of signatures already handed out.\n"
            "audit_sync = %s\n"
            "# Audit exporters (each optional; see server/API.md):\n"
            "# export_syslog_tcp = 127.0.0.1:514\n"
            "# export_syslog_tls = logs.example:6514\n# export_syslog_tls_ca = logs-ca.pem\n"
            "# export_syslog_udp = 127.0.0.1:514\n"
            "# export_hec_url = https://splunk.example:8088/services/collector/event\n"
            "# export_hec_token_file = hec.token\n# export_hec_ca = splunk-ca.pem\n"
            "# Time-stamping authority, RFC 3161 (server/API.md): off, open or token.\n"
            "# tsa = open\n# tsa_key_type = ec-p256\n# tsa_accuracy_ms = 1000\n"
            "# tsa_max_skew_seconds = 1\n"
            "# Tokens a second for anonymous callers of an open TSA: per address, in all.\n"
            "# tsa_rate_per_address = 20\n# tsa_rate = 200\n"
            "# Alert rules and webhooks, a JSON file (docs/alerts.md):\n"
            "# alerts_config = alerts.json\n",
            cfg->listen, cfg->port, cfg->workers, cfg->hsm_sessions, cfg->token_ttl,
            cfg->http_timeout, cfg->max_body, cfg->database, cfg->header_timeout, cfg->body_timeout,
            cfg->max_connections, cfg->max_connections_per_address, cfg->hsm_module, cfg->hsm_token,
            cfg->hsm_pin_file, cfg->softhsm_conf, cfg->tls_cert, cfg->tls_key, cfg->ca_cert,
            cfg->ca_key_name, cfg->auth_audience, cfg->enrollment_token_ttl,
            cfg->audit_checkpoint_records, cfg->audit_checkpoint_seconds,
            cfg->audit_sync_full ? "full" : "normal");
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    *out = buf;
    return SRV_OK;
}
