/* signum-util admin (policy rules, the policy set, user and key groups) and approvals. Each
 * command is one API call that the agent makes with the user's own session (sg_api_call), so
 * the CLI holds no credentials; the server decides what the caller may do, the agent only
 * which calls it makes at all (its allow-list). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_api.h"
#include "platform.h"
#include "util.h"

#define MEMBERS_CAP 1024

/* ---- admin policy ------------------------------------------------------------------------- */

static int policy_list(int json)
{
    char *raw = NULL, b0[32], b1[32], b2[32], b3[32], b4[32];
    cJSON *doc = NULL;
    const cJSON *list, *e;
    long status;
    int rc =
        adm_api("admin policy list", "GET", "/api/v1/admin/policies", NULL, &status, &raw, &doc);
    if (rc != EXIT_OK)
        return rc;
    if (json) {
        printf("%s\n", raw);
        goto out;
    }
    list = cJSON_GetObjectItemCaseSensitive(doc, "policies");
    printf("%-32s %-6s %9s %-7s %7s %s\n", "NAME", "EFFECT", "PRIORITY", "ENABLED", "VERSION",
           "UPDATED");
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "policy");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(p, "enabled");
        printf("%-32s %-6s %9s %-7s %7s %s\n", adm_text(p, "name", b0, sizeof(b0)),
               adm_text(p, "effect", b1, sizeof(b1)), adm_text(p, "priority", b2, sizeof(b2)),
               cJSON_IsFalse(en) ? "no" : "yes", adm_text(e, "version", b3, sizeof(b3)),
               adm_time(e, "updated_at", b4, sizeof(b4)));
    }
out:
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return EXIT_OK;
}

static int policy_get(const char *name, int json)
{
    char path[300], *raw = NULL, b[32];
    cJSON *doc = NULL;
    long status;
    int rc;
    if (!adm_name_ok(name))
        return adm_bad_name("admin policy get", name);
    snprintf(path, sizeof(path), "/api/v1/admin/policies/%s", name);
    rc = adm_api("admin policy get", "GET", path, NULL, &status, &raw, &doc);
    if (rc != EXIT_OK)
        return rc;
    if (json) {
        printf("%s\n", raw);
    } else {
        /* The rule itself, ready to edit and 'put' back; the version goes to stderr. */
        adm_print_pretty(stdout, cJSON_GetObjectItemCaseSensitive(doc, "policy"));
        fprintf(stderr, "version %s\n", adm_text(doc, "version", b, sizeof(b)));
    }
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return EXIT_OK;
}

/* Creates or replaces the rule NAME from FILE (the file's "name", if any, must be NAME). */
static int policy_put(const char *name, const char *file, int json)
{
    char path[300], *raw = NULL, *body = NULL, b[32];
    cJSON *rule = NULL, *doc = NULL;
    const char *inner;
    long status = 0;
    sg_status st;
    int rc, created = 0;
    if (!adm_name_ok(name))
        return adm_bad_name("admin policy put", name);
    rc = adm_read_json_file("admin policy put", file, &rule);
    if (rc != EXIT_OK)
        return rc;
    inner = adm_str(rule, "name");
    if (cJSON_HasObjectItem(rule, "name") && (!inner || strcmp(inner, name) != 0)) {
        fprintf(stderr, "signum-util admin policy put: %s names the rule \"%s\", not \"%s\"\n",
                file, inner ? inner : "(not a string)", name);
        rc = EXIT_USAGE;
        goto out;
    }
    if (!inner)
        cJSON_AddStringToObject(rule, "name", name);
    body = cJSON_PrintUnformatted(rule);
    if (!body) {
        rc = EXIT_FAILED;
        goto out;
    }
    snprintf(path, sizeof(path), "/api/v1/admin/policies/%s", name);
    /* Replace it; a rule that does not exist yet is created instead. */
    st = adm_call("PUT", path, body, &status, &raw);
    if (st == SG_OK && status == 404) {
        sg_api_answer_free(raw);
        raw = NULL;
        created = 1;
        st = adm_call("POST", "/api/v1/admin/policies", body, &status, &raw);
    }
    rc = adm_finish("admin policy put", st, status, &raw, &doc);
    if (rc != EXIT_OK)
        goto out;
    if (json)
        printf("%s\n", raw);
    else
        printf("%s policy %s (version %s)\n", created ? "created" : "updated", name,
               adm_text(doc, "version", b, sizeof(b)));
out:
    free(body);
    cJSON_Delete(rule);
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return rc;
}

