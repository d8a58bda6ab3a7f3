/* Typed, bounded access to JSON request bodies (cJSON underneath). Every getter names the
 * field in its error so a client learns exactly what was wrong. */
#ifndef SRV_JSON_H
#define SRV_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "status.h"

/* Parses a document of at most max_len bytes whose top level must be an object. The text
 * must be UTF-8 and may not contain \u0000, which cJSON would silently truncate at. */
srv_status srv_json_parse_object(const char *data, size_t len, size_t max_len, cJSON **out,
                                 srv_error *err);

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
int srv_utf8_valid(const char *s, size_t len);

/* Refuses members not in the NULL-terminated allow list, and duplicate members. */
srv_status srv_json_check_fields(const cJSON *obj, const char *const *allowed, srv_error *err);

/* Getters: a missing optional member leaves *out untouched and returns SRV_OK. */
srv_status srv_json_get_string(const cJSON *obj, const char *name, int required, size_t max_len,
                               const char **out, srv_error *err);
srv_status srv_json_get_int(const cJSON *obj, const char *name, int required, long long min,
                            long long max, long long *out, srv_error *err);
srv_status srv_json_get_bool(const cJSON *obj, const char *name, int required, int *out,
                             srv_error *err);

/* Prints unformatted; the caller frees with free(). NULL on allocation failure. */
char *srv_json_print(const cJSON *obj);

#endif
