/* Unit tests of RFC 3339 parsing and formatting (common/src/rfc3339.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "signum/common/rfc3339.h"

static int64_t ok(const char *s, unsigned flags)
{
    int64_t t = -12345;
    assert_int_equal(sgc_rfc3339_parse(s, flags, &t), SGC_OK);
    return t;
}

static void bad(const char *s, unsigned flags)
{
    int64_t t = -12345;
    assert_int_equal(sgc_rfc3339_parse(s, flags, &t), SGC_E_FORMAT);
    assert_int_equal(t, -12345); /* untouched */
}

static void test_utc_only(void **state)
{
    (void)state;
    assert_int_equal(ok("1970-01-01T00:00:00Z", SGC_RFC3339_UTC_ONLY), 0);
    assert_int_equal(ok("2025-01-31T12:00:00Z", SGC_RFC3339_UTC_ONLY), 1738324800);
    assert_int_equal(ok("2024-02-29T23:59:59Z", SGC_RFC3339_UTC_ONLY), 1709251199);
    assert_int_equal(ok("2000-03-01T00:00:00Z", SGC_RFC3339_UTC_ONLY), 951868800);
    assert_int_equal(ok("9999-12-31T23:59:59Z", SGC_RFC3339_UTC_ONLY), 253402300799LL);
    /* A leap second reads as the next minute's first second, as timegm() had it. */
    assert_int_equal(ok("2016-12-31T23:59:60Z", SGC_RFC3339_UTC_ONLY), 1483228800);
    bad("2025-01-31t12:00:00Z", SGC_RFC3339_UTC_ONLY);
    bad("2025-01-31 12:00:00Z", SGC_RFC3339_UTC_ONLY);
    bad("2025-01-31T12:00:00z", SGC_RFC3339_UTC_ONLY);
    bad("2025-01-31T12:00:00.5Z", SGC_RFC3339_UTC_ONLY);
    bad("2025-01-31T12:00:00+00:00", SGC_RFC3339_UTC_ONLY);
    bad("2025-01-31T12:00:00Z ", SGC_RFC3339_UTC_ONLY);
    bad("2025-01-31T12:00:00", SGC_RFC3339_UTC_ONLY);
}

static void test_ranges(void **state)
{
    (void)state;
    bad("2025-02-29T00:00:00Z", 0); /* not a leap year: 02-29 would be March 1st */
    bad("2025-02-30T00:00:00Z", SGC_RFC3339_UTC_ONLY);
    bad("2024-02-30T00:00:00Z", 0);
    bad("1900-02-29T00:00:00Z", 0);
    ok("2000-02-29T00:00:00Z", 0); /* 2000 is a leap year, 1900 is not */
    bad("2025-04-31T00:00:00Z", 0);
    bad("2025-00-10T00:00:00Z", 0);
    bad("2025-13-10T00:00:00Z", 0);
    bad("2025-01-00T00:00:00Z", 0);
    bad("2025-01-01T24:00:00Z", 0);
    bad("2025-01-01T00:60:00Z", 0);
    bad("2025-01-01T00:00:61Z", 0);
    bad("1969-12-31T23:59:59Z", 0);
    bad("+025-01-01T00:00:00Z", 0); /* digits only, no sign or space (sscanf took both) */
    bad("2025- 1-01T00:00:00Z", 0);
    bad("2025-1-01T00:00:00Z", 0);
    bad("", 0);
    bad("2025", 0);
    assert_int_equal(sgc_rfc3339_parse(NULL, 0, &(int64_t){0}), SGC_E_FORMAT);
}

static void test_offsets_and_fractions(void **state)
{
    (void)state;
    assert_int_equal(ok("2025-01-31T12:00:00+02:00", 0), 1738324800 - 7200);
    assert_int_equal(ok("2025-01-31T12:00:00-05:30", 0), 1738324800 + 19800);
    assert_int_equal(ok("2025-01-31t12:00:00.123456z", 0), 1738324800);
    assert_int_equal(ok("2025-01-31 12:00:00Z", 0), 1738324800);
    assert_int_equal(ok("2025-01-31T12:00:00.9+00:00", 0), 1738324800);
    bad("2025-01-31T12:00:00.Z", 0);
    bad("2025-01-31T12:00:00+2:00", 0);
    bad("2025-01-31T12:00:00+0200", 0);
    bad("2025-01-31T12:00:00+24:00", 0);
    bad("2025-01-31T12:00:00+02:60", 0);
    bad("2025-01-31T12:00:00+02:00Z", 0);
    bad("2025-01-31T12:00:00", 0);
    bad("2025-01-31X12:00:00Z", 0);
}

