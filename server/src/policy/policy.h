/* The policy engine: parses and validates policy rules (JSON documents) and decides, with no
 * I/O of its own, whether a sign request is allowed, denied, or needs approval, and by which
 * rule. Quota counts come through a callback; local time comes from the system tz database. */
#ifndef SRV_POLICY_H
#define SRV_POLICY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../common/status.h"

#define POLICY_NAME_MAX         64
#define POLICY_PRIORITY_MAX     1000000
#define POLICY_LIST_MAX         256 /* entries in any one list of a rule */
#define POLICY_WINDOWS_MAX      32
#define POLICY_QUOTAS_MAX       8
#define POLICY_TZ_MAX           64
#define POLICY_APPROVERS_MAX    64
#define POLICY_APPROVAL_TTL_MAX (30LL * 86400)
#define POLICY_QUOTA_WINDOW_MAX (31LL * 86400)

/* POLICY_REQUIRE: a gate, never a match of its own: every request in its scope must also
 * satisfy its requirement (provenance, policy/provenance.h), whatever rule or grant allows it. */
typedef enum { POLICY_ALLOW, POLICY_DENY, POLICY_REQUIRE } policy_effect;

struct policy_prov_rule; /* a require rule's provenance member (policy/provenance.h) */
struct srv_provenance;   /* the provenance a sign request carries (policy/provenance.h) */

/* What a decision says; each has a stable machine code (policy_outcome_code). */
typedef enum {
    POLICY_ALLOWED = 0,
    POLICY_APPROVAL_REQUIRED,       /* allowed once the rule's approvers agree */
    POLICY_DENIED_DEFAULT,          /* nothing allows it: deny by default */
    POLICY_DENIED_RULE,             /* a deny rule matched */
    POLICY_QUOTA_EXCEEDED,          /* the deciding allow rule's quota is used up */
    POLICY_OUTSIDE_TIME_WINDOW,     /* closest allow rule: wrong time, day or date */
    POLICY_MACHINE_NOT_ALLOWED,     /* closest allow rule: other machines only */
    POLICY_NETWORK_NOT_ALLOWED,     /* closest allow rule: other IP ranges only */
    POLICY_APPLICATION_NOT_ALLOWED, /* closest allow rule: other applications only */
    POLICY_HASH_NOT_ALLOWED,        /* closest allow rule: other digest algorithms only */
    POLICY_MECHANISM_NOT_ALLOWED,   /* closest allow rule: other mechanisms only */
    POLICY_PROVENANCE_DENIED,       /* allowed, but a require rule's provenance is not met */
    POLICY_ERROR,                   /* the quota lookup failed */
    POLICY_OUTCOME_COUNT
} policy_outcome;

typedef enum {
    POLICY_QUOTA_KEY,
    POLICY_QUOTA_SUBJECT,
    POLICY_QUOTA_SUBJECT_KEY
} policy_quota_scope;

typedef struct {
    const char **items; /* point into the rule's document */
    size_t n;
} policy_list;

typedef struct {
    int v6;
    uint8_t addr[16];
    unsigned prefix;
} policy_cidr;

typedef struct {
    unsigned days; /* bit d set: weekday d (0 = Sunday) */
    int start;     /* minutes after local midnight */
    int end;       /* exclusive; end < start wraps past midnight (22:00-06:00) */
} policy_window;

typedef struct {
    policy_quota_scope scope;
    long long limit;  /* signatures */
    long long window; /* seconds; a sliding window ending now */
} policy_quota;

typedef struct {
    char name[POLICY_NAME_MAX + 1];
    policy_effect effect;
    long long priority;
    int enabled;
    policy_list users, groups, service_accounts; /* "*" in users: any user or account */
    policy_list keys, key_groups, projects;      /* "*" in keys: any key */
    int has_machines, has_ips, has_apps;
    policy_list machines, applications; /* applications: fnmatch(3) patterns */
    policy_cidr *ips;
    size_t nips;
    char time_zone[POLICY_TZ_MAX + 1]; /* "" or "UTC": UTC */
    policy_window windows[POLICY_WINDOWS_MAX];
    size_t nwindows;
    int64_t not_before, not_after; /* 0: unbounded */
    int has_hashes, has_mechanisms;
    policy_list hashes, mechanisms;
    policy_quota quotas[POLICY_QUOTAS_MAX];
    size_t nquotas;
    long long approvals_required; /* 0: no approval */
    policy_list approvers, approver_groups;
    int project_approvers; /* the approvers of the key's project may decide too */
    long long approval_ttl;
    struct policy_prov_rule *prov; /* effect require: what it requires, owned */
    cJSON *doc;                    /* the validated document, owned */
} policy_rule;

typedef struct {
    policy_rule *rules;
    size_t n, cap;
} policy_set;

#define POLICY_RULES_MAX 100000 /* rules in one set */

