/* Unit tests of the alerts configuration (alerts/config.c): rules and webhooks validated with
 * precise errors, webhook URLs, the loopback rule for plain HTTP, the HMAC header value and
 * the outside-hours windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerts/alerts_internal.h"

static char dir[] = "/tmp/signum-unit-alerts-XXXXXX";

static int setup(void **state)
{
    FILE *f;
    char path[256];
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/good.secret", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("0123456789abcdef0123\n", f);
    fclose(f);
    chmod(path, 0600);
    snprintf(path, sizeof(path), "%s/open.secret", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("0123456789abcdef0123\n", f);
    fclose(f);
    chmod(path, 0644);
    return 0;
}

static int teardown(void **state)
{
    char path[256];
    (void)state;
    snprintf(path, sizeof(path), "%s/good.secret", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/open.secret", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static srv_status parse(const char *text, alert_config *c, srv_error *err)
{
    return alert_config_parse(text, strlen(text), dir, c, err);
}

static void test_good_config(void **state)
{
    alert_config c;
    srv_error err;
    (void)state;
    assert_int_equal(
        parse("{\"rules\":[{\"name\":\"burst\",\"type\":\"sign_count\",\"threshold\":5},"
              "{\"name\":\"d\",\"type\":\"denial_burst\",\"per\":\"caller\",\"threshold\":3,"
              "\"window_seconds\":60,\"severity\":\"high\",\"cooldown_seconds\":0},"
              "{\"name\":\"h\",\"type\":\"outside_hours\",\"time_zone\":\"Europe/Berlin\","
              "\"windows\":[{\"days\":[\"mon\",\"fri\"],\"start\":\"08:00\",\"end\":\"18:00\"}]},"
              "{\"name\":\"q\",\"type\":\"job_queue\",\"max_age_seconds\":60}],"
              "\"webhooks\":[{\"url\":\"https://hooks.example:8443/a/b?token=x\","
              "\"secret_file\":\"good.secret\"}],\"outbox_max\":5}",
              &c, &err),
        SRV_OK);
    assert_int_equal(c.nrules, 4);
    assert_int_equal(c.rules[0].type, ALERT_SIGN_COUNT);
    assert_int_equal(c.rules[0].per, ALERT_PER_KEY);
    assert_int_equal(c.rules[0].window, 600);
    assert_int_equal(c.rules[0].cooldown, 3600);
    assert_string_equal(c.rules[0].severity, "warning");
    assert_int_equal(c.rules[1].per, ALERT_PER_SIGNER);
    assert_int_equal(c.rules[1].cooldown, 0);
    assert_string_equal(c.rules[2].hours.time_zone, "Europe/Berlin");
    assert_int_equal(c.rules[2].hours.nwindows, 1);
    assert_int_equal(c.outbox_max, 5);
    assert_int_equal(c.nwebhooks, 1);
    assert_int_equal(c.webhooks[0].tls, 1);
    assert_string_equal(c.webhooks[0].host, "hooks.example");
    assert_string_equal(c.webhooks[0].port, "8443");
    assert_string_equal(c.webhooks[0].path, "/a/b?token=x");
    /* The cursor's name leaves the query (a token) out. */
    assert_string_equal(c.webhooks[0].cursor, "webhook:hooks.example:8443/a/b");
    assert_int_equal(c.webhooks[0].secret_len, 20); /* the newline is not part of it */
    alert_config_clear(&c);
}

static void expect_error(const char *text, const char *fragment)
{
    alert_config c;
    srv_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(parse(text, &c, &err), SRV_E_CONFIG);
    if (!strstr(err.message, fragment))
        fail_msg("\"%s\" lacks \"%s\"", err.message, fragment);
}

