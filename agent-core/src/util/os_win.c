/* signum-util on Windows: the console, the agent's named pipe, and doctor's network checks
 * (Winsock for DNS and TCP, then the agent's HTTPS transport, WinHTTP, for TLS, the server's
 * clock and /healthz). */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform.h"
#include "signum/https.h"
#include "util.h"

static ag_backend *backend; /* made at the first server, for all of them */
static ag_error backend_err;
static int backend_tried;

int util_read_secret_stdin(char *out, size_t len)
{
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
    DWORD mode = 0;
    int console = GetConsoleMode(in, &mode), ok;
    if (console) {
        fprintf(stderr, "API key: ");
        SetConsoleMode(in, mode & ~(DWORD)ENABLE_ECHO_INPUT);
    }
    ok = fgets(out, (int)len, stdin) != NULL;
    if (console) {
        SetConsoleMode(in, mode);
        fputc('\n', stderr);
    }
    return ok;
}

long long util_monotonic_ms(void)
{
    return (long long)GetTickCount64();
}

void util_binary_stdout(void)
{
    fflush(stdout);
    _setmode(_fileno(stdout), _O_BINARY);
}

void util_wait_agent_gone(void)
{
    char pipe[256];
    if (sg_default_socket(pipe, sizeof(pipe)) != 0)
        return;
    /* The pipe name disappears with the agent's last instance. */
    for (int i = 0; i < 500; i++) {
        if (!WaitNamedPipeA(pipe, 1) && GetLastError() == ERROR_FILE_NOT_FOUND)
            return;
        Sleep(20);
    }
}

void util_doctor_begin(void)
{
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
}

void util_doctor_end(void)
{
    ag_backend_free(backend);
    backend = NULL;
    backend_tried = 0;
    WSACleanup();
}

/* Host and port of an https:// URL (IPv6 literals in brackets). */
static int split_url(const char *url, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *h = url + strlen("https://"), *end, *colon;
    size_t n;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end)
            return -1;
        n = (size_t)(end - h - 1);
        colon = end[1] == ':' ? end + 1 : NULL;
        h++;
    } else {
        end = h + strcspn(h, ":/");
        n = (size_t)(end - h);
        colon = *end == ':' ? end : NULL;
    }
    if (!n || n >= host_len)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    if (colon) {
        n = strcspn(colon + 1, "/");
        if (!n || n >= port_len)
            return -1;
        memcpy(port, colon + 1, n);
        port[n] = '\0';
    } else {
        snprintf(port, port_len, "443");
    }
    return 0;
}

/* A TCP connection to one of the addresses, within timeout_ms; 0 on success. */
static int tcp_connect(const struct addrinfo *ai, int timeout_ms, char *why, size_t why_len)
{
    int last = 0;
    for (; ai; ai = ai->ai_next) {
        SOCKET s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        u_long nb = 1;
        fd_set w, e;
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        if (s == INVALID_SOCKET)
            continue;
        ioctlsocket(s, FIONBIO, &nb);
        if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) == 0) {
            closesocket(s);
            return 0;
        }
        last = WSAGetLastError();
        if (last == WSAEWOULDBLOCK) {
            FD_ZERO(&w);
            FD_ZERO(&e);
            FD_SET(s, &w);
            FD_SET(s, &e);
            last = WSAETIMEDOUT;
            if (select(0, NULL, &w, &e, &tv) > 0 && FD_ISSET(s, &w)) {
                closesocket(s);
                return 0;
            }
            if (FD_ISSET(s, &e)) {
                int err = 0, len = sizeof(err);
                getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len);
                last = err ? err : WSAECONNREFUSED;
            }
        }
        closesocket(s);
    }
    snprintf(why, why_len, "%s (Winsock error %d)",
             last == WSAECONNREFUSED ? "connection refused"
             : last == WSAETIMEDOUT  ? "timed out"
                                     : "cannot connect",
             last);
    return -1;
}

int util_doctor_server(const ag_config *cfg, unsigned index)
{
    char host[256], port[16], detail[400];
    struct addrinfo hints, *ai = NULL;
    ag_response ans;
    ag_error err;
    ag_stage stage;
    try_result tr;
    int failures = 0, rc;

    if (split_url(cfg->servers[index], host, sizeof(host), port, sizeof(port)) != 0)
        return util_verdict("dns", 0, "cannot take a host name from the URL");
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &ai);
    snprintf(detail, sizeof(detail), "%s resolved", host);
    if (rc != 0)
        snprintf(detail, sizeof(detail), "%s does not resolve (error %d)", host, rc);
    failures += util_verdict("dns", rc == 0, detail);
    if (rc != 0)
        return failures;
    rc = tcp_connect(ai, cfg->connect_timeout_ms, detail, sizeof(detail));
    freeaddrinfo(ai);
    failures += util_verdict("connect", rc == 0, rc == 0 ? "TCP connection made" : detail);
    if (rc != 0)
        return failures;

    if (!backend_tried) {
        backend_tried = 1;
        if (ag_backend_new(cfg, "signum-util/" SIGNUM_VERSION, &backend, &backend_err) != SG_OK)
            backend = NULL;
    }
    if (!backend)
        return failures + util_verdict("tls", 0, backend_err.message);
    memset(&ans, 0, sizeof(ans));
    tr = ag_backend_try(backend, index, "GET", "/healthz", NULL, NULL, NULL, &ans, &err);
    stage = tr == TRY_DONE || tr == TRY_RETRYABLE ? AG_STAGE_NONE
            : ans.stage != AG_STAGE_NONE          ? ans.stage
                                                  : AG_STAGE_SETUP;
    snprintf(detail, sizeof(detail), "%s",
             stage == AG_STAGE_NONE ? "ok"
             : ans.reason[0]        ? ans.reason
                                    : err.message);
    if (stage == AG_STAGE_TLS || stage == AG_STAGE_HTTP || stage == AG_STAGE_NONE) {
        if (stage == AG_STAGE_TLS)
            strncat(detail,
                    cfg->ca_file[0] ? " (is ca_file the server's CA?)"
                                    : " (set ca_file to the server's CA?)",
                    sizeof(detail) - strlen(detail) - 1);
        failures +=
            util_verdict("tls", stage != AG_STAGE_TLS,
                         stage == AG_STAGE_TLS ? detail
                         : cfg->ca_file[0] ? "handshake and certificate verified against ca_file"
                                           : "handshake and certificate verified (Windows roots)");
    } else {
        failures += util_verdict("tls", 0, detail);
    }
    if (stage == AG_STAGE_HTTP)
        failures += util_verdict("health", 0, detail);
    if (stage != AG_STAGE_NONE) {
        ag_response_free(&ans);
        return failures;
    }
    {
        long skew = ans.date ? (long)(time(NULL) - ans.date) : 0;
        snprintf(detail, sizeof(detail), "%s", "server sends no Date header");
        if (ans.date)
            snprintf(detail, sizeof(detail), "local clock %+ld s from the server's", skew);
        failures += util_verdict("clock", !ans.date || labs(skew) <= 60, detail);
    }
    snprintf(detail, sizeof(detail), "/healthz answered %ld", ans.status);
    failures += util_verdict("health", ans.status == 200, detail);
    ag_response_free(&ans);
    return failures;
}
