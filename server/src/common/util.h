/* Small helpers: randomness, time, hashing, files with safe permissions. */
#ifndef SRV_UTIL_H
#define SRV_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SRV_SHA256_LEN 32

srv_status srv_random(uint8_t *out, size_t len, srv_error *err);
int64_t srv_now(void);    /* seconds since the epoch */
int64_t srv_now_ms(void); /* milliseconds since the epoch */
uint64_t srv_monotonic_us(void);
/* Waits on cond (created with CLOCK_MONOTONIC, lock held) for at most us microseconds. */
void srv_cond_wait_us(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t us);
/* RFC 3339 UTC with milliseconds; out holds at least 25 bytes. */
void srv_format_time_ms(int64_t ms, char *out, size_t out_len);

void srv_sha256(const void *data, size_t len, uint8_t out[SRV_SHA256_LEN]);
/* Constant-time comparison. */
int srv_equal_ct(const void *a, const void *b, size_t len);

/* Writes a whole file with the given mode via a temporary file and rename. */
srv_status srv_write_file(const char *path, const void *data, size_t len, unsigned mode,
                          srv_error *err);
/* Reads a whole file of at most max bytes (NUL-terminated for convenience). */
srv_status srv_read_file(const char *path, size_t max, char **out, size_t *out_len, srv_error *err);
/* Joins dir and name into out; fails if it does not fit. */
srv_status srv_path_join(char *out, size_t out_len, const char *dir, const char *name,
                         srv_error *err);

/* Lets a name such as a user or key name through only if it is [A-Za-z0-9._-]{1,max}. */
int srv_valid_name(const char *name, size_t max);

/* Fails with status and OpenSSL's reason appended, and clears its error queue so the entry
 * cannot be mistaken later for the cause of an unrelated failure on this thread. */
srv_status srv_ossl_fail(srv_error *err, srv_status status, const char *what);

/* Whether a configured database names a PostgreSQL database (a postgresql:// or postgres://
 * URL); anything else is a SQLite file's path. */
int srv_is_postgresql_url(const char *database);

#endif
