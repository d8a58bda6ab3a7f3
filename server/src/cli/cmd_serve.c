/* `signum-server serve`: opens the HSM, database and CA of a state directory and serves the
 * HTTPS API until SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/app.h"
#include "api/jobs.h"
#include "audit/checkpoint.h"
#include "alerts/alerts.h"
#include "audit/export.h"
#include "cli.h"
#include "common/addr_rate.h"
#include "common/b64.h"
#include "common/log.h"
#include "common/util.h"
#include "tsa/tsa.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: signum-server serve --state DIR [--port N] [--listen ADDR]\n"
                 "\n"
                 "Serves HTTPS until SIGTERM or SIGINT, then drains: GET /healthz/ready\n"
                 "answers 503 at once, in-flight requests finish, new ones get 503 with\n"
                 "Retry-After; it exits 0 once none is in flight, or 1 if some still are\n"
                 "after drain_timeout seconds (signum-server.conf, default 10).\n"
                 "--port 0 picks a free port. Once listening, DIR/run.json holds the pid,\n"
                 "port and URL (removed at exit).\n"
                 "One server per state directory: a second serve on DIR exits with status 2\n"
                 "and changes nothing (DIR/serve.lock is held while serving).\n"
                 "With tsa = open (or token) in signum-server.conf it is also an RFC 3161\n"
                 "time-stamping authority at POST /tsa: the first start makes its key in the\n"
                 "HSM and has the built-in CA certify it (DIR/tsa/tsa.crt); see docs/tsa.md.\n");
}

void srv_export_softhsm_conf(const char *path)
{
    if (path && *path && access(path, R_OK) == 0)
        setenv("SOFTHSM2_CONF", path, 1);
}

int srv_read_pin(const char *path, char **pin)
{
    struct stat sb;
    srv_error err;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    *pin = NULL;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        fprintf(stderr, "signum-server: cannot open HSM PIN file %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        fprintf(stderr, "signum-server: %s is readable by others (mode %o); chmod 600 it\n", path,
                (unsigned)(sb.st_mode & 0777));
        return -1;
    }
    if (srv_read_file(path, 256, pin, &len, &err) != SRV_OK) {
        fprintf(stderr, "signum-server: %s\n", err.message);
        return -1;
    }
    while (len > 0 && ((*pin)[len - 1] == '\n' || (*pin)[len - 1] == '\r'))
        (*pin)[--len] = '\0';
    return 0;
}

/* Client certificates are requested, never required. One that does not verify still completes
 * the handshake, so the API can refuse it with a JSON error and a denial record; http.c only
 * reports a certificate as verified when SSL_get_verify_result() is X509_V_OK. */
static int keep_verify_result(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    (void)store;
    return 1;
}

