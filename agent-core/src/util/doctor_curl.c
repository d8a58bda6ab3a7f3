/* signum-util doctor's network checks on Linux, with libcurl: DNS, TCP, TLS against the
 * configured CA, clock skew from the server's Date header, and /healthz. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "platform.h"

static size_t capture_date(char *data, size_t size, size_t n, void *arg)
{
    char *date = arg;
    size_t len = size * n;
    if (len > 6 && len < 100 && strncasecmp(data, "date:", 5) == 0) {
        memcpy(date, data + 5, len - 5);
        date[len - 5] = '\0';
        date[strcspn(date, "\r\n")] = '\0';
    }
    return len;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

void util_doctor_begin(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void util_doctor_end(void)
{
    curl_global_cleanup();
}

int util_doctor_server(const ag_config *cfg, unsigned index)
{
    char url[600], date[100] = "", detail[300];
    CURL *h = curl_easy_init();
    CURLcode rc;
    long code = 0;
    int failures = 0;

    if (!h)
        return util_verdict("connect", 0, "out of memory");
    snprintf(url, sizeof(url), "%s/healthz", cfg->servers[index]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg->ca_file[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, capture_date);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, date);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    failures +=
        util_verdict("dns", rc != CURLE_COULDNT_RESOLVE_HOST,
                     rc == CURLE_COULDNT_RESOLVE_HOST ? curl_easy_strerror(rc) : "resolved");
    if (rc != CURLE_COULDNT_RESOLVE_HOST)
        failures += util_verdict(
            "connect", rc != CURLE_COULDNT_CONNECT && rc != CURLE_OPERATION_TIMEDOUT,
            rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ? curl_easy_strerror(rc)
                                                                          : "TCP connection made");
    if (rc == CURLE_OK || rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
        rc == CURLE_SSL_CACERT_BADFILE) {
        snprintf(detail, sizeof(detail), "%s",
                 rc == CURLE_OK ? "handshake and certificate verified" : curl_easy_strerror(rc));
        if (rc != CURLE_OK)
            strncat(detail, " (is ca_file the server's CA?)", sizeof(detail) - strlen(detail) - 1);
        failures += util_verdict("tls", rc == CURLE_OK, detail);
    }
    if (rc == CURLE_OK) {
        time_t server_time = curl_getdate(date, NULL);
        long skew = server_time > 0 ? (long)(time(NULL) - server_time) : 0;
        snprintf(detail, sizeof(detail), "%s", "server sends no Date header");
        if (server_time > 0)
            snprintf(detail, sizeof(detail), "local clock %+ld s from the server's", skew);
        failures += util_verdict("clock", server_time <= 0 || labs(skew) <= 60, detail);
        snprintf(detail, sizeof(detail), "/healthz answered %ld", code);
        failures += util_verdict("health", code == 200, detail);
    }
    curl_easy_cleanup(h);
    return failures;
}
