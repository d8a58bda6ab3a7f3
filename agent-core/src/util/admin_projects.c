/* signum-util admin projects|grants: projects (their keys, and who holds which role in them)
 * and the direct grants of a key. Each command is one API call through the agent. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "util.h"

#define PROJECTS_BASE "/api/v1/admin/projects"
#define KEYS_BASE     "/api/v1/admin/keys"

static void print_projects(const cJSON *doc)
{
    const cJSON *e;
    char b1[72], b2[24];
    printf("%-28s %5s %s\n", "NAME", "KEYS", "DESCRIPTION");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "projects"))
    {
        printf("%-28s %5s %s\n", adm_text(e, "name", b1, sizeof(b1)),
               adm_text(e, "keys", b2, sizeof(b2)),
               adm_str(e, "description") ? adm_str(e, "description") : "");
    }
}

static void print_project(const cJSON *doc)
{
    const cJSON *e;
    char b1[72], b2[24];
    printf("project %s: %s\n", adm_str(doc, "name"),
           adm_str(doc, "description") && *adm_str(doc, "description") ? adm_str(doc, "description")
                                                                       : "(no description)");
    printf("keys:\n");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "key_list"))
    {
        printf("  %-28s %-9s %s\n", adm_text(e, "name", b1, sizeof(b1)),
               adm_text(e, "type", b2, sizeof(b2)),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "disabled")) ? "disabled"
                                                                             : "enabled");
    }
    printf("members:\n");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "members"))
    {
        printf("  %-9s %-16s %s\n", adm_str(e, "role"), adm_str(e, "kind"), adm_str(e, "name"));
    }
}

static void print_change(const cJSON *doc)
{
    const char *role = adm_str(doc, "role");
    if (role) {
        const char *kinds[] = {"user", "service_account", "group"};
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (adm_str(doc, kinds[i]))
                printf("%s %s %s the %s role in project %s\n", kinds[i], adm_str(doc, kinds[i]),
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "member")) ? "now holds"
                                                                                     : "no longer "
                                                                                       "holds",
                       role, adm_str(doc, "project"));
    } else if (adm_str(doc, "key")) {
        printf("key %s moved to %s\n", adm_str(doc, "key"),
               *adm_str(doc, "project") ? adm_str(doc, "project") : "no project");
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "deleted"))) {
        printf("deleted project %s\n", adm_str(doc, "project"));
    } else {
        printf("created project %s\n", adm_str(doc, "project"));
    }
}

static void print_grants(const cJSON *doc)
{
    const cJSON *e;
    char b1[72], b2[40];
    printf("%-28s %-16s %s\n", "IDENTITY", "KIND", "SINCE");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "grants"))
    {
        printf("%-28s %-16s %s\n", adm_text(e, "user", b1, sizeof(b1)), adm_str(e, "kind"),
               adm_time(e, "created_at", b2, sizeof(b2)));
    }
}

static void print_grant(const cJSON *doc)
{
    printf("%s %s key %s\n", adm_str(doc, "user"),
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "granted")) ? "may now sign with"
                                                                          : "may no longer sign "
                                                                            "with",
           adm_str(doc, "key"));
}

static int send(const char *what, const char *method, const char *path, cJSON *body, int json,
                void (*print)(const cJSON *doc))
{
    int rc = adm_run(what, method, path, body, json, print);
    cJSON_Delete(body);
    return rc;
}

static const char projects_usage[] =
    "Usage: signum-util admin projects ACTION ... [--json]\n"
    "  list                                  projects (yours, unless you are an admin)\n"
    "  show NAME                             its keys and who holds which role\n"
    "  create NAME [--description TEXT]\n"
    "  delete NAME --reason TEXT             only once it holds no keys\n"
    "  add NAME ROLE (--user U | --service-account S | --group G) --reason TEXT\n"
    "  remove NAME ROLE (--user U | --service-account S | --group G) --reason TEXT\n"
    "      ROLE is signer (signs with the project's keys), approver (decides approval\n"
    "      requests on them when the rule says project_approvers) or admin (manages the\n"
    "      project's keys and its signers and approvers; named by a global admin)\n"
    "  move-key KEY --project NAME|none --reason TEXT   into a project, or out of any\n"
    "Keys are created in a project with 'admin keys create NAME --project P ...'.\n";

int util_cmd_admin_projects(int argc, char **argv, int json)
{
    static const char *const opts[] = {"description", "reason",  "user", "service-account",
                                       "group",       "project", NULL};
    enum { O_DESC, O_REASON, O_USER, O_SA, O_GROUP, O_PROJECT };
    const char *act = argc > 1 ? argv[1] : "", *pos[2], *v[6];
    char what[64], path[400];
    int npos = 0, rc;
    cJSON *body;

    snprintf(what, sizeof(what), "admin projects %s", act);
    if (!strcmp(act, "--help")) {
        fputs(projects_usage, stdout);
        return EXIT_OK;
    }
    if ((rc = adm_parse(what, argc - 2 > 0 ? argc - 2 : 0, argv + 2, opts, v, pos, 2, &npos)) !=
        EXIT_OK)
        return rc;
    if (!strcmp(act, "list") && npos == 0)
        return adm_run(what, "GET", PROJECTS_BASE, NULL, json, print_projects);
    if (npos >= 1 && !adm_name_ok(pos[0]))
        return adm_bad_name(what, pos[0]);
    snprintf(path, sizeof(path), "%s/%s", PROJECTS_BASE, npos >= 1 ? pos[0] : "");
    if (!strcmp(act, "show") && npos == 1)
        return adm_run(what, "GET", path, NULL, json, print_project);
    if (!strcmp(act, "create") && npos == 1) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "name", pos[0]);
        if (v[O_DESC])
            cJSON_AddStringToObject(body, "description", v[O_DESC]);
        return send(what, "POST", PROJECTS_BASE, body, json, print_change);
    }
    if (!strcmp(act, "delete") && npos == 1 && v[O_REASON]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        return send(what, "DELETE", path, body, json, print_change);
    }
    if ((!strcmp(act, "add") || !strcmp(act, "remove")) && npos == 2 && v[O_REASON] &&
        !!v[O_USER] + !!v[O_SA] + !!v[O_GROUP] == 1) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "role", pos[1]);
        if (v[O_USER])
            cJSON_AddStringToObject(body, "user", v[O_USER]);
        if (v[O_SA])
            cJSON_AddStringToObject(body, "service_account", v[O_SA]);
        if (v[O_GROUP])
            cJSON_AddStringToObject(body, "group", v[O_GROUP]);
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        strcat(path, !strcmp(act, "add") ? "/members" : "/members/remove");
        return send(what, "POST", path, body, json, print_change);
    }
    if (!strcmp(act, "move-key") && npos == 1 && v[O_PROJECT] && v[O_REASON]) {
        int none = !strcmp(v[O_PROJECT], "none");
        if (!none && !adm_name_ok(v[O_PROJECT]))
            return adm_bad_name(what, v[O_PROJECT]);
        body = cJSON_CreateObject();
        if (none)
            cJSON_AddNullToObject(body, "project");
        else
            cJSON_AddStringToObject(body, "project", v[O_PROJECT]);
        cJSON_AddStringToObject(body, "reason", v[O_REASON]);
        snprintf(path, sizeof(path), "%s/%s/project", KEYS_BASE, pos[0]);
        return send(what, "PUT", path, body, json, print_change);
    }
    fputs(projects_usage, stderr);
    return EXIT_USAGE;
}

static const char grants_usage[] =
    "Usage: signum-util admin grants ACTION ... [--json]\n"
    "  list KEY                              who holds a direct grant on the key\n"
    "  add KEY USER                          lets USER (or a service account) sign with it\n"
    "  remove KEY USER --reason TEXT         takes it back; the next request is refused\n"
    "Projects are the other way to let identities sign: 'admin projects --help'.\n";

int util_cmd_admin_grants(int argc, char **argv, int json)
{
    static const char *const opts[] = {"reason", NULL};
    const char *act = argc > 1 ? argv[1] : "", *pos[2], *v[1];
    char what[64], path[400];
    int npos = 0, rc;
    cJSON *body;

    snprintf(what, sizeof(what), "admin grants %s", act);
    if (!strcmp(act, "--help")) {
        fputs(grants_usage, stdout);
        return EXIT_OK;
    }
    if ((rc = adm_parse(what, argc - 2 > 0 ? argc - 2 : 0, argv + 2, opts, v, pos, 2, &npos)) !=
        EXIT_OK)
        return rc;
    for (int i = 0; i < npos; i++)
        if (!adm_name_ok(pos[i]))
            return adm_bad_name(what, pos[i]);
    if (npos >= 1)
        snprintf(path, sizeof(path), "%s/%s/grants", KEYS_BASE, pos[0]);
    if (!strcmp(act, "list") && npos == 1)
        return adm_run(what, "GET", path, NULL, json, print_grants);
    if (!strcmp(act, "add") && npos == 2) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "user", pos[1]);
        return send(what, "POST", path, body, json, print_grant);
    }
    if (!strcmp(act, "remove") && npos == 2 && v[0]) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", v[0]);
        strncat(path, "/", sizeof(path) - strlen(path) - 1);
        strncat(path, pos[1], sizeof(path) - strlen(path) - 1);
        return send(what, "DELETE", path, body, json, print_grant);
    }
    fputs(grants_usage, stderr);
    return EXIT_USAGE;
}
