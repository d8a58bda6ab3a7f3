/* One HTTPS attempt with WinHTTP (the Windows agent). One session handle for the agent's life
 * (WinHTTP keeps and reuses the connections), one connection handle per configured server.
 * TLS 1.2 or newer. With ca_file, the server's certificate is verified against that CA only
 * (our own chain engine whose exclusive root is the CA, then the SSL policy with the host
 * name), and no request body leaves before it passes: the request is sent with no body, the
 * certificate checked, then the body written. The headers (the access token) are guarded by
 * the same check in the SENDING_REQUEST callback, which closes the request before they leave
 * on Windows; Wine sends them anyway (TOOLS.md), so there the guarantee is the body's only.
 * Without ca_file, Windows' own validation. With client_cert (an enrolled machine, mTLS), the
 * certificate bound to its CryptoAPI key container (win_clientcert.h) is loaded once and given
 * to every request; without it, every request says it has none, so that a server that asks
 * for an optional client certificate is answered rather than failed (Windows' 12044). */
#include <windows.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wincrypt.h>
#include <winhttp.h>

#include "signum/https.h"
#include "common/win_clientcert.h"
#include "common/win_trust.h"
#include "../common/win_acl.h"
#include "signum/common/buf.h"

#ifndef WINHTTP_FLAG_SECURE_PROTOCOL_TLS1_3
#define WINHTTP_FLAG_SECURE_PROTOCOL_TLS1_3 0x00002000
#endif

typedef struct {
    wchar_t host[256];
    INTERNET_PORT port;
    char base[256]; /* path prefix of the URL, "" or "/prefix" */
    HINTERNET connect;
} ag_server_conn;

struct ag_backend {
    const ag_config *cfg;
    HINTERNET session;
    int own_trust;      /* ca_file is set: we verify the server against it */
    sg_win_trust trust; /* win_trust.h */
    int has_client_cert;
    sg_win_client_cert client; /* win_clientcert.h */
    ag_server_conn servers[AG_MAX_SERVERS];
};

/* https://host[:port][/base] into host, port and base. */
static int parse_url(const char *url, ag_server_conn *out)
{
    const char *h = url + 8, *end = h + strcspn(h, ":/"), *slash;
    char host[256];
    long port = 443;

    if (strncmp(url, "https://", 8) != 0 || end == h || (size_t)(end - h) >= sizeof(host))
        return -1;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    if (*end == ':') {
        char *pe;
        port = strtol(end + 1, &pe, 10);
        if (pe == end + 1 || port < 1 || port > 65535 || (*pe && *pe != '/'))
            return -1;
        end = pe;
    }
    slash = end;
    if (*slash && *slash != '/')
        return -1;
    if (strlen(slash) >= sizeof(out->base))
        return -1;
    snprintf(out->base, sizeof(out->base), "%s", slash);
    out->port = (INTERNET_PORT)port;
    return ag_win_widen(host, out->host, 256);
}