#define SRV_TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static SSL_CTX *tls_context(const srv_config *cfg, srv_error *err)
{
    static const unsigned char session_context[] = "signum-server";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    STACK_OF(X509_NAME) *client_cas = NULL;
    if (!ctx) {
        srv_fail(err, SRV_E_INTERNAL, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_RENEGOTIATION);
    /* TLS 1.2 (kept for Wine's schannel): forward-secret AEAD suites only; no static RSA key
     * exchange, no CBC. TLS 1.3 keeps OpenSSL's default suites, which are all AEAD. */
    if (SSL_CTX_set_cipher_list(ctx, SRV_TLS12_CIPHERS) != 1) {
        srv_fail(err, SRV_E_INTERNAL, "cannot set the TLS 1.2 cipher list");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    /* Resumed sessions keep their client certificate; the context id makes that safe. */
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof(session_context) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char buf[160];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        srv_fail(err, SRV_E_CONFIG, "TLS certificate or key unusable (%s, %s): %s", cfg->tls_cert,
                 cfg->tls_key, buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Machines' client certificates are issued by the built-in CA, and only it is trusted. */
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca_cert, NULL) != 1 ||
        !(client_cas = SSL_load_client_CA_file(cfg->ca_cert))) {
        char buf[160];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        srv_fail(err, SRV_E_CONFIG, "cannot load %s to verify client certificates: %s",
                 cfg->ca_cert, buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_client_CA_list(ctx, client_cas);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, keep_verify_result);
    return ctx;
}

/* Loads the CA's key row and certificate so the API can issue certificates. */
static srv_status load_ca(srv_app *app, srv_error *err)
{
    srv_db *db = NULL;
    BIO *bio = NULL;
    srv_status st;

    st = srv_db_open(app->cfg.database, 0, &db, err);
    if (st != SRV_OK)
        return st;
    st = srv_db_key_get(db, app->cfg.ca_key_name, &app->ca_key, err);
    srv_db_close(db);
    if (st != SRV_OK)
        return st;
    if (srv_read_file(app->cfg.ca_cert, 64 * 1024, &app->ca_pem, NULL, err) != SRV_OK)
        return SRV_E_CONFIG;
    bio = BIO_new_mem_buf(app->ca_pem, -1);
    app->ca.cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!app->ca.cert)
        return srv_fail(err, SRV_E_CONFIG, "cannot parse the CA certificate %s", app->cfg.ca_cert);
    app->ca.hsm = app->hsm;
    app->ca.key.type = app->ca_key.type;
    app->ca.key.ckaid = app->ca_key.ckaid;
    app->ca.key.ckaid_len = SRV_CKAID_LEN;
    app->ca.key.spki = app->ca_key.spki;
    app->ca.key.spki_len = app->ca_key.spki_len;
    return SRV_OK;
}

typedef struct {
    srv_hsm *hsm;
    srv_audit_signer *signer;
} audit_key_job;

static srv_status create_audit_key(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    audit_key_job *job = ctx;
    return srv_audit_key_create(job->hsm, db, audit, job->signer, err);
}

/* The key that signs audit checkpoints: made at init; a state directory from before
 * checkpoints existed gets one now, through the writer so its record joins the chain. */
static srv_status load_audit_key(srv_app *app, srv_audit_signer *signer, srv_error *err)
{
    char path[PATH_MAX];
    struct stat sb;
    srv_db *db = NULL;
    srv_status st = srv_db_open(app->cfg.database, 0, &db, err);

    if (st == SRV_OK)
        st = srv_audit_signer_load(app->hsm, db, signer, err);
    srv_db_close(db);
    if (st == SRV_E_NOT_FOUND) {
        audit_key_job job = {app->hsm, signer};
        st = srv_writer_run(app->writer, create_audit_key, &job, err);
        if (st == SRV_OK)
            srv_log(SRV_LOG_INFO, "audit", "generated the audit key in the HSM (SPKI SHA-256 %s)",
                    signer->fingerprint);
    }
    if (st != SRV_OK)
        return st;
    /* Its public half, for offline verification and for pinning a copy elsewhere. */
    if ((st = srv_path_join(path, sizeof(path), app->cfg.dir, "audit", err)) != SRV_OK)
        return st;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return srv_fail(err, SRV_E_IO, "cannot create %s: %s", path, strerror(errno));
    if ((st = srv_path_join(path, sizeof(path), app->cfg.dir, SRV_AUDIT_KEY_PEM, err)) != SRV_OK)
        return st;
    return stat(path, &sb) == 0 ? SRV_OK : srv_audit_key_write_pem(signer, path, err);
}

typedef struct {
    srv_app *app;
    srv_key_type type;
    srv_tsa_key_row *row;
} tsa_key_job;

/* The key, its certificate and its record in one transaction; a key whose record cannot be
 * written is destroyed again. */
static srv_status create_tsa_key(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    tsa_key_job *job = ctx;
    srv_audit_event ev;
    uint8_t hash[SRV_SHA256_LEN];
    char hex[65];
    cJSON *detail = NULL;
    srv_status st = srv_tsa_key_create(job->app->hsm, &job->app->ca, db, job->type,
                                       job->app->cfg.tsa_name, job->row, err);
    if (st != SRV_OK)
        return st;
    srv_sha256(job->row->cert_der, job->row->cert_der_len, hash);
    srv_hex_encode(hash, sizeof(hash), hex);
    detail = cJSON_CreateObject();
    if (!detail || !cJSON_AddStringToObject(detail, "key_type", srv_key_type_name(job->type)) ||
        !cJSON_AddStringToObject(detail, "certificate_sha256", hex) ||
        !cJSON_AddStringToObject(detail, "subject", job->app->cfg.tsa_name)) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
    } else {
        memset(&ev, 0, sizeof(ev));
        ev.actor = "system";
        ev.action = "tsa.key.create";
        ev.outcome = "ok";
        ev.detail = detail;
        st = srv_audit_append(db, audit, &ev, err);
    }
    cJSON_Delete(detail);
    if (st != SRV_OK) {
        srv_hsm_destroy_key(job->app->hsm, job->row->ckaid, SRV_CKAID_LEN, NULL);
        srv_tsa_key_row_clear(job->row);
    }
    return st;
}

