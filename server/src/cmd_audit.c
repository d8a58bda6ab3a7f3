/* `signum-server audit verify|show`: offline checks and listing of the audit log. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "cli.h"
#include "config.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: signum-server audit verify --state DIR\n"
                 "       signum-server audit show --state DIR [--json] [--after SEQ] [--limit N]\n"
                 "\n"
                 "verify walks the whole hash chain and exits 0 if it is intact, 1 at the first\n"
                 "edited, deleted or reordered record (which it names).\n");
}

typedef struct {
    int json;
    long long limit, count;
} show_state;

static int show_row(const srv_audit_row *row, void *ctx)
{
    show_state *s = ctx;
    if (s->json) {
        cJSON *rec = cJSON_Parse(row->record);
        char *text;
        if (!rec)
            return 0;
        cJSON_AddStringToObject(rec, "hash", row->hash);
        text = cJSON_PrintUnformatted(rec);
        if (text)
            printf("%s\n", text);
        free(text);
        cJSON_Delete(rec);
    } else {
        cJSON *rec = cJSON_Parse(row->record);
        cJSON *detail = rec ? cJSON_GetObjectItemCaseSensitive(rec, "detail") : NULL;
        char *d = detail ? cJSON_PrintUnformatted(detail) : NULL;
        printf("%6lld  %s  %-8s %-22s %-18s %s\n", (long long)row->seq, row->time, row->outcome,
               row->actor, row->action, d ? d : "");
        free(d);
        cJSON_Delete(rec);
    }
    return ++s->count >= s->limit;
}

int srv_cmd_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
        {"after", required_argument, NULL, 'a'}, {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *state = NULL, *sub;
    show_state show = {0, -1, 0};
    long long after = 0;
    srv_config cfg;
    srv_db *db = NULL;
    srv_error err;
    int c, rc = SRV_EXIT_FAIL;

    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? SRV_EXIT_USAGE : SRV_EXIT_OK;
    }
    sub = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'j': show.json = 1; break;
        case 'a': after = atoll(optarg); break;
        case 'l': show.limit = atoll(optarg); break;
        case 'h': usage(stdout); return SRV_EXIT_OK;
        default: usage(stderr); return SRV_EXIT_USAGE;
        }
    }
    if (!state || (strcmp(sub, "verify") != 0 && strcmp(sub, "show") != 0)) {
        usage(stderr);
        return SRV_EXIT_USAGE;
    }
    if (show.limit <= 0)
        show.limit = INT64_MAX;
    if (srv_config_load(state, &cfg, &err) != SRV_OK ||
        srv_db_open(cfg.database, 0, &db, &err) != SRV_OK) {
        fprintf(stderr, "signum-server audit: %s\n", err.message);
        return SRV_EXIT_FAIL;
    }
    if (strcmp(sub, "verify") == 0) {
        srv_audit_report rep;
        if (srv_audit_verify(db, &rep, &err) != SRV_OK) {
            fprintf(stderr, "signum-server audit verify: %s\n", err.message);
        } else if (rep.first_bad) {
            printf("audit chain BROKEN at record %lld: %s (%lld records before it are intact)\n",
                   (long long)rep.first_bad, rep.reason, (long long)rep.records);
        } else {
            printf("audit chain intact: %lld records\n", (long long)rep.records);
            rc = SRV_EXIT_OK;
        }
    } else {
        if (srv_db_audit_iterate(db, after, show_row, &show, &err) != SRV_OK)
            fprintf(stderr, "signum-server audit show: %s\n", err.message);
        else
            rc = SRV_EXIT_OK;
    }
    srv_db_close(db);
    return rc;
}
