/* What the admin commands of signum-util share: reading the agent's answers, one API call
 * through the agent with the server's error and a hint on failure, bounded file reads. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* timegm */
#endif
#include "admin_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform.h"
#include "signum/common/rfc3339.h"
#include "signum/https.h"
#include "util.h"

const char *adm_str(const cJSON *o, const char *k)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A member as table text: a string, a number, a boolean, or "-". */
const char *adm_text(const cJSON *o, const char *k, char *buf, size_t len)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v))
        snprintf(buf, len, "%.0f", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "yes" : "no");
    else
        snprintf(buf, len, "-");
    return buf;
}

/* A unix time member as UTC RFC 3339, or "-". */
const char *adm_time(const cJSON *o, const char *k, char *buf, size_t len)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    /* Up to 9999-12-31 (sgc_rfc3339_format); the bound also keeps the cast defined. */
    if (!cJSON_IsNumber(v) || v->valuedouble <= 0 || v->valuedouble >= 253402300800.0 ||
        sgc_rfc3339_format((int64_t)v->valuedouble, buf, len) != SGC_OK)
        snprintf(buf, len, "-");
    return buf;
}

/* Names go into a path: 1-128 of [A-Za-z0-9._@-], not "." or "..", as the agent demands. */
int adm_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ADM_NAME_CAP || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") == n;
}

int adm_bad_name(const char *what, const char *name)
{
    fprintf(stderr, "signum-util %s: '%s' is not a valid name (1-%d of A-Z a-z 0-9 . _ @ -)\n",
            what, name, ADM_NAME_CAP);
    return EXIT_USAGE;
}

