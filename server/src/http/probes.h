/* The load balancer's probes and the drain's refusals, answered on the loop thread (http.c):
 * nothing here waits for a worker. */
#ifndef SRV_HTTP_PROBES_H
#define SRV_HTTP_PROBES_H

#include <event2/http.h>

/* 1 if req is a GET or HEAD of exactly path (the raw, undecoded target path; NULL: never). */
int srv_http_probe_match(struct evhttp_request *req, const char *raw_path, const char *path);
/* 200 {"status":"ok","draining":...}: the process serves (while draining too). */
void srv_http_answer_live(struct evhttp_request *req, int draining);
/* During a drain: a probe of ready_path gets 503 {"status":"draining","failing":["draining"]};
 * anything else 503 unavailable with Retry-After: 1. Both close the connection. */
void srv_http_answer_draining(struct evhttp_request *req, const char *raw_path,
                              const char *ready_path, unsigned in_flight);

#endif
