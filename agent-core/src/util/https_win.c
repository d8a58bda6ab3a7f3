/* signum-util's HTTPS on Windows (WinHTTP). With a configured CA (ca_file) WinHTTP is told to
 * accept an unknown root and we verify the server's certificate ourselves: a chain engine
 * whose exclusive root store holds only that CA, a chain without any error status, and the
 * SSL policy for the host name. The request goes out without its body; the body is written only
 * once the certificate is verified (closing the request from a callback does not stop the
 * send under Wine). Without ca_file, Windows' own validation applies. TLS 1.2 or newer. */
#include <windows.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wincrypt.h>
#include <winhttp.h>

#include "common/win_trust.h"
#include "https_win.h"

static void set_why(char *why, size_t len, const char *what, DWORD code)
{
    snprintf(why, len, "%s (error %lu)", what, (unsigned long)code);
}

/* Maps a WinHTTP failure of the send to doctor's stage. */
static https_stage send_stage(DWORD code)
{
    switch (code) {
    case ERROR_WINHTTP_NAME_NOT_RESOLVED: return HTTPS_FAIL_DNS;
    case ERROR_WINHTTP_CANNOT_CONNECT:
    case ERROR_WINHTTP_TIMEOUT:
    case ERROR_WINHTTP_CONNECTION_ERROR: return HTTPS_FAIL_CONNECT;
    case ERROR_WINHTTP_SECURE_FAILURE:
    case ERROR_WINHTTP_SECURE_CHANNEL_ERROR:
    case ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED:
    case ERROR_WINHTTP_SECURE_INVALID_CA:
    case ERROR_WINHTTP_SECURE_CERT_CN_INVALID:
    case ERROR_WINHTTP_SECURE_CERT_DATE_INVALID: return HTTPS_FAIL_TLS;
    default: return HTTPS_FAIL_HTTP;
    }
}

