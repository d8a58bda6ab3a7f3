/* `signum-server init`: builds a complete state directory in a temporary sibling and renames
 * it into place at the end, so a failure leaves nothing behind and a second run refuses. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "auth/credentials.h"
#include "ca/ca.h"
#include "cli.h"
#include "common/b64.h"
#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "store/db.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: signum-server init --state DIR [OPTIONS]\n"
            "\n"
            "Creates DIR with its own SoftHSMv2 token, SQLite database, CA (key in the HSM),\n"
            "TLS certificate for localhost/127.0.0.1 and the first admin user. The admin API\n"
            "key is printed once; only its hash is stored. Refuses if DIR exists and is not\n"
            "empty, and changes nothing then.\n"
            "\n"
            "Options:\n"
            "  --port N              port written to the config (default 8443)\n"
            "  --ca-key-type TYPE    rsa2048|rsa3072|rsa4096|ec-p256|ec-p384 (default rsa3072)\n"
            "  --ca-name NAME        CA common name (default \"Signum Root CA\")\n"
            "  --admin NAME          first admin user (default admin)\n"
            "  --admin-key-file F    also write the admin API key to F (mode 0600)\n"
            "  --hsm-module PATH     PKCS#11 module (default SoftHSMv2)\n"
            "  --database URL        an empty PostgreSQL database instead of SQLite, as\n"
            "                        postgresql://USER@HOST/DB (a password belongs in a\n"
            "                        passfile: ?passfile=PATH, never in the URL)\n"
            "  --hsm-token LABEL     token label (default signum)\n"
            "  --hsm-pin-file F      use the existing, initialised token LABEL (a network HSM's\n"
            "                        partition, p11-kit-client.so) with the user PIN in F (mode\n"
            "                        0600) instead of initialising a new SoftHSMv2 token\n");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int dir_is_empty_or_absent(const char *path, int *exists)
{
    DIR *d = opendir(path);
    struct dirent *e;
    *exists = d != NULL;
    if (!d)
        return errno == ENOENT;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            closedir(d);
            return 0;
        }
    closedir(d);
    return 1;
}

static srv_status make_dir(const char *base, const char *sub, srv_error *err)
{
    char path[PATH_MAX];
    srv_status st = srv_path_join(path, sizeof(path), base, sub, err);
    if (st == SRV_OK && mkdir(path, 0700) != 0)
        st = srv_fail(err, SRV_E_IO, "cannot create %s: %s", path, strerror(errno));
    return st;
}

static srv_status write_in(const char *dir, const char *name, const char *text, unsigned mode,
                           srv_error *err)
{
    char path[PATH_MAX];
    srv_status st = srv_path_join(path, sizeof(path), dir, name, err);
    return st == SRV_OK ? srv_write_file(path, text, strlen(text), mode, err) : st;
}

static srv_status random_pin(char out[33], srv_error *err)
{
    uint8_t raw[16];
    srv_status st = srv_random(raw, sizeof(raw), err);
    if (st == SRV_OK)
        srv_hex_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return st;
}

static srv_status softhsm_conf(const char *dir, const char *tokens, srv_error *err)
{
    char text[PATH_MAX + 128];
    snprintf(text, sizeof(text),
             "# SoftHSMv2 configuration for this Signum state directory.\n"
             "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
             tokens);
    return write_in(dir, "hsm/softhsm2.conf", text, 0600, err);
}

/* A TLS key for the HTTPS listener: an ordinary file (0600), like any web server's. */
static srv_status make_tls_key(const char *path, uint8_t **spki, size_t *spki_len, srv_error *err)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = NULL;
    BUF_MEM *mem = NULL;
    unsigned char *der = NULL;
    int len;
    srv_status st = SRV_OK;

    if (!pkey)
        return srv_fail(err, SRV_E_INTERNAL, "cannot generate the TLS key");
    bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot encode the TLS key");
        goto out;
    }
    BIO_get_mem_ptr(bio, &mem);
    st = srv_write_file(path, mem->data, mem->length, 0600, err);
    if (st != SRV_OK)
        goto out;
    len = i2d_PUBKEY(pkey, &der);
    if (len <= 0 || !(*spki = malloc((size_t)len))) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*spki, der, (size_t)len);
    *spki_len = (size_t)len;
