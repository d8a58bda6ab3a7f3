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

/* What `sign` was asked: the options, and the inputs (--digest values or files). */
typedef struct {
    const char *key, *mech_name, *format, *job_id, *prov_file, *sbom, *token_file;
    char **digest_args; /* the --digest values (argc slots) */
    size_t ndigest_args;
    char **items; /* the inputs: digest_args or the files */
    size_t total;
    sg_hash hash;
    long salt;
    int progress, async, der;
} sign_opts;

static void sign_usage(void)
{
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
}

/* getopt over sign's options into o: -1 to go on, else the exit code. */
static int sign_read_options(int argc, char **argv, sign_opts *o)
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
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
        switch (c) {
        case 'k': o->key = optarg; break;
        case 'H':
            if (parse_hash(optarg, &o->hash) != 0) {
                fprintf(stderr, "signum-util sign: --hash is sha256, sha384 or sha512\n");
                return EXIT_USAGE;
            }
            break;
        case 'm': o->mech_name = optarg; break;
        case 'f': o->format = optarg; break;
        case 'd': o->digest_args[o->ndigest_args++] = optarg; break;
        case 's': o->salt = strtol(optarg, NULL, 10); break;
        case 'p': o->progress = 1; break;
        case 'a': o->async = 1; break;
        case 'j': o->job_id = optarg; break;
        case 'P': o->prov_file = optarg; break;
        case 'S': o->sbom = optarg; break;
        case 'T': o->token_file = optarg; break;
        default: sign_usage(); return c == 'h' ? EXIT_OK : EXIT_USAGE;
        }
    }
    return -1;
}

