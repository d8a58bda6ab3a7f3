/* signum-util doctor's network checks on Linux, over the agent's HTTPS transport (libcurl):
 * one GET /healthz, and where it stopped says which of DNS, TCP and TLS (against the
 * configured CA, with the client certificate) failed; then clock skew from the server's Date
 * header, and the answer's status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform.h"
#include "signum/https.h"

static ag_backend *backend; /* made at the first server, for all of them */
static ag_error backend_err;

void util_doctor_begin(void)
{
}

void util_doctor_end(void)
{
    ag_backend_free(backend);
    backend = NULL;
}

int util_doctor_server(const ag_config *cfg, unsigned index)
{
    char detail[300];
    ag_response r;
    ag_error err;
    ag_stage stage;
    try_result tr;
    int failures = 0;

    if (!backend &&
        ag_backend_new(cfg, "signum-util/" SIGNUM_VERSION, &backend, &backend_err) != SG_OK)
        return util_verdict("connect", 0, backend_err.message);
    memset(&r, 0, sizeof(r));
    tr = ag_backend_try(backend, index, "GET", "/healthz", NULL, NULL, NULL, &r, &err);
    stage = tr == TRY_DONE || tr == TRY_RETRYABLE ? AG_STAGE_NONE
            : r.stage != AG_STAGE_NONE            ? r.stage
                                                  : AG_STAGE_SETUP;
    failures +=
        util_verdict("dns", stage != AG_STAGE_DNS, stage == AG_STAGE_DNS ? r.reason : "resolved");
    if (stage != AG_STAGE_DNS)
        failures += util_verdict("connect", stage != AG_STAGE_CONNECT,
                                 stage == AG_STAGE_CONNECT ? r.reason : "TCP connection made");
    if (stage == AG_STAGE_NONE || stage == AG_STAGE_TLS) {
        snprintf(detail, sizeof(detail), "%s",
                 stage == AG_STAGE_NONE ? "handshake and certificate verified" : r.reason);
        if (stage != AG_STAGE_NONE)
            strncat(detail, " (is ca_file the server's CA?)", sizeof(detail) - strlen(detail) - 1);
        failures += util_verdict("tls", stage == AG_STAGE_NONE, detail);
    }
    if (stage == AG_STAGE_NONE) {
        long skew = r.date > 0 ? (long)(time(NULL) - r.date) : 0;
        snprintf(detail, sizeof(detail), "%s", "server sends no Date header");
        if (r.date > 0)
            snprintf(detail, sizeof(detail), "local clock %+ld s from the server's", skew);
        failures += util_verdict("clock", r.date <= 0 || labs(skew) <= 60, detail);
        snprintf(detail, sizeof(detail), "/healthz answered %ld", r.status);
        failures += util_verdict("health", r.status == 200, detail);
    }
    ag_response_free(&r);
    return failures;
}