static int delete_named(const char *what, const char *base, const char *kind, const char *name,
                        int json)
{
    char path[300], *raw = NULL;
    long status;
    int rc;
    if (!adm_name_ok(name))
        return adm_bad_name(what, name);
    snprintf(path, sizeof(path), "%s/%s", base, name);
    rc = adm_api(what, "DELETE", path, NULL, &status, &raw, NULL);
    if (rc != EXIT_OK)
        return rc;
    if (json)
        printf("%s\n", raw);
    else
        printf("deleted %s %s\n", kind, name);
    sg_api_answer_free(raw);
    return EXIT_OK;
}

static int policy_export(const char *out_path)
{
    char *raw = NULL;
    cJSON *doc = NULL;
    FILE *out = stdout;
    long status;
    int rc = adm_api("admin policy export", "GET", "/api/v1/admin/policy-set", NULL, &status, &raw,
                     &doc);
    if (rc != EXIT_OK)
        return rc;
    if (out_path && !(out = fopen(out_path, "we"))) {
        fprintf(stderr, "signum-util admin policy export: cannot write %s: %s\n", out_path,
                strerror(errno));
        rc = EXIT_FAILED;
        goto out;
    }
    adm_print_pretty(out, doc);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "signum-util admin policy export: cannot write %s: %s\n", out_path,
                strerror(errno));
        rc = EXIT_FAILED;
    }
    if (rc == EXIT_OK && out != stdout) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "policies");
        fprintf(stderr, "exported %d rule(s) to %s\n", cJSON_GetArraySize(p), out_path);
    }
out:
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return rc;
}

static int policy_import(const char *file, int json)
{
    char *raw = NULL, *body = NULL, b1[32], b2[32], b3[32];
    cJSON *set = NULL, *doc = NULL;
    long status;
    int rc = adm_read_json_file("admin policy import", file, &set);
    if (rc != EXIT_OK)
        return rc;
    body = cJSON_PrintUnformatted(set);
    if (!body) {
        rc = EXIT_FAILED;
        goto out;
    }
    rc = adm_api("admin policy import", "PUT", "/api/v1/admin/policy-set", body, &status, &raw,
                 &doc);
    if (rc != EXIT_OK)
        goto out;
    if (json)
        printf("%s\n", raw);
    else
        printf("imported %s rule(s), %s user group(s), %s key group(s); every earlier rule and "
               "group was replaced\n",
               adm_text(doc, "imported_policies", b1, sizeof(b1)),
               adm_text(doc, "imported_user_groups", b2, sizeof(b2)),
               adm_text(doc, "imported_key_groups", b3, sizeof(b3)));
out:
    free(body);
    cJSON_Delete(set);
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return rc;
}

