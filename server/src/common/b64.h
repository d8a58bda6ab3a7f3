/* Strict base64 (RFC 4648 section 4, padded) and base64url (section 5, unpadded) codecs.
 * Decoding rejects whitespace, bad padding, non-zero trailing bits and output over a cap. */
#ifndef SRV_B64_H
#define SRV_B64_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Returns a NUL-terminated string the caller frees, or NULL on allocation failure. */
char *srv_b64_encode(const uint8_t *data, size_t len);
char *srv_b64url_encode(const uint8_t *data, size_t len);

/* Decodes into a new buffer (*out, *out_len) of at most max_out bytes. */
srv_status srv_b64_decode(const char *text, size_t text_len, size_t max_out, uint8_t **out,
                          size_t *out_len, srv_error *err);
srv_status srv_b64url_decode(const char *text, size_t text_len, size_t max_out, uint8_t **out,
                             size_t *out_len, srv_error *err);

/* Lowercase hex; out must hold 2*len+1 bytes. */
void srv_hex_encode(const uint8_t *data, size_t len, char *out);

#endif
