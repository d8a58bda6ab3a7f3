/* An HTTPS answer as the agent keeps it, whichever backend (transport_curl.c,
 * transport_winhttp.c) read it: the headers it uses and freeing it. Below both the backends and
 * transport.c, which drives them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "signum/https.h"

void ag_response_free(ag_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

void ag_response_header(ag_response *r, const char *raw)
{
    char line[256];
    snprintf(line, sizeof(line), "%s", raw);
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "etag:", 5) == 0) {
        const char *v = line + 5;
        while (*v == ' ')
            v++;
        size_t vlen = strlen(v);
        if (vlen < sizeof(r->etag)) /* an over-long validator is ignored, not truncated */
            memcpy(r->etag, v, vlen + 1);
    } else if (strncasecmp(line, "retry-after:", 12) == 0) {
        long v = strtol(line + 12, NULL, 10);
        r->retry_after = v < 0 ? 0 : v > AG_MAX_RETRY_AFTER ? AG_MAX_RETRY_AFTER : v;
    }
}