static int policy_explain(int argc, char **argv, int json)
{
    static const struct option opts[] = {{"subject", required_argument, NULL, 's'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"machine", required_argument, NULL, 'm'},
                                         {"ip", required_argument, NULL, 'i'},
                                         {"application", required_argument, NULL, 'a'},
                                         {"time", required_argument, NULL, 't'},
                                         {"hash", required_argument, NULL, 'H'},
                                         {"mechanism", required_argument, NULL, 'M'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char usage[] =
        "Usage: signum-util admin policy explain --subject USER --key KEY [--machine M]\n"
        "         [--ip IP] [--application PATH] [--time RFC3339|UNIX] [--hash H]\n"
        "         [--mechanism M] [--json]\n"
        "What a sign request with these facts would get, and which rule decides; nothing is\n"
        "signed. Quotas count with their current use.\n";
    char *raw = NULL, *body = NULL;
    cJSON *req = cJSON_CreateObject(), *doc = NULL;
    const char *subject = NULL, *key = NULL;
    long status;
    int o, rc = EXIT_OK;

    if (!req)
        return EXIT_FAILED;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long long t;
        switch (o) {
        case 's': subject = optarg; break;
        case 'k': key = optarg; break;
        case 'm': cJSON_AddStringToObject(req, "machine", optarg); break;
        case 'i': cJSON_AddStringToObject(req, "ip", optarg); break;
        case 'a': cJSON_AddStringToObject(req, "application", optarg); break;
        case 'H': cJSON_AddStringToObject(req, "hash", optarg); break;
        case 'M': cJSON_AddStringToObject(req, "mechanism", optarg); break;
        case 't':
            t = adm_parse_time(optarg);
            if (t < 0) {
                fprintf(stderr, "signum-util admin policy explain: --time takes RFC 3339 "
                                "(2025-06-02T10:00:00Z) or unix seconds\n");
                rc = EXIT_USAGE;
                goto out;
            }
            cJSON_AddNumberToObject(req, "time", (double)t);
            break;
        default:
            fputs(usage, o == 'h' ? stdout : stderr);
            rc = o == 'h' ? EXIT_OK : EXIT_USAGE;
            goto out;
        }
    }
    if (!subject || !key || optind != argc) {
        fprintf(stderr, "signum-util admin policy explain: give --subject and --key\n");
        rc = EXIT_USAGE;
        goto out;
    }
    cJSON_AddStringToObject(req, "user", subject);
    cJSON_AddStringToObject(req, "key", key);
    body = cJSON_PrintUnformatted(req);
    if (!body) {
        rc = EXIT_FAILED;
        goto out;
    }
    rc = adm_api("admin policy explain", "POST", "/api/v1/admin/policies/explain", body, &status,
                 &raw, &doc);
    if (rc != EXIT_OK)
        goto out;
    if (json) {
        printf("%s\n", raw);
    } else {
        static const char *const members[] = {"decision", "rule", "code", "message"};
        for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
            if (adm_str(doc, members[i]))
                printf("%-9s %s\n", members[i], adm_str(doc, members[i]));
    }
out:
    free(body);
    cJSON_Delete(req);
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return rc;
}

static int cmd_policy(int argc, char **argv, int json)
{
    static const char usage[] =
        "Usage: signum-util admin policy ACTION [--json]\n"
        "  list                     the rules, by name\n"
        "  get NAME                 one rule as JSON (ready to edit and 'put')\n"
        "  put NAME FILE            create or replace a rule from a JSON file ('-': stdin)\n"
        "  delete NAME              delete a rule\n"
        "  export [-o FILE]         every rule and group as one policy set (JSON)\n"
        "  import FILE              replace every rule and group with a policy set\n"
        "  explain --subject S --key K [...]   what a sign request would get (explain --help)\n";
    const char *a = argc > 1 ? argv[1] : "";
    if (!strcmp(a, "list") && argc == 2)
        return policy_list(json);
    if (!strcmp(a, "get") && argc == 3)
        return policy_get(argv[2], json);
    if (!strcmp(a, "put") && argc == 4)
        return policy_put(argv[2], argv[3], json);
    if (!strcmp(a, "delete") && argc == 3)
        return delete_named("admin policy delete", "/api/v1/admin/policies", "policy", argv[2],
                            json);
    if (!strcmp(a, "export") && (argc == 2 || (argc == 4 && !strcmp(argv[2], "-o"))))
        return policy_export(argc == 4 ? argv[3] : NULL);
    if (!strcmp(a, "import") && argc == 3)
        return policy_import(argv[2], json);
    if (!strcmp(a, "explain"))
        return policy_explain(argc - 1, argv + 1, json);
    fputs(usage, !strcmp(a, "--help") ? stdout : stderr);
    return !strcmp(a, "--help") ? EXIT_OK : EXIT_USAGE;
}

/* ---- admin group, admin key-group --------------------------------------------------------- */

static int group_list(const char *what, const char *base, int json)
{
    char *raw = NULL, b1[32], b2[32];
    cJSON *doc = NULL;
    const cJSON *e;
    long status;
    int rc = adm_api(what, "GET", base, NULL, &status, &raw, &doc);
    if (rc != EXIT_OK)
        return rc;
    if (json) {
        printf("%s\n", raw);
        goto out;
    }
    printf("%-32s %-20s %s\n", "NAME", "UPDATED", "MEMBERS");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "groups"))
    {
        const cJSON *m;
        int first = 1;
        printf("%-32s %-20s ", adm_text(e, "name", b1, sizeof(b1)),
               adm_time(e, "updated_at", b2, sizeof(b2)));
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(e, "members"))
        {
            if (cJSON_IsString(m)) {
                printf("%s%s", first ? "" : ",", m->valuestring);
                first = 0;
            }
        }
        printf("\n");
    }
out:
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return EXIT_OK;
}

