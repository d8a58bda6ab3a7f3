/* The signing service (signing.c): the one path from a parsed sign request to a signature,
 * for a direct POST /api/v1/sign and for the collection of an approved request alike. It
 * looks up a stored answer of the request id first, then checks the key, decides policy
 * (grants, rules, quotas, time window, the caller's machine and address), makes the
 * signature in the HSM and commits its audit record with the idempotency record and the
 * quota count. The HTTP handlers (sign.c, approvals.c) only parse and answer. */
#ifndef SRV_API_SIGNING_H
#define SRV_API_SIGNING_H

#include "../policy/provenance.h"
#include "internal.h"

typedef struct api_sign_input api_sign_input;

/* Stores a signing job that policy allowed and answers 202 with its id (sign_jobs.c: it is
 * handed to the service in the input, so that the service does not call up into jobs). */
typedef void (*api_job_submit_fn)(api_call *c, api_sign_input *in, const srv_key *key,
                                  unsigned salt, const char *rule, const uint8_t fp[32]);

struct api_sign_input {
    const char *key_name;
    srv_mech mech;
    srv_hash hash;
    long long salt_len;
    int der_format;
    const char *request_id;
    uint8_t **digests; /* ndigests of them, malloc'd */
    size_t ndigests;
    int batch;
    int async; /* a signing job (POST /api/v1/sign/jobs): stored, signed by the workers */
    api_job_submit_fn submit; /* what stores it */
    cJSON *client;            /* advisory context reported by the client */
    srv_provenance prov;      /* build provenance and SBOM digest (policy/provenance.h) */
    const cJSON *gates;       /* the require rules the decision met (srv_policy_eval.gates) */
};

typedef srv_status (*api_sign_parse_fn)(const cJSON *body, api_sign_input *in, srv_error *err);

/* Parses and checks a sign request body (strings point into body). */
srv_status api_sign_parse(const cJSON *body, api_sign_input *in, srv_error *err);
/* Same for a signing job: "digests" only, up to API_JOB_MAX_DIGESTS of them. */
srv_status api_sign_parse_job(const cJSON *body, api_sign_input *in, srv_error *err);
void api_sign_input_free(api_sign_input *in);

/* Whether the key may sign n more signatures now (not disabled or suspended, its certificate
 * neither revoked nor expired, its usage limit not passed); signing.c, also used where a
 * job's chunk commits. */
srv_status api_sign_key_usable(srv_db *db, const srv_key *key, int64_t now, size_t n,
                               srv_error *err);

/* Adds what a signature's audit record says of its request (key, mechanism, hash, salt,
 * request id, the client's context, the request's machine and address) to d. */
void api_sign_describe(api_call *c, cJSON *d, const api_sign_input *in, const srv_key *key,
                       unsigned salt);

/* The handler of a sign request: parses the body with parse, then signs or refuses; a job
 * (submit set) is stored instead of signed. */
void api_sign_handle(api_call *c, api_sign_parse_fn parse, api_job_submit_fn submit);

/* Signs `in` for c's caller and replies to c. approval: NULL for a direct request, else the
 * approved request being collected (its approval stands in for the deciding rule's approval
 * condition; nothing else is skipped). */
void api_sign_service(api_call *c, api_sign_input *in, const srv_approval *approval);

/* Answers a refused sign request (with its denial record naming key, request id and rule). */
void api_sign_refuse(api_call *c, const api_sign_input *in, const srv_error *err, const char *rule);

#endif
