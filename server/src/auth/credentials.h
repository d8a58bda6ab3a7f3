/* API keys and access tokens. Both are 256-bit random secrets; the server stores only their
 * SHA-256 (a slow hash adds nothing for secrets this strong). API keys carry a public prefix
 * so the server can find the row without a table scan: sgk_<12 hex>_<43 base64url>.
 * Access tokens are sgt_<43 base64url>, enrollment tokens sge_<43 base64url>. */
#ifndef SRV_CREDENTIALS_H
#define SRV_CREDENTIALS_H

#include <stdint.h>

#include "../common/status.h"

#define SRV_APIKEY_PREFIX_LEN 12
#define SRV_APIKEY_TEXT_MAX   64
#define SRV_TOKEN_TEXT_MAX    48

srv_status srv_apikey_new(char key[SRV_APIKEY_TEXT_MAX + 1], char prefix[SRV_APIKEY_PREFIX_LEN + 1],
                          uint8_t hash[32], srv_error *err);
/* Splits a presented key into its prefix and the hash of its secret; 0 if malformed. */
int srv_apikey_parse(const char *key, char prefix[SRV_APIKEY_PREFIX_LEN + 1], uint8_t hash[32]);

srv_status srv_token_new(char token[SRV_TOKEN_TEXT_MAX + 1], uint8_t hash[32], srv_error *err);
/* Hashes a presented token; 0 if it is not shaped like one of ours. */
int srv_token_parse(const char *token, uint8_t hash[32]);

/* One-time enrollment tokens for service accounts and machines: sge_<43 base64url>, stored as
 * the SHA-256 of the whole text like access tokens. */
srv_status srv_enroll_token_new(char token[SRV_TOKEN_TEXT_MAX + 1], uint8_t hash[32],
                                srv_error *err);
int srv_enroll_token_parse(const char *token, uint8_t hash[32]);

#endif
