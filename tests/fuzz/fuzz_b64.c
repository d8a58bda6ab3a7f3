/* Base64 and base64url: the server's strict codec (server/src/common/b64.c) and the agent's
 * (agent-core/src/common/b64.c). Properties: a decoded text re-encodes to itself (the server
 * refuses every non-canonical form), the output cap holds, and the two codecs agree on
 * canonical padded base64. */
#include <string.h>

#include "../../agent-core/src/common/b64.h"
#include "common/b64.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* The first input byte picks the output cap, so the cap checks see every boundary. */
static size_t cap_of(const uint8_t *data, size_t size)
{
    return size ? (size_t)data[0] * 3 : 0;
}

static void server_codec(const char *text, size_t len, size_t cap, int url, uint8_t **out,
                         size_t *out_len)
{
    srv_error err;
    srv_status st = url ? srv_b64url_decode(text, len, cap, out, out_len, &err)
                        : srv_b64_decode(text, len, cap, out, out_len, &err);
    char *again;
    if (st != SRV_OK) {
        FUZZ_CHECK(st == SRV_E_BAD_BASE64 || st == SRV_E_NOMEM || st == SRV_E_BODY_TOO_LARGE ||
                   st == SRV_E_INVALID_FIELD);
        FUZZ_CHECK(err.status == st && memchr(err.message, '\0', sizeof(err.message)));
        FUZZ_CHECK(*out == NULL);
        return;
    }
    FUZZ_CHECK(*out != NULL && *out_len <= cap);
    again = url ? srv_b64url_encode(*out, *out_len) : srv_b64_encode(*out, *out_len);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = cap_of(data, size), srv_len = 0, url_len = 0, ag_len = 0;
    const char *text = size ? (const char *)data + 1 : "";
    size_t len = size ? size - 1 : 0;
    uint8_t *srv_out = NULL, *url_out = NULL, *ag_out;
    char *ctext;
    int ag_rc;

    server_codec(text, len, cap, 0, &srv_out, &srv_len);
    server_codec(text, len, cap, 1, &url_out, &url_len);

    /* The agent's decoder takes a C string: it sees the text up to a NUL. */
    ctext = fuzz_strndup((const uint8_t *)text, len);
    ag_out = malloc(cap ? cap : 1);
    if (!ctext || !ag_out)
        goto out;
    ag_rc = b64_decode(ctext, ag_out, cap, &ag_len);
    if (ag_rc == 0) {
        char *again = b64_encode(ag_out, ag_len), *back = NULL;
        uint8_t *round = malloc(ag_len ? ag_len : 1);
        size_t round_len = 0;
        FUZZ_CHECK(ag_len <= cap);
        FUZZ_CHECK(again && round);
        /* The agent tolerates stray trailing bits; what it encodes it must read back alike. */
        FUZZ_CHECK(b64_decode(again, round, ag_len, &round_len) == 0);
        FUZZ_CHECK(round_len == ag_len && memcmp(round, ag_out, ag_len) == 0);
        /* Canonical text: the server must take it and read the same bytes. */
        if (strlen(ctext) == len && strcmp(again, ctext) == 0)
            FUZZ_CHECK(srv_out && srv_len == ag_len && memcmp(srv_out, ag_out, ag_len) == 0);
        back = b64url_encode(ag_out, ag_len);
        FUZZ_CHECK(back != NULL);
        free(back);
        free(again);
        free(round);
    }
    /* Whatever the server reads the agent reads too, byte for byte. */
    if (srv_out && strlen(ctext) == len) {
        FUZZ_CHECK(ag_rc == 0);
        FUZZ_CHECK(ag_len == srv_len && memcmp(ag_out, srv_out, srv_len) == 0);
    }
out:
    free(ctext);
    free(ag_out);
    free(srv_out);
    free(url_out);
    return 0;
}
