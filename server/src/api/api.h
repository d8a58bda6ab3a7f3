/* The REST API (v1): routing, authentication and the handlers. Documented in server/API.md. */
#ifndef SRV_API_H
#define SRV_API_H

#include "../http/http.h"

void *srv_api_worker_init(void *app);
void srv_api_worker_fini(void *worker);
void srv_api_handle(void *worker, srv_http_exchange *ex);

#endif
