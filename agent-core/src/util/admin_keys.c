/* signum-util admin keys|grants: keys in the HSM and their certificates (built-in CA, CSR for
 * an external CA, chain import, revocation), disabling, and grants. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "util.h"

#define KEYS_BASE "/api/v1/admin/keys"

static void print_keys(const cJSON *doc)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "keys"), *e;
    char b1[72], b2[24], b3[40], b4[72];
    printf("%-28s %-9s %-9s %-20s %s\n", "NAME", "TYPE", "STATE", "CERTIFICATE UNTIL", "PROJECT");
    cJSON_ArrayForEach(e, list)
    {
        printf("%-28s %-9s %-9s %-20s %s\n", adm_text(e, "name", b1, sizeof(b1)),
               adm_text(e, "type", b2, sizeof(b2)),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "disabled")) ? "disabled"
                                                                             : "enabled",
               adm_time(e, "certificate_not_after", b3, sizeof(b3)),
               adm_text(e, "project", b4, sizeof(b4)));
    }
}

static void print_key(const cJSON *doc)
{
    cJSON *list = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(list, "keys");
    cJSON_AddItemToArray(arr, cJSON_Duplicate(doc, 1));
    print_keys(list);
    cJSON_Delete(list);
}

static void print_created(const cJSON *doc)
{
    const char *csr = adm_str(doc, "csr_pem");
    print_key(doc);
    if (csr)
        fputs(csr, stdout); /* for the external CA */
}

static void print_pem(const cJSON *doc)
{
    static const char *const members[] = {"certificate_pem", "chain_pem", "csr_pem"};
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        const char *pem = adm_str(doc, members[i]);
        if (pem && *pem)
            fputs(pem, stdout);
    }
}

static void print_revoked(const cJSON *doc)
{
    char b1[24];
    printf("certificate %s of key %s revoked (%s); CRL number %s\n", adm_str(doc, "serial"),
           adm_str(doc, "key"), adm_str(doc, "reason"),
           adm_text(doc, "crl_number", b1, sizeof(b1)));
}

static void print_suspended(const cJSON *doc)
{
    const cJSON *e;
    char b1[40], b2[24];
    printf("key %s suspended; signatures since then (audit id, time, actor, request id):\n",
           adm_str(doc, "key"));
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "signatures_since"))
    {
        printf("  %s %s %s %s\n", adm_text(e, "audit_id", b2, sizeof(b2)),
               adm_text(e, "time", b1, sizeof(b1)), adm_str(e, "actor"),
               adm_str(e, "request_id") ? adm_str(e, "request_id") : "-");
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "truncated")))
        printf("  (more: list them with --json from a later --since)\n");
}

static void print_limit(const cJSON *doc)
{
    char b1[24], b2[24];
    printf("key %s: usage limit %s, %s signatures made\n", adm_str(doc, "key"),
           cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "usage_limit"))
               ? "none"
               : adm_text(doc, "usage_limit", b1, sizeof(b1)),
           adm_text(doc, "signatures_total", b2, sizeof(b2)));
}

static void print_versions(const cJSON *doc)
{
    const cJSON *e;
    char b1[24], b2[72], b3[40], b4[40];
    printf("current version %s; earlier versions:\n",
           adm_text(doc, "current_version", b1, sizeof(b1)));
    printf("%-8s %-42s %-21s %s\n", "VERSION", "ID", "ROTATED", "RETIRED");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "versions"))
    {
        printf("%-8s %-42s %-21s %s\n", adm_text(e, "version", b1, sizeof(b1)),
               adm_text(e, "id", b2, sizeof(b2)), adm_time(e, "rotated_at", b3, sizeof(b3)),
               adm_time(e, "retired_at", b4, sizeof(b4)));
    }
}

static void print_done(const cJSON *doc)
{
    (void)doc;
    printf("done\n");
}

static int post_json(const char *what, const char *path, cJSON *body, int json,
                     void (*print)(const cJSON *doc))
{
    int rc = adm_run(what, "POST", path, body, json, print);
    cJSON_Delete(body);
    return rc;
}

static void add_opt(cJSON *body, const char *name, const char *value)
{
    if (value)
        cJSON_AddStringToObject(body, name, value);
}

