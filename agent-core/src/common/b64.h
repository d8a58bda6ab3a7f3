/* Base64 (RFC 4648 section 4, padded) and base64url for the agent and signum-util. */
#ifndef SG_B64_H
#define SG_B64_H

#include <stddef.h>
#include <stdint.h>

/* Returns a malloc'd NUL-terminated string, or NULL. */
char *b64_encode(const uint8_t *in, size_t len);
/* Base64url (section 5) without padding, as JOSE uses it. */
char *b64url_encode(const uint8_t *in, size_t len);
/* Strict decode into out (cap bytes): 0 ok, -1 malformed or too long. */
int b64_decode(const char *in, uint8_t *out, size_t cap, size_t *len);

#endif
