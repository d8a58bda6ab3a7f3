/* Signed checkpoints of the audit chain: the head (seq and hash of a record) signed by an audit
 * key that lives in the HSM, chained to the previous checkpoint, plus a high-water mark kept in
 * the HSM so that cutting the log back to an older checkpoint is detected too. */
#ifndef SRV_AUDIT_CHECKPOINT_H
#define SRV_AUDIT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "../hsm/sig_encoding.h"
#include "../store/db.h"
#include "audit.h"

#define SRV_AUDIT_KEY_LABEL  "signum-audit"
#define SRV_AUDIT_MARK_LABEL "signum-audit-checkpoint"
#define SRV_CHECKPOINT_TYPE  "signum.audit.checkpoint/1"
#define SRV_AUDIT_KEY_PEM    "audit/audit-key.pem" /* in the state directory */

struct srv_tsa;

/* The audit key: its row, and enough to sign with it in the HSM. */
typedef struct {
    srv_hsm *hsm;
    srv_audit_key_row row; /* owns the SPKI */
    srv_hsm_key key;       /* points into row */
    char fingerprint[65];  /* SHA-256 of the SPKI, hex */
    /* When set, every checkpoint also carries a timestamp token of this TSA (tsa/tsa.h) over
     * its signature, and its payload names the TSA certificate ("tsa"), so a token removed
     * later is noticed. */
    const struct srv_tsa *tsa;
} srv_audit_signer;

/* The last checkpoint written: its seq (0 if none) and the SHA-256 of its payload. */
typedef struct {
    int64_t seq;
    char payload_hash[65];
} srv_checkpoint_state;

/* Generates an EC P-256 audit key in the HSM (sensitive, non-extractable, sign-only), stores
 * its public half and appends an `audit.key.create` record, inside the caller's transaction. */
srv_status srv_audit_key_create(srv_hsm *hsm, srv_db *db, srv_audit_head *head,
                                srv_audit_signer *out, srv_error *err);
/* Loads the newest audit key; SRV_E_NOT_FOUND if the database has none yet. */
srv_status srv_audit_signer_load(srv_hsm *hsm, srv_db *db, srv_audit_signer *out, srv_error *err);
void srv_audit_signer_clear(srv_audit_signer *s);

/* Writes the audit public key as PEM (for offline verification and pinning). */
srv_status srv_audit_key_write_pem(const srv_audit_signer *s, const char *path, srv_error *err);

/* The last checkpoint in the database (seq 0 if none). */
srv_status srv_checkpoint_last(srv_db *db, srv_checkpoint_state *out, srv_error *err);

/* Canonical payload of a checkpoint (caller frees). */
srv_status srv_checkpoint_payload(int64_t seq, const char *head_hash,
                                  const srv_checkpoint_state *prev, const char *key_fingerprint,
                                  const char *reason, int64_t time_ms, char **out, srv_error *err);

/* Same, naming the TSA certificate (SHA-256 hex) whose token the checkpoint carries; NULL for
 * none (the payload is then exactly srv_checkpoint_payload's). */
srv_status srv_checkpoint_payload_tsa(int64_t seq, const char *head_hash,
                                      const srv_checkpoint_state *prev, const char *key_fingerprint,
                                      const char *reason, int64_t time_ms, const char *tsa_fpr,
                                      char **out, srv_error *err);

/* Signs the chain head as a checkpoint following *last, inside the caller's transaction.
 * *next receives the new checkpoint; *last is not touched (the caller adopts next once the
 * transaction has committed). */
srv_status srv_checkpoint_write(srv_db *db, const srv_audit_signer *s, const srv_audit_head *head,
                                const char *reason, const srv_checkpoint_state *last,
                                srv_checkpoint_state *next, srv_error *err);

/* Stores a committed checkpoint as the HSM high-water mark. */
srv_status srv_checkpoint_mark(const srv_audit_signer *s, const srv_checkpoint_state *cp,
                               srv_error *err);

/* Checks one checkpoint against its key: the signature over the payload, and that the payload
 * names this seq, this key, and the previous checkpoint. Returns NULL if good, else why not.
 * *head_hash receives the record hash the checkpoint vouches for. */
const char *srv_checkpoint_check(const srv_checkpoint_row *cp, const uint8_t *spki, size_t spki_len,
                                 const srv_checkpoint_state *prev, char head_hash[65]);

typedef struct {
    const uint8_t *pinned_spki; /* optional: every checkpoint must be signed by this key */
    size_t pinned_spki_len;
    srv_hsm *hsm; /* optional: check the high-water mark kept in the HSM */
    /* optional: the CA the TSA certificate must chain to; without it timestamp tokens are
     * not checked (counted in tokens_unchecked) */
    struct x509_st *tsa_ca;
} srv_verify_options;

typedef struct {
    srv_audit_report chain; /* records, first_bad, reason: the first bad record */
    int64_t checkpoints;    /* checkpoints verified */
    int64_t last_checkpoint;
    int64_t last_record;
    int64_t unchecked;        /* records after the last checkpoint ("not yet checkpointed") */
    int mark_checked;         /* the HSM mark was read and matched */
    int64_t mark_seq;         /* the checkpoint the HSM mark names (0 if none) */
    char key_fingerprint[65]; /* key of the last checkpoint */
    int64_t timestamped;      /* checkpoints whose timestamp token verified */
    int64_t untimestamped;    /* checkpoints without one (made before the TSA existed) */
    int64_t tokens_unchecked; /* tokens not checked: no CA given */
    char tsa_fingerprint[65]; /* SHA-256 of the TSA certificate of the last token */
} srv_verify_report;

/* Verifies the chain, every checkpoint's signature and link, that each checkpoint matches the
 * chain at its seq, that no checkpoint (nor the HSM mark) lies beyond the end of the log. */
srv_status srv_audit_verify_full(srv_db *db, const srv_verify_options *opts,
                                 srv_verify_report *report, srv_error *err);

#endif
