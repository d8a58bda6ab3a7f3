/* What signum-util's command files share: exit codes, the client, error reports. */
#ifndef UTIL_UTIL_H
#define UTIL_UTIL_H

#include "signum/client.h"

/* Exit codes (documented in agent-core/README.md). */
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_AGENT = 3,
    EXIT_AUTH = 4,
    EXIT_DENIED = 5,
};

/* report.c: a client for the per-user agent (exits with EXIT_USAGE if none can be made). */
sg_client *util_client(int autostart);
/* Prints a failed call's error with a hint about what to do next; returns the exit code. */
int util_report(const char *what, sg_status st);

/* signum-util admin policy|group|key-group ..., signum-util approvals ... (admin.c). */
int util_cmd_admin(int argc, char **argv);
int util_cmd_approvals(int argc, char **argv);
/* signum-util admin users|service-accounts ... (admin_identities.c); json: --json was given. */
int util_cmd_admin_users(int argc, char **argv, int json);
int util_cmd_admin_service_accounts(int argc, char **argv, int json);
int util_cmd_admin_machines(int argc, char **argv, int json);
/* signum-util admin keys ... (admin_keys.c). */
int util_cmd_admin_keys(int argc, char **argv, int json);
/* signum-util admin audit ... (admin_audit.c). */
int util_cmd_admin_audit(int argc, char **argv, int json);
int util_cmd_admin_usage(int argc, char **argv, int json);
/* signum-util admin projects|grants ... (admin_projects.c). */
int util_cmd_admin_projects(int argc, char **argv, int json);
int util_cmd_admin_grants(int argc, char **argv, int json);

#endif
