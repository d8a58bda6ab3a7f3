/* Unit tests of the audit exporters' wire formats (RFC 5424 messages, octet-counting frames,
 * Splunk HEC events), their address parsers, and the checkpoint payload. */
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audit/checkpoint.h"
#include "audit/export.h"

static const char hash64[] = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";

static srv_audit_row sample_row(const char *actor, const char *outcome)
{
    srv_audit_row row;
    memset(&row, 0, sizeof(row));
    row.seq = 42;
    snprintf(row.time, sizeof(row.time), "2026-11-22T12:38:33.123Z");
    snprintf(row.actor, sizeof(row.actor), "%s", actor);
    snprintf(row.action, sizeof(row.action), "sign");
    snprintf(row.outcome, sizeof(row.outcome), "%s", outcome);
    row.record = "{\"action\":\"sign\",\"seq\":42}";
    row.hash = hash64;
    return row;
}

static void test_syslog_format(void **state)
{
    srv_audit_row row = sample_row("user:alice", "allowed");
    char *msg = NULL, want[512];
    size_t len = 0;
    (void)state;
    assert_int_equal(srv_syslog_format(&row, "build host", 77, &msg, &len, NULL), SRV_OK);
    snprintf(want, sizeof(want),
             "<109>1 2026-11-22T12:38:33.123Z build_host signum-server 77 sign "
             "[signum@32473 id=\"%s\" seq=\"42\" actor=\"user:alice\" outcome=\"allowed\"] "
             "{\"action\":\"sign\",\"seq\":42}",
             hash64);
    assert_string_equal(msg, want);
    assert_int_equal(len, strlen(want));
    free(msg);
}

static void test_syslog_severity_and_escaping(void **state)
{
    srv_audit_row row = sample_row("user:a\"b]c\\d", "denied");
    char *msg = NULL;
    size_t len = 0;
    (void)state;
    assert_int_equal(srv_syslog_format(&row, "", 1, &msg, &len, NULL), SRV_OK);
    assert_memory_equal(msg, "<108>1 ", 7);                   /* facility 13, warning */
    assert_non_null(strstr(msg, " - signum-server 1 sign ")); /* NILVALUE host */
    assert_non_null(strstr(msg, "actor=\"user:a\\\"b\\]c\\\\d\""));
    free(msg);
    row = sample_row("system", "error");
    assert_int_equal(srv_syslog_format(&row, "h", 1, &msg, &len, NULL), SRV_OK);
    assert_memory_equal(msg, "<107>1 ", 7);
    free(msg);
}

static void test_syslog_frame(void **state)
{
    char *out = NULL;
    size_t len = 0;
    (void)state;
    assert_int_equal(srv_syslog_frame("<109>1 x", 8, &out, &len, NULL), SRV_OK);
    assert_string_equal(out, "8 <109>1 x");
    assert_int_equal(len, 10);
    free(out);
    assert_int_equal(srv_syslog_frame("", 0, &out, &len, NULL), SRV_OK);
    assert_string_equal(out, "0 ");
    free(out);
}

static void test_hec_event(void **state)
{
    srv_audit_row row = sample_row("user:alice", "allowed");
    char *text = NULL;
    cJSON *ev;
    (void)state;
    assert_int_equal(srv_hec_event(&row, "h1", &text, NULL), SRV_OK);
    ev = cJSON_Parse(text);
    assert_non_null(ev);
    assert_true(cJSON_GetObjectItem(ev, "time")->valuedouble > 1795351113.12 &&
                cJSON_GetObjectItem(ev, "time")->valuedouble < 1795351113.13);
    assert_string_equal(cJSON_GetObjectItem(ev, "sourcetype")->valuestring, "signum:audit");
    assert_string_equal(cJSON_GetObjectItem(ev, "host")->valuestring, "h1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "event"), "hash")->valuestring,
                        hash64);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "fields"), "signum_id")->valuestring, hash64);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "fields"), "signum_seq")->valueint,
                     42);
    cJSON_Delete(ev);
    cJSON_free(text);
    /* A record made on a whole second still has a fractional time (HEC receivers and the
     * integration test expect a float), one in a thousand records before. */
    snprintf(row.time, sizeof(row.time), "2026-11-22T12:38:33.000Z");
    assert_int_equal(srv_hec_event(&row, "h1", &text, NULL), SRV_OK);
    assert_non_null(strstr(text, "\"time\":1795351113.000,"));
    cJSON_free(text);
    row.record = "not json";
    assert_int_not_equal(srv_hec_event(&row, "h1", &text, NULL), SRV_OK);
}

