/* Liveness, and readiness while draining, without a worker (probes.h). */
#include "probes.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

int srv_http_probe_match(struct evhttp_request *req, const char *raw_path, const char *path)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    return path && raw_path && (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) &&
           strcmp(raw_path, path) == 0;
}

/* A JSON answer; text is a constant or was built by the caller. */
static void reply_json(struct evhttp_request *req, int status, int close_conn, const char *text)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "Cache-Control", "no-store");
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    if (close_conn)
        evhttp_add_header(out, "Connection", "close");
    if (b)
        evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, status, NULL, b);
    if (b)
        evbuffer_free(b);
}

void srv_http_answer_live(struct evhttp_request *req, int draining)
{
    reply_json(req, 200, draining,
               draining ? "{\"status\":\"ok\",\"draining\":true}"
                        : "{\"status\":\"ok\",\"draining\":false}");
}

void srv_http_answer_draining(struct evhttp_request *req, const char *raw_path,
                              const char *ready_path, unsigned in_flight)
{
    char text[160];
    if (!srv_http_probe_match(req, raw_path, ready_path)) {
        /* A client that reaches a leaving node (a kept-alive connection, a load balancer not
         * yet told): nothing was done, so it may send the same request to another node. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reply_json(req, 503, 1,
                   "{\"error\":{\"code\":\"unavailable\",\"message\":\"this node is draining "
                   "before it stops; retry, another node will answer\"}}");
        return;
    }
    snprintf(text, sizeof(text),
             "{\"status\":\"draining\",\"failing\":[\"draining\"],\"draining\":true,"
             "\"in_flight\":%u}",
             in_flight);
    reply_json(req, 503, 1, text);
}
