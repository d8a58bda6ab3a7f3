/* Audit exporters: one thread per configured sink ships committed audit records after its
 * persistent cursor (export_cursors), advancing it only once the sink has taken them, with
 * retries and capped exponential back-off. Sinks: syslog RFC 5424 over UDP, TCP and TLS
 * (octet-counting framing, RFC 6587/5425) and the Splunk HTTP Event Collector. The signing
 * path never waits for an exporter: they read with their own connection and only queue a tiny
 * cursor update on the writer. */
#ifndef SRV_AUDIT_EXPORT_H
#define SRV_AUDIT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../config.h"
#include "../store/db.h"
#include "writer.h"

/* The SD-ID of the structured data element in syslog messages. 32473 is the IANA private
 * enterprise number reserved for documentation (RFC 5612); deployments that own a number
 * can map it in their receiver. */
#define SRV_SYSLOG_SD_ID "signum@32473"

typedef struct srv_exporters srv_exporters;

/* Starts a thread per sink configured in cfg (none: *out is NULL and nothing runs). */
srv_status srv_exporters_start(const srv_config *cfg, srv_writer *writer, srv_exporters **out,
                               srv_error *err);
void srv_exporters_stop(srv_exporters *e);

/* The name a sink's cursor is kept under: "KIND:HOST:PORT" (and the path for "hec"), KIND one
 * of syslog-tcp, syslog-tls, syslog-udp, hec; 0 if dest does not parse. */
int srv_export_sink_name(const char *kind, const char *dest, char *out, size_t len);

/* ---- formatting (pure; unit-tested) ------------------------------------------------------- */

/* The RFC 5424 message for one record: PRI (facility 13, log audit; severity from the
 * outcome), VERSION 1, the record's time, HOSTNAME, APP-NAME signum-server, PROCID, MSGID the
 * action, structured data [signum@32473 id="<record hash>" seq="N" actor=... outcome=...],
 * and the canonical record text as MSG. The record hash is the stable id receivers
 * deduplicate on. *out is malloc'd and NUL-terminated. */
srv_status srv_syslog_format(const srv_audit_row *row, const char *hostname, long pid, char **out,
                             size_t *out_len, srv_error *err);

/* Octet-counting framing (RFC 6587 3.4.1, RFC 5425 4.3): "MSG-LEN SP SYSLOG-MSG". */
srv_status srv_syslog_frame(const char *msg, size_t len, char **out, size_t *out_len,
                            srv_error *err);

/* One Splunk HEC event (JSON object): time, host, source, sourcetype, the record as the event
 * (with its hash), and fields signum_id / signum_seq. */
srv_status srv_hec_event(const srv_audit_row *row, const char *hostname, char **out,
                         srv_error *err);

/* Parses "host:port" or "[v6]:port" into host and port; 0 if malformed. */
int srv_parse_host_port(const char *text, char *host, size_t host_len, char *port, size_t port_len);

/* Parses an https URL into host, port (default 443) and path (default
 * /services/collector/event); 0 if it is not an https URL. */
int srv_parse_https_url(const char *url, char *host, size_t host_len, char *port, size_t port_len,
                        char *path, size_t path_len);

/* Reads the HTTP status code of a response head ("HTTP/1.1 200 OK\r\n..."); -1 if none. */
int srv_http_status(const char *head, size_t len);

#endif
