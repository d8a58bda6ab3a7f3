/* signum-util admin users|service-accounts: list, show, create, disable, enable, delete
 * identities, and list and revoke their credentials (API keys, enrolled keys). Every change
 * takes --reason, which the server audits with the change. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "util.h"

#define REASON_MAX 512

typedef struct {
    const char *positional[3];
    int npositional;
    const char *reason, *role;
} adm_args;

static int parse_args(const char *what, int argc, char **argv, adm_args *a)
{
    static const char *const opts[] = {"reason", "role", NULL};
    const char *values[2];
    int rc = adm_parse(what, argc, argv, opts, values, a->positional, 3, &a->npositional);
    a->reason = values[0];
    a->role = values[1];
    return rc;
}

static int need_reason(const char *what, const adm_args *a)
{
    if (a->reason && *a->reason && strlen(a->reason) <= REASON_MAX)
        return EXIT_OK;
    fprintf(stderr,
            "signum-util %s: --reason TEXT is required (1-%d characters): it is kept in the "
            "audit log with the change\n",
            what, REASON_MAX);
    return EXIT_USAGE;
}

/* ---- printing ----------------------------------------------------------------------------- */

static const char *state_of(const cJSON *id)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(id, "deleted")))
        return "deleted";
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(id, "disabled")) ? "disabled" : "active";
}

static void print_identities(const cJSON *doc)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "users"), *e;
    char b1[40], b2[40], b3[40];
    if (!list)
        list = cJSON_GetObjectItemCaseSensitive(doc, "service_accounts");
    printf("%-24s %-8s %-7s %-9s %s\n", "NAME", "KIND", "ROLE", "STATE", "CREATED");
    cJSON_ArrayForEach(e, list)
    {
        printf("%-24s %-8s %-7s %-9s %s\n", adm_text(e, "name", b1, sizeof(b1)),
               adm_text(e, "kind", b2, sizeof(b2)), adm_text(e, "role", b3, sizeof(b3)),
               state_of(e), adm_time(e, "created_at", b1, sizeof(b1)));
    }
}

static void print_credentials(const cJSON *doc)
{
    const cJSON *api_keys = cJSON_GetObjectItemCaseSensitive(doc, "api_keys"), *e;
    const cJSON *keys = api_keys ? api_keys : cJSON_GetObjectItemCaseSensitive(doc, "keys");
    const char *id = api_keys ? "prefix" : "kid";
    char b1[72], b2[40], b3[40], b4[40];
    printf("%-34s %-21s %-21s %s\n", api_keys ? "API KEY PREFIX" : "ENROLLED KEY (KID)", "CREATED",
           "LAST USED", "REVOKED");
    cJSON_ArrayForEach(e, keys)
    {
        printf("%-34s %-21s %-21s %s\n", adm_text(e, id, b1, sizeof(b1)),
               adm_time(e, "created_at", b2, sizeof(b2)),
               adm_time(e, "last_used_at", b3, sizeof(b3)),
               adm_time(e, "revoked_at", b4, sizeof(b4)));
    }
}

static void print_identity(const cJSON *doc)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "user");
    char b1[40], b2[40];
    if (!id)
        id = cJSON_GetObjectItemCaseSensitive(doc, "service_account");
    printf("%s (%s, %s): %s, created %s\n", adm_text(id, "name", b1, sizeof(b1)),
           adm_text(id, "kind", b2, sizeof(b2)), adm_str(id, "role"), state_of(id),
           adm_time(id, "created_at", b1, sizeof(b1)));
    print_credentials(doc);
}

static void print_change(const cJSON *doc)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "user");
    char b1[24], b2[24], b3[24], b4[24];
    if (!id)
        id = cJSON_GetObjectItemCaseSensitive(doc, "service_account");
    printf("%s is %s; revoked %s API keys, %s enrolled keys, %s access tokens; removed %s "
           "grants\n",
           adm_str(id, "name"), state_of(id), adm_text(doc, "revoked_api_keys", b1, sizeof(b1)),
           adm_text(doc, "revoked_enrolled_keys", b2, sizeof(b2)),
           adm_text(doc, "revoked_tokens", b3, sizeof(b3)),
           adm_text(doc, "removed_grants", b4, sizeof(b4)));
}

static void print_secret(const cJSON *doc)
{
    const char *key = adm_str(doc, "api_key"), *tok = adm_str(doc, "enrollment_token");
    if (key)
        printf("API key (shown once; store it now): %s\n", key);
    if (tok)
        printf("enrollment token (shown once; give it to 'signum-util enroll "
               "service-account'): %s\n",
               tok);
}

/* ---- commands ----------------------------------------------------------------------------- */