sg_status ag_backend_new(const ag_config *cfg, const char *user_agent, ag_backend **out,
                         ag_error *err)
{
    ag_backend *b;
    wchar_t wua[64];
    DWORD protocols = WINHTTP_FLAG_SECURE_PROTOCOL_TLS1_2 | WINHTTP_FLAG_SECURE_PROTOCOL_TLS1_3;
    sg_status st;

    *out = NULL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return ag_fail(err, SG_ERR_NOMEM, "out of memory");
    b->cfg = cfg;
    for (unsigned i = 0; i < cfg->server_count; i++)
        if (parse_url(cfg->servers[i], &b->servers[i]) != 0) {
            st = ag_fail(err, SG_ERR_BAD_INPUT, "cannot parse the server URL %s", cfg->servers[i]);
            goto fail;
        }
    if (cfg->ca_file[0]) {
        char why[300];
        if (sg_win_trust_load(&b->trust, cfg->ca_file, why, sizeof(why)) != 0) {
            st = ag_fail(err, SG_ERR_BAD_INPUT, "%s", why);
            goto fail;
        }
        b->own_trust = 1;
        ag_debug("http", "trusting only the %u certificate(s) of %s", b->trust.count, cfg->ca_file);
    }
    if (cfg->client_cert[0]) {
        char why[400];
        if (sg_win_client_cert_load(&b->client, cfg->client_cert, cfg->client_key, why,
                                    sizeof(why)) != 0) {
            st = ag_fail(err, SG_ERR_BAD_INPUT, "%s", why);
            goto fail;
        }
        b->has_client_cert = 1;
        ag_debug("http", "client certificate %s with key %s", cfg->client_cert, cfg->client_key);
    }
    if (ag_win_widen(user_agent, wua, 64) != 0) {
        st = ag_fail(err, SG_ERR_BAD_INPUT, "user agent too long");
        goto fail;
    }
    b->session = WinHttpOpen(wua, WINHTTP_ACCESS_TYPE_DEFAULT_PROXY, WINHTTP_NO_PROXY_NAME,
                             WINHTTP_NO_PROXY_BYPASS, 0);
    if (!b->session) {
        st = ag_fail(err, SG_ERR_INTERNAL, "WinHttpOpen failed (error %lu)", GetLastError());
        goto fail;
    }
    /* TLS 1.3 where WinHTTP knows it (older systems refuse the flag), else 1.2 alone. */
    if (!WinHttpSetOption(b->session, WINHTTP_OPTION_SECURE_PROTOCOLS, &protocols,
                          sizeof(protocols))) {
        protocols = WINHTTP_FLAG_SECURE_PROTOCOL_TLS1_2;
        if (!WinHttpSetOption(b->session, WINHTTP_OPTION_SECURE_PROTOCOLS, &protocols,
                              sizeof(protocols))) {
            st =
                ag_fail(err, SG_ERR_INTERNAL, "cannot require TLS 1.2 (error %lu)", GetLastError());
            goto fail;
        }
    }
    WinHttpSetTimeouts(b->session, cfg->connect_timeout_ms, cfg->connect_timeout_ms,
                       cfg->request_timeout_ms, cfg->request_timeout_ms);
    for (unsigned i = 0; i < cfg->server_count; i++) {
        b->servers[i].connect =
            WinHttpConnect(b->session, b->servers[i].host, b->servers[i].port, 0);
        if (!b->servers[i].connect) {
            st = ag_fail(err, SG_ERR_INTERNAL, "WinHttpConnect to %s failed (error %lu)",
                         cfg->servers[i], GetLastError());
            goto fail;
        }
    }
    *out = b;
    return SG_OK;
fail:
    ag_backend_free(b);
    return st;
}

void ag_backend_free(ag_backend *b)
{
    if (!b)
        return;
    for (unsigned i = 0; i < AG_MAX_SERVERS; i++)
        if (b->servers[i].connect)
            WinHttpCloseHandle(b->servers[i].connect);
    if (b->session)
        WinHttpCloseHandle(b->session);
    sg_win_trust_free(&b->trust);
    sg_win_client_cert_free(&b->client);
    free(b);
}

/* The certificate check before the headers leave (WINHTTP_CALLBACK_STATUS_SENDING_REQUEST). */
typedef struct {
    ag_backend *b;
    const wchar_t *host;
    int checked, bad, closed;
    char why[200];
} send_guard;

static void CALLBACK on_status(HINTERNET h, DWORD_PTR ctx, DWORD status, LPVOID info, DWORD len)
{
    send_guard *g = (send_guard *)ctx;
    (void)info;
    (void)len;
    if (status != WINHTTP_CALLBACK_STATUS_SENDING_REQUEST || !g || g->checked)
        return;
    g->checked = 1;
    ag_debug("http", "checking the server certificate before the request leaves");
    if (sg_win_trust_verify(&g->b->trust, h, g->host, g->why, sizeof(g->why)) != 0) {
        g->bad = 1;
        g->closed = 1;
        WinHttpCloseHandle(h); /* cancels the send (on Windows) */
    }
}

/* One response header as "name: value" for ag_response_header. */
static void take_header(HINTERNET req, DWORD which, const char *name, ag_response *resp)
{
    wchar_t w[200];
    DWORD len = sizeof(w);
    char v[200], line[256];
    if (WinHttpQueryHeaders(req, which, WINHTTP_HEADER_NAME_BY_INDEX, w, &len,
                            WINHTTP_NO_HEADER_INDEX) &&
        ag_win_narrow(w, v, sizeof(v)) == 0) {
        snprintf(line, sizeof(line), "%s: %s", name, v);
        ag_response_header(resp, line);
    }
}

