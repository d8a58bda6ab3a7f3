/* The wire formats of the audit exporters: RFC 5424 syslog messages, octet-counting frames,
 * Splunk HEC events, and the small parsers for sink addresses and HTTP status lines. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "export.h"
#include "signum/common/rfc3339.h"

/* RFC 5424 header fields are PRINTUSASCII (33..126) with a maximum length; NILVALUE if empty. */
static void header_field(FILE *f, const char *text, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n < max; p++, n++)
        fputc(*p >= 33 && *p <= 126 ? *p : '_', f);
    if (n == 0)
        fputc('-', f);
}

/* SD-PARAM values escape '"', '\' and ']' (RFC 5424 6.3.3). */
static void sd_value(FILE *f, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == ']')
            fputc('\\', f);
        fputc(*p, f);
    }
}

static int severity_of(const char *outcome)
{
    if (strcmp(outcome, "denied") == 0)
        return 4; /* warning */
    if (strcmp(outcome, "error") == 0)
        return 3; /* error */
    if (strcmp(outcome, "alert") == 0)
        return 4; /* warning: an alert record (alerts/alerts.h) */
    return 5;     /* notice */
}

srv_status srv_syslog_format(const srv_audit_row *row, const char *hostname, long pid, char **out,
                             size_t *out_len, srv_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    *out = NULL;
    if (!f)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    fprintf(f, "<%d>1 ", 13 * 8 + severity_of(row->outcome));
    header_field(f, row->time, 32);
    fputc(' ', f);
    header_field(f, hostname, 255);
    fprintf(f, " signum-server %ld ", pid);
    header_field(f, row->action, 32);
    fprintf(f, " [" SRV_SYSLOG_SD_ID " id=\"");
    sd_value(f, row->hash);
    fprintf(f, "\" seq=\"%lld\" actor=\"", (long long)row->seq);
    sd_value(f, row->actor);
    fprintf(f, "\" outcome=\"");
    sd_value(f, row->outcome);
    fprintf(f, "\"] %s", row->record);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    *out = buf;
    *out_len = len;
    return SRV_OK;
}

srv_status srv_syslog_frame(const char *msg, size_t len, char **out, size_t *out_len,
                            srv_error *err)
{
    char head[24];
    int n = snprintf(head, sizeof(head), "%zu ", len);
    *out = malloc((size_t)n + len + 1);
    if (!*out)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    memcpy(*out, head, (size_t)n);
    memcpy(*out + n, msg, len);
    (*out)[n + len] = '\0';
    *out_len = (size_t)n + len;
    return SRV_OK;
}

/* The record's time ("2026-11-22T12:38:33.123Z") as HEC wants it: epoch seconds with
 * milliseconds, always with the fraction ("1796180175.000"), so every event's time is a JSON
 * number of the same shape; "0.000" if unreadable. */
static void epoch_of(const char *iso, char *out, size_t out_len)
{
    int64_t ms;
    if (sgc_rfc3339_parse_ms(iso, &ms) != SGC_OK)
        ms = 0;
    snprintf(out, out_len, "%lld.%03d", (long long)(ms / 1000), (int)(ms % 1000));
}

srv_status srv_hec_event(const srv_audit_row *row, const char *hostname, char **out, srv_error *err)
{
    cJSON *ev = cJSON_CreateObject(), *record = cJSON_Parse(row->record), *fields = NULL;
    char time[32];

    *out = NULL;
    epoch_of(row->time, time, sizeof(time));
    if (!ev || !record)
        goto fail;
    if (!cJSON_AddStringToObject(record, "hash", row->hash) ||
        !cJSON_AddRawToObject(ev, "time", time) || !cJSON_AddStringToObject(ev, "host", hostname) ||
        !cJSON_AddStringToObject(ev, "source", "signum-server") ||
        !cJSON_AddStringToObject(ev, "sourcetype", "signum:audit") ||
        !cJSON_AddItemToObject(ev, "event", record))
        goto fail;
    record = NULL;
    if (!(fields = cJSON_AddObjectToObject(ev, "fields")) ||
        !cJSON_AddStringToObject(fields, "signum_id", row->hash) ||
        !cJSON_AddNumberToObject(fields, "signum_seq", (double)row->seq))
        goto fail;
    *out = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    return *out ? SRV_OK : srv_fail(err, SRV_E_NOMEM, "out of memory");
fail:
    cJSON_Delete(record);
    cJSON_Delete(ev);
    return srv_fail(err, SRV_E_INTERNAL, "cannot build the HEC event for record %lld",
                    (long long)row->seq);
}

static int valid_port(const char *p)
{
    long v;
    char *end;
    if (!*p || strlen(p) > 5)
        return 0;
    v = strtol(p, &end, 10);
    return *end == '\0' && v > 0 && v <= 65535;
}

static int copy_part(char *dst, size_t dst_len, const char *src, size_t n)
{
    if (n == 0 || n >= dst_len)
        return 0;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 1;
}

int srv_parse_host_port(const char *text, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return 0;
        if (!copy_part(host, host_len, text + 1, (size_t)(close - text - 1)))
            return 0;
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return 0;
        if (!copy_part(host, host_len, text, (size_t)(colon - text)))
            return 0;
    }
    for (const char *p = host; *p; p++)
        if (isspace((unsigned char)*p) || *p == '/' || *p == '@')
            return 0;
    return copy_part(port, port_len, colon + 1, strlen(colon + 1)) && valid_port(port);
}

int srv_parse_https_url(const char *url, char *host, size_t host_len, char *port, size_t port_len,
                        char *path, size_t path_len)
{
    static const char scheme[] = "https://";
    const char *auth, *slash;
    char hostport[300];

    if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
        return 0;
    auth = url + sizeof(scheme) - 1;
    slash = strchr(auth, '/');
    if (!copy_part(hostport, sizeof(hostport), auth, slash ? (size_t)(slash - auth) : strlen(auth)))
        return 0;
    if (strchr(hostport, '@'))
        return 0; /* no credentials in the URL: the token has its own file */
    if (!srv_parse_host_port(hostport, host, host_len, port, port_len)) {
        if (strchr(hostport, ':') || !copy_part(host, host_len, hostport, strlen(hostport)) ||
            port_len < 4)
            return 0;
        snprintf(port, port_len, "443");
    }
    if (!slash || !slash[1])
        slash = "/services/collector/event";
    for (const char *p = slash; *p; p++)
        if ((unsigned char)*p <= 32 || *p == 127)
            return 0;
    return copy_part(path, path_len, slash, strlen(slash));
}

int srv_http_status(const char *head, size_t len)
{
    int code = 0;
    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++) {
        if (!isdigit((unsigned char)head[i]))
            return -1;
        code = code * 10 + (head[i] - '0');
    }
    return code;
}