static int group_put(const char *what, const char *base, const char *name, const char *members,
                     int json)
{
    char path[300], *raw = NULL, *body = NULL, *copy = NULL, *save = NULL, *m;
    cJSON *req = cJSON_CreateObject(), *arr;
    long status;
    int rc = EXIT_OK, count = 0;
    if (!req)
        return EXIT_FAILED;
    if (!adm_name_ok(name)) {
        rc = adm_bad_name(what, name);
        goto out;
    }
    arr = cJSON_AddArrayToObject(req, "members");
    copy = strdup(members);
    if (!arr || !copy) {
        rc = EXIT_FAILED;
        goto out;
    }
    for (m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        if (!*m)
            continue;
        if (++count > MEMBERS_CAP) {
            fprintf(stderr, "signum-util %s: more than %d members\n", what, MEMBERS_CAP);
            rc = EXIT_USAGE;
            goto out;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(m));
    }
    body = cJSON_PrintUnformatted(req);
    if (!body) {
        rc = EXIT_FAILED;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s", base, name);
    rc = adm_api(what, "PUT", path, body, &status, &raw, NULL);
    if (rc != EXIT_OK)
        goto out;
    if (json)
        printf("%s\n", raw);
    else
        printf("group %s now has %d member(s)\n", name, count);
out:
    free(copy);
    free(body);
    cJSON_Delete(req);
    sg_api_answer_free(raw);
    return rc;
}

static int cmd_group(int argc, char **argv, int json, int keys)
{
    const char *base = keys ? "/api/v1/admin/key-groups" : "/api/v1/admin/groups";
    const char *a = argc > 1 ? argv[1] : "";
    char what[64];
    snprintf(what, sizeof(what), "admin %s %s", keys ? "key-group" : "group", a);
    if (!strcmp(a, "list") && argc == 2)
        return group_list(what, base, json);
    if (!strcmp(a, "put") && argc == 5 && !strcmp(argv[3], "--members"))
        return group_put(what, base, argv[2], argv[4], json);
    if (!strcmp(a, "put") && argc == 4 && !strncmp(argv[3], "--members=", 10))
        return group_put(what, base, argv[2], argv[3] + 10, json);
    if (!strcmp(a, "delete") && argc == 3)
        return delete_named(what, base, keys ? "key group" : "group", argv[2], json);
    fprintf(!strcmp(a, "--help") ? stdout : stderr,
            "Usage: signum-util admin %s list|put NAME --members A,B,...|delete NAME [--json]\n"
            "%s\n",
            keys ? "key-group" : "group",
            keys ? "Key groups hold key names; rules name them in keys.groups."
                 : "User groups hold users and service accounts; rules name them in "
                   "subjects.groups\nand approval.groups.");
    return !strcmp(a, "--help") ? EXIT_OK : EXIT_USAGE;
}

/* ---- entry points ------------------------------------------------------------------------- */

int util_cmd_admin(int argc, char **argv)
{
    int json = adm_take_json_flag(&argc, argv);
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "policy"))
        return cmd_policy(argc - 1, argv + 1, json);
    if (!strcmp(what, "group"))
        return cmd_group(argc - 1, argv + 1, json, 0);
    if (!strcmp(what, "key-group"))
        return cmd_group(argc - 1, argv + 1, json, 1);
    if (!strcmp(what, "users"))
        return util_cmd_admin_users(argc - 1, argv + 1, json);
    if (!strcmp(what, "service-accounts"))
        return util_cmd_admin_service_accounts(argc - 1, argv + 1, json);
    if (!strcmp(what, "machines"))
        return util_cmd_admin_machines(argc - 1, argv + 1, json);
    if (!strcmp(what, "keys"))
        return util_cmd_admin_keys(argc - 1, argv + 1, json);
    if (!strcmp(what, "audit"))
        return util_cmd_admin_audit(argc - 1, argv + 1, json);
    if (!strcmp(what, "usage"))
        return util_cmd_admin_usage(argc - 1, argv + 1, json);
    if (!strcmp(what, "alerts"))
        return util_cmd_admin_alerts(argc - 1, argv + 1, json);
    if (!strcmp(what, "projects"))
        return util_cmd_admin_projects(argc - 1, argv + 1, json);
    if (!strcmp(what, "grants"))
        return util_cmd_admin_grants(argc - 1, argv + 1, json);
    fprintf(!strcmp(what, "--help") ? stdout : stderr,
            "Usage: signum-util admin "
            "users|service-accounts|machines|projects|keys|grants|usage|audit|alerts|policy|"
            "group|"
            "key-group "
            "ACTION ... "
            "[--json]\n"
            "Administers identities, keys, policy rules and groups through the agent, with your\n"
            "session (an admin account). 'signum-util admin users --help' lists the actions.\n");
    return !strcmp(what, "--help") ? EXIT_OK : EXIT_USAGE;
}