/* --days N (1-3650) as the certificate's validity_days, when given; 0 (said why) if bad. */
static int add_days(const char *what, cJSON *body, const char *value)
{
    char *end;
    long days;
    if (!value)
        return 1;
    days = strtol(value, &end, 10);
    if (*end || end == value || days < 1 || days > 3650) {
        fprintf(stderr, "signum-util %s: --days must be 1-3650\n", what);
        return 0;
    }
    cJSON_AddNumberToObject(body, "validity_days", (double)days);
    return 1;
}

static const char keys_usage[] =
    "Usage: signum-util admin keys ACTION ... [--json]\n"
    "  list                                  every key, its type, state and certificate\n"
    "  show NAME\n"
    "  create NAME --type rsa2048|rsa3072|rsa4096|ec-p256|ec-p384   generated in the HSM\n"
    "      [--cert builtin|external|none --cn CN [--org ORG] [--days N]]   with a certificate\n"
    "      from the built-in CA, or a CSR for an external CA (printed)\n"
    "      [--project P]   in project P (a project's admin creates keys only there)\n"
    "  issue-cert NAME --cn CN [--org ORG] [--days N]   from the built-in CA (codeSigning)\n"
    "  csr NAME --cn CN [--org ORG]          a PKCS#10 request for an external CA (PEM)\n"
    "  import-chain NAME FILE                the external CA's chain, leaf first (PEM)\n"
    "  revoke-cert NAME --reason REASON --comment TEXT   on the built-in CA; REASON is\n"
    "      unspecified, key_compromise, affiliation_changed, superseded,\n"
    "      cessation_of_operation or privilege_withdrawn\n"
    "  rotate NAME --reason TEXT [--cn CN] [--org ORG]   a new key in the HSM takes the name\n"
    "      (a new certificate with the old subject when the built-in CA issued the old one)\n"
    "  versions NAME                         the earlier versions of the key\n"
    "  retire NAME VERSION --reason TEXT     destroys an earlier version in the HSM\n"
    "  suspend NAME --reason TEXT [--since T]   stops every use at once and lists what the key\n"
    "      signed since T (RFC 3339 or unix seconds; default: ever)\n"
    "  enable NAME --reason TEXT\n"
    "  usage-limit NAME --limit N|none --reason TEXT   total signatures the key may make\n"
    "  disable NAME --reason TEXT            the key signs no more\n"
    "  grant NAME USER                       lets USER (or a service account) sign with it\n"
    "      (also 'admin grants'; 'admin projects' for projects)\n";

