/* The server's names for the strict base64/base64url codec of common/ (signum/common/b64.h),
 * with its errors as srv_status: SRV_E_BAD_BASE64 for any malformed or oversized text. */
#ifndef SRV_B64_H
#define SRV_B64_H

#include <stddef.h>
#include <stdint.h>

#include "signum/common/b64.h"
#include "status.h"

/* Returns a NUL-terminated string the caller frees, or NULL on allocation failure. */
static inline char *srv_b64_encode(const uint8_t *data, size_t len)
{
    return sgc_b64_encode(data, len);
}

static inline char *srv_b64url_encode(const uint8_t *data, size_t len)
{
    return sgc_b64url_encode(data, len);
}

static inline srv_status srv_b64_status(int rc, const char *why, srv_error *err)
{
    if (rc == SGC_OK)
        return SRV_OK;
    return srv_fail(err, rc == SGC_E_NOMEM ? SRV_E_NOMEM : SRV_E_BAD_BASE64, "%s", why);
}

/* Decodes into a new buffer (*out, *out_len) of at most max_out bytes. */
static inline srv_status srv_b64_decode(const char *text, size_t text_len, size_t max_out,
                                        uint8_t **out, size_t *out_len, srv_error *err)
{
    char why[sizeof(err->message)] = "";
    return srv_b64_status(
        sgc_b64_decode_alloc(text, text_len, SGC_B64, max_out, out, out_len, why, sizeof(why)), why,
        err);
}

static inline srv_status srv_b64url_decode(const char *text, size_t text_len, size_t max_out,
                                           uint8_t **out, size_t *out_len, srv_error *err)
{
    char why[sizeof(err->message)] = "";
    return srv_b64_status(
        sgc_b64_decode_alloc(text, text_len, SGC_B64URL, max_out, out, out_len, why, sizeof(why)),
        why, err);
}

/* Lowercase hex; out must hold 2*len+1 bytes. */
static inline void srv_hex_encode(const uint8_t *data, size_t len, char *out)
{
    sgc_hex_encode(data, len, out);
}

#endif
