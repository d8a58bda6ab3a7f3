/* Table-driven tests of the pure policy evaluator: every dimension (subjects, groups, service
 * accounts, keys, key groups, machines, IP ranges, applications, weekday/hour windows in a
 * time zone with DST edges, validity dates, digest algorithms, mechanisms, quotas, approval),
 * priorities, the deny tie-break, the implicit grant, rule validation, and the key listing's
 * question (could the subject ever be allowed to sign with the key?). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy/policy.h"

/* ---- rule sets (JSON arrays of rules) ----------------------------------------------------- */

#define ALICE_K1 "\"subjects\":{\"users\":[\"alice\"]},\"keys\":{\"names\":[\"k1\"]}"

enum {
    S_EMPTY,
    S_BASIC,
    S_GROUPS,
    S_SERVICE,
    S_PRIORITY,
    S_TIE,
    S_ALLOW_HIGHER,
    S_GRANT_DENY0,
    S_GRANT_DENY_NEG,
    S_GRANT_DENY_POS,
    S_MACHINE,
    S_IP,
    S_APP,
    S_HASH_MECH,
    S_QUOTA,
    S_APPROVAL,
    S_BUSINESS_BERLIN,
    S_DST_BERLIN,
    S_DST_NEW_YORK,
    S_VALIDITY,
    S_OVERNIGHT,
    S_DISABLED,
    S_NEAR_MISS,
    S_DENY_HASH,
    S_WILDCARD,
    S_QUOTA_SUBJECT,
    S_QUOTA_THEN_APPROVAL,
    S_LIST_GROUP,
    S_LIST_KEY_GROUP,
    S_LIST_LAYERED,
    S_PROJECT_RULE,
    S_PROJECT_FREEZE,
    S_COUNT
};

