/* `signum-util enroll`: a service account's key pair or a machine's TLS client certificate.
 * The private key is generated here and never leaves this machine (a file only the user can
 * read). The platform parts (keys, files, paths) are in enroll_backend.h; the POST goes over
 * the agent's HTTPS transport (signum/https.h), with the agent's TLS rules. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "enroll.h"
#include "enroll_backend.h"
#include "platform.h"
#include "signum/common/buf.h"
#include "signum/agent_config.h"
#include "signum/https.h"

#define CONFIG_MAX        (64 * 1024)
#define ENROLL_ANSWER_MAX (256 * 1024)

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* POSTs JSON to the first configured server, once: the TLS rules are the agent's, so the
 * body (it holds the enrollment token) never goes to an unverified server. Returns the answer
 * body (malloc'd, NUL-terminated) and *status, or NULL after printing why on stderr. No client
 * certificate is presented: enrolling is how a machine replaces one that has expired or been
 * revoked, which the server would refuse at once. */
static char *enroll_post(const ag_config *cfg_in, const char *path, const char *body, long *status)
{
    static ag_config cfg_plain; /* large: not on the stack */
    const ag_config *cfg = &cfg_plain;
    ag_backend *b = NULL;
    ag_response resp;
    ag_error err;
    try_result tr;
    char *answer = NULL;

    *status = 0;
    memset(&resp, 0, sizeof(resp));
    cfg_plain = *cfg_in;
    cfg_plain.client_cert[0] = cfg_plain.client_key[0] = '\0';
    if (ag_backend_new(cfg, "signum-util/" SIGNUM_VERSION, &b, &err) != SG_OK) {
        fprintf(stderr, "signum-util enroll: %s\n", err.message);
        return NULL;
    }
    tr = ag_backend_try(b, 0, "POST", path, NULL, body, NULL, &resp, &err);
    ag_backend_free(b);
    if (tr != TRY_DONE && tr != TRY_RETRYABLE)
        fprintf(stderr, "signum-util enroll: %s%s: %s\n", cfg->servers[0], path,
                resp.reason[0] ? resp.reason : err.message);
    else if (resp.body_len > ENROLL_ANSWER_MAX)
        fprintf(stderr, "signum-util enroll: %s%s: the answer is larger than %d bytes\n",
                cfg->servers[0], path, ENROLL_ANSWER_MAX);
    else if ((answer = resp.body ? resp.body : strdup(""))) {
        resp.body = NULL;
        *status = resp.status;
    }
    ag_response_free(&resp);
    memset(&cfg_plain, 0, sizeof(cfg_plain)); /* it holds the API key, if one is configured */
    return answer;
}

/* Redeems the enrollment token: POSTs {"enrollment_token": token, field: value} to path and
 * parses the answer; NULL (status 0) if the call failed. An answer other than 200 or 201 is
 * reported with the server's code and message. */
static cJSON *redeem(const ag_config *cfg, const char *path, const char *token, const char *field,
                     const char *value, long *status)
{
    cJSON *req = cJSON_CreateObject(), *doc = NULL;
    char *body = NULL, *answer = NULL, code[64], msg[400];

    *status = 0;
    if (req && cJSON_AddStringToObject(req, "enrollment_token", token) &&
        cJSON_AddStringToObject(req, field, value) && (body = cJSON_PrintUnformatted(req)))
        answer = enroll_post(cfg, path, body, status);
    if (body) {
        enroll_wipe(body, strlen(body)); /* it holds the enrollment token */
        free(body);
    }
    cJSON_Delete(req);
    doc = answer ? cJSON_Parse(answer) : NULL;
    if (*status && *status != 200 && *status != 201) {
        ag_server_error_fields(answer, code, sizeof(code), msg, sizeof(msg));
        fprintf(stderr, "signum-util enroll: the server refused (HTTP %ld): %s (%s)\n", *status,
                msg[0] ? msg : "no message", code[0] ? code : "no code");
    }
    free(answer);
    return doc;
}