static void test_format(void **state)
{
    char out[SGC_RFC3339_LEN + 1];
    (void)state;
    assert_int_equal(sgc_rfc3339_format(0, out, sizeof(out)), SGC_OK);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    assert_int_equal(sgc_rfc3339_format(1709251199, out, sizeof(out)), SGC_OK);
    assert_string_equal(out, "2024-02-29T23:59:59Z");
    assert_int_equal(sgc_rfc3339_format(253402300799LL, out, sizeof(out)), SGC_OK);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    assert_int_equal(sgc_rfc3339_format(253402300800LL, out, sizeof(out)), SGC_E_FORMAT);
    assert_string_equal(out, "");
    assert_int_equal(sgc_rfc3339_format(-1, out, sizeof(out)), SGC_E_FORMAT);
    assert_int_equal(sgc_rfc3339_format(0, out, SGC_RFC3339_LEN), SGC_E_FORMAT);
    assert_string_equal(out, "");
    /* Every day for 1970-2100 (and its last second) reads back to itself. */
    for (int64_t t = 0; t < 4102444800LL; t += 86400) {
        int64_t back;
        assert_int_equal(sgc_rfc3339_format(t + 86399, out, sizeof(out)), SGC_OK);
        assert_int_equal(sgc_rfc3339_parse(out, SGC_RFC3339_UTC_ONLY, &back), SGC_OK);
        assert_int_equal(back, t + 86399);
    }
}

/* The server's record times with their milliseconds (audit checkpoints, alerts, the HEC
 * exporter read them). */
static void test_milliseconds(void **state)
{
    int64_t ms = -12345;
    (void)state;
    assert_int_equal(sgc_rfc3339_parse_ms("2026-12-02T11:17:46.123Z", &ms), SGC_OK);
    assert_int_equal(ms, 1796210266123LL);
    assert_int_equal(sgc_rfc3339_parse_ms("2026-12-02T11:17:46.000Z", &ms), SGC_OK);
    assert_int_equal(ms, 1796210266000LL);
    assert_int_equal(sgc_rfc3339_parse_ms("2026-12-02T11:17:46Z", &ms), SGC_OK);
    assert_int_equal(ms, 1796210266000LL);
    assert_int_equal(sgc_rfc3339_parse_ms("2026-12-02T11:17:46.5Z", &ms), SGC_OK);
    assert_int_equal(ms, 1796210266500LL);
    assert_int_equal(sgc_rfc3339_parse_ms("2026-12-02T11:17:46.0479Z", &ms), SGC_OK);
    assert_int_equal(ms, 1796210266047LL); /* past the millisecond: dropped, not rounded */
    assert_int_equal(sgc_rfc3339_parse_ms("1970-01-01T00:00:00.001+00:00", &ms), SGC_OK);
    assert_int_equal(ms, 1);
    ms = -12345;
    assert_int_equal(sgc_rfc3339_parse_ms("2026-12-02T11:17:46.Z", &ms), SGC_E_FORMAT);
    assert_int_equal(sgc_rfc3339_parse_ms("2026-12-02T11:17:46.123", &ms), SGC_E_FORMAT);
    assert_int_equal(sgc_rfc3339_parse_ms("2026-02-30T11:17:46.123Z", &ms), SGC_E_FORMAT);
    assert_int_equal(sgc_rfc3339_parse_ms("", &ms), SGC_E_FORMAT);
    assert_int_equal(sgc_rfc3339_parse_ms(NULL, &ms), SGC_E_FORMAT);
    assert_int_equal(ms, -12345); /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_only),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_offsets_and_fractions),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_milliseconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
