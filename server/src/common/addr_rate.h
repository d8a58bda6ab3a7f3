/* A token bucket per remote address, for work an unauthenticated client can ask for that
 * costs more than a refusal (a timestamp token: an HSM signature, a synced audit record).
 * Bounded: a fixed table of buckets; addresses that hash to one slot share its bucket (a
 * stricter limit for both, never a looser one). A total bucket bounds all addresses together. */
#ifndef SRV_COMMON_ADDR_RATE_H
#define SRV_COMMON_ADDR_RATE_H

typedef struct srv_addr_rate srv_addr_rate;

/* per_addr and total: sustained requests a second (each bucket holds two seconds' worth);
 * 0 turns that bound off. NULL when out of memory. */
srv_addr_rate *srv_addr_rate_new(double per_addr, double total);
void srv_addr_rate_free(srv_addr_rate *r);

/* 1 if a request from peer may go ahead now (it takes one token from the address's bucket and
 * one from the total), 0 if either bucket is empty (nothing is taken). */
int srv_addr_rate_take(srv_addr_rate *r, const char *peer);

#endif
