/* The single writer: every database change and every audit record goes through one thread
 * that batches concurrent jobs into one transaction (group commit), so an fsync is shared
 * by all requests that arrived together. A job's change and its audit record commit
 * together or not at all. */
#ifndef SRV_WRITER_H
#define SRV_WRITER_H

#include "../store/db.h"
#include "audit.h"
#include "checkpoint.h"

typedef struct srv_writer srv_writer;

/* Runs inside the group transaction, in its own savepoint: makes its change and appends its
 * audit record(s) with srv_audit_append(db, audit, ...). A non-OK return rolls back this job
 * only (its change and its records). */
typedef srv_status (*srv_write_fn)(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err);

srv_status srv_writer_start(const char *db_path, srv_writer **out, srv_error *err);
/* Same; full_sync 0 is the opt-in audit_sync = normal: commits are not synced (SQLite WAL with
 * synchronous=NORMAL), so a power loss or OS crash may lose the last committed records,
 * signatures already handed out included. Default and srv_writer_start: 1, every commit is
 * on disk before any signature it records leaves. */
srv_status srv_writer_start_sync(const char *db_path, int full_sync, srv_writer **out,
                                 srv_error *err);
void srv_writer_stop(srv_writer *w);

/* Runs fn durably; returns after the commit. SRV_E_AUDIT means nothing was committed. */
srv_status srv_writer_run(srv_writer *w, srv_write_fn fn, void *ctx, srv_error *err);

/* Where a job's time went (monotonic ns, common/phase.h): queued by the caller, started and
 * ran (its fn, inside the group transaction), committed (COMMIT returned), and sync_ns, the
 * fsync/fdatasync time within that commit. */
typedef struct {
    uint64_t queued, started, ran, committed, sync_ns;
} srv_writer_timing;

/* srv_writer_run that also fills *timing (on success and failure alike). */
srv_status srv_writer_run_timed(srv_writer *w, srv_write_fn fn, void *ctx,
                                srv_writer_timing *timing, srv_error *err);

/* Appends one audit record durably; *seq (optional) receives its sequence number. */
srv_status srv_writer_audit(srv_writer *w, const srv_audit_event *ev, int64_t *seq, srv_error *err);

/* Turns on signed checkpoints (audit/checkpoint.h): the writer signs the chain head in the
 * group transaction once `records` records have followed the last checkpoint, or `seconds`
 * after it when any record has, and at stop. signer must outlive the writer. */
srv_status srv_writer_checkpoints(srv_writer *w, const srv_audit_signer *signer, unsigned records,
                                  unsigned seconds, srv_error *err);

/* The outcome of the latest group commit, for /healthz: whether a record could be made now. */
typedef struct {
    int ok;                 /* the latest commit succeeded (1 before the first) */
    unsigned long failures; /* consecutive failed commits up to now */
    uint64_t at_us;         /* monotonic time of the latest commit, 0 if none yet */
} srv_writer_commit_state;
void srv_writer_last_commit(srv_writer *w, srv_writer_commit_state *out);

/* Jobs waiting for the next group commit (not counting a batch being committed). */
unsigned srv_writer_queued(srv_writer *w);

/* Statistics for /metrics: commits and jobs committed. */
void srv_writer_stats(srv_writer *w, unsigned long *commits, unsigned long *jobs);

#endif
