/* Audit volume of unauthenticated requests. Anyone who can reach the port can make the server
 * refuse a request, and every refusal used to be a synced audit record holding the whole
 * path: an anonymous client could grow the log without bound. Here:
 *  - the first `burst` refusals of one (source address, error code) in a window are recorded
 *    one by one, as before, so a single failed authentication is always recorded at once;
 *  - beyond that, refusals are counted, and the count is written as one aggregated record
 *    ("audit.denials", a real record of the chain) when the window ends;
 *  - each source address has a ceiling of individual records per window (4 x burst, over all
 *    its codes) and so do all sources together (16 x burst); past them refusals are
 *    aggregated too; the bucket table is bounded, overflowing sources share one bucket.
 * srv_audit_cap_detail() bounds what such a record may hold. */
#ifndef SRV_AUDIT_DENIALS_H
#define SRV_AUDIT_DENIALS_H

#include <cjson/cJSON.h>

#include "../common/status.h"
#include "writer.h"

/* Bytes an unauthenticated request may put into one string of an audit record. */
#define SRV_AUDIT_ANON_FIELD_MAX 256
/* Bytes of a whole unauthenticated denial record's detail. */
#define SRV_AUDIT_ANON_DETAIL_MAX 2048

typedef struct srv_denials srv_denials;

/* Starts the aggregator and its flush thread; aggregated records go through w. */
srv_status srv_denials_start(srv_writer *w, unsigned window_seconds, unsigned burst,
                             srv_denials **out, srv_error *err);
/* Writes every pending aggregate, then stops. Call before the writer stops. */
void srv_denials_stop(srv_denials *d);

/* Called for each refusal of an unauthenticated request. Returns 1 if the caller must write
 * its individual record now, 0 if it was counted into an aggregate (written later). */
int srv_denials_admit(srv_denials *d, const char *peer, const char *code, const char *action,
                      const char *path);

/* Truncates every string in detail (recursively) longer than max bytes on a UTF-8 character
 * boundary, appends "..." and adds "<name>_length" (the original byte count) next to it. */
void srv_audit_truncate_strings(cJSON *detail, size_t max);

#endif