/* A change needs a reason and a well-formed NAME (the first positional argument). */
static int change_args_ok(const char *what, const adm_args *a)
{
    int rc;
    if ((rc = need_reason(what, a)) != EXIT_OK)
        return rc;
    if (!adm_name_ok(a->positional[0]))
        return adm_bad_name(what, a->positional[0]);
    return EXIT_OK;
}

/* METHOD PATH with the body {"reason": ...}. */
static int send_with_reason(const char *what, const char *method, const char *path,
                            const adm_args *a, int json, void (*print)(const cJSON *doc))
{
    cJSON *body = cJSON_CreateObject();
    int rc;
    cJSON_AddStringToObject(body, "reason", a->reason);
    rc = adm_run(what, method, path, body, json, print);
    cJSON_Delete(body);
    return rc;
}

/* The change calls: POST BASE/NAME/ACTION or DELETE BASE/NAME, {"reason": ...}. */
static int identity_change(const char *what, const char *base, const char *action,
                           const adm_args *a, int json)
{
    char path[400];
    int rc;
    if ((rc = change_args_ok(what, a)) != EXIT_OK)
        return rc;
    if (!strcmp(action, "delete"))
        snprintf(path, sizeof(path), "%s/%s", base, a->positional[0]);
    else if (a->npositional == 2)
        snprintf(path, sizeof(path), "%s/%s/%s/%s/revoke", base, a->positional[0], action,
                 a->positional[1]);
    else
        snprintf(path, sizeof(path), "%s/%s/%s", base, a->positional[0], action);
    if (a->npositional == 2 && !adm_name_ok(a->positional[1]))
        return adm_bad_name(what, a->positional[1]);
    return send_with_reason(what, !strcmp(action, "delete") ? "DELETE" : "POST", path, a, json,
                            print_change);
}

static void print_tokens_revoked(const cJSON *doc)
{
    char b1[24];
    printf("%s (%s): %s access tokens revoked\n", adm_str(doc, "user"), adm_str(doc, "kind"),
           adm_text(doc, "revoked_tokens", b1, sizeof(b1)));
}

/* POST /api/v1/admin/users/NAME/revoke-tokens (users and service accounts alike). */
static int revoke_tokens(const char *what, const adm_args *a, int json)
{
    char path[300];
    int rc;
    if ((rc = change_args_ok(what, a)) != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/revoke-tokens", a->positional[0]);
    return send_with_reason(what, "POST", path, a, json, print_tokens_revoked);
}

/* GET BASE/NAME[/SUFFIX]. */
static int identity_get(const char *what, const char *base, const char *name, const char *suffix,
                        int json, void (*print)(const cJSON *doc))
{
    char path[400];
    if (!adm_name_ok(name))
        return adm_bad_name(what, name);
    snprintf(path, sizeof(path), "%s/%s%s", base, name, suffix);
    return adm_run(what, "GET", path, NULL, json, print);
}

static int users_create(const char *what, const adm_args *a, int json)
{
    cJSON *body;
    int rc;
    if (!adm_name_ok(a->positional[0]))
        return adm_bad_name(what, a->positional[0]);
    if (!a->role || (strcmp(a->role, "signer") && strcmp(a->role, "admin"))) {
        fprintf(stderr, "signum-util %s: --role signer|admin is required\n", what);
        return EXIT_USAGE;
    }
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "name", a->positional[0]);
    cJSON_AddStringToObject(body, "role", a->role);
    rc = adm_run(what, "POST", "/api/v1/admin/users", body, json, print_secret);
    cJSON_Delete(body);
    return rc;
}

static const char users_usage[] =
    "Usage: signum-util admin users ACTION ... [--json]\n"
    "  list                                  users (not deleted)\n"
    "  show NAME                             a user and their API keys\n"
    "  create NAME --role signer|admin       prints the first API key once\n"
    "  disable|enable|delete NAME --reason TEXT\n"
    "  api-keys NAME                         prefix, created, last used, revoked\n"
    "  create-api-key NAME                   prints the new API key once\n"
    "  revoke-api-key NAME PREFIX --reason TEXT\n"
    "  revoke-api-keys NAME --reason TEXT    every API key of the user\n"
    "  revoke-tokens NAME --reason TEXT      every current access token (sessions sign in again)\n"
    "A change fails the identity's very next request, its access tokens included.\n";

