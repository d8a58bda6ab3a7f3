/* RFC 6238 TOTP; see totp.h. */
#include "totp.h"

#include <string.h>

void srv_totp_counter(uint64_t step, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(step & 0xff);
        step >>= 8;
    }
}

uint32_t srv_totp_truncate(const uint8_t hmac[20])
{
    unsigned off = hmac[19] & 0x0f;
    uint32_t bin = ((uint32_t)(hmac[off] & 0x7f) << 24) | ((uint32_t)hmac[off + 1] << 16) |
                   ((uint32_t)hmac[off + 2] << 8) | (uint32_t)hmac[off + 3];
    return bin % 1000000u;
}

void srv_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t buf = 0;
    int bits = 0;
    size_t o = 0;

    if (out_len == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5 && o + 1 < out_len) {
            out[o++] = alphabet[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0 && o + 1 < out_len)
        out[o++] = alphabet[(buf << (5 - bits)) & 31];
    out[o] = '\0';
}

int srv_totp_parse(const char *text, uint32_t *code)
{
    uint32_t v = 0;
    if (!text || strlen(text) != SRV_TOTP_DIGITS)
        return 0;
    for (int i = 0; i < SRV_TOTP_DIGITS; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        v = v * 10 + (uint32_t)(text[i] - '0');
    }
    *code = v;
    return 1;
}

srv_status srv_totp_match(srv_totp_hmac_fn hmac, void *ctx, uint64_t now_step, uint64_t after_step,
                          uint32_t code, uint64_t *step, int *replayed, srv_error *err)
{
    uint64_t first = now_step >= SRV_TOTP_SKEW_STEPS ? now_step - SRV_TOTP_SKEW_STEPS : 0;
    *replayed = 0;
    for (uint64_t s = first; s <= now_step + SRV_TOTP_SKEW_STEPS; s++) {
        uint8_t counter[8], mac[20];
        srv_status st;
        srv_totp_counter(s, counter);
        if ((st = hmac(ctx, counter, mac, err)) != SRV_OK)
            return st;
        if (srv_totp_truncate(mac) != code)
            continue;
        if (s <= after_step) {
            *replayed = 1;
            continue;
        }
        *step = s;
        return SRV_OK;
    }
    return srv_fail(err, SRV_E_NOT_FOUND, "the code matches no current time step");
}
