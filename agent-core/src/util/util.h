/* What signum-util's command files share: exit codes, the client, error reports. */
#ifndef UTIL_UTIL_H
#define UTIL_UTIL_H

#include <stddef.h>
#include <stdint.h>

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

/* The exit code of a failed call's status. */
int util_exit_for(sg_status st);

/* sign_job.c: what both ways of signing share, and signing jobs. */
#define UTIL_SIG_MAX         1024  /* the longest signature (IPC_TAG_SIGNATURE's cap) */
#define UTIL_JOB_MAX_DIGESTS 20000 /* the server's cap on one job (server/API.md) */
/* The digest of one input: a hex or base64 digest (is_digest), or a file hashed here. Reports a
 * bad one and returns EXIT_USAGE. */
int util_sign_digest(const char *item, int is_digest, sg_hash hash, uint8_t *out);
/* Puts one signature where 'sign' puts it: FILE.sig, or base64 on standard output when file is
 * NULL; an ECDSA signature (raw r||s) becomes DER when der is set. */
int util_sign_output(const char *file, sg_mech mech, int der, const uint8_t *sig, size_t len);
typedef struct {
    const char *key;    /* a new job's key (NULL with job_id) */
    const char *job_id; /* --job: the job to resume, or NULL to submit one */
    sg_mech mech;
    sg_hash hash;
    long salt; /* -1: the server's default */
    int der;   /* --format der */
    char **items;
    size_t count;
    int digests; /* items are digests (--digest), not files */
} util_sign_job_args;
/* signum-util sign --async | --job ID: submits (or resumes) one job, shows its progress on
 * standard error, writes its signatures as the synchronous path does. */
int util_sign_job(sg_client *c, const util_sign_job_args *a);
/* provenance.c: the sign request's "provenance" object as JSON text (envelope_path and
 * id_token_path may be NULL; artifact_path is the file signed, hashed with sha256 here), or
 * NULL after saying why on standard error. */
char *util_provenance_json(const char *envelope_path, const char *artifact_path,
                           const char *sbom_digest, const char *id_token_path);

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
int util_cmd_admin_alerts(int argc, char **argv, int json);
/* signum-util admin projects|grants ... (admin_projects.c). */
int util_cmd_admin_projects(int argc, char **argv, int json);
int util_cmd_admin_grants(int argc, char **argv, int json);

#endif
