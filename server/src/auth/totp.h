/* Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30 s steps.
 * The HMAC itself is computed by whoever holds the secret (the HSM), through a callback. */
#ifndef SRV_TOTP_H
#define SRV_TOTP_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

#define SRV_TOTP_SECRET_LEN 20 /* 160 bits, as RFC 4226 recommends */
#define SRV_TOTP_PERIOD     30
#define SRV_TOTP_DIGITS     6
#define SRV_TOTP_SKEW_STEPS 1 /* a code of the step before or after is accepted too */
/* Base32 of a secret, NUL included. */
#define SRV_TOTP_BASE32_MAX ((SRV_TOTP_SECRET_LEN * 8 + 4) / 5 + 1)

/* The moving factor of a step, 8 bytes big-endian. */
void srv_totp_counter(uint64_t step, uint8_t out[8]);
/* RFC 4226 section 5.3: dynamic truncation of an HMAC-SHA-1 to a 6-digit code. */
uint32_t srv_totp_truncate(const uint8_t hmac[20]);
/* RFC 4648 base32 without padding, upper case; out_len must be at least
 * (len * 8 + 4) / 5 + 1. */
void srv_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_len);
/* A code as typed: exactly 6 ASCII digits (spaces inside are not accepted). */
int srv_totp_parse(const char *text, uint32_t *code);

typedef srv_status (*srv_totp_hmac_fn)(void *ctx, const uint8_t counter[8], uint8_t out[20],
                                       srv_error *err);
/* Finds the step in now_step - SKEW .. now_step + SKEW (never at or below after_step, which
 * makes a code usable once) whose code is `code`. SRV_E_NOT_FOUND if none; *replayed is set
 * when the code matches a step at or below after_step. */
srv_status srv_totp_match(srv_totp_hmac_fn hmac, void *ctx, uint64_t now_step, uint64_t after_step,
                          uint32_t code, uint64_t *step, int *replayed, srv_error *err);

#endif