/* The time-stamping authority (tsa = open|token): its key is made in the HSM and certified by
 * the built-in CA the first time, through the writer so its record joins the chain; its
 * certificate is written to STATE/tsa/tsa.crt for relying parties. */
static srv_status load_tsa(srv_app *app, srv_error *err)
{
    srv_tsa_options opts;
    srv_tsa_key_row row;
    char path[PATH_MAX], *pem = NULL;
    srv_db *db = NULL;
    srv_status st;

    if (app->cfg.tsa_mode == SRV_TSA_MODE_OFF)
        return SRV_OK;
    memset(&row, 0, sizeof(row));
    st = srv_db_open(app->cfg.database, 0, &db, err);
    if (st == SRV_OK)
        st = srv_db_tsa_key_latest(db, &row, err);
    srv_db_close(db);
    if (st == SRV_E_NOT_FOUND) {
        tsa_key_job job = {app, SRV_KEY_EC_P256, &row};
        if (!srv_key_type_parse(app->cfg.tsa_key_type, &job.type))
            return srv_fail(err, SRV_E_CONFIG, "tsa_key_type \"%s\" is not a key type",
                            app->cfg.tsa_key_type);
        st = srv_writer_run(app->writer, create_tsa_key, &job, err);
        if (st == SRV_OK)
            srv_log(SRV_LOG_INFO, "tsa", "generated the TSA key (%s) in the HSM",
                    app->cfg.tsa_key_type);
    }
    if (st != SRV_OK)
        return st;
    memset(&opts, 0, sizeof(opts));
    opts.policy = app->cfg.tsa_policy;
    opts.accuracy_ms = app->cfg.tsa_accuracy_ms;
    opts.max_skew_ms = (int64_t)app->cfg.tsa_max_skew_seconds * 1000;
    if ((st = srv_tsa_open(app->hsm, &row, &opts, &app->tsa, err)) != SRV_OK) {
        srv_tsa_key_row_clear(&row);
        return st;
    }
    if (!(app->tsa_rate = srv_addr_rate_new(app->cfg.tsa_rate_per_address, app->cfg.tsa_rate)))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    if ((st = srv_path_join(path, sizeof(path), app->cfg.dir, "tsa", err)) != SRV_OK)
        return st;
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return srv_fail(err, SRV_E_IO, "cannot create %s: %s", path, strerror(errno));
    if ((st = srv_path_join(path, sizeof(path), app->cfg.dir, SRV_TSA_CERT_PEM, err)) != SRV_OK ||
        (st = srv_cert_to_pem(app->tsa->cert, &pem, err)) != SRV_OK)
        return st;
    st = srv_write_file(path, pem, strlen(pem), 0644, err);
    free(pem);
    if (st == SRV_OK)
        srv_log(SRV_LOG_INFO, "tsa", "time-stamping authority at /tsa (%s, policy %s)",
                app->cfg.tsa_mode == SRV_TSA_MODE_TOKEN ? "callers with a token" : "open",
                app->tsa->policy_text);
    return st;
}

