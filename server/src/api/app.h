/* The running server's shared state, built by `serve` and read by every worker. */
#ifndef SRV_APP_H
#define SRV_APP_H

#include <openssl/ssl.h>
#include <stdatomic.h>

#include "../audit/denials.h"
#include "../audit/writer.h"
#include "../auth/oidc.h"
#include "../ca/ca.h"
#include "../config.h"
#include "../hsm/hsm.h"
#include "../store/db.h"

typedef struct {
    srv_config cfg;
    srv_hsm *hsm;
    srv_writer *writer;
    srv_denials *denial_log; /* audit volume of unauthenticated refusals */
    srv_key ca_key;          /* the CA's key row (SPKI owned here) */
    srv_ca ca;               /* points into ca_key; cert owned here */
    char *ca_pem;            /* the CA certificate as PEM, for chains */
    SSL_CTX *tls;
    srv_oidc *oidc; /* NULL when oidc_config is not set */
    int64_t started_at;
    atomic_ulong requests, signatures, denials;
    /* Where relying parties reach this server (CRL distribution points): public_url from the
     * config, else https://localhost:PORT once the port is known. */
    char public_url[SRV_PUBLIC_URL_MAX + 1];
    struct srv_jobs *jobs; /* the signing job workers (api/jobs.h); NULL before they start */
    struct srv_tsa *tsa;   /* the time-stamping authority (tsa/tsa.h); NULL when tsa = off */
    struct srv_addr_rate *tsa_rate; /* the open TSA's per-address bound (common/addr_rate.h) */
    struct srv_alerts *alerts;      /* alerts/alerts.h; NULL when no alerts are configured */
} srv_app;

/* Sets app->public_url once listening on port (before any request is served). */
void srv_app_set_public_url(srv_app *app, int port);

/* What each worker thread owns. */
typedef struct {
    srv_app *app;
    srv_db *db; /* a read connection */
} srv_worker;

#endif
