/* Strict base64/base64url: the encoder is trivial; the decoder refuses anything ambiguous. */
#include "signum/common/b64.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *encode(const uint8_t *data, size_t len, const char *alphabet, int pad)
{
    size_t o = 0, i;
    char *out;

    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        if (i + 1 < len)
            out[o++] = alphabet[v >> 6 & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

char *sgc_b64_encode(const uint8_t *data, size_t len)
{
    return encode(data, len, b64_std, 1);
}

char *sgc_b64url_encode(const uint8_t *data, size_t len)
{
    return encode(data, len, b64_url, 0);
}

static int sextet(char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

SGC_PRINTF(4, 5) static int fail(int rc, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* The decoded length of a well-formed text, checking its length and padding only. */
static int measure(const char *text, size_t len, int url, size_t *data_len, size_t *n, char *why,
                   size_t why_len)
{
    size_t d = len, rem;
    if (!url) {
        if (len % 4 != 0)
            return fail(SGC_E_FORMAT, why, why_len, "base64 length %zu is not a multiple of 4",
                        len);
        while (d > 0 && len - d < 2 && text[d - 1] == '=')
            d--;
    }
    rem = d % 4;
    if (rem == 1)
        return fail(SGC_E_FORMAT, why, why_len, "base64 has a dangling character");
    *data_len = d;
    *n = d / 4 * 3 + (rem ? rem - 1 : 0);
    return SGC_OK;
}

int sgc_b64_decode(const char *text, size_t len, sgc_b64_alphabet alphabet, uint8_t *out,
                   size_t cap, size_t *out_len, char *why, size_t why_len)
{
    int url = alphabet == SGC_B64URL, rc;
    size_t data_len, n, o = 0, i;

    *out_len = 0;
    if ((rc = measure(text, len, url, &data_len, &n, why, why_len)) != SGC_OK)
        return rc;
    if (n > cap)
        return fail(SGC_E_TOO_LARGE, why, why_len, "decoded value exceeds %zu bytes", cap);
    for (i = 0; i < data_len; i += 4) {
        int s[4] = {0, 0, 0, 0};
        size_t k, chunk = data_len - i < 4 ? data_len - i : 4;
        uint32_t v;
        for (k = 0; k < chunk; k++)
            if ((s[k] = sextet(text[i + k], url)) < 0)
                return fail(SGC_E_FORMAT, why, why_len, "invalid base64 character at offset %zu",
                            i + k);
        v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
        /* Trailing bits of a short final group must be zero, or two texts decode alike. */
        if ((chunk == 2 && (v & 0xffff)) || (chunk == 3 && (v & 0xff)))
            return fail(SGC_E_FORMAT, why, why_len, "non-canonical base64 padding bits");
        out[o++] = v >> 16 & 0xff;
        if (chunk > 2)
            out[o++] = v >> 8 & 0xff;
        if (chunk > 3)
            out[o++] = v & 0xff;
    }
    *out_len = o;
    return SGC_OK;
}

int sgc_b64_decode_alloc(const char *text, size_t len, sgc_b64_alphabet alphabet, size_t max_out,
                         uint8_t **out, size_t *out_len, char *why, size_t why_len)
{
    size_t data_len, n;
    uint8_t *buf;
    int rc;

    *out = NULL;
    *out_len = 0;
    if ((rc = measure(text, len, alphabet == SGC_B64URL, &data_len, &n, why, why_len)) != SGC_OK)
        return rc;
    if (n > max_out)
        return fail(SGC_E_TOO_LARGE, why, why_len, "decoded value exceeds %zu bytes", max_out);
    if (!(buf = malloc(n ? n : 1)))
        return fail(SGC_E_NOMEM, why, why_len, "out of memory");
    if ((rc = sgc_b64_decode(text, len, alphabet, buf, n, out_len, why, why_len)) != SGC_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return SGC_OK;
}

void sgc_hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}
