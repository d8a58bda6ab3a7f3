/* A stand-in for the client library under the PKCS#11 harness: the sg_* calls the module makes
 * (agent-core/include/signum/client.h), answered in process from two keys made at start-up
 * (RSA 2048 with a self-signed certificate, EC P-256 with that certificate as its chain), with
 * statuses the fuzzer picks. It also checks what the module hands the agent: a well-formed
 * sign request with every digest readable for its hash's length, a PIN without NUL within the
 * protocol's cap. */
#include "p11_stub_client.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "signum/os.h"

p11_stub_script p11_stub;

struct sg_client {
    int magic;
};

typedef struct {
    uint8_t *spki, *cert;
    size_t spki_len, cert_len;
} made_key;

static made_key rsa, ec;

static size_t der_of_key(EVP_PKEY *k, uint8_t **out)
{
    int len = i2d_PUBKEY(k, out);
    return len > 0 ? (size_t)len : 0;
}

static size_t self_signed(EVP_PKEY *k, uint8_t **out)
{
    X509 *x = X509_new();
    X509_NAME *name;
    int len = -1;
    if (!x)
        return 0;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, k, EVP_sha256()) > 0)
        len = i2d_X509(x, out);
    X509_free(x);
    return len > 0 ? (size_t)len : 0;
}

void p11_stub_init(void)
{
    EVP_PKEY *r = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *e = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!r || !e)
        abort();
    rsa.spki_len = der_of_key(r, &rsa.spki);
    rsa.cert_len = self_signed(r, &rsa.cert);
    ec.spki_len = der_of_key(e, &ec.spki);
    if (!rsa.spki_len || !rsa.cert_len || !ec.spki_len)
        abort();
    EVP_PKEY_free(r);
    EVP_PKEY_free(e);
}

static __thread char last_error[128] = "";

/* The module's environment lookup (client_posix.c in the real library). */
const char *sg_os_getenv(const char *name)
{
    return getenv(name);
}

const char *sg_last_error(void)
{
    return last_error;
}

const char *sg_status_name(sg_status st)
{
    static const char *const names[] = {"ok",
                                        "agent_unavailable",
                                        "not_logged_in",
                                        "auth_failed",
                                        "denied",
                                        "key_not_found",
                                        "network",
                                        "timeout",
                                        "server",
                                        "hsm",
                                        "bad_input",
                                        "protocol",
                                        "nomem",
                                        "buffer_too_small",
                                        "unsupported",
                                        "internal"};
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

static sg_status fail(sg_status st)
{
    snprintf(last_error, sizeof(last_error), "stub: %s", sg_status_name(st));
    return st;
}

sg_status sg_client_new(const sg_client_options *opts, sg_client **out)
{
    (void)opts;
    *out = calloc(1, sizeof(**out));
    return *out ? SG_OK : fail(SG_ERR_NOMEM);
}

void sg_client_free(sg_client *c)
{
    free(c);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    FUZZ_CHECK(d != NULL);
    memcpy(d, p, n);
    return d;
}

sg_status sg_list_keys(sg_client *c, sg_key_list **out)
{
    sg_key_list *l;
    FUZZ_CHECK(c != NULL && out != NULL);
    if (p11_stub.list_status != SG_OK)
        return fail(p11_stub.list_status);
    l = calloc(1, sizeof(*l));
    FUZZ_CHECK(l != NULL);
    l->count = 2;
    l->keys = calloc(2, sizeof(sg_key));
    FUZZ_CHECK(l->keys != NULL);
    snprintf(l->keys[0].name, sizeof(l->keys[0].name), "release-rsa");
    snprintf(l->keys[0].type, sizeof(l->keys[0].type), "rsa2048");
    memcpy(l->keys[0].id, "\x01\x02", 2);
    l->keys[0].id_len = 2;
    l->keys[0].public_key = dup_bytes(rsa.spki, rsa.spki_len);
    l->keys[0].public_key_len = rsa.spki_len;
    l->keys[0].cert = dup_bytes(rsa.cert, rsa.cert_len);
    l->keys[0].cert_len = rsa.cert_len;
    snprintf(l->keys[1].name, sizeof(l->keys[1].name), "release-ec");
    snprintf(l->keys[1].type, sizeof(l->keys[1].type), "ec-p256");
    memcpy(l->keys[1].id, "\x03", 1);
    l->keys[1].id_len = 1;
    l->keys[1].public_key = dup_bytes(ec.spki, ec.spki_len);
    l->keys[1].public_key_len = ec.spki_len;
    l->keys[1].chain_count = 1;
    l->keys[1].chain = calloc(1, sizeof(uint8_t *));
    l->keys[1].chain_len = calloc(1, sizeof(size_t));
    FUZZ_CHECK(l->keys[1].chain && l->keys[1].chain_len);
    l->keys[1].chain[0] = dup_bytes(rsa.cert, rsa.cert_len);
    l->keys[1].chain_len[0] = rsa.cert_len;
    *out = l;
    return SG_OK;
}

void sg_key_list_free(sg_key_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        sg_key *k = &list->keys[i];
        free(k->public_key);
        free(k->cert);
        for (size_t j = 0; j < k->chain_count; j++)
            free(k->chain[j]);
        free(k->chain);
        free(k->chain_len);
    }
    free(list->keys);
    free(list);
}

