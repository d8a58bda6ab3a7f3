/* The signing service (signing.c): the one path from a parsed sign request to a signature,
 * for a direct POST /api/v1/sign and for the collection of an approved request alike. It
 * looks up a stored answer of the request id first, then checks the key, decides policy
 * (grants, rules, quotas, time window, the caller's machine and address), makes the
 * signature in the HSM and commits its audit record with the idempotency record and the
 * quota count. The HTTP handlers (sign.c, approvals.c) only parse and answer. */
#ifndef SRV_API_SIGNING_H
#define SRV_API_SIGNING_H

#include "internal.h"

typedef struct {
    const char *key_name;
    srv_mech mech;
    srv_hash hash;
    long long salt_len;
    int der_format;
    const char *request_id;
    uint8_t *digests[API_MAX_BATCH];
    size_t ndigests;
    int batch;
    cJSON *client; /* advisory context reported by the client */
} api_sign_input;

/* Parses and checks a sign request body (strings point into body). */
srv_status api_sign_parse(const cJSON *body, api_sign_input *in, srv_error *err);
void api_sign_input_free(api_sign_input *in);

/* Signs `in` for c's caller and replies to c. approval: NULL for a direct request, else the
 * approved request being collected (its approval stands in for the deciding rule's approval
 * condition; nothing else is skipped). */
void api_sign_service(api_call *c, api_sign_input *in, const srv_approval *approval);

/* Answers a refused sign request (with its denial record naming key, request id and rule). */
void api_sign_refuse(api_call *c, const api_sign_input *in, const srv_error *err, const char *rule);

#endif
