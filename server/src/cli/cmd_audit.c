/* `signum-server audit verify|show`: offline checks and listing of the audit log. */
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "cli.h"
#include "common/util.h"
#include "config.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: signum-server audit verify --state DIR [--audit-key PEM] [--offline]\n"
            "       signum-server audit show --state DIR [--json] [--after SEQ] [--limit N]\n"
            "\n"
            "verify walks the whole hash chain, checks every signed checkpoint (signature,\n"
            "link to the previous one, and that it matches the chain) and the high-water mark\n"
            "kept in the HSM, and exits 0 if all is intact, 1 at the first edited, deleted,\n"
            "reordered or cut-off record (which it names). Records after the last checkpoint\n"
            "are reported as not yet checkpointed.\n"
            "  --audit-key PEM  every checkpoint must be signed by this public key (a copy kept\n"
            "                   away from the server, e.g. STATE/audit/audit-key.pem)\n"
            "  --offline        do not open the HSM: a log cut back to an older checkpoint is\n"
            "                   then not detected\n"
            "With the time-stamping authority on (tsa in signum-server.conf), every checkpoint\n"
            "also carries an RFC 3161 token over its signature: verify checks it against the\n"
            "CA certificate (ca_cert), its messageImprint and its genTime. Checkpoints made\n"
            "before the TSA existed are reported as not timestamped; one whose signed payload\n"
            "names a TSA but whose token is missing or altered fails.\n");
}

/* The public key to pin, as DER SubjectPublicKeyInfo. */
static int read_pinned_key(const char *path, uint8_t **spki, size_t *len)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *pkey = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int n = pkey ? i2d_PUBKEY(pkey, &der) : -1;
    if (f)
        fclose(f);
    EVP_PKEY_free(pkey);
    if (n <= 0 || !(*spki = malloc((size_t)n))) {
        OPENSSL_free(der);
        return -1;
    }
    memcpy(*spki, der, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(der);
    return 0;
}

static srv_hsm *open_hsm(const srv_config *cfg)
{
    srv_hsm_config hc;
    srv_hsm *hsm = NULL;
    srv_error err;
    char *pin = NULL;
    if (srv_read_pin(cfg->hsm_pin_file, &pin) != 0)
        return NULL;
    srv_export_softhsm_conf(cfg->softhsm_conf);
    memset(&hc, 0, sizeof(hc));
    hc.module_path = cfg->hsm_module;
    hc.token_label = cfg->hsm_token;
    hc.pin = pin;
    hc.pool_size = 1;
    if (srv_hsm_open(&hc, &hsm, &err) != SRV_OK)
        fprintf(stderr, "signum-server audit verify: %s\n", err.message);
    OPENSSL_cleanse(pin, strlen(pin));
    free(pin);
    return hsm;
}

/* The CA certificate timestamp tokens must chain to; NULL if unreadable. */
static X509 *read_ca(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return ca;
}

static int run_verify(const srv_config *cfg, srv_db *db, const char *pinned, int offline)
{
    srv_verify_options opts;
    srv_verify_report rep;
    srv_error err;
    uint8_t *spki = NULL;
    int rc = SRV_EXIT_FAIL;

    memset(&opts, 0, sizeof(opts));
    if (pinned && read_pinned_key(pinned, &spki, &opts.pinned_spki_len) != 0) {
        fprintf(stderr, "signum-server audit verify: %s holds no PEM public key\n", pinned);
        return SRV_EXIT_FAIL;
    }
    opts.pinned_spki = spki;
    if (!(opts.tsa_ca = read_ca(cfg->ca_cert)))
        fprintf(stderr,
                "signum-server audit verify: cannot read the CA certificate %s: timestamp "
                "tokens are not checked\n",
                cfg->ca_cert);
    if (!offline && !(opts.hsm = open_hsm(cfg))) {
        fprintf(stderr, "signum-server audit verify: cannot open the HSM to read the audit "
                        "high-water mark (use --offline to verify without it)\n");
        X509_free(opts.tsa_ca);
        free(spki);
        return SRV_EXIT_FAIL;
    }
    if (srv_audit_verify_full(db, &opts, &rep, &err) != SRV_OK) {
        fprintf(stderr, "signum-server audit verify: %s\n", err.message);
    } else if (rep.chain.first_bad) {
        printf("audit chain BROKEN at record %lld: %s (%lld records before it are intact)\n",
               (long long)rep.chain.first_bad, rep.chain.reason, (long long)rep.chain.records);
    } else {
        printf("audit chain intact: %lld records, %lld signed checkpoints",
               (long long)rep.chain.records, (long long)rep.checkpoints);
        if (rep.checkpoints)
            printf(" (last at record %lld, audit key SHA-256 %s)", (long long)rep.last_checkpoint,
                   rep.key_fingerprint);
        printf("\n");
        if (rep.unchecked)
            printf("%lld records after the last checkpoint are not yet checkpointed\n",
                   (long long)rep.unchecked);
        if (rep.timestamped)
            printf("%lld checkpoints timestamped (RFC 3161 token verified, TSA certificate "
                   "SHA-256 %s)\n",
                   (long long)rep.timestamped, rep.tsa_fingerprint);
        if (rep.untimestamped)
            printf("%lld checkpoints carry no timestamp token (made before the TSA existed)\n",
                   (long long)rep.untimestamped);
        if (rep.tokens_unchecked)
            printf("%lld timestamp tokens NOT checked (no CA certificate)\n",
                   (long long)rep.tokens_unchecked);
        if (offline)
            printf("HSM high-water mark not checked (--offline): a log cut back to an earlier "
                   "checkpoint would pass\n");
        else if (rep.mark_checked)
            printf("HSM high-water mark: checkpoint at record %lld, present and unchanged\n",
                   (long long)rep.mark_seq);
        else
            printf("HSM high-water mark: none yet\n");
        rc = SRV_EXIT_OK;
    }
    srv_hsm_close(opts.hsm);
    X509_free(opts.tsa_ca);
    free(spki);
    return rc;
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
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"after", required_argument, NULL, 'a'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"audit-key", required_argument, NULL, 'k'},
                                         {"offline", no_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL, *sub, *pinned = NULL;
    int offline = 0;
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
        case 'k': pinned = optarg; break;
        case 'o': offline = 1; break;
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
        rc = run_verify(&cfg, db, pinned, offline);
    } else {
        if (srv_db_audit_iterate(db, after, show_row, &show, &err) != SRV_OK)
            fprintf(stderr, "signum-server audit show: %s\n", err.message);
        else
            rc = SRV_EXIT_OK;
    }
    srv_db_close(db);
    return rc;
}