out:
    OPENSSL_free(der);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return st;
}

static srv_status append_pem(char **acc, X509 *cert, srv_error *err)
{
    char *pem = NULL, *joined;
    srv_status st = srv_cert_to_pem(cert, &pem, err);
    if (st != SRV_OK)
        return st;
    if (asprintf(&joined, "%s%s", *acc ? *acc : "", pem) < 0) {
        free(pem);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    free(pem);
    free(*acc);
    *acc = joined;
    return SRV_OK;
}

typedef struct {
    const char *final_dir;
    const char *tmp;
    const char *ca_name;
    const char *admin;
    srv_key_type ca_type;
    srv_config cfg; /* relative paths, as written */
    char admin_key[SRV_APIKEY_TEXT_MAX + 1];
    char *pin; /* --hsm-pin-file: the user PIN of an existing token; NULL: a new SoftHSMv2 one */
} init_plan;

/* A shared (PostgreSQL) database is initialised once: further nodes copy the state
 * directory of the first instead. */
static srv_status check_empty(srv_db *db, srv_error *err)
{
    int64_t seq = 0;
    char hash[65];
    srv_status st = srv_db_audit_head(db, &seq, hash, err);
    if (st == SRV_OK && seq > 0)
        st = srv_fail(err, SRV_E_EXISTS,
                      "the database already holds a Signum installation (%lld audit records); "
                      "give further nodes a copy of the first node's state directory",
                      (long long)seq);
    return st;
}

static void free_pin(init_plan *p)
{
    if (p->pin) {
        OPENSSL_cleanse(p->pin, strlen(p->pin));
        free(p->pin);
        p->pin = NULL;
    }
}

/* The state directory's folders, and the token: a new SoftHSMv2 one with PINs only this
 * directory knows (user_pin set), or an existing one whose PIN is kept (user_pin untouched). */
static srv_status prepare_token(init_plan *p, char user_pin[33], srv_error *err)
{
    char path[PATH_MAX], so_pin[33], tokens[PATH_MAX];
    srv_status st;

    if ((st = make_dir(p->tmp, "hsm", err)) != SRV_OK ||
        (!p->pin && (st = make_dir(p->tmp, "hsm/tokens", err)) != SRV_OK) ||
        (st = make_dir(p->tmp, "ca", err)) != SRV_OK ||
        (st = make_dir(p->tmp, "tls", err)) != SRV_OK ||
        (st = make_dir(p->tmp, "audit", err)) != SRV_OK)
        return st;
    if (p->pin) {
        /* An existing token, initialised by the HSM's own tools: only its PIN is kept here, no
         * SoftHSMv2 configuration is written and nothing in the token is reset. */
        return write_in(p->tmp, p->cfg.hsm_pin_file, p->pin, 0600, err);
    }
    if ((st = random_pin(so_pin, err)) != SRV_OK || (st = random_pin(user_pin, err)) != SRV_OK ||
        (st = write_in(p->tmp, "hsm/so.pin", so_pin, 0600, err)) != SRV_OK ||
        (st = write_in(p->tmp, p->cfg.hsm_pin_file, user_pin, 0600, err)) != SRV_OK)
        goto out;
    snprintf(tokens, sizeof(tokens), "%s/hsm/tokens", p->tmp);
    if ((st = softhsm_conf(p->tmp, tokens, err)) != SRV_OK)
        goto out;
    snprintf(path, sizeof(path), "%s/hsm/softhsm2.conf", p->tmp);
    srv_export_softhsm_conf(path);
    st = srv_hsm_init_token(p->cfg.hsm_module, p->cfg.hsm_token, so_pin, user_pin, err);
out:
    OPENSSL_cleanse(so_pin, sizeof(so_pin));
    return st;
}

/* The HSM session and the database (in a transaction, checked empty). */
static srv_status open_hsm_and_db(init_plan *p, const char *user_pin, srv_hsm **hsm, srv_db **db,
                                  srv_error *err)
{
    char path[PATH_MAX];
    srv_hsm_config hc;
    srv_status st;

    memset(&hc, 0, sizeof(hc));
    hc.module_path = p->cfg.hsm_module;
    hc.token_label = p->cfg.hsm_token;
    hc.pin = p->pin ? p->pin : user_pin;
    hc.pool_size = 1;
    if ((st = srv_hsm_open(&hc, hsm, err)) != SRV_OK)
        return st;
    if (srv_is_postgresql_url(p->cfg.database))
        snprintf(path, sizeof(path), "%s", p->cfg.database);
    else if ((st = srv_path_join(path, sizeof(path), p->tmp, p->cfg.database, err)) != SRV_OK)
        return st;
    if ((st = srv_db_open(path, 1, db, err)) != SRV_OK ||
        (st = srv_db_tx(*db, SRV_TX_BEGIN_IMMEDIATE, err)) != SRV_OK)
        return st;
    return check_empty(*db, err);
}

/* The CA: key generated in the HSM (ca_key, hk point into it), certificate self-signed there,
 * stored and written as PEM. */
static srv_status make_ca(init_plan *p, srv_hsm *hsm, srv_db *db, srv_key *ca_key, srv_hsm_key *hk,
                          X509 **ca_cert, srv_error *err)
{
    srv_cert_request req;
    uint8_t *der = NULL;
    size_t der_len = 0;
    char *ca_pem = NULL;
    srv_status st;

    snprintf(ca_key->name, sizeof(ca_key->name), "%s", p->cfg.ca_key_name);
    ca_key->type = p->ca_type;
    ca_key->is_ca = 1;
    if ((st = srv_random(ca_key->ckaid, SRV_CKAID_LEN, err)) != SRV_OK ||
        (st = srv_hsm_generate_key(hsm, ca_key->type, ca_key->ckaid, SRV_CKAID_LEN, ca_key->name,
                                   &ca_key->spki, &ca_key->spki_len, err)) != SRV_OK ||
        (st = srv_db_key_insert(db, ca_key, err)) != SRV_OK)
        return st;
    hk->type = ca_key->type;
    hk->ckaid = ca_key->ckaid;
    hk->ckaid_len = SRV_CKAID_LEN;
    hk->spki = ca_key->spki;
    hk->spki_len = ca_key->spki_len;
    memset(&req, 0, sizeof(req));
    req.profile = SRV_CERT_CA;
    req.common_name = p->ca_name;
    req.organization = "Signum";
    req.validity_days = 3650;
    if ((st = srv_ca_self_sign(hsm, hk, &req, ca_cert, err)) == SRV_OK &&
        (st = srv_cert_to_der(*ca_cert, &der, &der_len, err)) == SRV_OK &&
        (st = srv_db_cert_set(db, ca_key->id, der, der_len, "", 0, err)) == SRV_OK &&
        (st = append_pem(&ca_pem, *ca_cert, err)) == SRV_OK)
        st = write_in(p->tmp, p->cfg.ca_cert, ca_pem, 0644, err);
    free(der);
    free(ca_pem);
    return st;
}

/* The HTTPS key (a file) and certificate, issued by the CA; the file carries the chain. */
static srv_status make_tls(init_plan *p, srv_hsm *hsm, const srv_hsm_key *hk, X509 *ca_cert,
                           srv_error *err)
{
    const char *dns[] = {"localhost", NULL}, *ips[] = {"127.0.0.1", "::1", NULL};
    char path[PATH_MAX], *tls_pem = NULL;
    uint8_t *tls_spki = NULL;
    size_t tls_spki_len = 0;
    X509 *tls_cert = NULL;
    srv_cert_request req;
    srv_ca ca;
    srv_status st;

    ca.hsm = hsm;
    ca.key = *hk;
    ca.cert = ca_cert;
    if ((st = srv_path_join(path, sizeof(path), p->tmp, p->cfg.tls_key, err)) != SRV_OK)
        return st;
    memset(&req, 0, sizeof(req));
    req.profile = SRV_CERT_TLS_SERVER;
    req.common_name = "localhost";
    req.organization = "Signum";
    req.validity_days = 825;
    req.dns_names = dns;
    req.ip_addresses = ips;
    if ((st = make_tls_key(path, &tls_spki, &tls_spki_len, err)) == SRV_OK &&
        (st = srv_ca_issue(&ca, tls_spki, tls_spki_len, &req, &tls_cert, err)) == SRV_OK &&
        (st = append_pem(&tls_pem, tls_cert, err)) == SRV_OK &&
        (st = append_pem(&tls_pem, ca_cert, err)) == SRV_OK)
        st = write_in(p->tmp, p->cfg.tls_cert, tls_pem, 0644, err);
    free(tls_pem);
    free(tls_spki);
    X509_free(tls_cert);
    return st;
}

/* The first admin (the key is shown once and only its hash is kept), and the audit records
 * of the installation and of that admin. */
static srv_status make_admin(init_plan *p, srv_db *db, srv_audit_head *head, srv_error *err)
{
    char prefix[SRV_APIKEY_PREFIX_LEN + 1];
    uint8_t key_hash[32];
    int64_t admin_id = 0;
    srv_audit_event ev;
    cJSON *detail;
    srv_status st;

    if ((st = srv_db_user_insert(db, p->admin, SRV_ROLE_ADMIN, &admin_id, err)) != SRV_OK ||
        (st = srv_apikey_new(p->admin_key, prefix, key_hash, err)) != SRV_OK ||
        (st = srv_db_apikey_insert(db, admin_id, prefix, key_hash, err)) != SRV_OK)
        return st;
    memset(&ev, 0, sizeof(ev));
    ev.actor = "system";
    ev.outcome = "ok";
    ev.action = "server.init";
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "ca_key_type", srv_key_type_name(p->ca_type));
    cJSON_AddStringToObject(detail, "ca_subject", p->ca_name);
    cJSON_AddStringToObject(detail, "hsm_token", p->cfg.hsm_token);
    ev.detail = detail;
    st = srv_audit_append(db, head, &ev, err);
    cJSON_Delete(detail);
    if (st != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "user", p->admin);
    cJSON_AddStringToObject(detail, "role", "admin");
    cJSON_AddStringToObject(detail, "api_key_prefix", prefix);
    ev.action = "user.create";
    ev.detail = detail;
    st = srv_audit_append(db, head, &ev, err);
    cJSON_Delete(detail);
    return st;
}

