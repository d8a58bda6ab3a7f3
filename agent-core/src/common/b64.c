/* Base64 for the agent side: strict decoding (padding required, no stray characters). */
#include "b64.h"

#include <stdlib.h>
#include <string.h>

static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *encode(const uint8_t *in, size_t len, const char *alphabet, int pad)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1), *p = out;
    size_t i;
    if (!out)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = alphabet[v >> 18 & 63];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = alphabet[v >> 6 & 63];
        *p++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *p++ = alphabet[v >> 18 & 63];
        *p++ = alphabet[v >> 12 & 63];
        if (i + 1 < len)
            *p++ = alphabet[v >> 6 & 63];
        else if (pad)
            *p++ = '=';
        if (pad)
            *p++ = '=';
    }
    *p = '\0';
    return out;
}

char *b64_encode(const uint8_t *in, size_t len)
{
    return encode(in, len, tbl, 1);
}

char *b64url_encode(const uint8_t *in, size_t len)
{
    return encode(in, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 0);
}

int b64_decode(const char *in, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(in), o = 0, pad = 0;
    uint32_t acc = 0;
    if (n % 4)
        return -1;
    if (n && in[n - 1] == '=')
        pad++;
    if (n > 1 && in[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        const char *p = strchr(tbl, in[i]);
        if (!p || !in[i])
            return -1;
        acc = acc << 6 | (uint32_t)(p - tbl);
        if (i % 4 == 3) {
            if (o + 3 > cap)
                return -1;
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (pad) {
        size_t extra = 3 - pad;
        if (o + extra > cap)
            return -1;
        acc <<= 6 * pad;
        out[o++] = (uint8_t)(acc >> 16);
        if (extra == 2)
            out[o++] = (uint8_t)(acc >> 8);
    }
    *len = o;
    return 0;
}