/* Sets `key = value` lines in the user's agent.conf (created private), keeping the rest. */
static int update_config(const char *const *keys, const char *const *values, size_t n)
{
    char path[AG_PATH_MAX], line[2048];
    sgc_buf out; /* the new file, CONFIG_MAX at most */
    FILE *f;
    int rc = -1, added = SGC_OK;

    if (enroll_config_path(path, sizeof(path)) != 0) {
        fprintf(stderr, "signum-util enroll: no place for the configuration (set SIGNUM_CONFIG)\n");
        return -1;
    }
    sgc_buf_init(&out, CONFIG_MAX);
    if (sgc_buf_add(&out, "", 0) != SGC_OK)
        return -1;
    f = fopen(path, "r" UTIL_FOPEN_CLOEXEC);
    while (f && fgets(line, sizeof(line), f)) {
        int replaced = 0;
        for (size_t i = 0; i < n; i++) {
            size_t kl = strlen(keys[i]);
            const char *l = line + strspn(line, " \t");
            if (!strncmp(l, keys[i], kl) && strchr(" \t=", l[kl]))
                replaced = 1;
        }
        if (!replaced && (added = sgc_buf_add_str(&out, line)) != SGC_OK)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char entry[AG_PATH_MAX + 128];
        snprintf(entry, sizeof(entry), "%s = %s\n", keys[i], values[i]);
        if ((added = sgc_buf_add_str(&out, entry)) != SGC_OK)
            goto out;
    }
    rc = enroll_write_file(path, out.data, 1);
    if (rc == 0)
        printf("settings written to %s\n", path);
out:
    if (f)
        fclose(f);
    if (added == SGC_E_TOO_LARGE)
        fprintf(stderr, "signum-util enroll: %s is too large\n", path);
    sgc_buf_free(&out);
    return rc;
}

static void restart_hint(void)
{
    /* A running agent read its configuration at start: let the next use start a fresh one. */
    sg_client_options o;
    sg_client *c = NULL;
    memset(&o, 0, sizeof(o));
    o.no_autostart = 1;
    if (sg_client_new(&o, &c) == SG_OK && sg_agent_shutdown(c) == SG_OK) {
        util_wait_agent_gone();
        printf("stopped the running agent; the next signing starts it with the new settings\n");
    }
    sg_client_free(c);
}

static int enroll_service_account(const ag_config *cfg, const char *token, const char *key_path)
{
    enroll_key *key = enroll_key_new();
    char *spki_b64 = NULL, *pem = NULL, kid[65], account[65];
    cJSON *doc = NULL;
    long status = 0;
    int rc = 1;

    if (!key || !(spki_b64 = enroll_key_spki_b64(key)) || !(pem = enroll_key_pem(key))) {
        fprintf(stderr, "signum-util enroll: cannot generate a P-256 key pair\n");
        goto out;
    }
    doc = redeem(cfg, "/api/v1/enroll/service-account", token, "public_key", spki_b64, &status);
    if (status != 200 && status != 201)
        goto out;
    if (!str(doc, "service_account") || !str(doc, "kid") ||
        strlen(str(doc, "service_account")) >= sizeof(account) ||
        strlen(str(doc, "kid")) >= sizeof(kid)) {
        fprintf(stderr, "signum-util enroll: malformed answer from the server\n");
        goto out;
    }
    snprintf(account, sizeof(account), "%s", str(doc, "service_account"));
    snprintf(kid, sizeof(kid), "%s", str(doc, "kid"));
    if (enroll_write_file(key_path, pem, 1) != 0)
        goto out;
    {
        const char *keys[] = {"auth", "service_account", "key_file", "key_id"};
        const char *values[] = {"service_account", account, key_path, kid};
        if (update_config(keys, values, 4) != 0)
            goto out;
    }
    printf("enrolled service account %s (key id %s); private key in %s (readable only by you, "
           "never sent)\n",
           account, kid, key_path);
    restart_hint();
    rc = 0;
out:
    if (pem) {
        enroll_wipe(pem, strlen(pem));
        free(pem);
    }
    free(spki_b64);
    cJSON_Delete(doc);
    enroll_key_free(key);
    return rc;
}