/* The audit key, and a first checkpoint over the records so far; commits the transaction. */
static srv_status seal_audit(init_plan *p, srv_hsm *hsm, srv_db *db, srv_audit_head *head,
                             srv_error *err)
{
    char path[PATH_MAX];
    srv_audit_signer audit_signer;
    srv_checkpoint_state cp_last, cp_next;
    srv_status st;

    memset(&audit_signer, 0, sizeof(audit_signer));
    memset(&cp_last, 0, sizeof(cp_last));
    memset(cp_last.payload_hash, '0', 64);
    if ((st = srv_audit_key_create(hsm, db, head, &audit_signer, err)) == SRV_OK &&
        (st = srv_checkpoint_write(db, &audit_signer, head, "init", &cp_last, &cp_next, err)) ==
            SRV_OK &&
        (st = srv_path_join(path, sizeof(path), p->tmp, SRV_AUDIT_KEY_PEM, err)) == SRV_OK &&
        (st = srv_audit_key_write_pem(&audit_signer, path, err)) == SRV_OK &&
        (st = srv_db_tx(db, SRV_TX_COMMIT, err)) == SRV_OK)
        st = srv_checkpoint_mark(&audit_signer, &cp_next, err);
    srv_audit_signer_clear(&audit_signer);
    return st;
}