/* The options' combinations, after sign_read_options: -1 to go on, else EXIT_USAGE. */
static int sign_check_options(int argc, char **argv, sign_opts *o)
{
    o->total = o->ndigest_args + (size_t)(argc - optind);
    o->items = o->ndigest_args ? o->digest_args : argv + optind;
    if ((!o->key && !o->job_id) || (o->job_id && (o->key || o->async)) || o->total == 0 ||
        (o->ndigest_args && optind < argc) ||
        (strcmp(o->format, "raw") && strcmp(o->format, "der"))) {
        fprintf(stderr, "signum-util sign: give --key (or --job) and either --digest values or "
                        "files (--help for usage)\n");
        return EXIT_USAGE;
    }
    o->der = !strcmp(o->format, "der");
    if ((o->prov_file || o->token_file) &&
        (o->ndigest_args || o->total != 1 || o->async || o->job_id || !o->prov_file)) {
        fprintf(stderr, "signum-util sign: --provenance goes with exactly one FILE (not --digest, "
                        "--async or --job); --id-token-file needs --provenance\n");
        return EXIT_USAGE;
    }
    if (o->sbom && (o->async || o->job_id)) {
        fprintf(stderr, "signum-util sign: --sbom-digest does not go with --async or --job\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* The mechanism: --mechanism, else the key's type's usual one. -1 to go on, else EXIT_USAGE. */
static int sign_pick_mech(const sign_opts *o, const sg_key *k, sg_mech *mech)
{
    int m;
    if (!o->mech_name) {
        *mech = strncmp(k->type, "ec-", 3) == 0 ? SG_MECH_ECDSA : SG_MECH_RSA_PKCS1;
        return -1;
    }
    m = sgc_mech_parse(o->mech_name); /* the wire's names (signum/common/names.h) */
    if (m < 0) {
        fprintf(stderr, "signum-util sign: unknown mechanism %s\n", o->mech_name);
        return EXIT_USAGE;
    }
    *mech = (sg_mech)m;
    return -1;
}

/* Signs the inputs in requests of up to 64 digests and writes each signature. */
static int sign_in_batches(sg_client *c, const sign_opts *o, sg_mech mech, const char *prov)
{
    size_t done = 0;
    int rc = EXIT_OK;
    while (done < o->total && rc == EXIT_OK) {
        uint8_t digests[64][SG_MAX_DIGEST], sigbuf[64][1024];
        const uint8_t *dptr[64];
        uint8_t *sptr[64];
        size_t slen[64], n = o->total - done > 64 ? 64 : o->total - done;
        sg_sign_request req;
        sg_status st;

        for (size_t i = 0; i < n; i++) {
            rc = util_sign_digest(o->items[done + i], o->ndigest_args > 0, o->hash, digests[i]);
            if (rc != EXIT_OK)
                return rc;
            dptr[i] = digests[i];
            sptr[i] = sigbuf[i];
            slen[i] = sizeof(sigbuf[i]);
        }
        memset(&req, 0, sizeof(req));
        req.key = o->key;
        req.mech = mech;
        req.hash = o->hash;
        req.salt_default = o->salt < 0;
        req.salt_len = o->salt < 0 ? 0 : (unsigned)o->salt;
        req.count = n;
        req.digests = dptr;
        req.provenance = prov;
        st = sg_sign(c, &req, sptr, slen);
        if (st != SG_OK)
            return util_report("sign", st);
        for (size_t i = 0; i < n && rc == EXIT_OK; i++)
            rc = util_sign_output(o->ndigest_args ? NULL : o->items[done + i], mech, o->der,
                                  sigbuf[i], slen[i]);
        if (rc != EXIT_OK)
            return rc;
        done += n;
        if (o->progress && o->total > 1)
            fprintf(stderr, "\rsigned %zu/%zu", done, o->total);
    }
    if (o->progress && o->total > 1)
        fputc('\n', stderr);
    return rc;
}

/* A signing job (--async, --job): the inputs as given; the key's mechanism is set later. */
static void sign_job_args(const sign_opts *o, util_sign_job_args *job)
{
    memset(job, 0, sizeof(*job));
    job->key = o->key;
    job->job_id = o->job_id;
    job->hash = o->hash;
    job->salt = o->salt;
    job->der = o->der;
    job->items = o->items;
    job->count = o->total;
    job->digests = o->ndigest_args > 0;
}

/* sign: the options, then a job (--job, --async) or requests of up to 64 digests. */
static int cmd_sign(int argc, char **argv)
{
    sign_opts o;
    char *prov = NULL;
    int rc;
    sg_key_list *list = NULL;
    const sg_key *k;
    sg_client *c = NULL;
    util_sign_job_args job;
    sg_mech mech = SG_MECH_RSA_PKCS1;
    sg_status st;

    memset(&o, 0, sizeof(o));
    o.format = "raw";
    o.hash = SG_HASH_SHA256;
    o.salt = -1;
    o.progress = isatty(2);
    if (!(o.digest_args = calloc((size_t)argc, sizeof(char *))))
        return EXIT_FAILED;
    if ((rc = sign_read_options(argc, argv, &o)) >= 0 ||
        (rc = sign_check_options(argc, argv, &o)) >= 0)
        goto out;
    rc = EXIT_OK;
    if ((o.prov_file || o.sbom) &&
        !(prov = util_provenance_json(o.prov_file, o.prov_file ? o.items[0] : NULL, o.sbom,
                                      o.token_file))) {
        rc = EXIT_USAGE;
        goto out;
    }
    c = util_client(1);
    sign_job_args(&o, &job);
    if (o.job_id) {
        rc = util_sign_job(c, &job);
        goto out;
    }
    st = sg_list_keys(c, &list);
    if (st != SG_OK) {
        rc = util_report("sign", st);
        goto out;
    }
    if (!(k = find_key(list, o.key))) {
        fprintf(stderr, "signum-util sign: you have no key named %s\n", o.key);
        fprintf(stderr, "  next: 'signum-util keys' lists the keys you may use\n");
        rc = EXIT_DENIED;
        goto out;
    }
    if ((rc = sign_pick_mech(&o, k, &mech)) >= 0)
        goto out;
    if (o.async) {
        job.mech = mech;
        rc = util_sign_job(c, &job);
    } else {
        rc = sign_in_batches(c, &o, mech, prov);
    }
out:
    sg_key_list_free(list);
    sg_client_free(c);
    free(o.digest_args);
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