int util_cmd_admin_keys(int argc, char **argv, int json)
{
    static const char *const opts[] = {"type",  "cn",    "org",  "days",    "reason", "comment",
                                       "since", "limit", "cert", "project", NULL};
    enum { O_TYPE, O_CN, O_ORG, O_DAYS, O_REASON, O_COMMENT, O_SINCE, O_LIMIT, O_CERT, O_PROJECT };
    const char *act = argc > 1 ? argv[1] : "", *pos[2], *v[10];
    char what[64], path[400];
    int npos = 0, rc;
    cJSON *body;

    snprintf(what, sizeof(what), "admin keys %s", act);
    if ((rc = adm_parse(what, argc - 2 > 0 ? argc - 2 : 0, argv + 2, opts, v, pos, 2, &npos)) !=
        EXIT_OK)
        return rc;
    if (!strcmp(act, "list") && npos == 0)
        return adm_run(what, "GET", KEYS_BASE, NULL, json, print_keys);
    if (npos >= 1 && !adm_name_ok(pos[0]))
        return adm_bad_name(what, pos[0]);
    snprintf(path, sizeof(path), "%s/%s", KEYS_BASE, npos >= 1 ? pos[0] : "");
    if (!strcmp(act, "show") && npos == 1)
        return adm_run(what, "GET", path, NULL, json, print_key);
    if (!strcmp(act, "create") && npos == 1 && v[O_TYPE]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "name", pos[0]);
        cJSON_AddStringToObject(body, "type", v[O_TYPE]);
        add_opt(body, "certificate", v[O_CERT]);
        add_opt(body, "common_name", v[O_CN]);
        add_opt(body, "organization", v[O_ORG]);
        add_opt(body, "project", v[O_PROJECT]);
        if (!add_days(what, body, v[O_DAYS])) {
            cJSON_Delete(body);
            return EXIT_USAGE;
        }
        return post_json(what, KEYS_BASE, body, json, print_created);
    }
    if ((!strcmp(act, "issue-cert") || !strcmp(act, "csr")) && npos == 1 && v[O_CN]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "common_name", v[O_CN]);
        add_opt(body, "organization", v[O_ORG]);
        if (!strcmp(act, "issue-cert") && !add_days(what, body, v[O_DAYS])) {
            cJSON_Delete(body);
            return EXIT_USAGE;
        }
        strcat(path, !strcmp(act, "csr") ? "/csr" : "/certificate");
        return post_json(what, path, body, json, print_pem);
    }
    if (!strcmp(act, "import-chain") && npos == 2) {
        char *pem = NULL;
        if ((rc = adm_read_bounded(what, pos[1], ADM_FILE_MAX, &pem)) != EXIT_OK)
            return rc;
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "chain_pem", pem);
        free(pem);
        strcat(path, "/certificate");
        rc = adm_run(what, "PUT", path, body, json, print_done);
        cJSON_Delete(body);
        return rc;
    }
    if (!strcmp(act, "revoke-cert") && npos == 1 && v[O_REASON] && v[O_COMMENT]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        cJSON_AddStringToObject(body, "comment", v[O_COMMENT]);
        strcat(path, "/certificate/revoke");
        return post_json(what, path, body, json, print_revoked);
    }
    if ((!strcmp(act, "suspend") || !strcmp(act, "enable")) && npos == 1 && v[O_REASON]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        if (v[O_SINCE] && !strcmp(act, "suspend")) {
            long long since = adm_parse_time(v[O_SINCE]);
            if (since < 0) {
                cJSON_Delete(body);
                fprintf(stderr, "signum-util %s: --since takes RFC 3339 or unix seconds\n", what);
                return EXIT_USAGE;
            }
            cJSON_AddNumberToObject(body, "since", (double)since);
        }
        strcat(path, !strcmp(act, "suspend") ? "/suspend" : "/enable");
        return post_json(what, path, body, json,
                         !strcmp(act, "suspend") ? print_suspended : print_done);
    }
    if (!strcmp(act, "usage-limit") && npos == 1 && v[O_LIMIT] && v[O_REASON]) {
        char *end;
        long long limit = strtoll(v[O_LIMIT], &end, 10);
        int none = !strcmp(v[O_LIMIT], "none");
        if (!none && (*end || limit < 0)) {
            fprintf(stderr, "signum-util %s: --limit takes a number of signatures or none\n", what);
            return EXIT_USAGE;
        }
        body = cJSON_CreateObject();
        if (none)
            cJSON_AddNullToObject(body, "limit");
        else
            cJSON_AddNumberToObject(body, "limit", (double)limit);
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        strcat(path, "/usage-limit");
        rc = adm_run(what, "PUT", path, body, json, print_limit);
        cJSON_Delete(body);
        return rc;
    }
    if (!strcmp(act, "rotate") && npos == 1 && v[O_REASON]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        add_opt(body, "common_name", v[O_CN]);
        add_opt(body, "organization", v[O_ORG]);
        strcat(path, "/rotate");
        return post_json(what, path, body, json, print_key);
    }
    if (!strcmp(act, "versions") && npos == 1) {
        strcat(path, "/versions");
        return adm_run(what, "GET", path, NULL, json, print_versions);
    }
    if (!strcmp(act, "retire") && npos == 2 && v[O_REASON]) {
        if (strspn(pos[1], "0123456789") != strlen(pos[1]) || strlen(pos[1]) > 9) {
            fprintf(stderr, "signum-util %s: VERSION is a number ('versions' lists them)\n", what);
            return EXIT_USAGE;
        }
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        strcat(path, "/versions/");
        strcat(path, pos[1]);
        strcat(path, "/retire");
        return post_json(what, path, body, json, print_done);
    }
    if (!strcmp(act, "disable") && npos == 1 && v[O_REASON]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        strcat(path, "/disable");
        return post_json(what, path, body, json, print_done);
    }
    if (!strcmp(act, "grant") && npos == 2) {
        if (!adm_name_ok(pos[1]))
            return adm_bad_name(what, pos[1]);
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "user", pos[1]);
        strcat(path, "/grants");
        return post_json(what, path, body, json, print_done);
    }
    fputs(keys_usage, !strcmp(act, "--help") ? stdout : stderr);
    return !strcmp(act, "--help") ? EXIT_OK : EXIT_USAGE;
}
