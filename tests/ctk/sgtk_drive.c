/* sgtk-drive: the C shim of the macOS token from the command line, for the Linux integration
 * test (test_ctk_shim.py): what the token extension and the host app ask of it, one call a run.
 *   sgtk-drive entry NAME                  name key_id cert_id kind bits
 *   sgtk-drive supports KEY_ID ALGORITHM   yes | no
 *   sgtk-drive sign KEY_ID ALGORITHM HEX   the signature in hex
 * A failure prints "error CODE TKErrorCode... reason" and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgtk.h"

static int alg_by_name(const char *name, sgtk_alg *alg)
{
    for (int a = 0; a < SGTK_ALG_COUNT; a++) {
        if (!strcmp(sgtk_alg_name((sgtk_alg)a), name)) {
            *alg = (sgtk_alg)a;
            return 0;
        }
    }
    return -1;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    while (hex[0] && hex[1] && n < cap && sscanf(hex, "%2x", &v) == 1) {
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

static int fail(sgtk_error e, const char *why)
{
    printf("error %d %s %s\n", (int)e, sgtk_error_name(e), why);
    return 1;
}

int main(int argc, char **argv)
{
    sgtk_token *t = NULL;
    char why[512] = "";
    sgtk_alg alg = SGTK_ALG_COUNT;
    sgtk_error e;
    int rc = 2;

    if (argc < 3 || (strcmp(argv[1], "entry") && argc < 4) ||
        (argc >= 4 && alg_by_name(argv[3], &alg) != 0)) {
        fprintf(stderr, "usage: sgtk-drive entry NAME | supports KEY_ID ALG | sign KEY_ID ALG "
                        "HEX\n");
        return 2;
    }
    e = sgtk_token_new(NULL, &t);
    if (e != SGTK_OK)
        return fail(e, "cannot create the client");
    if (!strcmp(argv[1], "entry")) {
        sgtk_entry en;
        e = sgtk_entry_of(t, argv[2], &en, why, sizeof(why));
        rc = e != SGTK_OK ? fail(e, why)
                          : (printf("%s %s %s %s %u\n", en.name, en.key_id, en.cert_id,
                                    en.kind == SGTK_KEY_RSA ? "rsa" : "ec", en.bits),
                             0);
    } else if (!strcmp(argv[1], "supports")) {
        printf("%s\n", sgtk_supports(t, argv[2], strlen(argv[2]), alg) ? "yes" : "no");
        rc = 0;
    } else if (!strcmp(argv[1], "sign") && argc == 5) {
        uint8_t data[1024], sig[SGTK_SIG_MAX];
        size_t len = unhex(argv[4], data, sizeof(data)), sig_len = sizeof(sig);
        e = sgtk_sign(t, argv[2], strlen(argv[2]), alg, data, len, sig, &sig_len, why, sizeof(why));
        if (e != SGTK_OK) {
            rc = fail(e, why);
        } else {
            for (size_t i = 0; i < sig_len; i++)
                printf("%02x", sig[i]);
            printf("\n");
            rc = 0;
        }
    }
    sgtk_token_free(t);
    return rc;
}
