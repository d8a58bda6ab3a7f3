/* The signing job workers of one node (job_worker.c): a few threads that claim chunks of
 * queued digests (store/job_db.h) from the shared database, sign them in the HSM and commit
 * each chunk's signatures with one audit record per signature. Any node's workers take any
 * node's jobs; a chunk whose node died is claimed again once its lease has expired. */
#ifndef SRV_API_JOBS_H
#define SRV_API_JOBS_H

#include "app.h"

/* Digests a worker claims at once: signed, then committed together. */
#define SRV_JOB_CHUNK 64

typedef struct srv_jobs srv_jobs;

/* Starts app->cfg.job_workers workers (none: *out still usable, for the waits). */
srv_status srv_jobs_start(srv_app *app, srv_jobs **out, srv_error *err);
/* Lets each worker finish its chunk, then joins them. NULL is fine. */
void srv_jobs_stop(srv_jobs *jobs);
/* A job was queued on this node: wake the workers now rather than at their next look. */
void srv_jobs_notify(srv_jobs *jobs);
/* Sleeps until this node's workers committed a chunk or ms milliseconds passed (a long poll
 * looks at the database again after each). */
void srv_jobs_wait(srv_jobs *jobs, unsigned ms);

#endif