int util_cmd_admin_users(int argc, char **argv, int json)
{
    const char *act = argc > 1 ? argv[1] : "", *base = "/api/v1/admin/users";
    char what[64];
    adm_args a;
    int rc;
    snprintf(what, sizeof(what), "admin users %s", act);
    if ((rc = parse_args(what, argc - 2 > 0 ? argc - 2 : 0, argv + 2, &a)) != EXIT_OK)
        return rc;
    if (!strcmp(act, "list") && a.npositional == 0)
        return adm_run(what, "GET", base, NULL, json, print_identities);
    if (!strcmp(act, "show") && a.npositional == 1)
        return identity_get(what, base, a.positional[0], "", json, print_identity);
    if (!strcmp(act, "api-keys") && a.npositional == 1)
        return identity_get(what, base, a.positional[0], "/api-keys", json, print_credentials);
    if (!strcmp(act, "create") && a.npositional == 1)
        return users_create(what, &a, json);
    if (!strcmp(act, "create-api-key") && a.npositional == 1) {
        char path[300];
        if (!adm_name_ok(a.positional[0]))
            return adm_bad_name(what, a.positional[0]);
        snprintf(path, sizeof(path), "%s/%s/api-keys", base, a.positional[0]);
        return adm_run(what, "POST", path, NULL, json, print_secret);
    }
    if ((!strcmp(act, "disable") || !strcmp(act, "enable") || !strcmp(act, "delete")) &&
        a.npositional == 1)
        return identity_change(what, base, act, &a, json);
    if (!strcmp(act, "revoke-api-key") && a.npositional == 2)
        return identity_change(what, base, "api-keys", &a, json);
    if (!strcmp(act, "revoke-api-keys") && a.npositional == 1)
        return identity_change(what, base, "api-keys/revoke-all", &a, json);
    if (!strcmp(act, "revoke-tokens") && a.npositional == 1)
        return revoke_tokens(what, &a, json);
    fputs(users_usage, !strcmp(act, "--help") ? stdout : stderr);
    return !strcmp(act, "--help") ? EXIT_OK : EXIT_USAGE;
}

static const char sa_usage[] =
    "Usage: signum-util admin service-accounts ACTION ... [--json]\n"
    "  list                                  service accounts (not deleted)\n"
    "  show NAME                             an account and its enrolled keys\n"
    "  create NAME                           prints a one-time enrollment token\n"
    "  enrollment-token NAME                 another one-time enrollment token\n"
    "  disable|enable|delete NAME --reason TEXT\n"
    "  keys NAME                             enrolled keys: kid, created, last used, revoked\n"
    "  revoke-key NAME KID --reason TEXT     the key and every token minted with it\n"
    "  revoke-tokens NAME --reason TEXT      every current access token of the account\n";

int util_cmd_admin_service_accounts(int argc, char **argv, int json)
{
    const char *act = argc > 1 ? argv[1] : "", *base = "/api/v1/admin/service-accounts";
    char what[72], path[300];
    adm_args a;
    int rc;
    snprintf(what, sizeof(what), "admin service-accounts %s", act);
    if ((rc = parse_args(what, argc - 2 > 0 ? argc - 2 : 0, argv + 2, &a)) != EXIT_OK)
        return rc;
    if (!strcmp(act, "list") && a.npositional == 0)
        return adm_run(what, "GET", base, NULL, json, print_identities);
    if (!strcmp(act, "show") && a.npositional == 1)
        return identity_get(what, base, a.positional[0], "", json, print_identity);
    if (!strcmp(act, "keys") && a.npositional == 1)
        return identity_get(what, base, a.positional[0], "/keys", json, print_credentials);
    if (!strcmp(act, "create") && a.npositional == 1) {
        cJSON *body = cJSON_CreateObject();
        if (!adm_name_ok(a.positional[0])) {
            cJSON_Delete(body);
            return adm_bad_name(what, a.positional[0]);
        }
        cJSON_AddStringToObject(body, "name", a.positional[0]);
        rc = adm_run(what, "POST", base, body, json, print_secret);
        cJSON_Delete(body);
        return rc;
    }
    if (!strcmp(act, "enrollment-token") && a.npositional == 1) {
        if (!adm_name_ok(a.positional[0]))
            return adm_bad_name(what, a.positional[0]);
        snprintf(path, sizeof(path), "%s/%s/enrollment-tokens", base, a.positional[0]);
        return adm_run(what, "POST", path, NULL, json, print_secret);
    }
    if ((!strcmp(act, "disable") || !strcmp(act, "enable") || !strcmp(act, "delete")) &&
        a.npositional == 1)
        return identity_change(what, base, act, &a, json);
    if (!strcmp(act, "revoke-key") && a.npositional == 2)
        return identity_change(what, base, "keys", &a, json);
    if (!strcmp(act, "revoke-tokens") && a.npositional == 1)
        return revoke_tokens(what, &a, json);
    fputs(sa_usage, !strcmp(act, "--help") ? stdout : stderr);
    return !strcmp(act, "--help") ? EXIT_OK : EXIT_USAGE;
}

