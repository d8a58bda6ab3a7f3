/* The signum-server subcommands. Exit codes: 0 success, 1 failure (or a broken audit
 * chain), 2 usage error or refused (e.g. init on an existing state directory). */
#ifndef SRV_CLI_H
#define SRV_CLI_H

#define SRV_EXIT_OK    0
#define SRV_EXIT_FAIL  1
#define SRV_EXIT_USAGE 2

/* The lock file `serve` holds in the state directory while it runs. */
#define SRV_SERVE_LOCK "serve.lock"

int srv_cmd_init(int argc, char **argv);
int srv_cmd_serve(int argc, char **argv);
int srv_cmd_audit(int argc, char **argv);

/* Sets SOFTHSM2_CONF from the config when the file exists (SoftHSMv2 reads it). */
void srv_export_softhsm_conf(const char *path);
/* Reads the HSM PIN file, refusing one that others can read. */
int srv_read_pin(const char *path, char **pin);

#endif
