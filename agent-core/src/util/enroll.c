/* `signum-util enroll`: a service account's key pair or a machine's TLS client certificate.
 * The private key is generated here and never leaves this machine (file mode 0600). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../agent/agent.h"
#include "../common/b64.h"
#include "enroll.h"

#define ANSWER_MAX (256 * 1024)

/* mkdir -p with mode 0700 for each missing component. */
static void make_private_dirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(buf, 0700);
        *p = '/';
    }
    mkdir(buf, 0700);
}

typedef struct {
    char *data;
    size_t len;
} buffer;

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buffer *b = arg;
    size_t len = size * n;
    char *nb;
    if (b->len + len > ANSWER_MAX || !(nb = realloc(b->data, b->len + len + 1)))
        return 0;
    memcpy(nb + b->len, data, len);
    b->data = nb;
    b->len += len;
    nb[b->len] = '\0';
    return len;
}

/* POSTs JSON to the first configured server (TLS verified); returns the parsed answer. */
static cJSON *post(const ag_config *cfg, const char *path, const char *body, long *status)
{
    char url[700];
    buffer b = {NULL, 0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    cJSON *doc = NULL;
    CURLcode rc;

    *status = 0;
    snprintf(url, sizeof(url), "%s%s", cfg->servers[0], path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg->ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fprintf(stderr, "signum-util enroll: %s: %s\n", url, curl_easy_strerror(rc));
    else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        doc = b.data ? cJSON_Parse(b.data) : NULL;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(b.data);
    return doc;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void print_server_error(const cJSON *doc, long status)
{
    const cJSON *e = doc ? cJSON_GetObjectItemCaseSensitive(doc, "error") : NULL;
    fprintf(stderr, "signum-util enroll: the server refused (HTTP %ld): %s (%s)\n", status,
            e && str(e, "message") ? str(e, "message") : "no message",
            e && str(e, "code") ? str(e, "code") : "no code");
}

/* Writes text to path with mode 0600 (0644 if public), atomically. */
static int write_private(const char *path, const char *text, mode_t mode)
{
    char tmp[PATH_MAX + 16];
    size_t len = strlen(text);
    int fd;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) != 0 || fsync(fd) != 0 ||
        close(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "signum-util enroll: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static char *pem_key(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    char *out = NULL;
    if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        BIO_get_mem_ptr(bio, &mem);
        out = strndup(mem->data, mem->length);
        OPENSSL_cleanse(mem->data, mem->length);
    }
    BIO_free(bio);
    return out;
}

/* Sets `key = value` lines in the user's agent.conf (created 0600), keeping the rest. */
static int update_config(const char *const *keys, const char *const *values, size_t n)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char dir[PATH_MAX], path[PATH_MAX + 32], line[2048];
    char *out = NULL;
    size_t out_len = 0;
    FILE *mem, *f;
    int rc;

    if (getenv("SIGNUM_CONFIG"))
        snprintf(path, sizeof(path), "%s", getenv("SIGNUM_CONFIG"));
    else {
        if (!xdg && !home)
            return -1;
        snprintf(dir, sizeof(dir), xdg ? "%s/signum" : "%s/.config/signum", xdg ? xdg : home);
        make_private_dirs(dir);
        snprintf(path, sizeof(path), "%s/agent.conf", dir);
    }
    mem = open_memstream(&out, &out_len);
    if (!mem)
        return -1;
    f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f)) {
        int replaced = 0;
        for (size_t i = 0; i < n; i++) {
            size_t kl = strlen(keys[i]);
            const char *l = line + strspn(line, " \t");
            if (!strncmp(l, keys[i], kl) && strchr(" \t=", l[kl]))
                replaced = 1;
        }
        if (!replaced)
            fputs(line, mem);
    }
    if (f)
        fclose(f);
    for (size_t i = 0; i < n; i++)
        fprintf(mem, "%s = %s\n", keys[i], values[i]);
    fclose(mem);
    rc = write_private(path, out, 0600);
    if (rc == 0)
        printf("settings written to %s\n", path);
    free(out);
    return rc;
}

