/* The server's JSON request parsing: srv_json_parse_object and the typed getters
 * (common/json.c), then the sign request parser of POST /api/v1/sign (api_sign_parse in
 * api/sign.c), exactly as api_sign runs them on a request body. */
#include <stdlib.h>
#include <string.h>

#include "api/signing.h"
#include "common/util.h"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* What a caller may rely on for any error: one of the input statuses and a terminated message. */
static void check_error(srv_status st, const srv_error *err)
{
    FUZZ_CHECK(st != SRV_OK && st < SRV_STATUS_COUNT);
    FUZZ_CHECK(err->status == st);
    FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
    FUZZ_CHECK(err->message[0] != '\0');
    FUZZ_CHECK(srv_status_http(st) >= 400);
}

static void getters(const cJSON *body)
{
    static const char *const names[] = {"key",         "mechanism", "hash", "digest", "request_id",
                                        "salt_length", "context",   "a",    ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *s = NULL;
        long long v = 7;
        int b = 0;
        srv_error err;
        srv_status st = srv_json_get_string(body, names[i], i & 1, 16, &s, &err);
        if (st == SRV_OK && s)
            FUZZ_CHECK(strlen(s) <= 16 && srv_utf8_valid(s, strlen(s)));
        else if (st != SRV_OK)
            check_error(st, &err);
        st = srv_json_get_int(body, names[i], 0, -5, 1000, &v, &err);
        if (st == SRV_OK)
            FUZZ_CHECK(v >= -5 && v <= 1000);
        else
            check_error(st, &err);
        st = srv_json_get_bool(body, names[i], 0, &b, &err);
        if (st != SRV_OK)
            check_error(st, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *body = NULL, *again = NULL;
    api_sign_input in;
    srv_error err;
    srv_status st;
    char *text;

    st = srv_json_parse_object((const char *)data, size, API_BODY_CAP, &body, &err);
    if (st != SRV_OK) {
        check_error(st, &err);
        FUZZ_CHECK(body == NULL);
        return 0;
    }
    FUZZ_CHECK(cJSON_IsObject(body));
    getters(body);

    /* What the server prints of a parsed body (audit details) must parse back and print the
     * same (text, not trees: a body with a duplicate member is refused later, not here). */
    text = srv_json_print(body);
    if (text) {
        st = srv_json_parse_object(text, strlen(text), SIZE_MAX, &again, &err);
        FUZZ_CHECK(st == SRV_OK || st == SRV_E_NOMEM);
        if (again) {
            char *text2 = srv_json_print(again);
            FUZZ_CHECK(!text2 || strcmp(text, text2) == 0);
            free(text2);
        }
        cJSON_Delete(again);
        free(text);
    }

    memset(&in, 0, sizeof(in));
    st = api_sign_parse(body, &in, &err);
    if (st == SRV_OK) {
        FUZZ_CHECK(in.ndigests >= 1 && in.ndigests <= API_MAX_BATCH);
        FUZZ_CHECK(in.batch || in.ndigests == 1);
        for (size_t i = 0; i < in.ndigests; i++)
            FUZZ_CHECK(in.digests[i] != NULL);
        FUZZ_CHECK(srv_valid_name(in.key_name, SRV_NAME_MAX));
        FUZZ_CHECK(in.salt_len < 0 || in.mech == SRV_MECH_RSA_PSS);
    } else {
        check_error(st, &err);
    }
    api_sign_input_free(&in);
    cJSON_Delete(body);
    return 0;
}
