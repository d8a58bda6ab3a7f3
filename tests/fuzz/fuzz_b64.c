/* Base64 and base64url: the one strict codec (common/src/b64.c) through the server's names
 * (allocating decode) and as the agent calls it (a C string into a fixed buffer). Properties:
 * a decoded text re-encodes to itself (every non-canonical form is refused), the output cap
 * holds, and both entry points read the same bytes. */
#include <string.h>

#include "common/b64.h"
#include "fuzz.h"
#include "signum/common/b64.h"

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
    ag_rc = sgc_b64_decode(ctext, strlen(ctext), SGC_B64, ag_out, cap, &ag_len, NULL, 0);
    if (ag_rc == SGC_OK) {
        char *again = sgc_b64_encode(ag_out, ag_len), *back = NULL;
        FUZZ_CHECK(ag_len <= cap);
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(strcmp(again, ctext) == 0); /* strict: only the canonical text decodes */
        back = sgc_b64url_encode(ag_out, ag_len);
        FUZZ_CHECK(back != NULL);
        free(back);
        free(again);
    } else {
        FUZZ_CHECK(ag_rc == SGC_E_FORMAT || ag_rc == SGC_E_TOO_LARGE);
    }
    /* The allocating and the fixed-buffer decode agree, byte for byte. */
    if (strlen(ctext) == len) {
        FUZZ_CHECK((srv_out != NULL) == (ag_rc == SGC_OK));
        if (srv_out)
            FUZZ_CHECK(ag_len == srv_len && memcmp(ag_out, srv_out, srv_len) == 0);
    }
out:
    free(ctext);
    free(ag_out);
    free(srv_out);
    free(url_out);
    return 0;
}
