/* RFC 3339 timestamps <-> seconds since 1970 (UTC), without timegm (not on Windows). */
#ifndef SGC_RFC3339_H
#define SGC_RFC3339_H

#include <stddef.h>
#include <stdint.h>

#include "rc.h"

/* Only "YYYY-MM-DDTHH:MM:SSZ" exactly (what the server writes and its policies hold). Without
 * this flag also 't' or ' ' for 'T', 'z', fractions of a second (dropped) and a "+HH:MM" or
 * "-HH:MM" offset are accepted. */
#define SGC_RFC3339_UTC_ONLY 1u

/* SGC_OK with *out set, or SGC_E_FORMAT: not that form, a field out of range (second 60 is
 * allowed for a leap second), a day the month does not have, or a year before 1970. */
int sgc_rfc3339_parse(const char *s, unsigned flags, int64_t *out);

/* Milliseconds since 1970 of what sgc_rfc3339_parse takes without SGC_RFC3339_UTC_ONLY, the
 * fraction kept to the millisecond (further digits dropped): the server's record times,
 * "YYYY-MM-DDTHH:MM:SS.mmmZ". SGC_OK with *out_ms set, or SGC_E_FORMAT. */
int sgc_rfc3339_parse_ms(const char *s, int64_t *out_ms);

/* "YYYY-MM-DDTHH:MM:SSZ" into out (at least SGC_RFC3339_LEN + 1 bytes): SGC_OK, or
 * SGC_E_FORMAT for a time before 1970 or after 9999 or an out too small ("" then). */
#define SGC_RFC3339_LEN 20
int sgc_rfc3339_format(int64_t t, char *out, size_t out_len);

#endif