/* One server per state directory: two would each extend the audit chain from the same head
 * and fork it for good. The lock is an open file description lock (F_OFD_SETLK) on
 * DIR/serve.lock, taken before the database or the HSM is opened and held until the process
 * has stopped (the kernel drops it at exit, even on kill -9). The file holds the owner's pid,
 * for the refusal message only. Returns the descriptor, -1 after printing why. */
static int lock_file(const char *path, const char *what, const char *dir)
{
    char text[32], other[32] = "";
    struct flock fl;
    ssize_t n;
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "signum-server serve: cannot open the lock file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EAGAIN || e == EACCES) {
            n = pread(fd, other, sizeof(other) - 1, 0);
            other[n > 0 ? n : 0] = '\0';
            other[strcspn(other, "\r\n")] = '\0';
            fprintf(stderr,
                    "signum-server serve: another signum-server (pid %s) is already serving the "
                    "%s %s (it holds %s); refusing to start a second instance on it. Stop the "
                    "other one first.\n",
                    other[0] ? other : "unknown", what, dir, path);
        } else {
            fprintf(stderr, "signum-server serve: cannot lock %s: %s\n", path, strerror(e));
        }
        close(fd);
        return -1;
    }
    n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        srv_log(SRV_LOG_WARN, "main", "cannot write the pid into %s: %s", path, strerror(errno));
    return fd;
}

static int lock_state_dir(const char *dir)
{
    char path[PATH_MAX];
    srv_error err;
    if (srv_path_join(path, sizeof(path), dir, SRV_SERVE_LOCK, &err) != SRV_OK) {
        fprintf(stderr, "signum-server serve: %s\n", err.message);
        return -1;
    }
    return lock_file(path, "state directory", dir);
}

/* A database kept outside the state directory could be shared by two state directories:
 * it gets its own lock, DATABASE.serve.lock. -2 when none is needed. */
static int lock_database(const srv_config *cfg)
{
    char dir[PATH_MAX], db_dir[PATH_MAX], copy[PATH_MAX], path[PATH_MAX + 16], *slash;

    /* PostgreSQL is meant to be shared by several nodes. */
    if (srv_is_postgresql_url(cfg->database))
        return -2;
    snprintf(copy, sizeof(copy), "%s", cfg->database);
    slash = strrchr(copy, '/');
    if (slash)
        *slash = '\0';
    if (!realpath(cfg->dir, dir) || !realpath(slash ? copy : ".", db_dir)) {
        fprintf(stderr, "signum-server serve: cannot resolve %s or %s: %s\n", cfg->dir,
                cfg->database, strerror(errno));
        return -1;
    }
    if (strcmp(dir, db_dir) == 0)
        return -2;
    snprintf(path, sizeof(path), "%s.%s", cfg->database, SRV_SERVE_LOCK);
    return lock_file(path, "database", cfg->database);
}

/* Removes DIR/run.json only if it names this process: a file written by anyone else (an
 * instance that took over the directory after us) is left alone. */
static void remove_own_run_file(const char *dir)
{
    char path[PATH_MAX + 16], *text = NULL, *p;
    size_t len = 0;
    srv_error err;

    snprintf(path, sizeof(path), "%s/run.json", dir);
    if (srv_read_file(path, 4096, &text, &len, &err) != SRV_OK)
        return;
    p = strstr(text, "\"pid\":");
    if (p && strtol(p + 6, NULL, 10) == (long)getpid())
        unlink(path);
    else
        srv_log(SRV_LOG_WARN, "main", "%s is not ours; leaving it", path);
    free(text);
}

void srv_app_set_public_url(srv_app *app, int port)
{
    if (app->cfg.public_url[0])
        snprintf(app->public_url, sizeof(app->public_url), "%s", app->cfg.public_url);
    else
        snprintf(app->public_url, sizeof(app->public_url), "https://localhost:%d", port);
}

