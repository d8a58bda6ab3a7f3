/* RFC 3339 parsing and formatting with a proleptic Gregorian calendar of our own: timegm is
 * a GNU/BSD extension (mingw has _mkgmtime instead) and silently normalises 02-30 to March. */
#include "signum/common/rfc3339.h"

#include <stdio.h>

static int leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n decimal digits at s, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Seconds into *out and the fraction's first three digits (0 without one) into *ms. */
static int parse(const char *s, unsigned flags, int64_t *out, int *ms)
{
    int y, mo, d, h, mi, se, off = 0;
    const char *rest;

    *ms = 0;

    if (!s)
        return SGC_E_FORMAT;
    /* "YYYY-MM-DDTHH:MM:SS": every position checked before a digit is read past the end. */
    for (int i = 0; i < 19; i++)
        if (!s[i])
            return SGC_E_FORMAT;
    if ((y = digits(s, 4)) < 0 || s[4] != '-' || (mo = digits(s + 5, 2)) < 0 || s[7] != '-' ||
        (d = digits(s + 8, 2)) < 0 || (h = digits(s + 11, 2)) < 0 || s[13] != ':' ||
        (mi = digits(s + 14, 2)) < 0 || s[16] != ':' || (se = digits(s + 17, 2)) < 0)
        return SGC_E_FORMAT;
    rest = s + 19;
    if (flags & SGC_RFC3339_UTC_ONLY) {
        if (s[10] != 'T' || rest[0] != 'Z' || rest[1])
            return SGC_E_FORMAT;
    } else {
        if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
            return SGC_E_FORMAT;
        if (*rest == '.') { /* digits past the millisecond are dropped */
            if (rest[1] < '0' || rest[1] > '9')
                return SGC_E_FORMAT;
            for (int scale = 100; *++rest >= '0' && *rest <= '9'; scale /= 10)
                *ms += (*rest - '0') * scale;
        }
        if ((*rest == 'Z' || *rest == 'z') && !rest[1]) {
            /* UTC */
        } else if ((*rest == '+' || *rest == '-') && rest[1] && rest[2] && rest[3] == ':' &&
                   rest[4] && rest[5] && !rest[6]) {
            int oh = digits(rest + 1, 2), om = digits(rest + 4, 2);
            if (oh < 0 || om < 0 || oh > 23 || om > 59)
                return SGC_E_FORMAT;
            off = (oh * 60 + om) * 60;
            if (*rest == '-')
                off = -off;
        } else {
            return SGC_E_FORMAT;
        }
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 ||
        se > 60)
        return SGC_E_FORMAT;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    return SGC_OK;
}

int sgc_rfc3339_parse(const char *s, unsigned flags, int64_t *out)
{
    int ms;
    return parse(s, flags, out, &ms);
}

int sgc_rfc3339_parse_ms(const char *s, int64_t *out_ms)
{
    int64_t secs;
    int ms;
    int rc = parse(s, 0, &secs, &ms);
    if (rc == SGC_OK)
        *out_ms = secs * 1000 + ms;
    return rc;
}

int sgc_rfc3339_format(int64_t t, char *out, size_t out_len)
{
    int64_t days, secs, z, era, doe, yoe, y, doy, mp, d, m;

    if (out_len > 0)
        out[0] = '\0';
    /* 253402300800 is 10000-01-01T00:00:00Z. */
    if (t < 0 || t >= 253402300800LL || out_len < SGC_RFC3339_LEN + 1)
        return SGC_E_FORMAT;
    days = t / 86400;
    secs = t % 86400;
    /* civil_from_days (H. Hinnant), for days >= 0. */
    z = days + 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, (int)m, (int)d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    return SGC_OK;
}