static int enroll_machine(const ag_config *cfg, const char *token, const char *dir)
{
    enroll_key *key = NULL;
    char host[256] = "machine", *csr = NULL, *chain = NULL, label[128];
    char key_ref[AG_PATH_MAX + 16], cert_path[AG_PATH_MAX + 16];
    const char *fp;
    cJSON *doc = NULL;
    size_t chain_len;
    long status = 0;
    int rc = 1;

    enroll_hostname(host, sizeof(host));
    snprintf(cert_path, sizeof(cert_path), "%s" UTIL_PATH_SEP "machine.crt", dir);
    if (!(key = enroll_machine_key_new()) || !(csr = enroll_key_csr(key, host))) {
        fprintf(stderr, "signum-util enroll: cannot make a key pair and CSR\n");
        goto out;
    }
    doc = redeem(cfg, "/api/v1/enroll/machine", token, "csr_pem", csr, &status);
    if (status != 200 && status != 201)
        goto out;
    if (!str(doc, "certificate_pem") || !str(doc, "machine")) {
        fprintf(stderr, "signum-util enroll: malformed answer from the server\n");
        goto out;
    }
    chain_len = strlen(str(doc, "certificate_pem")) +
                (str(doc, "chain_pem") ? strlen(str(doc, "chain_pem")) : 0) + 1;
    if (!(chain = malloc(chain_len)))
        goto out;
    snprintf(chain, chain_len, "%s%s", str(doc, "certificate_pem"),
             str(doc, "chain_pem") ? str(doc, "chain_pem") : "");
    /* The key's name where it is not a file: the machine and the certificate it belongs to. */
    fp = str(doc, "certificate_sha256");
    snprintf(label, sizeof(label), "%.64s %.16s", str(doc, "machine"), fp ? fp : "");
    enroll_make_private_dir(dir);
    if (enroll_machine_key_store(key, dir, label, key_ref, sizeof(key_ref)) != 0 ||
        enroll_write_file(cert_path, chain, 0) != 0)
        goto out;
    {
        const char *keys[] = {"client_cert", "client_key"};
        const char *values[] = {cert_path, key_ref};
        if (update_config(keys, values, 2) != 0)
            goto out;
    }
    if (cfg->client_key[0] && strcmp(cfg->client_key, key_ref) != 0)
        enroll_machine_key_forget(cfg->client_key);
    printf("enrolled machine %s; client certificate %s, key %s (usable only by you, never "
           "sent)\n",
           str(doc, "machine"), cert_path, key_ref);
    restart_hint();
    rc = 0;
out:
    free(csr);
    free(chain);
    cJSON_Delete(doc);
    enroll_key_free(key);
    return rc;
}

int util_cmd_enroll(int argc, char **argv)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, 't'},    {"token-file", required_argument, NULL, 'T'},
        {"key-file", required_argument, NULL, 'k'}, {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    const char *kind = argc > 1 ? argv[1] : "", *key_file = NULL, *dir = NULL;
    char token[512] = "", default_dir[AG_PATH_MAX], default_key[AG_PATH_MAX + 32];
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
            "  certificate, used for mTLS so the server knows this machine for certain.\n"
            "  The key stays in DIR/machine.key (Linux) or, not exportable, in your Windows\n"
            "  key store (CryptoAPI); the certificate goes to DIR/machine.crt.\n");
        return !strcmp(kind, "--help") ? 0 : 2;
    }
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't': snprintf(token, sizeof(token), "%s", optarg); break;
        case 'T': {
            FILE *f = fopen(optarg, "r" UTIL_FOPEN_CLOEXEC);
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
    if (enroll_default_dir(default_dir, sizeof(default_dir)) != 0)
        snprintf(default_dir, sizeof(default_dir), ".");
    snprintf(default_key, sizeof(default_key), "%s" UTIL_PATH_SEP "service-account.key",
             default_dir);
    if (!strcmp(kind, "service-account"))
        rc = enroll_service_account(&cfg, token, key_file ? key_file : default_key);
    else
        rc = enroll_machine(&cfg, token, dir ? dir : default_dir);
    enroll_wipe(token, sizeof(token));
    memset(&cfg, 0, sizeof(cfg));
    return rc;
}