sg_status sg_sign(sg_client *c, const sg_sign_request *req, uint8_t *const *sigs, size_t *sig_lens)
{
    size_t want;
    unsigned sum = 0;
    FUZZ_CHECK(c && req && sigs && sig_lens && req->key && req->digests);
    FUZZ_CHECK(req->count >= 1 && req->count <= 64);
    FUZZ_CHECK(req->hash <= SG_HASH_SHA512 && req->mech <= SG_MECH_ECDSA);
    FUZZ_CHECK(strcmp(req->key, "release-rsa") == 0 || strcmp(req->key, "release-ec") == 0);
    FUZZ_CHECK((req->mech == SG_MECH_ECDSA) == (strcmp(req->key, "release-ec") == 0));
    for (size_t i = 0; i < req->count; i++) {
        /* Read every byte the agent would: ASan catches a digest shorter than its hash. */
        FUZZ_CHECK(req->digests[i] != NULL);
        for (size_t j = 0; j < sg_hash_len(req->hash); j++)
            sum += req->digests[i][j];
    }
    (void)sum;
    if (p11_stub.sign_status != SG_OK)
        return fail(p11_stub.sign_status);
    want = req->mech == SG_MECH_ECDSA ? 64 : 256;
    for (size_t i = 0; i < req->count; i++) {
        FUZZ_CHECK(sigs[i] != NULL);
        if (sig_lens[i] < want)
            return fail(SG_ERR_BUFFER_TOO_SMALL);
        memset(sigs[i], 0x5a, want);
        sig_lens[i] = want;
    }
    return SG_OK;
}

sg_status sg_login(sg_client *c, const char *secret)
{
    FUZZ_CHECK(c && secret && *secret && strlen(secret) <= 256);
    if (p11_stub.login_status != SG_OK)
        return fail(p11_stub.login_status);
    p11_stub.list_status = SG_OK; /* the agent holds credentials now */
    return SG_OK;
}

sg_status sg_status_get(sg_client *c, sg_agent_status *out)
{
    FUZZ_CHECK(c && out);
    memset(out, 0, sizeof(*out));
    snprintf(out->version, sizeof(out->version), "0.1.0");
    snprintf(out->identity, sizeof(out->identity), "user:fuzz");
    snprintf(out->server, sizeof(out->server), "https://127.0.0.1:1");
    out->logged_in = p11_stub.list_status == SG_OK;
    return SG_OK;
}