/* Reads a whole file ("-": standard input) of at most cap bytes; caller frees. */
int adm_read_bounded(const char *what, const char *path, size_t cap, char **out)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
    char *buf = NULL;
    size_t n = 0;
    int rc = EXIT_FAILED;

    *out = NULL;
    if (!f) {
        fprintf(stderr, "signum-util %s: cannot read %s: %s\n", what, path, strerror(errno));
        return EXIT_FAILED;
    }
    buf = malloc(cap + 2);
    if (!buf)
        goto out;
    n = fread(buf, 1, cap + 1, f);
    if (ferror(f)) {
        fprintf(stderr, "signum-util %s: cannot read %s: %s\n", what, path, strerror(errno));
        goto out;
    }
    if (n > cap) {
        fprintf(stderr, "signum-util %s: %s is over %zu KiB, the server's limit\n", what, path,
                cap / 1024);
        rc = EXIT_USAGE;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    rc = EXIT_OK;
out:
    free(buf);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* Parses a JSON document from a file; EXIT_USAGE if it is not one JSON object. */
int adm_read_json_file(const char *what, const char *path, cJSON **doc)
{
    char *text = NULL;
    int rc = adm_read_bounded(what, path, ADM_FILE_MAX, &text);
    *doc = NULL;
    if (rc != EXIT_OK)
        return rc;
    *doc = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(*doc)) {
        fprintf(stderr, "signum-util %s: %s does not hold one JSON object\n", what, path);
        cJSON_Delete(*doc);
        *doc = NULL;
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* ---- one API call ------------------------------------------------------------------------- */

static const char *hint_for(const char *code)
{
    static const struct {
        const char *code, *hint;
    } hints[] = {
        {"forbidden", "the message says why: an admin account is needed ('signum-util login' "
                      "with an admin's API key), or separation of duties forbids it"},
        {"unauthenticated", "log in with 'signum-util login'"},
        {"token_invalid", "log in again with 'signum-util login'"},
        {"token_expired", "log in again with 'signum-util login'"},
        {"bad_credentials", "check the API key; 'signum-util login' to replace it"},
        {"not_found", "the matching 'list' command shows what exists"},
        {"already_exists", "'put' replaces an existing one"},
        {"malformed_json", "the file must hold one JSON object"},
        {"unknown_field", "remove the member the message names (server/API.md, Policy)"},
        {"invalid_field", "fix the member the message names (server/API.md, Policy)"},
        {"body_too_large", "a rule may be 64 KiB, a policy set 256 KiB"},
        {"not_an_approver", "only the rule's approvers decide; 'signum-util approvals list' "
                            "shows what you may decide"},
        {"self_approval_forbidden", "another approver must decide on your own request"},
        {"already_decided", "nothing more to do; 'signum-util approvals list' shows what is open"},
        {"approval_closed", "nothing more to do; 'signum-util approvals list' shows what is open"},
        {"approval_expired", "the requester must sign again to open a new request"},
    };
    for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
        if (!strcmp(hints[i].code, code))
            return hints[i].hint;
    return NULL;
}

/* Prints the server's error code and message (read as the agent's error map reads them,
 * signum/https.h), and what to do next; returns the exit code. The exit code follows the HTTP
 * status, as agent-core/README.md documents for admin and approvals calls (404, 409 and 410
 * are 1 here, where the error map makes a missing key a denial for signing). */
static int server_error(const char *what, long status, const char *answer)
{
    char code[64], msg[1024];
    const char *hint;
    ag_server_error_fields(answer, code, sizeof(code), msg, sizeof(msg));
    fprintf(stderr, "signum-util %s: %s: %s (HTTP %ld)\n", what, code[0] ? code : "http_error",
            msg[0] ? msg : "the server gave no reason", status);
    hint = code[0] ? hint_for(code) : NULL;
    if (hint)
        fprintf(stderr, "  next: %s\n", hint);
    return status == 401 ? EXIT_AUTH : status == 403 ? EXIT_DENIED : EXIT_FAILED;
}

/* One call through the agent: the agent's answer, the HTTP status and the raw body. */
sg_status adm_call(const char *method, const char *path, const char *body, long *status, char **raw)
{
    sg_client *c = util_client(1);
    sg_status st = sg_api_call(c, method, path, body, status, raw);
    sg_client_free(c);
    return st;
}

/* Judges a call's outcome. On a 2xx answer returns EXIT_OK, keeping the raw answer in *raw
 * and, when doc is given, the parsed one in *doc (callers free both). Anything else is
 * reported, *raw freed, and its exit code returned. */
int adm_finish(const char *what, sg_status st, long status, char **raw, cJSON **doc)
{
    int rc = EXIT_OK;
    if (doc)
        *doc = NULL;
    if (st == SG_ERR_DENIED) {
        fprintf(stderr, "signum-util %s: the agent refused the call: %s\n", what, sg_last_error());
        fprintf(stderr, "  next: the agent makes only the calls listed in agent-core/README.md\n");
        return EXIT_DENIED;
    }
    if (st != SG_OK)
        return util_report(what, st);
    if (status < 200 || status > 299) {
        rc = server_error(what, status, *raw);
        goto fail;
    }
    if (doc) {
        *doc = cJSON_Parse(*raw);
        if (!*doc) {
            fprintf(stderr, "signum-util %s: the server's answer is not JSON\n", what);
            rc = EXIT_FAILED;
            goto fail;
        }
    }
    return EXIT_OK;
fail:
    sg_api_answer_free(*raw);
    *raw = NULL;
    return rc;
}

int adm_api(const char *what, const char *method, const char *path, const char *body, long *status,
            char **raw, cJSON **doc)
{
    sg_status st = adm_call(method, path, body, status, raw);
    return adm_finish(what, st, *status, raw, doc);
}

void adm_print_pretty(FILE *out, const cJSON *doc)
{
    char *text = cJSON_Print(doc);
    if (text)
        fprintf(out, "%s\n", text);
    free(text);
}

/* Takes every "--json" out of argv (in place); returns 1 if there was one. */
int adm_take_json_flag(int *argc, char **argv)
{
    int found = 0, n = 0;
    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--json"))
            found = 1;
        else
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    *argc = n;
    return found;
}

int adm_parse(const char *what, int argc, char **argv, const char *const *opts, const char **values,
              const char **pos, int maxpos, int *npos)
{
    *npos = 0;
    for (int i = 0; opts[i]; i++)
        values[i] = NULL;
    for (int i = 0; i < argc; i++) {
        int o = -1;
        for (int k = 0; opts[k] && argv[i][0] == '-'; k++)
            if (!strcmp(argv[i] + 2, opts[k]) && !strncmp(argv[i], "--", 2))
                o = k;
        if (o >= 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "signum-util %s: %s needs a value\n", what, argv[i]);
                return EXIT_USAGE;
            }
            values[o] = argv[++i];
        } else if (argv[i][0] == '-' || *npos == maxpos) {
            fprintf(stderr, "signum-util %s: unexpected argument '%s'\n", what, argv[i]);
            return EXIT_USAGE;
        } else {
            pos[(*npos)++] = argv[i];
        }
    }
    return EXIT_OK;
}

int adm_run(const char *what, const char *method, const char *path, const cJSON *body, int json,
            void (*print)(const cJSON *doc))
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL, *raw = NULL;
    cJSON *doc = NULL;
    long status = 0;
    int rc;
    if (body && !text) {
        fprintf(stderr, "signum-util %s: out of memory\n", what);
        return EXIT_FAILED;
    }
    rc = adm_api(what, method, path, text, &status, &raw, print && !json ? &doc : NULL);
    free(text);
    if (rc != EXIT_OK)
        return rc;
    if (json || !print)
        printf("%s\n", raw);
    else
        print(doc);
    cJSON_Delete(doc);
    sg_api_answer_free(raw);
    return EXIT_OK;
}

long long adm_parse_time(const char *s)
{
    char *end;
    int64_t t;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && v >= 0)
        return v;
    /* RFC 3339 with any offset (signum/common/rfc3339.h); -1 for anything else. */
    if (sgc_rfc3339_parse(s, 0, &t) != SGC_OK || t < 0)
        return -1;
    return (long long)t;
}
