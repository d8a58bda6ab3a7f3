/* Object ids of the published keychain items, derived from the key's certificate so an id
 * never names a different key, and the configured list of key names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgtk.h"
#include "signum/crypto.h"

static const char *const prefixes[] = {
    [SGTK_OBJ_KEY] = "signum-key:", [SGTK_OBJ_CERT] = "signum-cert:"};

sgtk_error sgtk_object_id(sgtk_obj_kind kind, const uint8_t *cert, size_t cert_len,
                          char out[SGTK_OBJECT_ID_MAX])
{
    uint8_t h[SG_MAX_DIGEST];
    size_t hlen = sizeof(h);
    int n;

    if ((kind != SGTK_OBJ_KEY && kind != SGTK_OBJ_CERT) || !cert || !cert_len ||
        sg_digest(SG_HASH_SHA256, cert, cert_len, h, &hlen) != SG_OK)
        return SGTK_E_BAD_PARAMETER;
    n = snprintf(out, SGTK_OBJECT_ID_MAX, "%s", prefixes[kind]);
    for (size_t i = 0; i < hlen; i++)
        n += snprintf(out + n, SGTK_OBJECT_ID_MAX - (size_t)n, "%02x", h[i]);
    return SGTK_OK;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

sgtk_error sgtk_object_id_parse(const char *id, size_t id_len, sgtk_obj_kind *kind,
                                uint8_t cert_sha256[32])
{
    for (int k = SGTK_OBJ_KEY; k <= SGTK_OBJ_CERT; k++) {
        size_t plen = strlen(prefixes[k]);
        if (!id || id_len != plen + 64 || memcmp(id, prefixes[k], plen) != 0)
            continue;
        for (size_t i = 0; i < 32; i++) {
            int hi = hexval(id[plen + 2 * i]), lo = hexval(id[plen + 2 * i + 1]);
            if (hi < 0 || lo < 0)
                return SGTK_E_OBJECT_NOT_FOUND;
            cert_sha256[i] = (uint8_t)(hi << 4 | lo);
        }
        *kind = (sgtk_obj_kind)k;
        return SGTK_OK;
    }
    return SGTK_E_OBJECT_NOT_FOUND;
}

/* A key name as the server allows it, and nothing that could break the one-a-line list. */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c == 0x7f)
            return 0;
    }
    return 1;
}

size_t sgtk_names_split(const char *text, char names[][65], size_t max)
{
    size_t count = 0;
    const char *p = text ? text : "";
    while (*p && count < max) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && len <= 64) {
            memcpy(names[count], p, len);
            names[count][len] = '\0';
            if (name_ok(names[count]))
                count++;
        }
        p += len + (end ? 1 : 0);
    }
    return count;
}

sgtk_error sgtk_names_apply(const char *current, sgtk_names_op op, const char *name, char **out,
                            char *why, size_t why_len)
{
    char names[SGTK_NAMES_MAX][65];
    size_t count, pos = 0;
    int found = 0;
    char *text;

    *out = NULL;
    if (!name || !name_ok(name)) {
        snprintf(why, why_len, "a key name has 1 to 64 bytes, no spaces or control characters");
        return SGTK_E_BAD_PARAMETER;
    }
    count = sgtk_names_split(current, names, SGTK_NAMES_MAX);
    for (size_t i = 0; i < count; i++)
        found |= !strcmp(names[i], name);
    if (op == SGTK_NAMES_REMOVE && !found) {
        snprintf(why, why_len, "%s is not in the keychain", name);
        return SGTK_E_OBJECT_NOT_FOUND;
    }
    if (op == SGTK_NAMES_ADD && !found && count == SGTK_NAMES_MAX) {
        snprintf(why, why_len, "at most %d keys are in the keychain at once", SGTK_NAMES_MAX);
        return SGTK_E_BAD_PARAMETER;
    }
    text = malloc((count + 1) * 66 + 1);
    if (!text) {
        snprintf(why, why_len, "out of memory");
        return SGTK_E_COMMUNICATION;
    }
    for (size_t i = 0; i < count; i++) {
        if (op == SGTK_NAMES_REMOVE && !strcmp(names[i], name))
            continue;
        pos += (size_t)sprintf(text + pos, "%s\n", names[i]);
    }
    if (op == SGTK_NAMES_ADD && !found)
        pos += (size_t)sprintf(text + pos, "%s\n", name);
    text[pos] = '\0';
    *out = text;
    return SGTK_OK;
}