/* The config, and the SoftHSMv2 config pointing at where the token will live. */
static srv_status write_configs(init_plan *p, srv_error *err)
{
    char tokens[PATH_MAX], *text = NULL;
    srv_status st;

    if ((st = srv_config_render(&p->cfg, &text, err)) == SRV_OK &&
        (st = write_in(p->tmp, SRV_CONFIG_FILE, text, 0600, err)) == SRV_OK && !p->pin) {
        snprintf(tokens, sizeof(tokens), "%s/hsm/tokens", p->final_dir);
        st = softhsm_conf(p->tmp, tokens, err);
    }
    free(text);
    return st;
}

/* Everything in p->tmp, step by step: token, HSM and database, CA, TLS, admin, audit, config. */
static srv_status build_state(init_plan *p, srv_error *err)
{
    char user_pin[33];
    srv_hsm *hsm = NULL;
    srv_db *db = NULL;
    srv_key ca_key;
    srv_hsm_key hk;
    srv_audit_head head;
    X509 *ca_cert = NULL;
    srv_status st;

    memset(&ca_key, 0, sizeof(ca_key));
    memset(user_pin, 0, sizeof(user_pin));
    memset(&head, 0, sizeof(head));
    memset(head.hash, '0', 64);
    if ((st = prepare_token(p, user_pin, err)) == SRV_OK &&
        (st = open_hsm_and_db(p, user_pin, &hsm, &db, err)) == SRV_OK &&
        (st = make_ca(p, hsm, db, &ca_key, &hk, &ca_cert, err)) == SRV_OK &&
        (st = make_tls(p, hsm, &hk, ca_cert, err)) == SRV_OK &&
        (st = make_admin(p, db, &head, err)) == SRV_OK &&
        (st = seal_audit(p, hsm, db, &head, err)) == SRV_OK)
        st = write_configs(p, err);
    OPENSSL_cleanse(user_pin, sizeof(user_pin));
    X509_free(ca_cert);
    srv_key_clear(&ca_key);
    srv_db_close(db);
    srv_hsm_close(hsm);
    return st;
}

