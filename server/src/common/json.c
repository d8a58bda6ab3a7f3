/* Bounded JSON parsing and typed field access over cJSON. */
#include "json.h"

#include <math.h>
#include <string.h>

int srv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p, n, cp, i;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        if ((size_t)(end - p) <= n)
            return 0;
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* Finds a \u0000 escape; backslashes only occur inside strings in valid JSON. */
static int has_escaped_nul(const char *data, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (data[i] != '\\')
            continue;
        if (data[i + 1] == 'u' && i + 5 < len && memcmp(data + i + 2, "0000", 4) == 0)
            return 1;
        i++; /* skip the escaped character: an escaped backslash before u0000 is text */
    }
    return 0;
}

srv_status srv_json_parse_object(const char *data, size_t len, size_t max_len, cJSON **out,
                                 srv_error *err)
{
    const char *end = NULL;
    cJSON *doc;

    *out = NULL;
    if (len > max_len)
        return srv_fail(err, SRV_E_BODY_TOO_LARGE,
                        "JSON body of %zu bytes exceeds the %zu-byte cap", len, max_len);
    if (len == 0)
        return srv_fail(err, SRV_E_BAD_JSON, "empty body; a JSON object is required");
    if (memchr(data, '\0', len))
        return srv_fail(err, SRV_E_BAD_JSON, "body contains a NUL byte");
    if (!srv_utf8_valid(data, len))
        return srv_fail(err, SRV_E_BAD_JSON, "body is not valid UTF-8");
    doc = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!doc) {
        size_t at = end && end >= data ? (size_t)(end - data) : 0;
        return srv_fail(err, SRV_E_BAD_JSON, "malformed JSON near byte %zu", at);
    }
    /* cJSON stops at the end of the first value: anything but whitespace after it is an error. */
    for (; end && end < data + len; end++) {
        if (!strchr(" \t\r\n", *end)) {
            cJSON_Delete(doc);
            return srv_fail(err, SRV_E_BAD_JSON, "trailing data after JSON value at byte %zu",
                            (size_t)(end - data));
        }
    }
    if (has_escaped_nul(data, len)) {
        cJSON_Delete(doc);
        return srv_fail(err, SRV_E_BAD_JSON, "strings may not contain \\u0000");
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return srv_fail(err, SRV_E_BAD_JSON, "top-level JSON value must be an object");
    }
    *out = doc;
    return SRV_OK;
}

srv_status srv_json_check_fields(const cJSON *obj, const char *const *allowed, srv_error *err)
{
    const cJSON *item, *other;
    for (item = obj->child; item; item = item->next) {
        const char *const *a;
        int known = 0;
        for (a = allowed; *a; a++)
            if (item->string && strcmp(*a, item->string) == 0)
                known = 1;
        if (!known)
            return srv_fail(err, SRV_E_UNKNOWN_FIELD, "unknown field \"%.64s\"",
                            item->string ? item->string : "");
        for (other = item->next; other; other = other->next)
            if (other->string && strcmp(other->string, item->string) == 0)
                return srv_fail(err, SRV_E_INVALID_FIELD, "duplicate field \"%.64s\"",
                                item->string);
    }
    return SRV_OK;
}

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

srv_status srv_json_get_string(const cJSON *obj, const char *name, int required, size_t max_len,
                               const char **out, srv_error *err)
{
    const cJSON *item = member(obj, name);
    if (!item || cJSON_IsNull(item)) {
        if (required)
            return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" is required", name);
        return SRV_OK;
    }
    if (!cJSON_IsString(item) || !item->valuestring)
        return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" must be a string", name);
    if (strlen(item->valuestring) > max_len)
        return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" exceeds %zu characters", name,
                        max_len);
    *out = item->valuestring;
    return SRV_OK;
}

srv_status srv_json_get_int(const cJSON *obj, const char *name, int required, long long min,
                            long long max, long long *out, srv_error *err)
{
    const cJSON *item = member(obj, name);
    double v;
    if (!item || cJSON_IsNull(item)) {
        if (required)
            return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" is required", name);
        return SRV_OK;
    }
    if (!cJSON_IsNumber(item))
        return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" must be a number", name);
    v = item->valuedouble;
    if (!isfinite(v) || v != floor(v) || v < (double)min || v > (double)max)
        return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" must be an integer in [%lld, %lld]",
                        name, min, max);
    *out = (long long)v;
    return SRV_OK;
}

srv_status srv_json_get_bool(const cJSON *obj, const char *name, int required, int *out,
                             srv_error *err)
{
    const cJSON *item = member(obj, name);
    if (!item || cJSON_IsNull(item)) {
        if (required)
            return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" is required", name);
        return SRV_OK;
    }
    if (!cJSON_IsBool(item))
        return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" must be true or false", name);
    *out = cJSON_IsTrue(item);
    return SRV_OK;
}

char *srv_json_print(const cJSON *obj)
{
    return cJSON_PrintUnformatted(obj);
}