static void restart_hint(void)
{
    /* A running agent read its configuration at start: let the next use start a fresh one. */
    sg_client_options o;
    sg_client *c = NULL;
    memset(&o, 0, sizeof(o));
    o.no_autostart = 1;
    if (sg_client_new(&o, &c) == SG_OK && sg_agent_shutdown(c) == SG_OK)
        printf("stopped the running agent; the next signing starts it with the new settings\n");
    sg_client_free(c);
}

static int enroll_service_account(const ag_config *cfg, const char *token, const char *key_path)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *spki = NULL;
    char *spki_b64 = NULL, *pem = NULL, *body = NULL, kid[65], account[65];
    cJSON *req = cJSON_CreateObject(), *doc = NULL;
    long status = 0;
    int len, rc = 1;

    if (!key || (len = i2d_PUBKEY(key, &spki)) <= 0 ||
        !(spki_b64 = b64_encode(spki, (size_t)len)) || !(pem = pem_key(key))) {
        fprintf(stderr, "signum-util enroll: cannot generate a P-256 key pair\n");
        goto out;
    }
    cJSON_AddStringToObject(req, "enrollment_token", token);
    cJSON_AddStringToObject(req, "public_key", spki_b64);
    body = cJSON_PrintUnformatted(req);
    doc = body ? post(cfg, "/api/v1/enroll/service-account", body, &status) : NULL;
    if (status != 200 && status != 201) {
        print_server_error(doc, status);
        goto out;
    }
    if (!str(doc, "service_account") || !str(doc, "kid") ||
        strlen(str(doc, "service_account")) >= sizeof(account) ||
        strlen(str(doc, "kid")) >= sizeof(kid)) {
        fprintf(stderr, "signum-util enroll: malformed answer from the server\n");
        goto out;
    }
    snprintf(account, sizeof(account), "%s", str(doc, "service_account"));
    snprintf(kid, sizeof(kid), "%s", str(doc, "kid"));
    if (write_private(key_path, pem, 0600) != 0)
        goto out;
    {
        const char *keys[] = {"auth", "service_account", "key_file", "key_id"};
        const char *values[] = {"service_account", account, key_path, kid};
        if (update_config(keys, values, 4) != 0)
            goto out;
    }
    printf("enrolled service account %s (key id %s); private key in %s (0600, never sent)\n",
           account, kid, key_path);
    restart_hint();
    rc = 0;
out:
    if (pem) {
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    free(body);
    free(spki_b64);
    OPENSSL_free(spki);
    cJSON_Delete(req);
    cJSON_Delete(doc);
    EVP_PKEY_free(key);
    return rc;
}

static int enroll_machine(const ag_config *cfg, const char *token, const char *dir)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    char host[256] = "machine", *pem = NULL, *csr = NULL, *body = NULL, *chain = NULL;
    char key_path[PATH_MAX + 16], cert_path[PATH_MAX + 16];
    cJSON *r = cJSON_CreateObject(), *doc = NULL;
    long status = 0;
    int rc = 1;

    gethostname(host, sizeof(host) - 1);
    snprintf(key_path, sizeof(key_path), "%s/machine.key", dir);
    snprintf(cert_path, sizeof(cert_path), "%s/machine.crt", dir);
    if (!key || !req || !bio || !X509_REQ_set_pubkey(req, key) ||
        !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                    (const unsigned char *)host, -1, -1, 0) ||
        !X509_REQ_sign(req, key, EVP_sha256()) || !PEM_write_bio_X509_REQ(bio, req) ||
        !(pem = pem_key(key))) {
        fprintf(stderr, "signum-util enroll: cannot make a key pair and CSR\n");
        goto out;
    }
    BIO_get_mem_ptr(bio, &mem);
    csr = strndup(mem->data, mem->length);
    cJSON_AddStringToObject(r, "enrollment_token", token);
    cJSON_AddStringToObject(r, "csr_pem", csr ? csr : "");
    body = cJSON_PrintUnformatted(r);
    doc = body ? post(cfg, "/api/v1/enroll/machine", body, &status) : NULL;
    if (status != 200 && status != 201) {
        print_server_error(doc, status);
        goto out;
    }
    if (!str(doc, "certificate_pem") || !str(doc, "machine")) {
        fprintf(stderr, "signum-util enroll: malformed answer from the server\n");
        goto out;
    }
    if (asprintf(&chain, "%s%s", str(doc, "certificate_pem"),
                 str(doc, "chain_pem") ? str(doc, "chain_pem") : "") < 0) {
        chain = NULL;
        goto out;
    }
    make_private_dirs(dir);
    if (write_private(key_path, pem, 0600) != 0 || write_private(cert_path, chain, 0644) != 0)
        goto out;
    {
        const char *keys[] = {"client_cert", "client_key"};
        const char *values[] = {cert_path, key_path};
        if (update_config(keys, values, 2) != 0)
            goto out;
    }
    printf("enrolled machine %s; client certificate %s, key %s (0600, never sent)\n",
           str(doc, "machine"), cert_path, key_path);
    restart_hint();
    rc = 0;
