/* Outbound connections with deadlines, and the retry back-off, shared by the audit exporters
 * (audit/export.c) and the alert webhooks (alerts/webhook.c). */
#ifndef SRV_NET_H
#define SRV_NET_H

#include <stddef.h>

/* Connects to host:port (type SOCK_STREAM or SOCK_DGRAM), each address tried within
 * connect_ms; the socket is left blocking with send and receive timeouts of io_ms (a stream
 * one with keep-alive). Returns the descriptor, or -1 with the reason in why ("cannot resolve
 * HOST: ..." or "cannot connect: ..."). */
int srv_net_connect(const char *host, const char *port, int type, unsigned connect_ms,
                    unsigned io_ms, char *why, size_t why_len);

/* Capped exponential back-off with "equal jitter": base_ms doubling with each failure up to
 * cap_s seconds, of which half is waited for sure and half at random. */
unsigned srv_backoff_ms(unsigned failures, unsigned base_ms, unsigned cap_s);

#endif
