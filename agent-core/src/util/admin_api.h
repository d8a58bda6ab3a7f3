/* What the admin commands of signum-util (admin.c, admin_identities.c) share. Each command
 * is one API call that the agent makes with the user's own session (sg_api_call), so the
 * CLI holds no credentials. */
#ifndef UTIL_ADMIN_API_H
#define UTIL_ADMIN_API_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#include "signum/client.h"

#define ADM_FILE_MAX (256 * 1024) /* a rule or a policy set read from a file: the server's cap */
#define ADM_NAME_CAP 128

/* A member of an answer: the string, or NULL. */
const char *adm_str(const cJSON *o, const char *k);
/* A member as table text: a string, a number, a boolean (yes/no), or "-". */
const char *adm_text(const cJSON *o, const char *k, char *buf, size_t len);
/* A unix time member as UTC RFC 3339, or "-". */
const char *adm_time(const cJSON *o, const char *k, char *buf, size_t len);
/* Names go into a path: 1-128 of [A-Za-z0-9._@-], not "." or "..", as the agent demands. */
int adm_name_ok(const char *s);
/* Reports a bad name; returns EXIT_USAGE. */
int adm_bad_name(const char *what, const char *name);
/* Reads a whole file ("-": standard input) of at most cap bytes; caller frees. */
int adm_read_bounded(const char *what, const char *path, size_t cap, char **out);
/* Parses a JSON document from a file; EXIT_USAGE if it is not one JSON object. */
int adm_read_json_file(const char *what, const char *path, cJSON **doc);
/* One call through the agent: its answer, the HTTP status and the raw body. */
sg_status adm_call(const char *method, const char *path, const char *body, long *status,
                   char **raw);
/* Judges a call's outcome as adm_api does. */
int adm_finish(const char *what, sg_status st, long status, char **raw, cJSON **doc);
/* One call through the agent. On a 2xx answer returns EXIT_OK with the raw answer in *raw
 * and, when doc is given, the parsed one in *doc (callers free both: sg_api_answer_free,
 * cJSON_Delete). Anything else is reported with the server's code, message and a hint on
 * what to do next, and its exit code returned. */
int adm_api(const char *what, const char *method, const char *path, const char *body, long *status,
            char **raw, cJSON **doc);
void adm_print_pretty(FILE *out, const cJSON *doc);
/* Splits an action's arguments into at most maxpos positionals and "--name VALUE" options:
 * opts names them (NULL-terminated), values[i] receives opts[i]'s value or stays NULL.
 * Reports anything else and returns EXIT_USAGE. */
int adm_parse(const char *what, int argc, char **argv, const char *const *opts, const char **values,
              const char **pos, int maxpos, int *npos);
/* Runs one call whose answer is printed raw (json) or handed to print(doc); body is sent as
 * JSON when given. */
int adm_run(const char *what, const char *method, const char *path, const cJSON *body, int json,
            void (*print)(const cJSON *doc));
/* RFC 3339 (fractions dropped, Z or +hh:mm) or unix seconds to unix seconds; -1 if neither. */
long long adm_parse_time(const char *s);
/* Takes every "--json" out of argv (in place); returns 1 if there was one. */
int adm_take_json_flag(int *argc, char **argv);

#endif
