/* Strict base64 (RFC 4648 section 4, padded) and base64url (section 5, unpadded). Decoding
 * refuses whitespace, misplaced or missing padding, non-zero trailing bits and output over
 * a cap, so one value has exactly one text. */
#ifndef SGC_B64_H
#define SGC_B64_H

#include <stddef.h>
#include <stdint.h>

#include "rc.h"

typedef enum { SGC_B64, SGC_B64URL } sgc_b64_alphabet;

/* A NUL-terminated string the caller frees, or NULL (allocation failure). */
char *sgc_b64_encode(const uint8_t *data, size_t len);
char *sgc_b64url_encode(const uint8_t *data, size_t len);

/* Decodes text[0..len) into out (at most cap bytes), *out_len the decoded length.
 * SGC_OK, SGC_E_FORMAT or SGC_E_TOO_LARGE; why (if not NULL) gets a short reason. */
int sgc_b64_decode(const char *text, size_t len, sgc_b64_alphabet alphabet, uint8_t *out,
                   size_t cap, size_t *out_len, char *why, size_t why_len);

/* The same into a new buffer (*out, freed by the caller; never NULL on success) of at most
 * max_out bytes; also SGC_E_NOMEM. On failure *out is NULL and *out_len 0. */
int sgc_b64_decode_alloc(const char *text, size_t len, sgc_b64_alphabet alphabet, size_t max_out,
                         uint8_t **out, size_t *out_len, char *why, size_t why_len);

/* Lowercase hex; out must hold 2*len+1 bytes. */
void sgc_hex_encode(const uint8_t *data, size_t len, char *out);

#endif
