/* What every signum-util command file reports through: the client for the agent, a failed
 * call's message with its hint and exit code, doctor's verdict lines. Kept out of main.c so
 * that the command files (admin*.c, the platform files) and main.c, which dispatches to them,
 * do not depend on each other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "util.h"

int util_exit_for(sg_status st)
{
    switch (st) {
    case SG_OK: return EXIT_OK;
    case SG_ERR_AGENT_UNAVAILABLE: return EXIT_AGENT;
    case SG_ERR_NOT_LOGGED_IN:
    case SG_ERR_AUTH_FAILED: return EXIT_AUTH;
    case SG_ERR_DENIED:
    case SG_ERR_QUOTA_EXCEEDED:
    case SG_ERR_KEY_NOT_FOUND: return EXIT_DENIED;
    default: return EXIT_FAILED;
    }
}

int util_report(const char *what, sg_status st)
{
    const char *hint = "";
    switch (st) {
    case SG_ERR_AGENT_UNAVAILABLE: hint = "start it with 'signum-util agent start'"; break;
    case SG_ERR_NOT_LOGGED_IN:
        hint = "log in with 'signum-util login' or set SIGNUM_API_KEY";
        break;
    case SG_ERR_AUTH_FAILED: hint = "check the API key; 'signum-util login' to replace it"; break;
    case SG_ERR_DENIED:
        /* The server's reason names a provenance rule: a grant would not help. */
        hint = strstr(sg_last_error(), "provenance required by rule")
                   ? "send build provenance that meets the rule (sign --provenance FILE; "
                     "docs/provenance.md)"
                   : "ask an administrator for a grant on this key";
        break;
    case SG_ERR_KEY_NOT_FOUND: hint = "'signum-util keys' lists the keys you may use"; break;
    case SG_ERR_QUOTA_EXCEEDED:
        hint = "the policy's signing quota is used up: wait for its window, or ask an "
               "administrator";
        break;
    case SG_ERR_NETWORK:
    case SG_ERR_TIMEOUT: hint = "'signum-util doctor' checks the way to the server"; break;
    default: break;
    }
    fprintf(stderr, "signum-util: %s: %s (%s)\n", what, sg_last_error(), sg_status_name(st));
    if (*hint)
        fprintf(stderr, "  next: %s\n", hint);
    return util_exit_for(st);
}

sg_client *util_client(int autostart)
{
    sg_client_options o;
    sg_client *c = NULL;
    memset(&o, 0, sizeof(o));
    o.no_autostart = !autostart;
    o.application = "signum-util";
    if (sg_client_new(&o, &c) != SG_OK) {
        fprintf(stderr, "signum-util: %s\n", sg_last_error());
        exit(EXIT_USAGE);
    }
    return c;
}

int util_verdict(const char *check, int ok, const char *detail)
{
    printf("[%s] %-12s %s\n", ok ? " OK " : "FAIL", check, detail);
    return ok ? 0 : 1;
}