/* getopt over init's options into plan, *state and *key_file, and their checks: -1 to go on,
 * else the exit code. */
static int read_init_options(int argc, char **argv, init_plan *plan, const char **state,
                             const char **key_file)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"ca-key-type", required_argument, NULL, 't'},
                                         {"ca-name", required_argument, NULL, 'n'},
                                         {"admin", required_argument, NULL, 'a'},
                                         {"admin-key-file", required_argument, NULL, 'k'},
                                         {"hsm-module", required_argument, NULL, 'm'},
                                         {"database", required_argument, NULL, 'd'},
                                         {"hsm-token", required_argument, NULL, 'T'},
                                         {"hsm-pin-file", required_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    srv_config *cfg = &plan->cfg;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': *state = optarg; break;
        case 'p': cfg->port = atoi(optarg); break;
        case 't':
            if (!srv_key_type_parse(optarg, &plan->ca_type)) {
                fprintf(stderr, "signum-server init: unknown key type '%s'\n", optarg);
                return SRV_EXIT_USAGE;
            }
            break;
        case 'n': plan->ca_name = optarg; break;
        case 'a': plan->admin = optarg; break;
        case 'k': *key_file = optarg; break;
        case 'm': snprintf(cfg->hsm_module, sizeof(cfg->hsm_module), "%s", optarg); break;
        case 'd':
            if (!srv_is_postgresql_url(optarg) || strlen(optarg) >= sizeof(cfg->database)) {
                fprintf(stderr, "signum-server init: --database takes a postgresql:// URL\n");
                return SRV_EXIT_USAGE;
            }
            snprintf(cfg->database, sizeof(cfg->database), "%s", optarg);
            break;
        case 'T':
            if (strlen(optarg) < 1 || strlen(optarg) > 32) {
                fprintf(stderr, "signum-server init: --hsm-token must be 1-32 bytes\n");
                return SRV_EXIT_USAGE;
            }
            snprintf(cfg->hsm_token, sizeof(cfg->hsm_token), "%s", optarg);
            break;
        case 'P':
            free_pin(plan);
            if (srv_read_pin(optarg, &plan->pin) != 0)
                return SRV_EXIT_USAGE;
            break;
        case 'h': usage(stdout); return SRV_EXIT_OK;
        default: usage(stderr); return SRV_EXIT_USAGE;
        }
    }
    if (!*state || optind != argc) {
        usage(stderr);
        return SRV_EXIT_USAGE;
    }
    if (!srv_valid_name(plan->admin, SRV_NAME_MAX) || cfg->port < 0 || cfg->port > 65535 ||
        strlen(plan->ca_name) < 1 || strlen(plan->ca_name) > 64) {
        fprintf(stderr, "signum-server init: invalid --admin, --port or --ca-name\n");
        return SRV_EXIT_USAGE;
    }
    return -1;
}

