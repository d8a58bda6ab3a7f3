/* The stub client library of the PKCS#11 harness (p11_stub_client.c): what the fuzzer lets
 * the "agent" answer. */
#ifndef SIGNUM_P11_STUB_CLIENT_H
#define SIGNUM_P11_STUB_CLIENT_H

#include "signum/client.h"
#include "signum/crypto.h"

typedef struct {
    sg_status list_status;  /* sg_list_keys: SG_OK, or not logged in, no agent... */
    sg_status sign_status;  /* sg_sign */
    sg_status login_status; /* sg_login */
} p11_stub_script;

extern p11_stub_script p11_stub;

/* Makes the keys and certificate once per process. */
void p11_stub_init(void);

#endif
