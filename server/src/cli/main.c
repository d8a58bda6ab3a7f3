/* signum-server: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "common/log.h"
#include "policy/policy.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: signum-server COMMAND [OPTIONS]\n"
            "\n"
            "Commands:\n"
            "  init  --state DIR [OPTIONS]   create a new state directory (HSM token, database,\n"
            "                                CA, TLS certificate, first admin API key)\n"
            "  serve --state DIR [OPTIONS]   serve the HTTPS API until SIGTERM\n"
            "  audit verify --state DIR      check the audit hash chain (exit 1 if broken)\n"
            "  audit show --state DIR        list audit records (--json for JSON lines)\n"
            "\n"
            "Run 'signum-server COMMAND --help' for the options of a command.\n"
            "Environment: SIGNUM_DEBUG=http,hsm,db,audit (or all) enables debug logs.\n");
}

int main(int argc, char **argv)
{
    srv_log_init();
    /* Before any thread: policy time zones switch TZ later (policy/tz.c). */
    policy_tz_init();
    /* Everything the server writes (database, keys, PINs) is for its own user only. */
    umask(077);
    if (argc < 2) {
        usage(stderr);
        return SRV_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return SRV_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("signum-server " SIGNUM_VERSION "\n");
        return SRV_EXIT_OK;
    }
    if (strcmp(argv[1], "init") == 0)
        return srv_cmd_init(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return srv_cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "audit") == 0)
        return srv_cmd_audit(argc - 1, argv + 1);
    fprintf(stderr, "signum-server: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return SRV_EXIT_USAGE;
}