static void test_bad_configs(void **state)
{
    (void)state;
    expect_error("{\"rules\":[]}", "\"rules\" must be an array of 1-64 rules");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"nope\"}]}", "type must be sign_count");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"sign_count\"}]}", "rule \"a\": ");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"sign_count\",\"threshold\":1,"
                 "\"colour\":1}]}",
                 "colour");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"job_queue\"}]}",
                 "needs max_depth, max_age_seconds or both");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"hsm_error\",\"per\":\"key\"}]}",
                 "per must be");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"outside_hours\",\"windows\":"
                 "[{\"start\":\"25:00\",\"end\":\"18:00\"}]}]}",
                 "rule \"a\": ");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"outside_hours\",\"time_zone\":"
                 "\"Mars/Olympus\",\"windows\":[{\"start\":\"08:00\",\"end\":\"18:00\"}]}]}",
                 "rule \"a\": ");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"hsm_error\"},"
                 "{\"name\":\"a\",\"type\":\"hsm_error\"}]}",
                 "two rules are named \"a\"");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"hsm_error\"}],\"webhooks\":[{\"url\":"
                 "\"http://hooks.example/\",\"secret_file\":\"good.secret\"}]}",
                 "http:// is allowed only to a loopback address");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"hsm_error\"}],\"webhooks\":[{\"url\":"
                 "\"https://hooks.example/\",\"secret_file\":\"open.secret\"}]}",
                 "readable by others");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"hsm_error\"}],\"webhooks\":[{\"url\":"
                 "\"https://u:p@hooks.example/\",\"secret_file\":\"good.secret\"}]}",
                 "webhooks[0].url must be");
    expect_error("{\"rules\":[{\"name\":\"a\",\"type\":\"hsm_error\"}],\"webhooks\":[{\"url\":"
                 "\"https://hooks.example/\"}]}",
                 "webhooks[0]: ");
}

static void test_insecure_http_allowed_when_explicit(void **state)
{
    alert_config c;
    srv_error err;
    (void)state;
    assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"type\":\"hsm_error\"}],\"webhooks\":["
                           "{\"url\":\"http://hooks.example/x\",\"secret_file\":\"good.secret\","
                           "\"insecure\":true},{\"url\":\"http://[::1]:9000\",\"secret_file\":"
                           "\"good.secret\"}]}",
                           &c, &err),
                     SRV_OK);
    assert_string_equal(c.webhooks[0].port, "80");
    assert_string_equal(c.webhooks[1].host, "::1");
    assert_string_equal(c.webhooks[1].path, "/");
    alert_config_clear(&c);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(alert_host_is_loopback("127.0.0.1"));
    assert_true(alert_host_is_loopback("127.8.9.10"));
    assert_true(alert_host_is_loopback("::1"));
    assert_true(alert_host_is_loopback("LOCALHOST"));
    assert_false(alert_host_is_loopback("128.0.0.1"));
    assert_false(alert_host_is_loopback("localhost.example"));
    assert_false(alert_host_is_loopback("::2"));
}

static void test_hmac(void **state)
{
    char hex[65];
    (void)state;
    /* RFC 4231 test case 2. */
    alert_hmac_hex((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_hours(void **state)
{
    alert_config c;
    srv_error err;
    const policy_rule *h;
    (void)state;
    assert_int_equal(parse("{\"rules\":[{\"name\":\"n\",\"type\":\"outside_hours\",\"windows\":["
                           "{\"days\":[\"fri\"],\"start\":\"22:00\",\"end\":\"06:00\"}]}]}",
                           &c, &err),
                     SRV_OK);
    h = &c.rules[0].hours;
    assert_true(alert_hours_inside(h, 5, 23 * 60));     /* Friday 23:00 */
    assert_true(alert_hours_inside(h, 6, 5 * 60 + 59)); /* Saturday 05:59: Friday's window */
    assert_false(alert_hours_inside(h, 6, 6 * 60));     /* Saturday 06:00 */
    assert_false(alert_hours_inside(h, 5, 21 * 60));    /* Friday 21:00 */
    assert_false(alert_hours_inside(h, 4, 23 * 60));    /* Thursday 23:00 */
    alert_config_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_insecure_http_allowed_when_explicit),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_hours),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
