/* Alerts (docs/alerts.md): rules over the committed audit stream (signatures per key or
 * signer over a threshold or over N times their usual rate, signing outside hours, bursts of
 * denials) and over health checked periodically (HSM, signing-job queue) raise alert events.
 * An alert is one transaction: a row in the alerts outbox (its exact JSON body) and an audit
 * record "alert" (so the syslog/Splunk exporters carry it like any record). Webhooks get the
 * outbox in order, HMAC-signed, retried with capped back-off until a 2xx; a restart resumes
 * from each webhook's stored cursor. Nothing here runs on a request's path: the engine reads
 * the audit log after commit with its own connection. */
#ifndef SRV_ALERTS_H
#define SRV_ALERTS_H

#include <cjson/cJSON.h>

#include "../audit/writer.h"
#include "../common/status.h"
#include "../config.h"
#include "../hsm/hsm.h"

typedef struct srv_alerts srv_alerts;

/* Loads cfg->alerts_config and starts the rule engine and the webhook sender (nothing
 * configured: *out is NULL and nothing runs). A bad file is SRV_E_CONFIG with the reason. */
srv_status srv_alerts_start(const srv_config *cfg, srv_writer *writer, srv_hsm *hsm,
                            srv_alerts **out, srv_error *err);
void srv_alerts_stop(srv_alerts *a);

/* For GET /api/v1/admin/alerts: adds "rules" (names and types), "webhooks" (each one's
 * delivery state: delivered_id, failures, last_error, ...) and counters to doc. */
void srv_alerts_describe(srv_alerts *a, cJSON *doc);

/* The cursor name of webhook i (export_cursors), NULL past the last. */
const char *srv_alerts_webhook_cursor(srv_alerts *a, size_t i);

#endif