/* Returns the signatures counted in the sliding window [since, now] for scope, or -1 on error. */
typedef long long (*policy_count_fn)(void *ctx, policy_quota_scope scope, int64_t since);

/* What lets a subject sign with a key before any explicit rule: nothing, a grant on the key,
 * or the signer role in the key's project. Both are an allow rule at priority 0. */
typedef enum { POLICY_GRANT_NONE, POLICY_GRANT_DIRECT, POLICY_GRANT_PROJECT } policy_grant;

typedef struct {
    const char *subject;       /* user or service-account name */
    int subject_is_service;    /* 1: a service account */
    const char *const *groups; /* groups the subject belongs to */
    size_t ngroups;
    const char *key;
    const char *const *key_groups;
    size_t nkey_groups;
    const char *project;     /* the key's project; NULL or "" if none */
    const char *machine;     /* verified by mTLS; NULL or "" if none */
    const char *ip;          /* peer address, textual IPv4 or IPv6; may be NULL */
    const char *application; /* advisory: what the agent reported; may be NULL */
    int64_t time;            /* UTC seconds */
    const char *mechanism;   /* "rsa-pkcs1", "rsa-pss", "ecdsa" */
    const char *hash;        /* "sha256", ... */
    long long signatures;    /* digests in the request (quotas count signatures) */
    policy_grant granted;    /* an allow rule at priority 0 (policy_grant) */
    policy_count_fn count;
    void *count_ctx;
    const struct srv_provenance *provenance; /* what the request carries; NULL: nothing */
    int key_disabled; /* read by policy_may_ever_allow() only (the sign path refuses a disabled
                         key before it asks policy_evaluate()) */
} policy_request;

typedef struct {
    policy_outcome outcome;
    const policy_rule *rule; /* the deciding rule, or for a near miss the closest allow rule */
    policy_grant by_grant;   /* decided by the implicit grant rule: which one */
    char message[256];
} policy_decision;

/* Parses and validates one rule document; on success the rule owns a copy of doc. */
srv_status policy_rule_parse(const cJSON *doc, policy_rule *out, srv_error *err);
void policy_rule_clear(policy_rule *rule);

/* Adds a parsed rule (taking it over), and sorts the set into evaluation order. */
srv_status policy_set_add(policy_set *set, policy_rule *rule, srv_error *err);
void policy_set_sort(policy_set *set);
void policy_set_clear(policy_set *set);

/* Decides; d->rule points into set. Never fails: errors become POLICY_ERROR. */
void policy_evaluate(const policy_set *set, const policy_request *req, policy_decision *d);

/* Whether rule r's subjects and keys cover the request (its scope, no other dimension). */
int policy_rule_in_scope(const policy_rule *r, const policy_request *req);
/* Whether s is in the list (wildcard: or the list has "*"); NULL s is in no list (scope.c). */
int policy_list_has(const policy_list *l, const char *s, int wildcard);

/* The part of policy_evaluate() after allow rule r matched: its quotas, then its approval. */
void policy_evaluate_allow(const policy_rule *r, const policy_request *q, policy_decision *d);

/* Whether the subject could be allowed to sign with the key under some request: the key
 * listing's rule. Reads only subject, subject_is_service, groups, key, key_groups, granted and
 * key_disabled; every request-time dimension (time, machine, IP, application, hash,
 * mechanism, quota, approval) is taken as satisfiable. Walks the rules in evaluation order
 * (the grant in its place at priority 0): the first enabled rule matching subject and key
 * decides. An allow rule (whatever its conditions) or the grant: 1. A deny rule with no
 * request-time condition: 0, since it refuses every request before any allow rule is reached.
 * A deny rule with conditions is passed over: some request falls outside it. Nothing: 0.
 * *rule (if rule) is set to the deciding rule's name ("grant" for the grant), else NULL; it
 * points into set. A disabled key: 0. */
int policy_may_ever_allow(const policy_set *set, const policy_request *req, const char **rule);

/* The deciding rule's name, "grant" or "project" for the implicit grant rule, or NULL. */
const char *policy_decision_rule(const policy_decision *d);
const char *policy_outcome_code(policy_outcome outcome);
int policy_outcome_http(policy_outcome outcome);

/* An address or CIDR range ("10.0.0.0/8", "2001:db8::/32"); 0 if malformed (cidr.c). */
int policy_cidr_parse(const char *s, policy_cidr *out);
/* Whether textual address ip lies in c (an IPv4-mapped IPv6 peer counts as its IPv4). */
int policy_cidr_contains(const policy_cidr *c, const char *ip);

/* Whether name is a zone of the system tz database ("UTC" always is). */
int policy_tz_valid(const char *name);
/* Local broken-down time of t in zone (tz database); 0 on failure. Thread safe. */
int policy_localtime(const char *zone, int64_t t, struct tm *out);
/* Call once before threads start: makes later TZ switches replace, never add, an entry. */
void policy_tz_init(void);

#endif
