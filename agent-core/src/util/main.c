/* signum-util: the command line of the Signum Agent (login, keys, certificates, signing,
 * diagnostics, agent control). It talks to the agent through the client library. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "signum/common/b64.h"
#include "signum/common/names.h"
#include "enroll.h"
#include "platform.h"
#include "util.h"
#include "signum/client.h"
#include "signum/crypto.h"

/* ---- agent start|stop|status, status ------------------------------------------------------ */

static void print_status(const sg_agent_status *s)
{
    printf("agent:      running (pid %u, version %s)\n", s->pid, s->version);
    printf("server:     %s\n", s->server);
    printf("logged in:  %s\n", s->logged_in ? "yes" : "no");
    if (s->identity[0])
        printf("identity:   %s (%s)\n", s->identity, s->auth_method);
    if (s->token_expires) {
        long left = (long)((int64_t)s->token_expires - (int64_t)time(NULL));
        printf("token:      %s\n", left > 0 ? "valid" : "expired");
        if (left > 0)
            printf("expires in: %ld s\n", left);
    }
}

static int cmd_agent(int argc, char **argv)
{
    sg_agent_status s;
    sg_client *c;
    sg_status st;
    int rc;
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout, "Usage: signum-util agent start|stop|status\n");
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[1], "start")) {
        c = util_client(1);
        st = sg_status_get(c, &s);
        rc = st == SG_OK ? (printf("agent running (pid %u)\n", s.pid), EXIT_OK)
                         : util_report("agent start", st);
    } else if (!strcmp(argv[1], "stop")) {
        c = util_client(0);
        st = sg_agent_shutdown(c);
        if (st == SG_ERR_AGENT_UNAVAILABLE) {
            printf("agent not running\n");
            rc = EXIT_OK;
        } else if (st == SG_OK) {
            /* Return once the agent has given up its socket, so the next tool starts anew. */
            util_wait_agent_gone();
            printf("agent stopped\n");
            rc = EXIT_OK;
        } else {
            rc = util_report("agent stop", st);
        }
    } else if (!strcmp(argv[1], "status")) {
        c = util_client(0);
        st = sg_status_get(c, &s);
        if (st == SG_OK)
            print_status(&s);
        rc = st == SG_OK ? EXIT_OK : util_report("agent status", st);
    } else {
        fprintf(stderr, "signum-util agent: unknown action '%s'\n", argv[1]);
        return EXIT_USAGE;
    }
    sg_client_free(c);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    sg_agent_status s;
    sg_client *c;
    sg_status st;
    (void)argv;
    if (argc > 1) {
        printf("Usage: signum-util status\nShows the agent, the server and the login.\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE;
    }
    c = util_client(1);
    st = sg_status_get(c, &s);
    if (st == SG_OK)
        print_status(&s);
    sg_client_free(c);
    return st == SG_OK ? EXIT_OK : util_report("status", st);
}

/* ---- login, logout ------------------------------------------------------------------------ */

static int read_secret(const char *file, char *out, size_t len)
{
    FILE *f = file ? fopen(file, "r" UTIL_FOPEN_CLOEXEC) : NULL;
    int ok;
    size_t n;
    if (file && !f) {
        fprintf(stderr, "signum-util: cannot read %s: %s\n", file, strerror(errno));
        return -1;
    }
    if (f) {
        ok = fgets(out, (int)len, f) != NULL;
        fclose(f);
    } else {
        ok = util_read_secret_stdin(out, len);
    }
    n = ok ? strcspn(out, "\r\n") : 0;
    out[n] = '\0';
    return n ? 0 : -1;
}

