/* The console's files, embedded in the binary: nothing is read from disk at run time and the
 * browser fetches nothing from anywhere else. Served with a strict Content-Security-Policy
 * (scripts and styles from these files only, no inline code, no framing). */
#include <stdlib.h>
#include <string.h>

#include "console.h"

#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

void api_console_asset(api_call *c)
{
    const char *name = c->params[0] && *c->params[0] ? c->params[0] : "index.html";
    srv_error err;
    for (size_t i = 0; i < srv_console_asset_count; i++) {
        const srv_console_asset *a = &srv_console_assets[i];
        if (strcmp(a->name, name) != 0)
            continue;
        if (!(c->ex->response = malloc(a->len ? a->len : 1))) {
            srv_fail(&err, SRV_E_NOMEM, "out of memory");
            api_reply_error(c, &err);
            return;
        }
        memcpy(c->ex->response, a->data, a->len);
        c->ex->response_len = a->len;
        c->ex->response_type = content_type(a->name);
        c->ex->status = 200;
        srv_http_add_header(c->ex, "Content-Security-Policy", CONSOLE_CSP);
        return;
    }
    srv_fail(&err, SRV_E_NOT_FOUND, "no such console file");
    api_reply_error(c, &err);
}
