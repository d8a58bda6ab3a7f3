/* signum-agent's command line, the same on every platform (the usage text is the caller's). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

int ag_cli_parse(int argc, char **argv, void (*usage)(FILE *), int *daemon_mode, char *endpoint,
                 size_t endpoint_len)
{
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'},   {"daemon", no_argument, NULL, 'd'},
        {"socket", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
    int c;

    *daemon_mode = 0;
    endpoint[0] = '\0';
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': *daemon_mode = 0; break;
        case 'd': *daemon_mode = 1; break;
        case 's':
            if (strlen(optarg) >= endpoint_len) {
                fprintf(stderr, "signum-agent: --socket %s is too long\n", optarg);
                return 2;
            }
            snprintf(endpoint, endpoint_len, "%s", optarg);
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("signum-agent " SIGNUM_VERSION "\n"); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}