static int approvals_list(int json)
{
    char *raw = NULL, b1[40], b2[40], b3[40], b4[40], b5[40], b6[40];
    cJSON *doc = NULL;
    const cJSON *e;
    long status;
    int rc = adm_api("approvals list", "GET", "/api/v1/approvals", NULL, &status, &raw, &doc);
    if (rc != EXIT_OK)
        return rc;
    if (json) {
        printf("%s\n", raw);
        goto out;
    }
    printf("%-32s %-16s %-20s %-20s %-5s %-5s %s\n", "ID", "REQUESTER", "KEY", "RULE", "VOTES",
           "MINE", "EXPIRES");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "approvals"))
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "request");
        char votes[48];
        snprintf(votes, sizeof(votes), "%s/%s", adm_text(e, "approvals", b1, sizeof(b1)),
                 adm_text(e, "required", b2, sizeof(b2)));
        printf("%-32s %-16s %-20s %-20s %-5s %-5s %s\n", adm_text(e, "approval_id", b5, sizeof(b5)),
               adm_text(e, "requester", b2, sizeof(b2)), adm_text(r, "key", b3, sizeof(b3)),
               adm_text(e, "rule", b4, sizeof(b4)), votes,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "decided_by_me")) ? "voted" : "-",
               adm_time(e, "expires_at", b6, sizeof(b6)));
    }
out:
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return EXIT_OK;
}

static int approvals_vote(const char *id, const char *decision, const char *reason, int json)
{
    char path[300], what[40], *raw = NULL, *body = NULL, b1[32], b2[32], b3[32];
    cJSON *doc = NULL;
    long status;
    int rc;
    snprintf(what, sizeof(what), "approvals %s", decision);
    if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32) {
        fprintf(stderr, "signum-util %s: '%s' is not an approval id (32 hex digits)\n", what, id);
        fprintf(stderr, "  next: 'signum-util approvals list' shows the ids\n");
        return EXIT_USAGE;
    }
    if (reason) {
        /* A rejection says why; the server stores and audits it. */
        cJSON *b = cJSON_CreateObject();
        if (b && cJSON_AddStringToObject(b, "reason", reason))
            body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
        if (!body) {
            fprintf(stderr, "signum-util %s: out of memory\n", what);
            return EXIT_FAILED;
        }
    }
    snprintf(path, sizeof(path), "/api/v1/approvals/%s/%s", id, decision);
    rc = adm_api(what, "POST", path, body, &status, &raw, &doc);
    free(body);
    if (rc != EXIT_OK)
        return rc;
    if (json)
        printf("%s\n", raw);
    else
        printf("%s %s: request now %s (%s of %s approvals)\n",
               !strcmp(decision, "approve") ? "approved" : "rejected", id,
               adm_text(doc, "status", b1, sizeof(b1)), adm_text(doc, "approvals", b2, sizeof(b2)),
               adm_text(doc, "required", b3, sizeof(b3)));
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return EXIT_OK;
}

int util_cmd_approvals(int argc, char **argv)
{
    int json = adm_take_json_flag(&argc, argv);
    const char *a = argc > 1 ? argv[1] : "";
    if (!strcmp(a, "list") && argc == 2)
        return approvals_list(json);
    if (!strcmp(a, "approve") && argc == 3)
        return approvals_vote(argv[2], a, NULL, json);
    if (!strcmp(a, "reject") && argc == 5 && !strcmp(argv[3], "--reason") && *argv[4])
        return approvals_vote(argv[2], a, argv[4], json);
    fprintf(!strcmp(a, "--help") ? stdout : stderr,
            "Usage: signum-util approvals list|approve ID|reject ID --reason TEXT [--json]\n"
            "Sign requests waiting for your approval, and your decision on one. One rejection\n"
            "closes a request and must say why (--reason, stored and audited); the requester\n"
            "gets the signature at their next poll once the quorum is met.\n");
    return !strcmp(a, "--help") ? EXIT_OK : EXIT_USAGE;
}