static int cmd_login(int argc, char **argv)
{
    static const struct option opts[] = {{"api-key-file", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL;
    char secret[300];
    sg_agent_status s;
    sg_client *c;
    sg_status st;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'f')
            file = optarg;
        else {
            printf("Usage: signum-util login [--api-key-file FILE]\n"
                   "Hands an API key to the agent (read from FILE, or from standard input,\n"
                   "without echo on a terminal). The key is kept in the agent's memory only.\n");
            return o == 'h' ? EXIT_OK : EXIT_USAGE;
        }
    }
    if (read_secret(file, secret, sizeof(secret)) != 0) {
        fprintf(stderr, "signum-util login: no API key given\n");
        return EXIT_USAGE;
    }
    c = util_client(1);
    st = sg_login(c, secret);
    memset(secret, 0, sizeof(secret));
    if (st == SG_OK && sg_status_get(c, &s) == SG_OK)
        printf("logged in as %s at %s\n", s.identity, s.server);
    sg_client_free(c);
    return st == SG_OK ? EXIT_OK : util_report("login", st);
}

static int cmd_logout(int argc, char **argv)
{
    sg_client *c;
    sg_status st;
    (void)argv;
    if (argc > 1) {
        printf("Usage: signum-util logout\nForgets the API key, the token and the cache.\n");
        return !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE;
    }
    c = util_client(0);
    st = sg_logout(c);
    sg_client_free(c);
    if (st == SG_ERR_AGENT_UNAVAILABLE) {
        printf("agent not running; nothing to forget\n");
        return EXIT_OK;
    }
    return st == SG_OK ? (printf("logged out\n"), EXIT_OK) : util_report("logout", st);
}

/* ---- keys, cert --------------------------------------------------------------------------- */

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int cmd_keys(int argc, char **argv)
{
    int json = argc == 2 && !strcmp(argv[1], "--json");
    sg_key_list *list = NULL;
    sg_client *c;
    sg_status st;
    if (argc > 1 && !json) {
        printf("Usage: signum-util keys [--json]\nLists the keys you may sign with.\n");
        return !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE;
    }
    c = util_client(1);
    st = sg_list_keys(c, &list);
    sg_client_free(c);
    if (st != SG_OK)
        return util_report("keys", st);
    if (json) {
        printf("[");
        for (size_t i = 0; i < list->count; i++) {
            char id[129];
            for (size_t j = 0; j < list->keys[i].id_len; j++)
                sprintf(id + 2 * j, "%02x", list->keys[i].id[j]);
            id[2 * list->keys[i].id_len] = '\0';
            printf("%s{\"name\":", i ? "," : "");
            print_json_string(list->keys[i].name);
            printf(",\"type\":");
            print_json_string(list->keys[i].type);
            printf(",\"id\":\"%s\",\"certificate\":%s,\"chain_length\":%zu}", id,
                   list->keys[i].cert ? "true" : "false", list->keys[i].chain_count);
        }
        printf("]\n");
    } else {
        printf("%-32s %-8s %-11s %s\n", "NAME", "TYPE", "CERTIFICATE", "CHAIN");
        for (size_t i = 0; i < list->count; i++)
            printf("%-32s %-8s %-11s %zu\n", list->keys[i].name, list->keys[i].type,
                   list->keys[i].cert ? "yes" : "none", list->keys[i].chain_count);
    }
    sg_key_list_free(list);
    return EXIT_OK;
}

static const sg_key *find_key(const sg_key_list *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++)
        if (!strcmp(list->keys[i].name, name))
            return &list->keys[i];
    return NULL;
}

static void write_pem(FILE *out, const uint8_t *der, size_t len)
{
    char *b64 = sgc_b64_encode(der, len);
    size_t n = b64 ? strlen(b64) : 0;
    fprintf(out, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0; i < n; i += 64)
        fprintf(out, "%.64s\n", b64 + i);
    fprintf(out, "-----END CERTIFICATE-----\n");
    free(b64);
}