https_stage util_https(const ag_config *cfg, unsigned server, const char *method, const char *path,
                       const char *body, size_t max_body, https_answer *ans, char *why,
                       size_t why_len)
{
    wchar_t url[700], host[256], wpath[1024], wmethod[8];
    URL_COMPONENTS uc;
    HINTERNET session = NULL, conn = NULL, req = NULL;
    sg_win_trust trust;
    int own_trust = 0;
    DWORD body_len = body ? (DWORD)strlen(body) : 0, code = 0, len, flags;
    SYSTEMTIME st;
    https_stage stage = HTTPS_FAIL_SETUP;
    char full[1200];

    memset(ans, 0, sizeof(*ans));
    snprintf(why, why_len, "failed");
    snprintf(full, sizeof(full), "%s%s", cfg->servers[server], path);
    if (!MultiByteToWideChar(CP_UTF8, 0, full, -1, url, 700) ||
        !MultiByteToWideChar(CP_UTF8, 0, method, -1, wmethod, 8)) {
        snprintf(why, why_len, "the URL is too long or not UTF-8");
        return stage;
    }
    memset(&uc, 0, sizeof(uc));
    uc.dwStructSize = sizeof(uc);
    uc.lpszHostName = host;
    uc.dwHostNameLength = 256;
    uc.lpszUrlPath = wpath;
    uc.dwUrlPathLength = 1024;
    if (!WinHttpCrackUrl(url, 0, 0, &uc) || uc.nScheme != INTERNET_SCHEME_HTTPS) {
        snprintf(why, why_len, "%s is not an https:// URL", cfg->servers[server]);
        return stage;
    }
    memset(&trust, 0, sizeof(trust));
    if (cfg->ca_file[0]) {
        if (sg_win_trust_load(&trust, cfg->ca_file, why, why_len) != 0)
            return stage;
        own_trust = 1;
    }
    session = WinHttpOpen(L"signum-util", WINHTTP_ACCESS_TYPE_DEFAULT_PROXY, WINHTTP_NO_PROXY_NAME,
                          WINHTTP_NO_PROXY_BYPASS, 0);
    if (!session) {
        set_why(why, why_len, "WinHttpOpen failed", GetLastError());
        goto out;
    }
    flags = WINHTTP_FLAG_SECURE_PROTOCOL_TLS1_2;
    WinHttpSetOption(session, WINHTTP_OPTION_SECURE_PROTOCOLS, &flags, sizeof(flags));
    WinHttpSetTimeouts(session, cfg->connect_timeout_ms, cfg->connect_timeout_ms,
                       cfg->request_timeout_ms, cfg->request_timeout_ms);
    conn = WinHttpConnect(session, host, uc.nPort, 0);
    req = conn ? WinHttpOpenRequest(conn, wmethod, wpath, NULL, WINHTTP_NO_REFERER,
                                    WINHTTP_DEFAULT_ACCEPT_TYPES, WINHTTP_FLAG_SECURE)
               : NULL;
    if (!req) {
        set_why(why, why_len, "cannot set up the request", GetLastError());
        goto out;
    }
    if (own_trust) {
        flags = SECURITY_FLAG_IGNORE_UNKNOWN_CA;
        WinHttpSetOption(req, WINHTTP_OPTION_SECURITY_FLAGS, &flags, sizeof(flags));
    }
    if (!WinHttpSendRequest(req, body ? L"Content-Type: application/json\r\n" : NULL,
                            body ? (DWORD)-1L : 0, NULL, 0, body_len, 0)) {
        code = GetLastError();
        stage = send_stage(code);
        set_why(why, why_len,
                stage == HTTPS_FAIL_DNS       ? "the host name does not resolve"
                : stage == HTTPS_FAIL_CONNECT ? "no TCP connection to the server"
                : stage == HTTPS_FAIL_TLS     ? "the TLS handshake failed"
                                              : "the request failed",
                code);
        goto out;
    }
    if (own_trust && sg_win_trust_verify(&trust, req, host, why, why_len) != 0) {
        stage = HTTPS_FAIL_TLS;
        goto out;
    }
    stage = HTTPS_FAIL_HTTP;
    if (body_len && (!WinHttpWriteData(req, body, body_len, &len) || len != body_len)) {
        set_why(why, why_len, "cannot send the request body", GetLastError());
        goto out;
    }
    if (!WinHttpReceiveResponse(req, NULL)) {
        set_why(why, why_len, "no answer from the server", GetLastError());
        goto out;
    }
    len = sizeof(code);
    if (!WinHttpQueryHeaders(req, WINHTTP_QUERY_STATUS_CODE | WINHTTP_QUERY_FLAG_NUMBER,
                             WINHTTP_HEADER_NAME_BY_INDEX, &code, &len, WINHTTP_NO_HEADER_INDEX)) {
        set_why(why, why_len, "the answer has no status", GetLastError());
        goto out;
    }
    ans->status = (long)code;
    len = sizeof(st);
    if (WinHttpQueryHeaders(req, WINHTTP_QUERY_DATE | WINHTTP_QUERY_FLAG_SYSTEMTIME,
                            WINHTTP_HEADER_NAME_BY_INDEX, &st, &len, WINHTTP_NO_HEADER_INDEX)) {
        FILETIME ft;
        ULARGE_INTEGER u;
        if (SystemTimeToFileTime(&st, &ft)) {
            u.LowPart = ft.dwLowDateTime;
            u.HighPart = ft.dwHighDateTime;
            ans->date = (time_t)(u.QuadPart / 10000000ULL - 11644473600ULL);
        }
    }
    for (;;) {
        DWORD avail = 0, got = 0;
        char *nb;
        if (!WinHttpQueryDataAvailable(req, &avail)) {
            set_why(why, why_len, "the answer broke off", GetLastError());
            goto out;
        }
        if (!avail)
            break;
        if (ans->body_len + avail > max_body) {
            snprintf(why, why_len, "the answer is larger than %zu bytes", max_body);
            goto out;
        }
        if (!(nb = realloc(ans->body, ans->body_len + avail + 1))) {
            snprintf(why, why_len, "out of memory");
            goto out;
        }
        ans->body = nb;
        if (!WinHttpReadData(req, ans->body + ans->body_len, avail, &got)) {
            set_why(why, why_len, "the answer broke off", GetLastError());
            goto out;
        }
        ans->body_len += got;
        ans->body[ans->body_len] = '\0';
    }
    if (!ans->body && !(ans->body = calloc(1, 1))) {
        snprintf(why, why_len, "out of memory");
        goto out;
    }
    stage = HTTPS_OK;
    snprintf(why, why_len, "ok");
out:
    if (stage != HTTPS_OK) {
        free(ans->body);
        ans->body = NULL;
        ans->body_len = 0;
    }
    if (req)
        WinHttpCloseHandle(req);
    if (conn)
        WinHttpCloseHandle(conn);
    if (session)
        WinHttpCloseHandle(session);
    sg_win_trust_free(&trust);
    return stage;
}