/* ---- machines ----------------------------------------------------------------------------- */

static void print_machines(const cJSON *doc)
{
    const cJSON *e;
    char b1[72], b2[40], b3[40];
    printf("%-24s %-9s %-21s %s\n", "NAME", "STATE", "CERTIFICATE UNTIL", "ENROLLED");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "machines"))
    {
        const char *state = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "revoked")) ? "revoked"
                            : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "enrolled"))
                                ? "enrolled"
                                : "pending";
        printf("%-24s %-9s %-21s %s\n", adm_text(e, "name", b1, sizeof(b1)), state,
               adm_time(e, "certificate_not_after", b2, sizeof(b2)),
               adm_time(e, "enrolled_at", b3, sizeof(b3)));
    }
}

static void print_machine_changed(const cJSON *doc)
{
    char b1[24];
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "revoked"))) {
        printf("machine %s enabled; its certificate works again\n", adm_str(doc, "machine"));
        return;
    }
    printf("machine %s revoked; %s access tokens revoked\n", adm_str(doc, "machine"),
           adm_text(doc, "revoked_tokens", b1, sizeof(b1)));
}

static const char machines_usage[] =
    "Usage: signum-util admin machines ACTION ... [--json]\n"
    "  list [--state active|enrolled|pending|revoked]\n"
    "                                        machines, their certificates and state\n"
    "  create NAME                           prints a one-time enrollment token\n"
    "  enrollment-token NAME                 another one-time enrollment token\n"
    "  revoke NAME --reason TEXT             its certificate and bound tokens stop at once\n"
    "  enable NAME --reason TEXT             a revoked machine's certificate works again\n";

static int machines_list(const char *what, const char *state, int json)
{
    char path[120];
    if (!state)
        return adm_run(what, "GET", "/api/v1/admin/machines", NULL, json, print_machines);
    if (strcmp(state, "active") && strcmp(state, "enrolled") && strcmp(state, "pending") &&
        strcmp(state, "revoked")) {
        fprintf(stderr, "signum-util %s: --state takes active, enrolled, pending or revoked\n",
                what);
        return EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/api/v1/admin/machines?state=%s", state);
    return adm_run(what, "GET", path, NULL, json, print_machines);
}

int util_cmd_admin_machines(int argc, char **argv, int json)
{
    const char *act = argc > 1 ? argv[1] : "", *base = "/api/v1/admin/machines", *pos[1];
    const char *const opts[] = {"reason", "state", NULL};
    const char *values[2];
    char what[64], path[300];
    int npos = 0, rc;
    adm_args a = {{NULL}, 0, NULL, NULL};
    snprintf(what, sizeof(what), "admin machines %s", act);
    if ((rc = adm_parse(what, argc - 2 > 0 ? argc - 2 : 0, argv + 2, opts, values, pos, 1,
                        &npos)) != EXIT_OK)
        return rc;
    if (!strcmp(act, "list") && npos == 0 && !values[0])
        return machines_list(what, values[1], json);
    if (values[1]) {
        fprintf(stderr, "signum-util %s: --state is for list\n", what);
        return EXIT_USAGE;
    }
    if (npos == 1 && !adm_name_ok(pos[0]))
        return adm_bad_name(what, pos[0]);
    if ((!strcmp(act, "revoke") || !strcmp(act, "enable")) && npos == 1) {
        cJSON *body;
        a.reason = values[0];
        if ((rc = need_reason(what, &a)) != EXIT_OK)
            return rc;
        snprintf(path, sizeof(path), "%s/%s/%s", base, pos[0], act);
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", a.reason);
        rc = adm_run(what, "POST", path, body, json, print_machine_changed);
        cJSON_Delete(body);
        return rc;
    }
    if (values[0]) {
        fprintf(stderr, "signum-util %s: --reason is for revoke and enable\n", what);
        return EXIT_USAGE;
    }
    if (!strcmp(act, "create") && npos == 1) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "name", pos[0]);
        rc = adm_run(what, "POST", base, body, json, print_secret);
        cJSON_Delete(body);
        return rc;
    }
    if (!strcmp(act, "enrollment-token") && npos == 1) {
        snprintf(path, sizeof(path), "%s/%s/enrollment-tokens", base, pos[0]);
        return adm_run(what, "POST", path, NULL, json, print_secret);
    }
    fputs(machines_usage, !strcmp(act, "--help") ? stdout : stderr);
    return !strcmp(act, "--help") ? EXIT_OK : EXIT_USAGE;
}