static const char *const sets[S_COUNT] = {
    [S_EMPTY] = "[]",
    [S_BASIC] = "[{\"name\":\"basic\",\"effect\":\"allow\"," ALICE_K1 "}]",
    [S_GROUPS] = "[{\"name\":\"release-team\",\"effect\":\"allow\",\"subjects\":{\"groups\":"
                 "[\"release\"]},\"keys\":{\"groups\":[\"prod\"]}}]",
    [S_SERVICE] = "[{\"name\":\"ci\",\"effect\":\"allow\",\"subjects\":{\"service_accounts\":"
                  "[\"ci-release\"]},\"keys\":{\"names\":[\"*\"]}}]",
    [S_PRIORITY] = "[{\"name\":\"allow-low\",\"effect\":\"allow\",\"priority\":10," ALICE_K1 "},"
                   "{\"name\":\"deny-high\",\"effect\":\"deny\",\"priority\":20," ALICE_K1 "}]",
    [S_TIE] = "[{\"name\":\"a-allow\",\"effect\":\"allow\",\"priority\":50," ALICE_K1 "},"
              "{\"name\":\"z-deny\",\"effect\":\"deny\",\"priority\":50," ALICE_K1 "}]",
    [S_ALLOW_HIGHER] = "[{\"name\":\"allow-60\",\"effect\":\"allow\",\"priority\":60," ALICE_K1
                       "},{\"name\":\"deny-50\",\"effect\":\"deny\",\"priority\":50," ALICE_K1 "}]",
    [S_GRANT_DENY0] = "[{\"name\":\"deny-0\",\"effect\":\"deny\",\"priority\":0," ALICE_K1 "}]",
    [S_GRANT_DENY_NEG] =
        "[{\"name\":\"deny-neg\",\"effect\":\"deny\",\"priority\":-1," ALICE_K1 "}]",
    [S_GRANT_DENY_POS] =
        "[{\"name\":\"deny-pos\",\"effect\":\"deny\",\"priority\":1," ALICE_K1 "}]",
    [S_MACHINE] = "[{\"name\":\"build-hosts\",\"effect\":\"allow\"," ALICE_K1
                  ",\"where\":{\"machines\":[\"build-01\",\"build-02\"]}}]",
    [S_IP] = "[{\"name\":\"office\",\"effect\":\"allow\"," ALICE_K1
             ",\"where\":{\"ip_ranges\":[\"10.0.0.0/8\",\"2001:db8::/32\",\"192.168.1.7\","
             "\"172.16.0.0/12\"]}}]",
    [S_APP] = "[{\"name\":\"tools\",\"effect\":\"allow\"," ALICE_K1
              ",\"where\":{\"applications\":[\"*/osslsigncode\",\"/usr/bin/jarsigner\"]}}]",
    [S_HASH_MECH] = "[{\"name\":\"strong\",\"effect\":\"allow\"," ALICE_K1
                    ",\"conditions\":{\"hashes\":[\"sha384\",\"sha512\"],\"mechanisms\":"
                    "[\"rsa-pss\"]}}]",
    [S_QUOTA] = "[{\"name\":\"metered\",\"effect\":\"allow\"," ALICE_K1
                ",\"conditions\":{\"quotas\":[{\"limit\":10,\"window_seconds\":3600,\"per\":"
                "\"key\"},{\"limit\":5,\"window_seconds\":60,\"per\":\"subject_key\"}]}}]",
    [S_APPROVAL] = "[{\"name\":\"two-man\",\"effect\":\"allow\"," ALICE_K1
                   ",\"conditions\":{\"approval\":{\"required\":2,\"approvers\":[\"bob\","
                   "\"carol\",\"dave\"],\"ttl_seconds\":600}}}]",
    [S_BUSINESS_BERLIN] = "[{\"name\":\"office-hours\",\"effect\":\"allow\"," ALICE_K1
                          ",\"when\":{\"time_zone\":\"Europe/Berlin\",\"windows\":[{\"days\":"
                          "[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],\"start\":\"09:00\","
                          "\"end\":\"17:00\"}]}}]",
    [S_DST_BERLIN] = "[{\"name\":\"night-berlin\",\"effect\":\"allow\"," ALICE_K1
                     ",\"when\":{\"time_zone\":\"Europe/Berlin\",\"windows\":[{\"days\":"
                     "[\"sun\"],\"start\":\"01:00\",\"end\":\"03:00\"}]}}]",
    [S_DST_NEW_YORK] = "[{\"name\":\"night-ny\",\"effect\":\"allow\"," ALICE_K1
                       ",\"when\":{\"time_zone\":\"America/New_York\",\"windows\":[{\"days\":"
                       "[\"sun\"],\"start\":\"01:00\",\"end\":\"03:00\"}]}}]",
    [S_VALIDITY] = "[{\"name\":\"year-2025\",\"effect\":\"allow\"," ALICE_K1
                   ",\"when\":{\"not_before\":\"2025-01-01T00:00:00Z\",\"not_after\":"
                   "\"2025-12-31T23:59:59Z\"}}]",
    [S_OVERNIGHT] = "[{\"name\":\"friday-night\",\"effect\":\"allow\"," ALICE_K1
                    ",\"when\":{\"windows\":[{\"days\":[\"fri\"],\"start\":\"22:00\",\"end\":"
                    "\"06:00\"}]}}]",
    [S_DISABLED] = "[{\"name\":\"off\",\"effect\":\"allow\",\"enabled\":false," ALICE_K1 "}]",
    [S_NEAR_MISS] = "[{\"name\":\"high-timed\",\"effect\":\"allow\",\"priority\":90," ALICE_K1
                    ",\"when\":{\"windows\":[{\"start\":\"09:00\",\"end\":\"10:00\"}]}},"
                    "{\"name\":\"low-machine\",\"effect\":\"allow\",\"priority\":10," ALICE_K1
                    ",\"where\":{\"machines\":[\"build-01\"]}}]",
    [S_DENY_HASH] = "[{\"name\":\"no-sha256\",\"effect\":\"deny\",\"priority\":200,\"subjects\":"
                    "{\"users\":[\"*\"]},\"keys\":{\"names\":[\"k1\"]},\"conditions\":{\"hashes\":"
                    "[\"sha256\"]}},{\"name\":\"basic\",\"effect\":\"allow\"," ALICE_K1 "}]",
    [S_WILDCARD] = "[{\"name\":\"anyone\",\"effect\":\"allow\",\"subjects\":{\"users\":[\"*\"]},"
                   "\"keys\":{\"names\":[\"k1\"]}}]",
    [S_QUOTA_SUBJECT] = "[{\"name\":\"per-subject\",\"effect\":\"allow\",\"subjects\":{\"users\":"
                        "[\"*\"]},\"keys\":{\"names\":[\"*\"]},\"conditions\":{\"quotas\":"
                        "[{\"limit\":3,\"window_seconds\":86400,\"per\":\"subject\"}]}}]",
    [S_QUOTA_THEN_APPROVAL] = "[{\"name\":\"metered-approved\",\"effect\":\"allow\"," ALICE_K1
                              ",\"conditions\":{\"quotas\":[{\"limit\":1,\"window_seconds\":60,"
                              "\"per\":\"key\"}],\"approval\":{\"required\":1,\"groups\":"
                              "[\"security\"]}}}]",
    [S_LIST_GROUP] = "[{\"name\":\"team\",\"effect\":\"allow\",\"subjects\":{\"groups\":"
                     "[\"release\"]},\"keys\":{\"names\":[\"k1\"]}}]",
    [S_LIST_KEY_GROUP] = "[{\"name\":\"prod-keys\",\"effect\":\"allow\",\"subjects\":{\"users\":"
                         "[\"alice\"]},\"keys\":{\"groups\":[\"prod\"]}}]",
    /* A timed deny over a machine-bound allow for alice over a deny of everyone over an allow
     * of everyone. */
    [S_LIST_LAYERED] =
        "[{\"name\":\"deny-nights\",\"effect\":\"deny\",\"priority\":300,\"subjects\":"
        "{\"users\":[\"*\"]},\"keys\":{\"names\":[\"*\"]},\"when\":{\"windows\":[{\"start\":"
        "\"22:00\",\"end\":\"06:00\"}]}},"
        "{\"name\":\"alice-build\",\"effect\":\"allow\",\"priority\":200," ALICE_K1
        ",\"where\":{\"machines\":[\"build-01\"]}},"
        "{\"name\":\"deny-all\",\"effect\":\"deny\",\"priority\":100,\"subjects\":{\"users\":"
        "[\"*\"]},\"keys\":{\"names\":[\"*\"]}},"
        "{\"name\":\"allow-all\",\"effect\":\"allow\",\"priority\":10,\"subjects\":"
        "{\"users\":[\"*\"]},\"keys\":{\"names\":[\"*\"]}}]",
    [S_PROJECT_RULE] = "[{\"name\":\"web-team\",\"effect\":\"allow\",\"subjects\":{\"users\":"
                       "[\"alice\"]},\"keys\":{\"projects\":[\"web\"]}}]",
    /* A deny of everyone on project web, above the signer role (priority 0). */
    [S_PROJECT_FREEZE] = "[{\"name\":\"freeze-web\",\"effect\":\"deny\",\"priority\":5,"
                         "\"subjects\":{\"users\":[\"*\"]},\"keys\":{\"projects\":[\"web\"]}}]",
};

/* ---- the table ---------------------------------------------------------------------------- */

