/* The Signum client library: what every provider (PKCS#11, KSP, CSP, CTK) links. It talks to
 * the per-user signum-agent over local IPC and does local hashing; it has no TLS stack, no
 * JSON and no credentials of its own. Thread-safe; fork-safe (a child never reuses the
 * parent's connection). */
#ifndef SIGNUM_CLIENT_H
#define SIGNUM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One status for every provider to map into its own API (CKR_*, NTE_*, TKErrorCode*). */
typedef enum {
    SG_OK = 0,
    SG_ERR_AGENT_UNAVAILABLE, /* no agent and none could be started */
    SG_ERR_NOT_LOGGED_IN,     /* the agent has no usable credentials */
    SG_ERR_AUTH_FAILED,       /* the server refused the credentials */
    SG_ERR_DENIED,            /* the server refused this signature (grant, policy, disabled) */
    SG_ERR_KEY_NOT_FOUND,
    SG_ERR_NETWORK, /* no server reachable */
    SG_ERR_TIMEOUT,
    SG_ERR_SERVER,    /* the server failed (5xx, audit unavailable) */
    SG_ERR_HSM,       /* the HSM behind the server failed */
    SG_ERR_BAD_INPUT, /* the request itself was wrong (digest length, mechanism) */
    SG_ERR_PROTOCOL,  /* malformed IPC or server answer */
    SG_ERR_NOMEM,
    SG_ERR_BUFFER_TOO_SMALL,
    SG_ERR_UNSUPPORTED,
    SG_ERR_INTERNAL,
    /* A policy quota on the key or the caller is used up (HTTP 429 quota_exceeded): refused
     * for now, not retried. Last, so the values before it keep their IPC codes. */
    SG_ERR_QUOTA_EXCEEDED,
    SG_STATUS_COUNT
} sg_status;

/* A stable short name ("denied") and a human sentence for a status. */
const char *sg_status_name(sg_status st);

typedef enum { SG_HASH_SHA256, SG_HASH_SHA384, SG_HASH_SHA512 } sg_hash;
typedef enum { SG_MECH_RSA_PKCS1, SG_MECH_RSA_PSS, SG_MECH_ECDSA } sg_mech;

typedef struct sg_client sg_client;

typedef struct {
    const char *socket_path; /* NULL: the default per-user socket (see sg_default_socket) */
    int no_autostart;        /* 1: never start an agent (also SIGNUM_NO_AUTOSTART=1) */
    const char *application; /* what the caller says it is (advisory; the agent reads the
                                kernel's view of the calling process itself) */
    int timeout_ms;          /* per request; 0 means the default (60 s) */
} sg_client_options;

/* Creates a client; connections are made lazily and pooled (one per concurrent caller). */
sg_status sg_client_new(const sg_client_options *opts, sg_client **out);
void sg_client_free(sg_client *c);

/* The last error message of this thread's last failed call (never NULL, never a secret). */
const char *sg_last_error(void);

/* Default socket path: $SIGNUM_AGENT_SOCKET, else $XDG_RUNTIME_DIR/signum/agent.sock, else
 * /tmp/signum-<uid>/agent.sock. Returns 0, or -1 if it does not fit. */
int sg_default_socket(char *out, size_t out_len);

typedef struct {
    char name[65];
    uint8_t id[64];
    size_t id_len;
    char type[17];       /* rsa2048, rsa3072, rsa4096, ec-p256, ec-p384 */
    uint8_t *public_key; /* DER SubjectPublicKeyInfo */
    size_t public_key_len;
    uint8_t *cert; /* DER, may be NULL */
    size_t cert_len;
    size_t chain_count;
    uint8_t **chain; /* DER issuer certificates */
    size_t *chain_len;
} sg_key;

typedef struct {
    size_t count;
    sg_key *keys;
} sg_key_list;

sg_status sg_list_keys(sg_client *c, sg_key_list **out);
void sg_key_list_free(sg_key_list *list);

typedef struct {
    const char *key; /* key name */
    sg_mech mech;
    sg_hash hash;      /* the hash that made the digest(s) */
    unsigned salt_len; /* PSS only */
    int salt_default;  /* PSS: 1 = salt length equal to the hash length */
    size_t count;      /* digests in the batch, 1..64 */
    const uint8_t *const *digests;
    /* NULL, or the request's "provenance" as JSON object text (server/API.md): the build
     * provenance and SBOM digest a provenance rule may require. At most 512 KiB. */
    const char *provenance;
} sg_sign_request;

/* Signs count digests; sigs[i] must hold sig_len[i] bytes on entry, the length on return.
 * ECDSA signatures are raw r||s. */
sg_status sg_sign(sg_client *c, const sg_sign_request *req, uint8_t *const *sigs, size_t *sig_lens);

/* Signs one digest: the request each provider makes for one C_Sign, NCryptSignHash or
 * CryptSignHash. sig holds *sig_len bytes on entry, the length on return. */
static inline sg_status sg_sign_one(sg_client *c, const char *key, sg_mech mech, sg_hash hash,
                                    unsigned salt_len, const uint8_t *digest, uint8_t *sig,
                                    size_t *sig_len)
{
    const uint8_t *digests[1] = {digest};
    uint8_t *sigs[1] = {sig};
    sg_sign_request req = {key, mech, hash, salt_len, 0, 1, digests, NULL};
    return sg_sign(c, &req, sigs, sig_len);
}

/* Hands an API key to the agent (what a PKCS#11 PIN means for Signum). */
sg_status sg_login(sg_client *c, const char *secret);
sg_status sg_logout(sg_client *c);

typedef struct {
    char version[65];
    uint32_t pid;
    int logged_in;
    char identity[129];
    char server[513];
    char auth_method[33];
    uint64_t token_expires;
} sg_agent_status;

sg_status sg_status_get(sg_client *c, sg_agent_status *out);

/* One authenticated call to the server's API, made by the agent with the user's session (the
 * CLI never holds credentials of its own). The agent makes only the calls on its allow-list
 * (policies, policy set, user and key groups, approvals, polling one's own pending sign
 * request; agent-core/README.md) and refuses anything else with SG_ERR_DENIED before it
 * reaches the server. method: GET, POST, PUT or DELETE; path: from "/api/v1/", at most 512
 * bytes; body: JSON text or NULL, at most SG_API_BODY_MAX bytes. On SG_OK *http_status is the
 * server's status (an error answer is SG_OK too: the body says why) and *answer its body,
 * NUL-terminated, at most SG_API_ANSWER_MAX bytes; free it with sg_api_answer_free. */
#define SG_API_BODY_MAX   (1024 * 1024)
#define SG_API_ANSWER_MAX (1024 * 1024)
sg_status sg_api_call(sg_client *c, const char *method, const char *path, const char *body,
                      long *http_status, char **answer);
void sg_api_answer_free(char *answer);
/* Asks the agent to exit. */
sg_status sg_agent_shutdown(sg_client *c);

#ifdef __cplusplus
}
#endif

#endif