/* Where a WinHTTP failure stopped, for doctor's verdicts. */
static ag_stage stage_of(DWORD e)
{
    switch (e) {
    case ERROR_WINHTTP_NAME_NOT_RESOLVED: return AG_STAGE_DNS;
    case ERROR_WINHTTP_CANNOT_CONNECT:
    case ERROR_WINHTTP_TIMEOUT:
    case ERROR_WINHTTP_CONNECTION_ERROR: return AG_STAGE_CONNECT;
    case ERROR_WINHTTP_SECURE_FAILURE:
    case ERROR_WINHTTP_SECURE_CHANNEL_ERROR:
    case ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED:
    case ERROR_WINHTTP_SECURE_INVALID_CA:
    case ERROR_WINHTTP_SECURE_CERT_CN_INVALID:
    case ERROR_WINHTTP_SECURE_CERT_DATE_INVALID: return AG_STAGE_TLS;
    default: return AG_STAGE_HTTP;
    }
}

/* what: the step that failed, said where the stage does not say it better. */
static try_result connection_error(ag_backend *b, unsigned server, DWORD e, const char *what,
                                   ag_response *resp, ag_error *err)
{
    const char *url = b->cfg->servers[server];
    resp->stage = stage_of(e);
    snprintf(resp->reason, sizeof(resp->reason), "%s (error %lu)",
             resp->stage == AG_STAGE_DNS       ? "the host name does not resolve"
             : resp->stage == AG_STAGE_CONNECT ? "no TCP connection to the server"
             : resp->stage == AG_STAGE_TLS     ? "the TLS handshake failed"
                                               : what,
             e);
    switch (e) {
    case ERROR_WINHTTP_TIMEOUT:
        ag_fail(err, SG_ERR_TIMEOUT, "%s did not answer in time", url);
        return TRY_CONNECT_FAILED;
    case ERROR_WINHTTP_CANNOT_CONNECT:
    case ERROR_WINHTTP_NAME_NOT_RESOLVED:
        ag_fail(err, SG_ERR_NETWORK, "cannot connect to %s (WinHTTP error %lu)", url, e);
        return TRY_CONNECT_FAILED;
    case ERROR_WINHTTP_CONNECTION_ERROR:
    case ERROR_WINHTTP_INVALID_SERVER_RESPONSE:
        ag_fail(err, SG_ERR_NETWORK, "connection to %s failed (WinHTTP error %lu)", url, e);
        return TRY_CONNECT_FAILED;
    case ERROR_WINHTTP_SECURE_FAILURE:
    case ERROR_WINHTTP_SECURE_CHANNEL_ERROR:
    case ERROR_WINHTTP_SECURE_INVALID_CA:
    case ERROR_WINHTTP_SECURE_CERT_CN_INVALID:
    case ERROR_WINHTTP_SECURE_CERT_DATE_INVALID:
        /* Never retried elsewhere silently: a server that fails verification is an alarm. */
        /* Wine reports a refused or missing client certificate as 12157 too. */
        ag_fail(err, SG_ERR_NETWORK,
                "TLS with %s failed (WinHTTP error %lu: certificate not trusted, wrong host "
                "name, or handshake refused; check ca_file%s)",
                url, e, b->has_client_cert ? " and client_cert" : "");
        return TRY_FATAL;
    case ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED:
        if (b->has_client_cert)
            ag_fail(err, SG_ERR_NETWORK,
                    "%s did not accept the client certificate %s (WinHTTP error %lu; is this "
                    "machine's enrollment revoked, or its key unusable?)",
                    url, b->cfg->client_cert, e);
        else
            ag_fail(err, SG_ERR_NETWORK,
                    "%s requires a client certificate (mTLS) and none is configured (WinHTTP "
                    "error %lu); enroll this machine with `signum-util enroll machine`",
                    url, e);
        return TRY_FATAL;
    default:
        ag_fail(err, SG_ERR_NETWORK, "request to %s failed (WinHTTP error %lu)", url, e);
        return TRY_FATAL;
    }
}

