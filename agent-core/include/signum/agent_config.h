/* What the agent and signum-util share of the agent's set-up: its configuration (agent.conf
 * and the environment), the error record every call fills, and the SIGNUM_DEBUG log lines.
 * Implemented in src/agent/config.c and src/agent/log.c (the signum-agent-base library). */
#ifndef SIGNUM_AGENT_CONFIG_H
#define SIGNUM_AGENT_CONFIG_H

#include <stdio.h>

#include "signum/client.h"
#include "signum/common/rc.h"

#define AG_MAX_SERVERS 8
#define AG_PATH_MAX    4096 /* a UTF-8 path we report (caller image), whatever the OS */

typedef struct {
    sg_status status;
    char message[512];
} ag_error;

sg_status ag_fail(ag_error *err, sg_status st, const char *fmt, ...) SGC_PRINTF(3, 4);

/* Logging to stderr (the log file when daemonised); SIGNUM_DEBUG=agent,http,ipc,cache,auth. */
int ag_debug_enabled(const char *subsystem);
void ag_log(const char *subsystem, const char *fmt, ...) SGC_PRINTF(2, 3);
#define ag_debug(sub, ...)                                                                         \
    do {                                                                                           \
        if (ag_debug_enabled(sub))                                                                 \
            ag_log(sub, __VA_ARGS__);                                                              \
    } while (0)
/* Logging set-up (log.c): the SIGNUM_DEBUG list, and where lines go (NULL: stderr). */
void ag_log_init(const char *debug_spec);
void ag_log_to(FILE *stream);

typedef struct {
    char servers[AG_MAX_SERVERS][512];
    unsigned server_count;
    char ca_file[AG_PATH_MAX];
    char api_key[257];
    char auth[16]; /* api_key | service_account | oidc; empty: inferred */
    char service_account[65];
    char key_file[AG_PATH_MAX]; /* the service account's private key (PEM, 0600) */
    char key_id[65];            /* its kid, from enrollment */
    char audience[129];         /* aud of our JWT assertions */
    char oidc_token_file[AG_PATH_MAX];
    char oidc_token[8193]; /* SIGNUM_OIDC_TOKEN (CI jobs) */
    char client_cert[AG_PATH_MAX];
    char client_key[AG_PATH_MAX];
    int idle_timeout; /* seconds; 0 = never exit when idle */
    int connect_timeout_ms;
    int request_timeout_ms;
    int retries; /* extra attempts after the first, on retryable failures */
    /* Failover: a node that failed is skipped for node_backoff_ms, doubling with each failure
     * in a row up to node_backoff_max_ms (src/agent/nodes.h). */
    int node_backoff_ms;
    int node_backoff_max_ms;
    int keys_refresh; /* seconds a key listing is served before revalidation */
    char cache_dir[AG_PATH_MAX];
    char sources[1024]; /* which files were read, for `status` and doctor */
} ag_config;

/* Reads /etc/signum/agent.conf, then the user file ($SIGNUM_CONFIG or
 * $XDG_CONFIG_HOME/signum/agent.conf), then the environment, each overriding the last.
 * Windows: %PROGRAMDATA%\Signum\agent.conf, then $SIGNUM_CONFIG or %APPDATA%\Signum\agent.conf. */
sg_status ag_config_load(ag_config *cfg, ag_error *err);

/* The authentication method the configuration selects: explicit `auth`, else an API key,
 * else a service-account key pair, else an OIDC token; NULL if none is configured. */
const char *ag_config_auth_method(const ag_config *cfg);

#endif