out:
    if (pem) {
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    free(csr);
    free(body);
    free(chain);
    cJSON_Delete(r);
    cJSON_Delete(doc);
    BIO_free(bio);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

int util_cmd_enroll(int argc, char **argv)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, 't'},    {"token-file", required_argument, NULL, 'T'},
        {"key-file", required_argument, NULL, 'k'}, {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    const char *kind = argc > 1 ? argv[1] : "", *key_file = NULL, *dir = NULL;
    char token[512] = "", default_dir[PATH_MAX], default_key[PATH_MAX + 32];
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    ag_config cfg;
    ag_error err;
    int o, rc;

    if (strcmp(kind, "service-account") && strcmp(kind, "machine")) {
        printf(
            "Usage: signum-util enroll service-account --token T | --token-file F [--key-file F]\n"
            "       signum-util enroll machine --token T | --token-file F [--dir D]\n"
            "\n"
            "service-account: makes a P-256 key pair here, registers its public key with the\n"
            "  server (the enrollment token comes from an administrator) and configures the\n"
            "  agent to log in with signed assertions (RFC 7523).\n"
            "machine: makes a key pair and CSR; the server's CA issues a TLS client\n"
            "  certificate, used for mTLS so the server knows this machine for certain.\n");
        return !strcmp(kind, "--help") ? 0 : 2;
    }
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't': snprintf(token, sizeof(token), "%s", optarg); break;
        case 'T': {
            FILE *f = fopen(optarg, "re");
            if (!f || !fgets(token, sizeof(token), f)) {
                fprintf(stderr, "signum-util enroll: cannot read %s\n", optarg);
                if (f)
                    fclose(f);
                return 2;
            }
            fclose(f);
            token[strcspn(token, "\r\n")] = '\0';
            break;
        }
        case 'k': key_file = optarg; break;
        case 'd': dir = optarg; break;
        default: return o == 'h' ? 0 : 2;
        }
    }
    if (!token[0]) {
        fprintf(stderr, "signum-util enroll: an enrollment token is required (--token)\n");
        return 2;
    }
    if (ag_config_load(&cfg, &err) != SG_OK || cfg.server_count == 0) {
        fprintf(stderr, "signum-util enroll: %s\n",
                cfg.server_count ? err.message : "no server configured (SIGNUM_SERVER)");
        return 1;
    }
    snprintf(default_dir, sizeof(default_dir), xdg ? "%s/signum" : "%s/.config/signum",
             xdg    ? xdg
             : home ? home
                    : ".");
    snprintf(default_key, sizeof(default_key), "%s/service-account.key", default_dir);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!strcmp(kind, "service-account")) {
        if (!key_file) {
            make_private_dirs(default_dir);
            key_file = default_key;
        }
        rc = enroll_service_account(&cfg, token, key_file);
    } else {
        rc = enroll_machine(&cfg, token, dir ? dir : default_dir);
    }
    curl_global_cleanup();
    OPENSSL_cleanse(token, sizeof(token));
    memset(&cfg, 0, sizeof(cfg));
    return rc;
}
