/* Query-string parameters of GET calls: integers and percent-decoded text, each bounded and
 * refused with invalid_field naming the parameter. */
#include <string.h>

#include "../common/util.h"
#include "internal.h"

/* The raw value of query parameter `name`, or NULL; *len receives its length. A parameter
 * given twice is ambiguous and refused. */
static srv_status query_raw(const char *query, const char *name, const char **out, size_t *len,
                            srv_error *err)
{
    size_t n = strlen(name);
    const char *p = query;
    *out = NULL;
    while (p && *p) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            if (*out)
                return srv_fail(err, SRV_E_INVALID_FIELD, "query parameter %s is given twice",
                                name);
            *out = p + n + 1;
            *len = strcspn(*out, "&");
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return SRV_OK;
}

/* A query parameter as plain decimal digits: dflt when absent, values over clamp_max lowered
 * to it; anything else (sign, junk, empty, out of [min, max]) is invalid_field naming it. */
srv_status api_query_int(const char *query, const char *name, long long dflt, long long min,
                         long long max, long long clamp_max, long long *out, srv_error *err)
{
    const char *v;
    size_t len = 0, digits;
    unsigned long long x = 0;
    srv_status st = query_raw(query, name, &v, &len, err);

    *out = dflt;
    if (st != SRV_OK || !v)
        return st;
    digits = strspn(v, "0123456789");
    /* At most 19 digits: below 10^19, so x never wraps. */
    for (size_t i = 0; i < digits && i < 19; i++)
        x = x * 10 + (unsigned long long)(v[i] - '0');
    if (digits == 0 || digits != len || digits > 19 || x > (unsigned long long)max ||
        (long long)x < min)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "query parameter %s must be an integer from %lld to %lld", name, min, max);
    *out = (long long)x > clamp_max ? clamp_max : (long long)x;
    return SRV_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A text filter, percent-decoded ('+' is a space) into out: at most API_QUERY_VALUE_MAX bytes of
 * UTF-8 without control characters. */
srv_status api_query_text(const char *query, const char *name, char *out, const char **value,
                          srv_error *err)
{
    const char *v;
    size_t len = 0, n = 0;
    srv_status st = query_raw(query, name, &v, &len, err);

    *value = NULL;
    if (st != SRV_OK || !v)
        return st;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)v[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(v[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(v[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return srv_fail(err, SRV_E_INVALID_FIELD,
                                "query parameter %s has a broken %%-escape", name);
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (n == API_QUERY_VALUE_MAX || c < 0x20 || c == 0x7f)
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "query parameter %s must be 1-%d bytes without control characters",
                            name, API_QUERY_VALUE_MAX);
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (n == 0 || !srv_utf8_valid(out, n))
        return srv_fail(err, SRV_E_INVALID_FIELD, "query parameter %s must be 1-%d bytes of UTF-8",
                        name, API_QUERY_VALUE_MAX);
    *value = out;
    return SRV_OK;
}