try_result ag_backend_try(ag_backend *b, unsigned server, const char *method, const char *path,
                          const char *bearer, const char *json_body, const char *if_none_match,
                          ag_response *resp, ag_error *err)
{
    ag_server_conn *sc = &b->servers[server];
    char full[1024], headers[900], why[200];
    wchar_t wmethod[16], wpath[1024], wheaders[900];
    size_t body_len = json_body ? strlen(json_body) : 0;
    HINTERNET req = NULL;
    DWORD status = 0, len = sizeof(status), avail;
    try_result tr = TRY_FATAL;
    send_guard guard;
    sgc_buf body; /* capped at AG_MAX_RESPONSE; its bytes belong to resp */
    int n;

    ag_response_free(resp);
    resp->retry_after = -1;
    resp->server_index = (int)server;
    n = snprintf(full, sizeof(full), "%s%s", sc->base, path);
    if (n < 0 || (size_t)n >= sizeof(full) || ag_win_widen(full, wpath, 1024) != 0 ||
        ag_win_widen(method, wmethod, 16) != 0) {
        ag_fail(err, SG_ERR_BAD_INPUT, "request path too long");
        return TRY_FATAL;
    }
    n = snprintf(headers, sizeof(headers), "%s%s%s%s%s%s",
                 json_body ? "Content-Type: application/json\r\n" : "",
                 bearer ? "Authorization: Bearer " : "", bearer ? bearer : "", bearer ? "\r\n" : "",
                 if_none_match && *if_none_match ? "If-None-Match: " : "",
                 if_none_match && *if_none_match ? if_none_match : "");
    if (n < 0 || (size_t)n >= sizeof(headers) - 2 || ag_win_widen(headers, wheaders, 900) != 0) {
        SecureZeroMemory(headers, sizeof(headers));
        ag_fail(err, SG_ERR_BAD_INPUT, "request headers too long");
        return TRY_FATAL;
    }
    SecureZeroMemory(headers, sizeof(headers));
    req = WinHttpOpenRequest(sc->connect, wmethod, wpath, NULL, WINHTTP_NO_REFERER,
                             WINHTTP_DEFAULT_ACCEPT_TYPES, WINHTTP_FLAG_SECURE);
    if (!req) {
        SecureZeroMemory(wheaders, sizeof(wheaders));
        ag_fail(err, SG_ERR_INTERNAL, "WinHttpOpenRequest failed (error %lu)", GetLastError());
        return TRY_FATAL;
    }
    {
        DWORD redirects = WINHTTP_DISABLE_REDIRECTS;
        WinHttpSetOption(req, WINHTTP_OPTION_DISABLE_FEATURE, &redirects, sizeof(redirects));
    }
    /* The client certificate (or explicitly none) before the handshake. Setting "none" is
     * best effort: Wine never asks for it, and a failure there changes nothing. */
    if (b->has_client_cert) {
        if (!WinHttpSetOption(req, WINHTTP_OPTION_CLIENT_CERT_CONTEXT, (void *)b->client.cert,
                              sizeof(CERT_CONTEXT))) {
            SecureZeroMemory(wheaders, sizeof(wheaders));
            ag_fail(err, SG_ERR_INTERNAL, "cannot set the client certificate (error %lu)",
                    GetLastError());
            WinHttpCloseHandle(req);
            return TRY_FATAL;
        }
    } else {
        WinHttpSetOption(req, WINHTTP_OPTION_CLIENT_CERT_CONTEXT, WINHTTP_NO_CLIENT_CERT_CONTEXT,
                         0);
    }
    memset(&guard, 0, sizeof(guard));
    guard.b = b;
    guard.host = sc->host;
    if (b->own_trust) {
        /* Our own validation against ca_file replaces the unknown-CA check only: dates and
         * the host name are still WinHTTP's, and sg_win_trust_verify checks both again. */
        DWORD flags = SECURITY_FLAG_IGNORE_UNKNOWN_CA;
        DWORD_PTR ctx = (DWORD_PTR)&guard;
        if (!WinHttpSetOption(req, WINHTTP_OPTION_SECURITY_FLAGS, &flags, sizeof(flags)) ||
            !WinHttpSetOption(req, WINHTTP_OPTION_CONTEXT_VALUE, &ctx, sizeof(ctx)) ||
            WinHttpSetStatusCallback(req, on_status, WINHTTP_CALLBACK_FLAG_SEND_REQUEST, 0) ==
                WINHTTP_INVALID_STATUS_CALLBACK) {
            ag_fail(err, SG_ERR_INTERNAL, "cannot set the TLS options (error %lu)", GetLastError());
            goto out;
        }
    }
    /* The headers, and no body yet: the body waits until the certificate is checked. */
    if (!WinHttpSendRequest(req, wheaders[0] ? wheaders : WINHTTP_NO_ADDITIONAL_HEADERS,
                            wheaders[0] ? (DWORD)-1L : 0, WINHTTP_NO_REQUEST_DATA, 0,
                            (DWORD)body_len, 0) &&
        !guard.bad) {
        DWORD e = GetLastError();
        ag_debug("http", "%s %s%s: send failed (error %lu)", method, b->cfg->servers[server], path,
                 e);
        tr = connection_error(b, server, e, "the request failed", resp, err);
        goto out;
    }
    if (guard.bad) {
        snprintf(why, sizeof(why), "%s", guard.why);
    } else if (b->own_trust && !guard.checked) {
        if (sg_win_trust_verify(&b->trust, req, sc->host, why, sizeof(why)) != 0)
            guard.bad = 1;
    }
    if (guard.bad) {
        resp->stage = AG_STAGE_TLS;
        snprintf(resp->reason, sizeof(resp->reason), "%s", why);
        ag_fail(err, SG_ERR_NETWORK, "TLS verification of %s failed: %s (check ca_file)",
                b->cfg->servers[server], why);
        tr = TRY_FATAL;
        goto out;
    }
    for (size_t off = 0; off < body_len;) {
        DWORD chunk = body_len - off > 65536 ? 65536 : (DWORD)(body_len - off), wrote = 0;
        if (!WinHttpWriteData(req, json_body + off, chunk, &wrote) || wrote == 0) {
            tr = connection_error(b, server, GetLastError(), "cannot send the request body", resp,
                                  err);
            goto out;
        }
        off += wrote;
    }
    if (!WinHttpReceiveResponse(req, NULL)) {
        DWORD e = GetLastError();
        ag_debug("http", "%s %s%s: no response (error %lu)", method, b->cfg->servers[server], path,
                 e);
        tr = connection_error(b, server, e, "no answer from the server", resp, err);
        goto out;
    }
    if (!WinHttpQueryHeaders(req, WINHTTP_QUERY_STATUS_CODE | WINHTTP_QUERY_FLAG_NUMBER,
                             WINHTTP_HEADER_NAME_BY_INDEX, &status, &len,
                             WINHTTP_NO_HEADER_INDEX)) {
        resp->stage = AG_STAGE_HTTP;
        snprintf(resp->reason, sizeof(resp->reason), "the answer has no status");
        ag_fail(err, SG_ERR_PROTOCOL, "%s sent no HTTP status", b->cfg->servers[server]);
        goto out;
    }
    resp->status = (long)status;
    {
        SYSTEMTIME st;
        FILETIME ft;
        ULARGE_INTEGER u;
        len = sizeof(st);
        if (WinHttpQueryHeaders(req, WINHTTP_QUERY_DATE | WINHTTP_QUERY_FLAG_SYSTEMTIME,
                                WINHTTP_HEADER_NAME_BY_INDEX, &st, &len, WINHTTP_NO_HEADER_INDEX) &&
            SystemTimeToFileTime(&st, &ft)) {
            u.LowPart = ft.dwLowDateTime;
            u.HighPart = ft.dwHighDateTime;
            resp->date = (time_t)(u.QuadPart / 10000000ULL - 11644473600ULL);
        }
    }
    take_header(req, WINHTTP_QUERY_ETAG, "ETag", resp);
    take_header(req, WINHTTP_QUERY_RETRY_AFTER, "Retry-After", resp);
    sgc_buf_init(&body, AG_MAX_RESPONSE);
    for (;;) {
        DWORD got = 0;
        int rc;
        if (!WinHttpQueryDataAvailable(req, &avail)) {
            tr = connection_error(b, server, GetLastError(), "the answer broke off", resp, err);
            goto out;
        }
        if (avail == 0)
            break;
        if ((rc = sgc_buf_reserve(&body, avail)) == SGC_E_TOO_LARGE) {
            resp->stage = AG_STAGE_HTTP;
            snprintf(resp->reason, sizeof(resp->reason), "the answer is larger than 4 MiB");
            ag_fail(err, SG_ERR_PROTOCOL, "server answer larger than 4 MiB");
            goto out;
        }
        if (rc != SGC_OK) {
            ag_fail(err, SG_ERR_NOMEM, "server answer could not be stored");
            goto out;
        }
        /* resp owns the bytes (ag_response_free frees them); the buffer only grows them. */
        resp->body = body.data;
        if (!WinHttpReadData(req, body.data + body.len, avail, &got)) {
            tr = connection_error(b, server, GetLastError(), "the answer broke off", resp, err);
            goto out;
        }
        body.len += got;
        body.data[body.len] = '\0';
        resp->body_len = body.len;
        if (got == 0)
            break;
    }
    tr = ag_http_retryable(resp->status, resp->body) ? TRY_RETRYABLE : TRY_DONE;
out:
    SecureZeroMemory(wheaders, sizeof(wheaders));
    if (!guard.closed)
        WinHttpCloseHandle(req);
    return tr;
}