static int cmd_cert(int argc, char **argv)
{
    static const struct option opts[] = {{"der", no_argument, NULL, 'd'},
                                         {"no-chain", no_argument, NULL, 'n'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int der = 0, chain = 1, o, rc = EXIT_OK;
    const char *out_path = NULL;
    sg_key_list *list = NULL;
    const sg_key *k;
    sg_client *c;
    sg_status st;
    FILE *out = stdout;
    optind = 1;
    while ((o = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (o) {
        case 'd': der = 1; break;
        case 'n': chain = 0; break;
        case 'o': out_path = optarg; break;
        default:
            printf("Usage: signum-util cert KEY [--der] [--no-chain] [-o FILE]\n"
                   "Writes the key's certificate and its chain as PEM (or the leaf as DER).\n");
            return o == 'h' ? EXIT_OK : EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "signum-util cert: name one key\n");
        return EXIT_USAGE;
    }
    c = util_client(1);
    st = sg_list_keys(c, &list);
    sg_client_free(c);
    if (st != SG_OK)
        return util_report("cert", st);
    k = find_key(list, argv[optind]);
    if (!k || !k->cert) {
        fprintf(stderr, "signum-util cert: %s\n",
                k ? "the key has no certificate yet" : "no such key among yours");
        sg_key_list_free(list);
        return EXIT_DENIED;
    }
    if (out_path && !(out = fopen(out_path, "wb" UTIL_FOPEN_CLOEXEC))) {
        fprintf(stderr, "signum-util cert: cannot write %s: %s\n", out_path, strerror(errno));
        sg_key_list_free(list);
        return EXIT_FAILED;
    }
    if (der) {
        if (out == stdout)
            util_binary_stdout();
        fwrite(k->cert, 1, k->cert_len, out);
    } else {
        write_pem(out, k->cert, k->cert_len);
        for (size_t i = 0; chain && i < k->chain_count; i++)
            write_pem(out, k->chain[i], k->chain_len[i]);
    }
    if (out != stdout && fclose(out) != 0)
        rc = EXIT_FAILED;
    sg_key_list_free(list);
    return rc;
}

/* ---- sign --------------------------------------------------------------------------------- */

static int parse_hash(const char *s, sg_hash *h)
{
    int v = sgc_hash_parse(s); /* the wire's names (signum/common/names.h) */
    if (v < 0)
        return -1;
    *h = (sg_hash)v;
    return 0;
}

static int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"hash", required_argument, NULL, 'H'},
                                         {"mechanism", required_argument, NULL, 'm'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"digest", required_argument, NULL, 'd'},
                                         {"salt-length", required_argument, NULL, 's'},
                                         {"progress", no_argument, NULL, 'p'},
                                         {"async", no_argument, NULL, 'a'},
                                         {"job", required_argument, NULL, 'j'},
                                         {"provenance", required_argument, NULL, 'P'},
                                         {"sbom-digest", required_argument, NULL, 'S'},
                                         {"id-token-file", required_argument, NULL, 'T'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *key = NULL, *mech_name = NULL, *format = "raw", *job_id = NULL;
    const char *prov_file = NULL, *sbom = NULL, *token_file = NULL;
    char *prov = NULL;
    char **digest_args = calloc((size_t)argc, sizeof(char *));
    size_t ndigest_args = 0, total, done = 0;
    sg_hash hash = SG_HASH_SHA256;
    sg_mech mech = SG_MECH_RSA_PKCS1;
    long salt = -1;
    int o, rc = EXIT_OK, progress = isatty(2), async = 0;
    sg_key_list *list = NULL;
    const sg_key *k;
    sg_client *c = NULL;
    util_sign_job_args job;
    sg_status st;

    if (!digest_args)
        return EXIT_FAILED;
    optind = 1;
    while ((o = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
        switch (o) {
        case 'k': key = optarg; break;
        case 'H':
            if (parse_hash(optarg, &hash) != 0) {
                fprintf(stderr, "signum-util sign: --hash is sha256, sha384 or sha512\n");
                rc = EXIT_USAGE;
                goto out;
            }
            break;
        case 'm': mech_name = optarg; break;
        case 'f': format = optarg; break;
        case 'd': digest_args[ndigest_args++] = optarg; break;
        case 's': salt = strtol(optarg, NULL, 10); break;
        case 'p': progress = 1; break;
        case 'a': async = 1; break;
        case 'j': job_id = optarg; break;
        case 'P': prov_file = optarg; break;
        case 'S': sbom = optarg; break;
        case 'T': token_file = optarg; break;
        default:
            printf("Usage: signum-util sign --key KEY [--hash sha256|sha384|sha512]\n"
                   "         [--mechanism rsa-pkcs1|rsa-pss|ecdsa] [--format raw|der]\n"
                   "         [--salt-length N] [--progress] [--async]\n"
                   "         (--digest HEX|BASE64 ... | FILE ...)\n"
                   "       signum-util sign --job ID [--format raw|der] (--digest ... | FILE ...)\n"
                   "Signs digests (printing base64 signatures, one per line) or files (each\n"
                   "FILE is hashed here and FILE.sig written). Only digests leave this machine.\n"
                   "ECDSA signatures are raw r||s unless --format der.\n"
                   "--async: one signing job at the server for a large batch (up to %d\n"
                   "inputs): progress on standard error (a bar on a terminal, else a line\n"
                   "'signed N of M' at most every second), then the signatures are written as\n"
                   "above. Ctrl-C leaves the job on the server and prints its id; --job ID\n"
                   "with the same inputs in the same order waits for it and writes them.\n"
                   "--provenance ENVELOPE: build provenance for the one FILE signed, a DSSE\n"
                   "envelope of an in-toto statement with a SLSA provenance predicate (at most\n"
                   "256 KiB); FILE's sha256 is sent as the artifact digest its subject must\n"
                   "name. --sbom-digest sha256:HEX records the SBOM's digest with the signature.\n"
                   "--id-token-file F: the CI job's OIDC ID token, for rules that accept the\n"
                   "caller's CI identity instead of a builder's signature (docs/provenance.md).\n",
                   UTIL_JOB_MAX_DIGESTS);
            rc = o == 'h' ? EXIT_OK : EXIT_USAGE;
            goto out;
        }
    }
    total = ndigest_args + (size_t)(argc - optind);
    if ((!key && !job_id) || (job_id && (key || async)) || total == 0 ||
        (ndigest_args && optind < argc) || (strcmp(format, "raw") && strcmp(format, "der"))) {
        fprintf(stderr, "signum-util sign: give --key (or --job) and either --digest values or "
                        "files (--help for usage)\n");
        rc = EXIT_USAGE;
        goto out;
    }
    if ((prov_file || token_file) &&
        (ndigest_args || total != 1 || async || job_id || !prov_file)) {
        fprintf(stderr, "signum-util sign: --provenance goes with exactly one FILE (not --digest, "
                        "--async or --job); --id-token-file needs --provenance\n");
        rc = EXIT_USAGE;
        goto out;
    }
    if (sbom && (async || job_id)) {
        fprintf(stderr, "signum-util sign: --sbom-digest does not go with --async or --job\n");
        rc = EXIT_USAGE;
        goto out;
    }
    if ((prov_file || sbom) &&
        !(prov =
              util_provenance_json(prov_file, prov_file ? argv[optind] : NULL, sbom, token_file))) {
        rc = EXIT_USAGE;
        goto out;
    }
    c = util_client(1);
    /* A signing job: the inputs as given; its key's mechanism is known below. */
    memset(&job, 0, sizeof(job));
    job.key = key;
    job.job_id = job_id;
    job.hash = hash;
    job.salt = salt;
    job.der = !strcmp(format, "der");
    job.items = ndigest_args ? digest_args : argv + optind;
    job.count = total;
    job.digests = ndigest_args > 0;
    if (job_id) {
        rc = util_sign_job(c, &job);
        goto out;
    }
    st = sg_list_keys(c, &list);
    if (st != SG_OK) {
        rc = util_report("sign", st);
        goto out;
    }
    k = find_key(list, key);
    if (!k) {
        fprintf(stderr, "signum-util sign: you have no key named %s\n", key);
        fprintf(stderr, "  next: 'signum-util keys' lists the keys you may use\n");
        rc = EXIT_DENIED;
        goto out;
    }
    if (mech_name) {
        int m = sgc_mech_parse(mech_name); /* the wire's names (signum/common/names.h) */
        if (m < 0) {
            fprintf(stderr, "signum-util sign: unknown mechanism %s\n", mech_name);
            rc = EXIT_USAGE;
            goto out;
        }
        mech = (sg_mech)m;
    } else {
        mech = strncmp(k->type, "ec-", 3) == 0 ? SG_MECH_ECDSA : SG_MECH_RSA_PKCS1;
    }
    if (async) {
        job.mech = mech;
        rc = util_sign_job(c, &job);
        goto out;
    }

    /* Batches of up to 64 digests per request. */
    while (done < total && rc == EXIT_OK) {
        uint8_t digests[64][SG_MAX_DIGEST], sigbuf[64][1024];
        const uint8_t *dptr[64];
        uint8_t *sptr[64];
        size_t slen[64], n = total - done > 64 ? 64 : total - done;
        sg_sign_request req;

        for (size_t i = 0; i < n; i++) {
            size_t idx = done + i;
            rc = util_sign_digest(ndigest_args ? digest_args[idx] : argv[optind + idx],
                                  ndigest_args > 0, hash, digests[i]);
            if (rc != EXIT_OK)
                goto out;
            dptr[i] = digests[i];
            sptr[i] = sigbuf[i];
            slen[i] = sizeof(sigbuf[i]);
        }
        memset(&req, 0, sizeof(req));
        req.key = key;
        req.mech = mech;
        req.hash = hash;
        req.salt_default = salt < 0;
        req.salt_len = salt < 0 ? 0 : (unsigned)salt;
        req.count = n;
        req.digests = dptr;
        req.provenance = prov;
        st = sg_sign(c, &req, sptr, slen);
        if (st != SG_OK) {
            rc = util_report("sign", st);
            goto out;
        }
        for (size_t i = 0; i < n && rc == EXIT_OK; i++)
            rc = util_sign_output(ndigest_args ? NULL : argv[optind + done + i], mech,
                                  !strcmp(format, "der"), sigbuf[i], slen[i]);
        if (rc != EXIT_OK)
            goto out;
        done += n;
        if (progress && total > 1)
            fprintf(stderr, "\rsigned %zu/%zu", done, total);
    }
    if (progress && total > 1)
        fputc('\n', stderr);
out:
    sg_key_list_free(list);
    sg_client_free(c);
    free(digest_args);
    free(prov);
    return rc;
}

/* ---- doctor ------------------------------------------------------------------------------- */

static int cmd_doctor(int argc, char **argv)
{
    ag_config cfg;
    ag_error err;
    sg_agent_status s;
    sg_key_list *list = NULL;
    char detail[1200];
    int failures = 0;
    sg_client *c;
    sg_status st;
    if (argc > 1) {
        printf("Usage: signum-util doctor\nChecks configuration, agent, DNS, TCP, TLS, clock and "
               "login, with a verdict for each.\n");
        return !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE;
    }
    if (ag_config_load(&cfg, &err) != SG_OK) {
        util_verdict("config", 0, err.message);
        return EXIT_FAILED;
    }
    snprintf(detail, sizeof(detail), "%u server(s); from %s", cfg.server_count,
             cfg.sources[0] ? cfg.sources : "the environment");
    failures += util_verdict("config", cfg.server_count > 0,
                             cfg.server_count ? detail : "no server: set SIGNUM_SERVER");

    c = util_client(1);
    st = sg_status_get(c, &s);
    snprintf(detail, sizeof(detail), "%s", st == SG_OK ? "running" : sg_last_error());
    if (st == SG_OK)
        snprintf(detail, sizeof(detail), "pid %u, version %s", s.pid, s.version);
    failures += util_verdict("agent", st == SG_OK, detail);

    util_doctor_begin();
    for (unsigned i = 0; i < cfg.server_count; i++) {
        printf("-- %s\n", cfg.servers[i]);
        failures += util_doctor_server(&cfg, i);
    }
    util_doctor_end();

    if (st == SG_OK) {
        sg_status ks = sg_list_keys(c, &list);
        snprintf(detail, sizeof(detail), "%s", sg_last_error());
        if (ks == SG_OK)
            snprintf(detail, sizeof(detail), "authenticated; %zu key(s) usable", list->count);
        failures += util_verdict("auth", ks == SG_OK, detail);
        sg_key_list_free(list);
    }
    sg_client_free(c);
    memset(&cfg, 0, sizeof(cfg));
    printf("%s\n", failures ? "verdict: problems found (see FAIL lines)" : "verdict: all good");
    return failures ? EXIT_FAILED : EXIT_OK;
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "Usage: signum-util COMMAND [OPTIONS]\n"
                 "\n"
                 "  login [--api-key-file F]   hand an API key to the agent\n"
                 "  logout                     forget credentials, token and cached data\n"
                 "  status                     agent, server and login state\n"
                 "  keys [--json]              keys you may sign with\n"
                 "  cert KEY [--der] [-o F]    a key's certificate and chain\n"
                 "  sign --key KEY ...         sign digests or files (see 'sign --help')\n"
                 "  doctor                     check config, agent, DNS, TCP, TLS, clock, login\n"
                 "  enroll service-account|machine --token T   key pair for CI, or mTLS machine\n"
                 "  agent start|stop|status    control the per-user agent\n"
                 "  certstore --add|--remove|--list [KEY]   Windows certificate store entries\n"
                 "  providers register|unregister|status   the Windows KSP and CSP\n"
                 "  keychain --add|--remove KEY, --list, --sync   the macOS Keychain identities\n"
                 "  admin policy|group|key-group ...   rules and groups (admins; 'admin --help')\n"
                 "  approvals list|approve ID|reject ID --reason TEXT\n"
                 "                                        sign requests awaiting your approval\n"
                 "\n"
                 "Exit codes: 0 ok, 1 failed, 2 usage, 3 agent unavailable, 4 not logged in or\n"
                 "credentials refused, 5 denied (no grant, no such key, not an admin or approver,\n"
                 "a call the agent does not make).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("signum-util " SIGNUM_VERSION "\n");
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "agent"))
        return cmd_agent(argc - 1, argv + 1);
    if (!strcmp(argv[1], "status"))
        return cmd_status(argc - 1, argv + 1);
    if (!strcmp(argv[1], "login"))
        return cmd_login(argc - 1, argv + 1);
    if (!strcmp(argv[1], "logout"))
        return cmd_logout(argc - 1, argv + 1);
    if (!strcmp(argv[1], "keys"))
        return cmd_keys(argc - 1, argv + 1);
    if (!strcmp(argv[1], "cert"))
        return cmd_cert(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sign"))
        return cmd_sign(argc - 1, argv + 1);
    if (!strcmp(argv[1], "doctor"))
        return cmd_doctor(argc - 1, argv + 1);
    if (!strcmp(argv[1], "enroll"))
        return util_cmd_enroll(argc - 1, argv + 1);
    if (!strcmp(argv[1], "admin"))
        return util_cmd_admin(argc - 1, argv + 1);
    if (!strcmp(argv[1], "approvals"))
        return util_cmd_approvals(argc - 1, argv + 1);
    if (!strcmp(argv[1], "certstore"))
        return util_cmd_certstore(argc - 1, argv + 1);
    if (!strcmp(argv[1], "providers"))
        return util_cmd_providers(argc - 1, argv + 1);
    if (!strcmp(argv[1], "keychain"))
        return util_cmd_keychain(argc - 1, argv + 1);
    fprintf(stderr, "signum-util: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
