/* signum-util sign --provenance FILE [--sbom-digest D] [--id-token-file F]: the request's
 * "provenance" object (server/API.md): the DSSE envelope file in base64, the sha256 of the
 * artifact being signed (hashed here), the SBOM digest and the CI ID token as given. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "signum/common/b64.h"
#include "signum/crypto.h"
#include "util.h"

#define ENVELOPE_MAX (256 * 1024) /* the server's cap (SRV_PROV_ENVELOPE_MAX) */
#define ID_TOKEN_MAX 16384

/* Reads all of path, at most max bytes; prints why not and returns NULL. */
static char *read_all(const char *path, size_t max, size_t *len, const char *what)
{
    FILE *f = fopen(path, "rb" UTIL_FOPEN_CLOEXEC);
    char *buf = NULL;
    size_t n = 0;
    if (!f) {
        fprintf(stderr, "signum-util sign: %s %s: %s\n", what, path, strerror(errno));
        return NULL;
    }
    if (!(buf = malloc(max + 2))) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        fprintf(stderr, "signum-util sign: %s %s: %s\n", what, path, strerror(errno ? errno : EIO));
        n = 0;
        free(buf);
        buf = NULL;
    } else if (n > max) {
        fprintf(stderr, "signum-util sign: %s %s is over %zu bytes, the server's cap\n", what, path,
                max);
        free(buf);
        buf = NULL;
    } else {
        buf[n] = '\0';
    }
    fclose(f);
    *len = n;
    return buf;
}

char *util_provenance_json(const char *envelope_path, const char *artifact_path,
                           const char *sbom_digest, const char *id_token_path)
{
    cJSON *doc = cJSON_CreateObject();
    char *text = NULL, *data = NULL, *b64 = NULL;
    size_t len = 0;

    if (!doc)
        return NULL;
    if (envelope_path) {
        uint8_t md[32];
        char hex[65];
        if (!(data = read_all(envelope_path, ENVELOPE_MAX, &len, "provenance")))
            goto out;
        if (!(b64 = sgc_b64_encode((const uint8_t *)data, len)))
            goto out;
        cJSON_AddStringToObject(doc, "envelope", b64);
        /* The artifact is the file being signed: its sha256 is what the statement's subject
         * must name, whatever --hash signs it with. */
        if (util_sign_digest(artifact_path, 0, SG_HASH_SHA256, md) != EXIT_OK)
            goto out;
        for (size_t i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        cJSON_AddStringToObject(doc, "artifact_sha256", hex);
    }
    if (sbom_digest)
        cJSON_AddStringToObject(doc, "sbom_digest", sbom_digest);
    if (id_token_path) {
        free(data);
        if (!(data = read_all(id_token_path, ID_TOKEN_MAX, &len, "ID token file")))
            goto out;
        len = strcspn(data, "\r\n"); /* one line; a trailing newline is not part of it */
        data[len] = '\0';
        cJSON_AddStringToObject(doc, "id_token", data);
    }
    text = cJSON_PrintUnformatted(doc);
out:
    if (data)
        memset(data, 0, len);
    free(data);
    free(b64);
    cJSON_Delete(doc);
    return text;
}
