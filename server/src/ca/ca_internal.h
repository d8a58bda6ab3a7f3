/* What the built-in CA's files (ca.c, csr.c, chain.c, crl.c) share. */
#ifndef SRV_CA_INTERNAL_H
#define SRV_CA_INTERNAL_H

#include <openssl/x509.h>

#include "ca.h"

#define CLOCK_SKEW_SECS 300 /* certificates are back-dated this much */

/* RFC 4055 wants NULL parameters for RSA; RFC 5758 wants them absent for ECDSA. */
int srv_ca_set_sig_alg(X509_ALGOR *alg, int nid);
/* Whether pub encodes to exactly the DER SPKI given. */
int srv_ca_spki_equals(X509_PUBKEY *pub, const uint8_t *spki, size_t spki_len);
/* Checks that an HSM key description is usable for signing and that its SPKI really is a key
 * of its declared type; gives its public key and signature algorithm NID. */
srv_status srv_ca_check_hsm_key(const srv_hsm_key *key, EVP_PKEY **pub, int *sig_nid,
                                srv_error *err);
/* Validates a subject's common name (required) and organization (optional). */
srv_status srv_ca_check_subject(const char *common_name, const char *organization, srv_error *err);
X509_NAME *srv_ca_make_name(const char *common_name, const char *organization);

#endif
