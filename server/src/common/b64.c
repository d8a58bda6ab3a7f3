/* Strict base64/base64url: the encoder is trivial; the decoder refuses anything ambiguous. */
#include "b64.h"

#include <stdlib.h>
#include <string.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *encode(const uint8_t *data, size_t len, const char *alphabet, int pad)
{
    size_t out_len = 4 * ((len + 2) / 3) + 1, o = 0, i;
    char *out = malloc(out_len);
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

char *srv_b64_encode(const uint8_t *data, size_t len)
{
    return encode(data, len, b64_std, 1);
}

char *srv_b64url_encode(const uint8_t *data, size_t len)
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

static srv_status decode(const char *text, size_t len, size_t max_out, int url, uint8_t **out,
                         size_t *out_len, srv_error *err)
{
    size_t data_len = len, full, rem, n, o = 0, i;
    uint8_t *buf;

    *out = NULL;
    *out_len = 0;
    if (!url) {
        if (len % 4 != 0)
            return srv_fail(err, SRV_E_BAD_BASE64, "base64 length %zu is not a multiple of 4", len);
        while (data_len > 0 && len - data_len < 2 && text[data_len - 1] == '=')
            data_len--;
    }
    rem = data_len % 4;
    if (rem == 1)
        return srv_fail(err, SRV_E_BAD_BASE64, "base64 has a dangling character");
    full = data_len / 4;
    n = full * 3 + (rem ? rem - 1 : 0);
    if (n > max_out)
        return srv_fail(err, SRV_E_BAD_BASE64, "decoded value exceeds %zu bytes", max_out);
    buf = malloc(n ? n : 1);
    if (!buf)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    for (i = 0; i < data_len; i += 4) {
        int s[4] = {0, 0, 0, 0};
        size_t k, chunk = data_len - i < 4 ? data_len - i : 4;
        uint32_t v;
        for (k = 0; k < chunk; k++) {
            s[k] = sextet(text[i + k], url);
            if (s[k] < 0) {
                free(buf);
                return srv_fail(err, SRV_E_BAD_BASE64, "invalid base64 character at offset %zu",
                                i + k);
            }
        }
        v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
        buf[o++] = v >> 16 & 0xff;
        if (chunk > 2)
            buf[o++] = v >> 8 & 0xff;
        if (chunk > 3)
            buf[o++] = v & 0xff;
        /* Trailing bits of a short final group must be zero, or two texts decode alike. */
        if ((chunk == 2 && (v & 0xffff)) || (chunk == 3 && (v & 0xff))) {
            free(buf);
            return srv_fail(err, SRV_E_BAD_BASE64, "non-canonical base64 padding bits");
        }
    }
    *out = buf;
    *out_len = o;
    return SRV_OK;
}

srv_status srv_b64_decode(const char *text, size_t text_len, size_t max_out, uint8_t **out,
                          size_t *out_len, srv_error *err)
{
    return decode(text, text_len, max_out, 0, out, out_len, err);
}

srv_status srv_b64url_decode(const char *text, size_t text_len, size_t max_out, uint8_t **out,
                             size_t *out_len, srv_error *err)
{
    return decode(text, text_len, max_out, 1, out, out_len, err);
}

void srv_hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}