typedef struct {
    const char *what;
    int set;
    const char *subject; /* NULL: alice */
    int service;
    const char *groups; /* comma separated */
    const char *key;    /* NULL: k1 */
    const char *key_groups;
    const char *machine, *ip, *app;
    const char *time; /* RFC 3339 UTC; NULL: 2025-01-06T10:00:00Z (a Monday) */
    const char *mech, *hash;
    int granted;         /* policy_grant */
    const char *project; /* the key's project */
    long long used_key, used_subject, used_subject_key, signatures;
    policy_outcome want;
    const char *rule; /* NULL: none */
} policy_case;

static const policy_case cases[] = {
    /* deny by default, grants */
    {.what = "no rules, no grant", .set = S_EMPTY, .want = POLICY_DENIED_DEFAULT},
    {.what = "grant alone allows",
     .set = S_EMPTY,
     .granted = 1,
     .want = POLICY_ALLOWED,
     .rule = "grant"},
    {.what = "project signer role alone allows",
     .set = S_EMPTY,
     .granted = POLICY_GRANT_PROJECT,
     .project = "web",
     .want = POLICY_ALLOWED,
     .rule = "project"},
    {.what = "rule naming the key's project",
     .set = S_PROJECT_RULE,
     .key = "k7",
     .project = "web",
     .want = POLICY_ALLOWED,
     .rule = "web-team"},
    {.what = "rule naming another project",
     .set = S_PROJECT_RULE,
     .project = "lib",
     .want = POLICY_DENIED_DEFAULT},
    {.what = "rule naming a project, key in none",
     .set = S_PROJECT_RULE,
     .want = POLICY_DENIED_DEFAULT},
    {.what = "deny on the project beats the signer role",
     .set = S_PROJECT_FREEZE,
     .granted = POLICY_GRANT_PROJECT,
     .project = "web",
     .want = POLICY_DENIED_RULE,
     .rule = "freeze-web"},
    {.what = "deny on the project, key moved out, grant allows",
     .set = S_PROJECT_FREEZE,
     .granted = POLICY_GRANT_DIRECT,
     .want = POLICY_ALLOWED,
     .rule = "grant"},
    {.what = "grant for another user does not apply",
     .set = S_BASIC,
     .subject = "mallory",
     .want = POLICY_DENIED_DEFAULT},
    /* subjects */
    {.what = "user named", .set = S_BASIC, .want = POLICY_ALLOWED, .rule = "basic"},
    {.what = "other user", .set = S_BASIC, .subject = "bob", .want = POLICY_DENIED_DEFAULT},
    {.what = "service account with a user's name is not the user",
     .set = S_BASIC,
     .service = 1,
     .want = POLICY_DENIED_DEFAULT},
    {.what = "group member on key group",
     .set = S_GROUPS,
     .subject = "erin",
     .groups = "dev,release",
     .key = "kp",
     .key_groups = "prod",
     .want = POLICY_ALLOWED,
     .rule = "release-team"},
    {.what = "group member, key outside the group",
     .set = S_GROUPS,
     .subject = "erin",
     .groups = "release",
     .key = "kx",
     .key_groups = "test",
     .want = POLICY_DENIED_DEFAULT},
    {.what = "not a group member",
     .set = S_GROUPS,
     .subject = "erin",
     .groups = "dev",
     .key = "kp",
     .key_groups = "prod",
     .want = POLICY_DENIED_DEFAULT},
    {.what = "service account named, any key",
     .set = S_SERVICE,
     .subject = "ci-release",
     .service = 1,
     .key = "anything",
     .want = POLICY_ALLOWED,
     .rule = "ci"},
    {.what = "user with the service account's name",
     .set = S_SERVICE,
     .subject = "ci-release",
     .want = POLICY_DENIED_DEFAULT},
    {.what = "users * covers users",
     .set = S_WILDCARD,
     .subject = "zoe",
     .want = POLICY_ALLOWED,
     .rule = "anyone"},
    {.what = "users * covers service accounts",
     .set = S_WILDCARD,
     .subject = "ci",
     .service = 1,
     .want = POLICY_ALLOWED,
     .rule = "anyone"},
    {.what = "users * on another key",
     .set = S_WILDCARD,
     .key = "k2",
     .want = POLICY_DENIED_DEFAULT},
    /* priorities and the tie-break */
    {.what = "higher deny beats lower allow",
     .set = S_PRIORITY,
     .want = POLICY_DENIED_RULE,
     .rule = "deny-high"},
    {.what = "equal priority: deny wins the tie",
     .set = S_TIE,
     .want = POLICY_DENIED_RULE,
     .rule = "z-deny"},
    {.what = "higher allow beats lower deny",
     .set = S_ALLOW_HIGHER,
     .want = POLICY_ALLOWED,
     .rule = "allow-60"},
    {.what = "deny at priority 0 ties with the grant and wins",
     .set = S_GRANT_DENY0,
     .granted = 1,
     .want = POLICY_DENIED_RULE,
     .rule = "deny-0"},
    {.what = "deny below the grant loses",
     .set = S_GRANT_DENY_NEG,
     .granted = 1,
     .want = POLICY_ALLOWED,
     .rule = "grant"},
    {.what = "deny below priority 0 still denies without a grant",
     .set = S_GRANT_DENY_NEG,
     .want = POLICY_DENIED_RULE,
     .rule = "deny-neg"},
    {.what = "deny above the grant wins",
     .set = S_GRANT_DENY_POS,
     .granted = 1,
     .want = POLICY_DENIED_RULE,
     .rule = "deny-pos"},
    {.what = "disabled rule is skipped", .set = S_DISABLED, .want = POLICY_DENIED_DEFAULT},
    {.what = "disabled rule, grant still allows",
     .set = S_DISABLED,
     .granted = 1,
     .want = POLICY_ALLOWED,
     .rule = "grant"},
    /* where: machines */
    {.what = "listed machine",
     .set = S_MACHINE,
     .machine = "build-02",
     .want = POLICY_ALLOWED,
     .rule = "build-hosts"},
    {.what = "other machine",
     .set = S_MACHINE,
     .machine = "laptop-7",
     .want = POLICY_MACHINE_NOT_ALLOWED,
     .rule = "build-hosts"},
    {.what = "no mTLS machine identity",
     .set = S_MACHINE,
     .want = POLICY_MACHINE_NOT_ALLOWED,
     .rule = "build-hosts"},
    {.what = "machine miss, grant allows",
     .set = S_MACHINE,
     .granted = 1,
     .want = POLICY_ALLOWED,
     .rule = "grant"},
    /* where: IP ranges */
    {.what = "IPv4 in /8",
     .set = S_IP,
     .ip = "10.200.3.4",
     .want = POLICY_ALLOWED,
     .rule = "office"},
    {.what = "IPv4 outside",
     .set = S_IP,
     .ip = "11.0.0.1",
     .want = POLICY_NETWORK_NOT_ALLOWED,
     .rule = "office"},
    {.what = "IPv4 /12 upper edge",
     .set = S_IP,
     .ip = "172.31.255.255",
     .want = POLICY_ALLOWED,
     .rule = "office"},
    {.what = "IPv4 just past /12",
     .set = S_IP,
     .ip = "172.32.0.0",
     .want = POLICY_NETWORK_NOT_ALLOWED,
     .rule = "office"},
    {.what = "single address",
     .set = S_IP,
     .ip = "192.168.1.7",
     .want = POLICY_ALLOWED,
     .rule = "office"},
    {.what = "neighbour of a single address",
     .set = S_IP,
     .ip = "192.168.1.8",
     .want = POLICY_NETWORK_NOT_ALLOWED,
     .rule = "office"},
    {.what = "IPv6 in /32",
     .set = S_IP,
     .ip = "2001:db8:ffff::1",
     .want = POLICY_ALLOWED,
     .rule = "office"},
    {.what = "IPv6 outside",
     .set = S_IP,
     .ip = "2001:db9::1",
     .want = POLICY_NETWORK_NOT_ALLOWED,
     .rule = "office"},
    {.what = "IPv4-mapped IPv6 peer",
     .set = S_IP,
     .ip = "::ffff:10.1.2.3",
     .want = POLICY_ALLOWED,
     .rule = "office"},
    {.what = "unknown peer", .set = S_IP, .want = POLICY_NETWORK_NOT_ALLOWED, .rule = "office"},
    /* where: applications (advisory) */
    {.what = "application pattern",
     .set = S_APP,
     .app = "/opt/tools/bin/osslsigncode",
     .want = POLICY_ALLOWED,
     .rule = "tools"},
    {.what = "application exact",
     .set = S_APP,
     .app = "/usr/bin/jarsigner",
     .want = POLICY_ALLOWED,
     .rule = "tools"},
    {.what = "other application",
     .set = S_APP,
     .app = "/usr/bin/openssl",
     .want = POLICY_APPLICATION_NOT_ALLOWED,
     .rule = "tools"},
    {.what = "no application reported",
     .set = S_APP,
     .want = POLICY_APPLICATION_NOT_ALLOWED,
     .rule = "tools"},
    /* conditions: digest algorithms and mechanisms */
    {.what = "allowed hash and mechanism",
     .set = S_HASH_MECH,
     .hash = "sha384",
     .mech = "rsa-pss",
     .want = POLICY_ALLOWED,
     .rule = "strong"},
    {.what = "hash not allowed",
     .set = S_HASH_MECH,
     .hash = "sha256",
     .mech = "rsa-pss",
     .want = POLICY_HASH_NOT_ALLOWED,
     .rule = "strong"},
    {.what = "mechanism not allowed",
     .set = S_HASH_MECH,
     .hash = "sha512",
     .mech = "rsa-pkcs1",
     .want = POLICY_MECHANISM_NOT_ALLOWED,
     .rule = "strong"},
    {.what = "deny rule scoped to sha256",
     .set = S_DENY_HASH,
     .hash = "sha256",
     .want = POLICY_DENIED_RULE,
     .rule = "no-sha256"},
    {.what = "deny rule scoped to sha256, sha512 passes",
     .set = S_DENY_HASH,
     .hash = "sha512",
     .want = POLICY_ALLOWED,
     .rule = "basic"},
    /* conditions: quotas (sliding windows) */
    {.what = "quota: unused", .set = S_QUOTA, .want = POLICY_ALLOWED, .rule = "metered"},
    {.what = "quota: key at limit - 1",
     .set = S_QUOTA,
     .used_key = 9,
     .want = POLICY_ALLOWED,
     .rule = "metered"},
    {.what = "quota: key at limit",
     .set = S_QUOTA,
     .used_key = 10,
     .want = POLICY_QUOTA_EXCEEDED,
     .rule = "metered"},
    {.what = "quota: batch would overrun",
     .set = S_QUOTA,
     .used_key = 8,
     .signatures = 3,
     .want = POLICY_QUOTA_EXCEEDED,
     .rule = "metered"},
    {.what = "quota: batch fits exactly",
     .set = S_QUOTA,
     .used_key = 7,
     .signatures = 3,
     .want = POLICY_ALLOWED,
     .rule = "metered"},
    {.what = "quota: subject+key window used up",
     .set = S_QUOTA,
     .used_subject_key = 5,
     .want = POLICY_QUOTA_EXCEEDED,
     .rule = "metered"},
    {.what = "quota: subject's other keys do not count for subject_key",
     .set = S_QUOTA,
     .used_subject = 100,
     .used_subject_key = 4,
     .want = POLICY_ALLOWED,
     .rule = "metered"},
    {.what = "quota per subject",
     .set = S_QUOTA_SUBJECT,
     .used_subject = 3,
     .want = POLICY_QUOTA_EXCEEDED,
     .rule = "per-subject"},
    {.what = "quota per subject, key usage irrelevant",
     .set = S_QUOTA_SUBJECT,
     .used_subject = 2,
     .used_key = 1000,
     .want = POLICY_ALLOWED,
     .rule = "per-subject"},
    {.what = "quota before approval",
     .set = S_QUOTA_THEN_APPROVAL,
     .used_key = 1,
     .want = POLICY_QUOTA_EXCEEDED,
     .rule = "metered-approved"},
    {.what = "within quota, approval needed",
     .set = S_QUOTA_THEN_APPROVAL,
     .want = POLICY_APPROVAL_REQUIRED,
     .rule = "metered-approved"},
    /* conditions: approval */
    {.what = "approval required",
     .set = S_APPROVAL,
     .want = POLICY_APPROVAL_REQUIRED,
     .rule = "two-man"},
    {.what = "approval rule does not cover others",
     .set = S_APPROVAL,
     .subject = "bob",
     .want = POLICY_DENIED_DEFAULT},
    /* when: weekday and hours in Europe/Berlin (CET in January, CEST in July) */
    {.what = "Mon 09:00 CET opens",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-01-06T08:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "office-hours"},
    {.what = "Mon 08:59 CET before",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-01-06T07:59:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "office-hours"},
    {.what = "Mon 16:59 CET inside",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-01-06T15:59:00Z",
     .want = POLICY_ALLOWED,
     .rule = "office-hours"},
    {.what = "Mon 17:00 CET end is exclusive",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-01-06T16:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "office-hours"},
    {.what = "Saturday",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-01-11T10:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "office-hours"},
    {.what = "Mon 09:00 CEST (UTC+2)",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-07-07T07:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "office-hours"},
    {.what = "Mon 17:00 CEST",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-07-07T15:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "office-hours"},
    {.what = "Sunday 23:30 UTC is Monday 00:30 CET: still outside",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-01-05T23:30:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "office-hours"},
    {.what = "Fri 16:30 CET (Fri 15:30 UTC)",
     .set = S_BUSINESS_BERLIN,
     .time = "2025-01-10T15:30:00Z",
     .want = POLICY_ALLOWED,
     .rule = "office-hours"},
    /* DST: Berlin springs forward 2025-03-30 02:00 CET -> 03:00 CEST (01:00 UTC) */
    {.what = "Berlin spring: 01:30 CET inside",
     .set = S_DST_BERLIN,
     .time = "2025-03-30T00:30:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-berlin"},
    {.what = "Berlin spring: 01:59 CET inside",
     .set = S_DST_BERLIN,
     .time = "2025-03-30T00:59:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-berlin"},
    {.what = "Berlin spring: 01:00 UTC is 03:00 CEST, outside",
     .set = S_DST_BERLIN,
     .time = "2025-03-30T01:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-berlin"},
    {.what = "Berlin spring: 00:59 CET before",
     .set = S_DST_BERLIN,
     .time = "2025-03-29T23:59:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-berlin"},
    /* DST: Berlin falls back 2025-10-26 03:00 CEST -> 02:00 CET (01:00 UTC) */
    {.what = "Berlin fall: 01:00 CEST opens",
     .set = S_DST_BERLIN,
     .time = "2025-10-25T23:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-berlin"},
    {.what = "Berlin fall: first 02:30 (CEST)",
     .set = S_DST_BERLIN,
     .time = "2025-10-26T00:30:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-berlin"},
    {.what = "Berlin fall: second 02:30 (CET)",
     .set = S_DST_BERLIN,
     .time = "2025-10-26T01:30:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-berlin"},
    {.what = "Berlin fall: 03:00 CET closes",
     .set = S_DST_BERLIN,
     .time = "2025-10-26T02:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-berlin"},
    {.what = "Berlin fall: 00:59 CEST before",
     .set = S_DST_BERLIN,
     .time = "2025-10-25T22:59:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-berlin"},
    /* DST: New York springs forward 2025-03-09 02:00 EST -> 03:00 EDT (07:00 UTC) */
    {.what = "NY spring: 01:00 EST opens",
     .set = S_DST_NEW_YORK,
     .time = "2025-03-09T06:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-ny"},
    {.what = "NY spring: 01:59 EST inside",
     .set = S_DST_NEW_YORK,
     .time = "2025-03-09T06:59:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-ny"},
    {.what = "NY spring: 07:00 UTC is 03:00 EDT, outside",
     .set = S_DST_NEW_YORK,
     .time = "2025-03-09T07:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-ny"},
    {.what = "NY spring: 00:59 EST before",
     .set = S_DST_NEW_YORK,
     .time = "2025-03-09T05:59:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-ny"},
    /* DST: New York falls back 2025-11-02 02:00 EDT -> 01:00 EST (06:00 UTC) */
    {.what = "NY fall: first 01:00 (EDT)",
     .set = S_DST_NEW_YORK,
     .time = "2025-11-02T05:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-ny"},
    {.what = "NY fall: second 01:00 (EST)",
     .set = S_DST_NEW_YORK,
     .time = "2025-11-02T06:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-ny"},
    {.what = "NY fall: 02:59 EST inside",
     .set = S_DST_NEW_YORK,
     .time = "2025-11-02T07:59:00Z",
     .want = POLICY_ALLOWED,
     .rule = "night-ny"},
    {.what = "NY fall: 03:00 EST closes",
     .set = S_DST_NEW_YORK,
     .time = "2025-11-02T08:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-ny"},
    {.what = "NY fall: 00:59 EDT before",
     .set = S_DST_NEW_YORK,
     .time = "2025-11-02T04:59:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-ny"},
    {.what = "NY: a Saturday night is not Sunday",
     .set = S_DST_NEW_YORK,
     .time = "2025-11-01T06:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "night-ny"},
    /* when: validity dates */
    {.what = "before not_before",
     .set = S_VALIDITY,
     .time = "2024-12-31T23:59:59Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "year-2025"},
    {.what = "at not_before",
     .set = S_VALIDITY,
     .time = "2025-01-01T00:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "year-2025"},
    {.what = "at not_after",
     .set = S_VALIDITY,
     .time = "2025-12-31T23:59:59Z",
     .want = POLICY_ALLOWED,
     .rule = "year-2025"},
    {.what = "after not_after",
     .set = S_VALIDITY,
     .time = "2026-01-01T00:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "year-2025"},
    /* when: a window across midnight */
    {.what = "Fri 22:30 UTC",
     .set = S_OVERNIGHT,
     .time = "2025-01-10T22:30:00Z",
     .want = POLICY_ALLOWED,
     .rule = "friday-night"},
    {.what = "Sat 05:59 UTC (the Friday window)",
     .set = S_OVERNIGHT,
     .time = "2025-01-11T05:59:00Z",
     .want = POLICY_ALLOWED,
     .rule = "friday-night"},
    {.what = "Sat 06:00 UTC closes",
     .set = S_OVERNIGHT,
     .time = "2025-01-11T06:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "friday-night"},
    {.what = "Fri 05:00 UTC belongs to Thursday",
     .set = S_OVERNIGHT,
     .time = "2025-01-10T05:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "friday-night"},
    /* near misses: the denial names the highest-priority allow rule that almost matched */
    {.what = "high rule off-hours, low rule matches",
     .set = S_NEAR_MISS,
     .machine = "build-01",
     .time = "2025-01-06T12:00:00Z",
     .want = POLICY_ALLOWED,
     .rule = "low-machine"},
    {.what = "both miss: the higher rule's reason",
     .set = S_NEAR_MISS,
     .time = "2025-01-06T12:00:00Z",
     .want = POLICY_OUTSIDE_TIME_WINDOW,
     .rule = "high-timed"},
    {.what = "high rule in hours wins",
     .set = S_NEAR_MISS,
     .time = "2025-01-06T09:30:00Z",
     .want = POLICY_ALLOWED,
     .rule = "high-timed"},
};

/* ---- running a case ----------------------------------------------------------------------- */

static int64_t utc(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm);
}

static long long fake_count(void *ctx, policy_quota_scope scope, int64_t since)
{
    const policy_case *c = ctx;
    (void)since;
    return scope == POLICY_QUOTA_KEY       ? c->used_key
           : scope == POLICY_QUOTA_SUBJECT ? c->used_subject
                                           : c->used_subject_key;
}

static void load_set(const char *json, policy_set *set)
{
    cJSON *arr = cJSON_Parse(json);
    srv_error err;
    assert_non_null(arr);
    memset(set, 0, sizeof(*set));
    for (const cJSON *d = arr->child; d; d = d->next) {
        policy_rule r;
        if (policy_rule_parse(d, &r, &err) != SRV_OK)
            fail_msg("rule does not parse: %s\n%s", err.message, json);
        assert_int_equal(policy_set_add(set, &r, &err), SRV_OK);
    }
    policy_set_sort(set);
    cJSON_Delete(arr);
}

/* Splits "a,b" into up to 8 names held in buf. */
static size_t split(const char *list, char buf[256], const char *out[8])
{
    size_t n = 0;
    if (!list)
        return 0;
    snprintf(buf, 256, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < 8;
         t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

static void test_table(void **state)
{
    size_t failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const policy_case *c = &cases[i];
        char gbuf[256], kbuf[256];
        const char *groups[8], *kgroups[8];
        policy_request q;
        policy_decision d;
        policy_set set;
        const char *rule;

        load_set(sets[c->set], &set);
        memset(&q, 0, sizeof(q));
        q.subject = c->subject ? c->subject : "alice";
        q.subject_is_service = c->service;
        q.ngroups = split(c->groups, gbuf, groups);
        q.groups = groups;
        q.key = c->key ? c->key : "k1";
        q.nkey_groups = split(c->key_groups, kbuf, kgroups);
        q.key_groups = kgroups;
        q.machine = c->machine;
        q.ip = c->ip;
        q.application = c->app;
        q.time = utc(c->time ? c->time : "2025-01-06T10:00:00Z");
        q.mechanism = c->mech ? c->mech : "rsa-pkcs1";
        q.hash = c->hash ? c->hash : "sha256";
        q.signatures = c->signatures ? c->signatures : 1;
        q.granted = (policy_grant)c->granted;
        q.project = c->project;
        q.count = fake_count;
        q.count_ctx = (void *)c;
        policy_evaluate(&set, &q, &d);
        rule = policy_decision_rule(&d);
        if (d.outcome != c->want || (c->rule == NULL) != (rule == NULL) ||
            (rule && strcmp(rule, c->rule) != 0)) {
            print_error("case %zu \"%s\": got %s by %s (%s), want %s by %s\n", i, c->what,
                        policy_outcome_code(d.outcome), rule ? rule : "-", d.message,
                        policy_outcome_code(c->want), c->rule ? c->rule : "-");
            failures++;
        }
        assert_true(strlen(d.message) > 0);
        policy_set_clear(&set);
    }
    print_message("%zu policy cases\n", sizeof(cases) / sizeof(cases[0]));
    assert_true(sizeof(cases) / sizeof(cases[0]) >= 60);
    assert_int_equal(failures, 0);
}

/* ---- the key listing: could the subject ever be allowed to sign with the key? -------------- */

typedef struct {
    const char *what;
    int set;
    const char *subject; /* NULL: alice */
    int service;
    const char *groups; /* comma separated */
    const char *key;    /* NULL: k1 */
    const char *key_groups;
    int granted, key_disabled;
    const char *project;
    int want;
    const char *rule; /* the deciding rule; NULL: none */
} listing_case;

static const listing_case listing_cases[] = {
    {.what = "no rules, no grant", .set = S_EMPTY, .want = 0},
    {.what = "grant only", .set = S_EMPTY, .granted = 1, .want = 1, .rule = "grant"},
    {.what = "project signer only",
     .set = S_EMPTY,
     .granted = POLICY_GRANT_PROJECT,
     .project = "web",
     .want = 1,
     .rule = "project"},
    {.what = "project frozen for everyone",
     .set = S_PROJECT_FREEZE,
     .granted = POLICY_GRANT_PROJECT,
     .project = "web",
     .want = 0,
     .rule = "freeze-web"},
    {.what = "rule naming the project",
     .set = S_PROJECT_RULE,
     .project = "web",
     .want = 1,
     .rule = "web-team"},
    {.what = "rule only", .set = S_BASIC, .want = 1, .rule = "basic"},
    {.what = "rule for another user", .set = S_BASIC, .subject = "bob", .want = 0},
    {.what = "rule for another key", .set = S_BASIC, .key = "k2", .want = 0},
    {.what = "service account is not the user of that name",
     .set = S_BASIC,
     .service = 1,
     .want = 0},
    {.what = "group rule: member",
     .set = S_LIST_GROUP,
     .subject = "bob",
     .groups = "ops,release",
     .want = 1,
     .rule = "team"},
    {.what = "group rule: not a member", .set = S_LIST_GROUP, .groups = "ops", .want = 0},
    {.what = "key-group rule: key in the group",
     .set = S_LIST_KEY_GROUP,
     .key = "k9",
     .key_groups = "test,prod",
     .want = 1,
     .rule = "prod-keys"},
    {.what = "key-group rule: key not in the group",
     .set = S_LIST_KEY_GROUP,
     .key_groups = "test",
     .want = 0},
    {.what = "user and key groups",
     .set = S_GROUPS,
     .groups = "release",
     .key_groups = "prod",
     .want = 1,
     .rule = "release-team"},
    {.what = "wildcard user", .set = S_WILDCARD, .subject = "zoe", .want = 1, .rule = "anyone"},
    {.what = "wildcard user covers a service account",
     .set = S_WILDCARD,
     .subject = "ci-release",
     .service = 1,
     .want = 1,
     .rule = "anyone"},
    {.what = "wildcard key for a service account",
     .set = S_SERVICE,
     .subject = "ci-release",
     .service = 1,
     .key = "anything",
     .want = 1,
     .rule = "ci"},
    {.what = "time-windowed allow still listed",
     .set = S_BUSINESS_BERLIN,
     .want = 1,
     .rule = "office-hours"},
    {.what = "dated allow still listed", .set = S_VALIDITY, .want = 1, .rule = "year-2025"},
    {.what = "machine-bound allow still listed",
     .set = S_MACHINE,
     .want = 1,
     .rule = "build-hosts"},
    {.what = "network-bound allow still listed", .set = S_IP, .want = 1, .rule = "office"},
    {.what = "application-bound allow still listed", .set = S_APP, .want = 1, .rule = "tools"},
    {.what = "hash- and mechanism-bound allow still listed",
     .set = S_HASH_MECH,
     .want = 1,
     .rule = "strong"},
    {.what = "quota allow still listed", .set = S_QUOTA, .want = 1, .rule = "metered"},
    {.what = "approval allow still listed", .set = S_APPROVAL, .want = 1, .rule = "two-man"},
    {.what = "disabled rule lists nothing", .set = S_DISABLED, .want = 0},
    {.what = "unconditional deny at higher priority hides",
     .set = S_PRIORITY,
     .want = 0,
     .rule = "deny-high"},
    {.what = "allow at higher priority than the deny",
     .set = S_ALLOW_HIGHER,
     .want = 1,
     .rule = "allow-60"},
    {.what = "equal priority: the deny wins the tie", .set = S_TIE, .want = 0, .rule = "z-deny"},
    {.what = "conditional deny does not hide", .set = S_DENY_HASH, .want = 1, .rule = "basic"},
    {.what = "conditional deny over a grant does not hide",
     .set = S_DENY_HASH,
     .subject = "bob",
     .granted = 1,
     .want = 1,
     .rule = "grant"},
    {.what = "unconditional deny at 0 hides a grant",
     .set = S_GRANT_DENY0,
     .granted = 1,
     .want = 0,
     .rule = "deny-0"},
    {.what = "unconditional deny above 0 hides a grant",
     .set = S_GRANT_DENY_POS,
     .granted = 1,
     .want = 0,
     .rule = "deny-pos"},
    {.what = "unconditional deny below 0 is outranked by the grant",
     .set = S_GRANT_DENY_NEG,
     .granted = 1,
     .want = 1,
     .rule = "grant"},
    {.what = "layered: timed deny skipped, allow over the unconditional deny",
     .set = S_LIST_LAYERED,
     .want = 1,
     .rule = "alice-build"},
    {.what = "layered: the unconditional deny outranks the allow of everyone",
     .set = S_LIST_LAYERED,
     .subject = "bob",
     .want = 0,
     .rule = "deny-all"},
    {.what = "layered: alice's other keys hidden too",
     .set = S_LIST_LAYERED,
     .key = "k2",
     .granted = 1,
     .want = 0,
     .rule = "deny-all"},
    {.what = "disabled key never listed (rule)", .set = S_BASIC, .key_disabled = 1, .want = 0},
    {.what = "disabled key never listed (grant)",
     .set = S_EMPTY,
     .granted = 1,
     .key_disabled = 1,
     .want = 0},
};

static void test_may_ever_allow(void **state)
{
    size_t failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(listing_cases) / sizeof(listing_cases[0]); i++) {
        const listing_case *c = &listing_cases[i];
        char gbuf[256], kbuf[256];
        const char *groups[8], *kgroups[8], *rule = "unset";
        policy_request q;
        policy_set set;
        int got;

        load_set(sets[c->set], &set);
        /* Only subject and key are set: the request-time dimensions must not matter. */
        memset(&q, 0, sizeof(q));
        q.subject = c->subject ? c->subject : "alice";
        q.subject_is_service = c->service;
        q.ngroups = split(c->groups, gbuf, groups);
        q.groups = groups;
        q.key = c->key ? c->key : "k1";
        q.nkey_groups = split(c->key_groups, kbuf, kgroups);
        q.key_groups = kgroups;
        q.granted = (policy_grant)c->granted;
        q.project = c->project;
        q.key_disabled = c->key_disabled;
        got = policy_may_ever_allow(&set, &q, &rule);
        if (got != c->want || (c->rule == NULL) != (rule == NULL) ||
            (rule && strcmp(rule, c->rule) != 0)) {
            print_error("listing case %zu \"%s\": got %d by %s, want %d by %s\n", i, c->what, got,
                        rule ? rule : "-", c->want, c->rule ? c->rule : "-");
            failures++;
        }
        assert_int_equal(policy_may_ever_allow(&set, &q, NULL), got); /* rule is optional */
        policy_set_clear(&set);
    }
    print_message("%zu listing cases\n", sizeof(listing_cases) / sizeof(listing_cases[0]));
    assert_int_equal(failures, 0);
}

/* ---- validation --------------------------------------------------------------------------- */

static const struct {
    const char *doc;
    srv_status want;
} invalid[] = {
    {"{\"effect\":\"allow\"," ALICE_K1 "}", SRV_E_INVALID_FIELD},                  /* no name */
    {"{\"name\":\"x\",\"effect\":\"maybe\"," ALICE_K1 "}", SRV_E_INVALID_FIELD},   /* effect */
    {"{\"name\":\"x y\",\"effect\":\"allow\"," ALICE_K1 "}", SRV_E_INVALID_FIELD}, /* name */
    {"{\"name\":\"x\",\"effect\":\"allow\",\"keys\":{\"names\":[\"k1\"]}}", SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\",\"subjects\":{\"users\":[]},\"keys\":{\"names\":"
     "[\"k1\"]}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\",\"bogus\":1," ALICE_K1 "}", SRV_E_UNKNOWN_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"where\":{\"ip_ranges\":"
     "[\"10.0.0.0/33\"]}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"when\":{\"time_zone\":"
     "\"Mars/Olympus\"}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"when\":{\"time_zone\":"
     "\"../../etc/passwd\"}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"when\":{\"windows\":[{\"start\":"
     "\"25:00\",\"end\":\"26:00\"}]}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"when\":{\"windows\":[{\"days\":"
     "[\"someday\"],\"start\":\"01:00\",\"end\":\"02:00\"}]}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"when\":{\"not_before\":"
     "\"2025-02-30T00:00:00Z\"}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"when\":{\"not_before\":"
     "\"2025-06-01T00:00:00Z\",\"not_after\":\"2025-01-01T00:00:00Z\"}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"conditions\":{\"hashes\":[\"md5\"]}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"conditions\":{\"quotas\":[{\"limit\":"
     "1,\"window_seconds\":60,\"per\":\"moon\"}]}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\"," ALICE_K1 ",\"conditions\":{\"approval\":{"
     "\"required\":3,\"approvers\":[\"bob\",\"carol\"]}}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"deny\"," ALICE_K1 ",\"conditions\":{\"approval\":{"
     "\"required\":1,\"approvers\":[\"bob\"]}}}",
     SRV_E_INVALID_FIELD},
    {"{\"name\":\"x\",\"effect\":\"allow\",\"priority\":1.5," ALICE_K1 "}", SRV_E_INVALID_FIELD},
};

static void test_validation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        cJSON *doc = cJSON_Parse(invalid[i].doc);
        policy_rule r;
        srv_error err;
        assert_non_null(doc);
        err.message[0] = '\0';
        if (policy_rule_parse(doc, &r, &err) != invalid[i].want)
            fail_msg("invalid[%zu] not refused as expected: %s", i, invalid[i].doc);
        assert_true(strlen(err.message) > 0);
        cJSON_Delete(doc);
    }
    for (size_t i = 0; i < S_COUNT; i++) {
        policy_set set;
        load_set(sets[i], &set); /* every set in the table is valid */
        policy_set_clear(&set);
    }
}

static void test_time_zones(void **state)
{
    struct tm tm;
    (void)state;
    assert_true(policy_tz_valid("UTC"));
    assert_true(policy_tz_valid("Europe/Berlin"));
    assert_false(policy_tz_valid("Europe/Nowhere"));
    assert_false(policy_tz_valid("/etc/localtime"));
    /* 2025-07-01 12:00 UTC is 14:00 in Berlin and 08:00 in New York. */
    assert_true(policy_localtime("Europe/Berlin", utc("2025-07-01T12:00:00Z"), &tm));
    assert_int_equal(tm.tm_hour, 14);
    assert_true(policy_localtime("America/New_York", utc("2025-07-01T12:00:00Z"), &tm));
    assert_int_equal(tm.tm_hour, 8);
    assert_true(policy_localtime("UTC", utc("2025-07-01T12:00:00Z"), &tm));
    assert_int_equal(tm.tm_hour, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_may_ever_allow),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_time_zones),
    };
    policy_tz_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