/* Refuses a state directory that is there and not empty; resolves its absolute path into
 * final_dir now (the SoftHSMv2 config must name it) and makes the temporary sibling tmp.
 * SRV_EXIT_OK, or the exit code with the reason printed. */
static int reserve_state_dir(const char *state, char final_dir[PATH_MAX], char tmp[PATH_MAX])
{
    char parent[PATH_MAX], copy[PATH_MAX];
    int exists = 0;

    if (!dir_is_empty_or_absent(state, &exists)) {
        fprintf(stderr,
                "signum-server init: %s already exists and is not empty; refusing to touch it\n",
                state);
        return SRV_EXIT_USAGE;
    }
    snprintf(copy, sizeof(copy), "%s", state);
    if (!realpath(dirname(copy), parent)) {
        fprintf(stderr, "signum-server init: parent of %s: %s\n", state, strerror(errno));
        return SRV_EXIT_FAIL;
    }
    snprintf(copy, sizeof(copy), "%s", state);
    if ((size_t)snprintf(final_dir, PATH_MAX, "%s/%s", parent, basename(copy)) >= PATH_MAX ||
        (size_t)snprintf(tmp, PATH_MAX, "%s.init-XXXXXX", final_dir) >= PATH_MAX) {
        fprintf(stderr, "signum-server init: path too long\n");
        return SRV_EXIT_FAIL;
    }
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "signum-server init: cannot create %s: %s\n", tmp, strerror(errno));
        return SRV_EXIT_FAIL;
    }
    return SRV_EXIT_OK;
}

int srv_cmd_init(int argc, char **argv)
{
    const char *state = NULL, *key_file = NULL;
    char final_dir[PATH_MAX], tmp[PATH_MAX];
    init_plan plan;
    srv_error err;
    int rc;

    memset(&plan, 0, sizeof(plan));
    srv_config_defaults(&plan.cfg, ".");
    plan.ca_type = SRV_KEY_RSA_3072;
    plan.ca_name = "Signum Root CA";
    plan.admin = "admin";
    if ((rc = read_init_options(argc, argv, &plan, &state, &key_file)) >= 0 ||
        (rc = reserve_state_dir(state, final_dir, tmp)) != SRV_EXIT_OK)
        goto done;
    plan.final_dir = final_dir;
    plan.tmp = tmp;
    if (build_state(&plan, &err) != SRV_OK) {
        fprintf(stderr, "signum-server init: %s\n", err.message);
        goto fail;
    }
    if (key_file &&
        srv_write_file(key_file, plan.admin_key, strlen(plan.admin_key), 0600, &err) != SRV_OK) {
        fprintf(stderr, "signum-server init: %s\n", err.message);
        goto fail;
    }
    /* rename() replaces an empty directory atomically; a non-empty one makes it fail. */
    if (rename(tmp, final_dir) != 0) {
        fprintf(stderr, "signum-server init: cannot move %s into place: %s\n", tmp,
                strerror(errno));
        if (key_file)
            unlink(key_file);
        goto fail;
    }
    printf("Initialised %s\n", final_dir);
    printf("Admin user: %s\n", plan.admin);
    printf("Admin API key (shown once; only its hash is stored): %s\n", plan.admin_key);
    OPENSSL_cleanse(plan.admin_key, sizeof(plan.admin_key));
    rc = SRV_EXIT_OK;
    goto done;
fail:
    OPENSSL_cleanse(plan.admin_key, sizeof(plan.admin_key));
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    rc = SRV_EXIT_FAIL;
done:
    free_pin(&plan);
    return rc;
}