static void test_parse_host_port(void **state)
{
    char host[64], port[8];
    (void)state;
    assert_true(srv_parse_host_port("127.0.0.1:514", host, sizeof(host), port, sizeof(port)));
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "514");
    assert_true(srv_parse_host_port("[::1]:6514", host, sizeof(host), port, sizeof(port)));
    assert_string_equal(host, "::1");
    assert_false(srv_parse_host_port("::1:514", host, sizeof(host), port, sizeof(port)));
    assert_false(srv_parse_host_port("host", host, sizeof(host), port, sizeof(port)));
    assert_false(srv_parse_host_port("host:0", host, sizeof(host), port, sizeof(port)));
    assert_false(srv_parse_host_port("host:65536", host, sizeof(host), port, sizeof(port)));
    assert_false(srv_parse_host_port(":514", host, sizeof(host), port, sizeof(port)));
    assert_false(srv_parse_host_port("a b:514", host, sizeof(host), port, sizeof(port)));
}

static void test_parse_https_url(void **state)
{
    char host[64], port[8], path[128];
    (void)state;
    assert_true(srv_parse_https_url("https://splunk.example:8088/services/collector/event", host,
                                    sizeof(host), port, sizeof(port), path, sizeof(path)));
    assert_string_equal(host, "splunk.example");
    assert_string_equal(port, "8088");
    assert_string_equal(path, "/services/collector/event");
    assert_true(srv_parse_https_url("https://splunk.example", host, sizeof(host), port,
                                    sizeof(port), path, sizeof(path)));
    assert_string_equal(port, "443");
    assert_string_equal(path, "/services/collector/event");
    assert_false(srv_parse_https_url("http://splunk.example/", host, sizeof(host), port,
                                     sizeof(port), path, sizeof(path)));
    assert_false(srv_parse_https_url("https://user:pw@splunk.example/", host, sizeof(host), port,
                                     sizeof(port), path, sizeof(path)));
    assert_false(srv_parse_https_url("https://h/a b", host, sizeof(host), port, sizeof(port), path,
                                     sizeof(path)));
}

static void test_http_status(void **state)
{
    (void)state;
    assert_int_equal(srv_http_status("HTTP/1.1 200 OK\r\n", 17), 200);
    assert_int_equal(srv_http_status("HTTP/1.0 503 x\r\n", 16), 503);
    assert_int_equal(srv_http_status("HTTP/1.1 20", 11), -1);
    assert_int_equal(srv_http_status("HTTP/2 200 OK\r\n", 15), -1);
    assert_int_equal(srv_http_status("SMTP/1.1 200 OK\r\n", 17), -1);
}

static void test_checkpoint_payload(void **state)
{
    srv_checkpoint_state prev = {3, ""};
    char *text = NULL;
    (void)state;
    memcpy(prev.payload_hash, hash64, 65);
    assert_int_equal(
        srv_checkpoint_payload(10, hash64, &prev, "kf", "records", 1795351113123, &text, NULL),
        SRV_OK);
    assert_non_null(strstr(text, "{\"head\":\""));
    assert_non_null(strstr(text, "\"key\":\"kf\",\"prev\":\""));
    assert_non_null(strstr(text, "\"prev_seq\":3,\"reason\":\"records\",\"seq\":10,"
                                 "\"time\":\"2026-11-22T12:38:33.123Z\","
                                 "\"type\":\"signum.audit.checkpoint/1\"}"));
    cJSON_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syslog_format),   cmocka_unit_test(test_syslog_severity_and_escaping),
        cmocka_unit_test(test_syslog_frame),    cmocka_unit_test(test_hec_event),
        cmocka_unit_test(test_parse_host_port), cmocka_unit_test(test_parse_https_url),
        cmocka_unit_test(test_http_status),     cmocka_unit_test(test_checkpoint_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
