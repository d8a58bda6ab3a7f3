/* Address ranges of policy rules (where.ip_ranges): parsing and matching, IPv4 and IPv6. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int policy_cidr_parse(const char *s, policy_cidr *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    unsigned max;
    memset(out, 0, sizeof(*out));
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1)
        max = 32;
    else if (inet_pton(AF_INET6, buf, out->addr) == 1)
        out->v6 = 1, max = 128;
    else
        return 0;
    out->prefix = max;
    if (slash) {
        char *end;
        long p;
        if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1))
            return 0;
        p = strtol(slash + 1, &end, 10);
        if (p < 0 || p > (long)max)
            return 0;
        out->prefix = (unsigned)p;
    }
    return 1;
}

int policy_cidr_contains(const policy_cidr *c, const char *ip)
{
    uint8_t a[16];
    int v6 = 0;
    if (!ip || !*ip)
        return 0;
    if (inet_pton(AF_INET, ip, a) != 1) {
        if (inet_pton(AF_INET6, ip, a) != 1)
            return 0;
        v6 = 1;
        /* An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) is its IPv4 address. */
        if (!c->v6 && memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
            memmove(a, a + 12, 4);
            v6 = 0;
        }
    }
    if (v6 != c->v6)
        return 0;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(a, c->addr, full) != 0)
        return 0;
    if (rest) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        if ((a[full] & mask) != (c->addr[full] & mask))
            return 0;
    }
    return 1;
}