static void write_run_file(void *arg, int port)
{
    srv_app *app = arg;
    char path[PATH_MAX + 16], text[256];
    srv_error err;
    srv_app_set_public_url(app, port);
    snprintf(path, sizeof(path), "%s/run.json", app->cfg.dir);
    snprintf(text, sizeof(text), "{\"pid\":%ld,\"port\":%d,\"url\":\"https://localhost:%d\"}\n",
             (long)getpid(), port, port);
    if (srv_write_file(path, text, strlen(text), 0644, &err) != SRV_OK)
        srv_log(SRV_LOG_WARN, "main", "cannot write run file: %s", err.message);
}

static void audit_lifecycle(srv_app *app, const char *action)
{
    srv_audit_event ev = {0, "system", action, "ok", NULL};
    srv_error err;
    if (srv_writer_audit(app->writer, &ev, NULL, &err) != SRV_OK)
        srv_log(SRV_LOG_ERROR, "audit", "cannot record %s: %s", action, err.message);
}

int srv_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL, *listen_addr = NULL;
    int port = -1, c, rc = SRV_EXIT_FAIL;
    char *pin = NULL;
    int lock_fd = -1, db_lock_fd = -2;
    srv_hsm_config hc;
    srv_http_config hcfg;
    srv_audit_signer audit_signer;
    srv_exporters *exporters = NULL;
    srv_app *app;
    srv_error err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'l': listen_addr = optarg; break;
        case 'h': usage(stdout); return SRV_EXIT_OK;
        default: usage(stderr); return SRV_EXIT_USAGE;
        }
    }
    if (!state || optind != argc || port > 65535) {
        usage(stderr);
        return SRV_EXIT_USAGE;
    }
    memset(&audit_signer, 0, sizeof(audit_signer));
    app = calloc(1, sizeof(*app));
    if (!app)
        return SRV_EXIT_FAIL;
    if (srv_config_load(state, &app->cfg, &err) != SRV_OK) {
        fprintf(stderr, "signum-server serve: %s\n", err.message);
        goto out;
    }
    /* Before anything in the directory is opened: a refused second instance changes nothing. */
    if ((lock_fd = lock_state_dir(app->cfg.dir)) < 0 ||
        (db_lock_fd = lock_database(&app->cfg)) == -1) {
        rc = SRV_EXIT_USAGE; /* refused, as init refuses an existing directory */
        goto out;
    }
    if (port >= 0)
        app->cfg.port = port;
    if (listen_addr)
        snprintf(app->cfg.listen, sizeof(app->cfg.listen), "%s", listen_addr);
    if (srv_read_pin(app->cfg.hsm_pin_file, &pin) != 0)
        goto out;
    srv_export_softhsm_conf(app->cfg.softhsm_conf);
    memset(&hc, 0, sizeof(hc));
    hc.module_path = app->cfg.hsm_module;
    hc.token_label = app->cfg.hsm_token;
    hc.pin = pin;
    hc.pool_size = app->cfg.hsm_sessions;
    if (srv_hsm_open(&hc, &app->hsm, &err) != SRV_OK ||
        srv_writer_start_sync(app->cfg.database, app->cfg.audit_sync_full, &app->writer, &err) !=
            SRV_OK ||
        load_ca(app, &err) != SRV_OK || load_audit_key(app, &audit_signer, &err) != SRV_OK ||
        load_tsa(app, &err) != SRV_OK || !(audit_signer.tsa = app->tsa, 1) ||
        srv_writer_checkpoints(app->writer, &audit_signer, app->cfg.audit_checkpoint_records,
                               app->cfg.audit_checkpoint_seconds, &err) != SRV_OK ||
        srv_exporters_start(&app->cfg, app->writer, &exporters, &err) != SRV_OK ||
        srv_alerts_start(&app->cfg, app->writer, app->hsm, &app->alerts, &err) != SRV_OK ||
        srv_denials_start(app->writer, (unsigned)app->cfg.audit_denial_window,
                          (unsigned)app->cfg.audit_denial_burst, &app->denial_log,
                          &err) != SRV_OK ||
        !(app->tls = tls_context(&app->cfg, &err)) ||
        (app->cfg.oidc_config[0] &&
         srv_oidc_load(app->cfg.oidc_config, &app->oidc, &err) != SRV_OK)) {
        fprintf(stderr, "signum-server serve: %s\n", err.message);
        goto out;
    }
    if (!app->cfg.audit_sync_full)
        srv_log(SRV_LOG_WARN, "audit",
                "audit_sync = normal: audit commits are not synced to disk; a power loss or "
                "OS crash may lose the last records of signatures already handed out");
    if (app->oidc)
        srv_log(SRV_LOG_INFO, "auth", "CI OIDC token exchange: %u issuer(s) from %s",
                srv_oidc_issuer_count(app->oidc), app->cfg.oidc_config);
    app->started_at = srv_now();
    audit_lifecycle(app, "server.start");
    if (srv_jobs_start(app, &app->jobs, &err) != SRV_OK) {
        fprintf(stderr, "signum-server serve: %s\n", err.message);
        goto out;
    }

    memset(&hcfg, 0, sizeof(hcfg));
    hcfg.host = app->cfg.listen;
    hcfg.port = app->cfg.port;
    hcfg.tls = app->tls;
    hcfg.workers = app->cfg.workers;
    hcfg.queue_limit = 4096;
    hcfg.timeout_secs = app->cfg.http_timeout;
    hcfg.header_timeout_secs = app->cfg.header_timeout;
    hcfg.body_timeout_secs = app->cfg.body_timeout;
    hcfg.max_conns = app->cfg.max_connections;
    hcfg.max_conns_per_addr = app->cfg.max_connections_per_address;
    hcfg.max_body = app->cfg.max_body;
    hcfg.handler = srv_api_handle;
    hcfg.worker_init = srv_api_worker_init;
    hcfg.worker_fini = srv_api_worker_fini;
    hcfg.app = app;
    hcfg.on_listening = write_run_file;
    hcfg.live_path = "/healthz/live";
    hcfg.ready_path = "/healthz/ready";
    hcfg.drain_timeout_secs = app->cfg.drain_timeout;
    if (srv_http_serve(&hcfg, &err) != SRV_OK) {
        fprintf(stderr, "signum-server serve: %s\n", err.message);
        if (err.status == SRV_E_UNAVAILABLE) {
            /* The drain timed out: workers are still inside requests (a hung HSM call) and
             * still use what the orderly stop would free. Exit now. What they hold was never
             * handed out; committed audit records are durable, and the kernel drops the
             * state directory's lock. */
            remove_own_run_file(app->cfg.dir);
            fflush(NULL);
            _exit(SRV_EXIT_FAIL);
        }
    } else {
        rc = SRV_EXIT_OK;
    }
    remove_own_run_file(app->cfg.dir);
    /* The job workers commit the chunk they hold; the rest waits in the database. */
    srv_jobs_stop(app->jobs);
    app->jobs = NULL;
    /* Aggregated denials still pending are written before the log's server.stop record. */
    srv_denials_stop(app->denial_log);
    app->denial_log = NULL;
    audit_lifecycle(app, "server.stop");
    srv_log(SRV_LOG_INFO, "main", "stopped");
out:
    if (pin) {
        OPENSSL_cleanse(pin, strlen(pin));
        free(pin);
    }
    /* On a failed start-up: pending aggregated denials are written before the writer stops. */
    srv_jobs_stop(app->jobs);
    srv_denials_stop(app->denial_log);
    srv_alerts_stop(app->alerts);
    srv_exporters_stop(exporters);
    /* The writer signs a last checkpoint as it stops: the signer must still be there. */
    srv_writer_stop(app->writer);
    srv_audit_signer_clear(&audit_signer);
    srv_tsa_free(app->tsa);
    srv_addr_rate_free(app->tsa_rate);
    srv_hsm_close(app->hsm);
    SSL_CTX_free(app->tls);
    srv_oidc_free(app->oidc);
    X509_free(app->ca.cert);
    free(app->ca_pem);
    srv_key_clear(&app->ca_key);
    free(app);
    /* Last: the next instance may start only once this one has written its final records. */
    if (db_lock_fd >= 0)
        close(db_lock_fd);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
