/* The schema's migrations for both engines; conn.c runs them. */
#include "schema.h"

#include "db.h"

/* SQLite: each entry brings the schema from version i to i+1, in one transaction. */
static const char *const sqlite_steps[] = {
    /* 0 -> 1 */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK(role IN ('admin','signer')), created_at INTEGER NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE api_keys(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
    " prefix TEXT NOT NULL UNIQUE, hash BLOB NOT NULL, created_at INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE access_tokens(hash BLOB PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES "
    "users(id),"
    " expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE keys(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, ckaid BLOB NOT NULL "
    "UNIQUE,"
    " type TEXT NOT NULL, spki BLOB NOT NULL, is_ca INTEGER NOT NULL DEFAULT 0,"
    " disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
    "CREATE TABLE certificates(key_id INTEGER PRIMARY KEY REFERENCES keys(id), der BLOB NOT NULL,"
    " chain_pem TEXT NOT NULL DEFAULT '', not_after INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE grants(key_id INTEGER NOT NULL REFERENCES keys(id),"
    " user_id INTEGER NOT NULL REFERENCES users(id), created_at INTEGER NOT NULL,"
    " PRIMARY KEY(key_id, user_id)) WITHOUT ROWID;"
    "CREATE TABLE sign_requests(user_id INTEGER NOT NULL, request_id TEXT NOT NULL,"
    " fingerprint BLOB NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY(user_id, request_id)) WITHOUT ROWID;"
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, outcome TEXT NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL);",
    /* 1 -> 2: service accounts, enrollment, machines (mTLS), token binding and revocation. */
    "ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'user'"
    " CHECK(kind IN ('user','service'));"
    "CREATE TABLE machines(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL, cert_sha256 BLOB UNIQUE, cert_serial TEXT,"
    " cert_not_after INTEGER, enrolled_at INTEGER, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE enrollment_tokens(hash BLOB PRIMARY KEY, user_id INTEGER REFERENCES users(id),"
    " machine_id INTEGER REFERENCES machines(id), expires_at INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, used_at INTEGER,"
    " CHECK((user_id IS NULL) <> (machine_id IS NULL))) WITHOUT ROWID;"
    "CREATE TABLE service_account_keys(kid TEXT PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id), spki BLOB NOT NULL,"
    " created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE used_jtis(user_id INTEGER NOT NULL REFERENCES users(id), jti TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL, PRIMARY KEY(user_id, jti)) WITHOUT ROWID;"
    "CREATE INDEX used_jtis_expiry ON used_jtis(expires_at);"
    "ALTER TABLE access_tokens ADD COLUMN machine_id INTEGER REFERENCES machines(id);"
    "CREATE INDEX access_tokens_user ON access_tokens(user_id);"
    "CREATE INDEX access_tokens_machine ON access_tokens(machine_id);",
    /* 2 -> 3: audit checkpoints signed by an HSM audit key, exporters' persistent cursors. */
    "CREATE TABLE audit_keys(id INTEGER PRIMARY KEY, ckaid BLOB NOT NULL UNIQUE,"
    " type TEXT NOT NULL, spki BLOB NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE audit_checkpoints(seq INTEGER PRIMARY KEY,"
    " key_id INTEGER NOT NULL REFERENCES audit_keys(id), payload TEXT NOT NULL,"
    " signature BLOB NOT NULL);"
    "CREATE TABLE export_cursors(sink TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 3 -> 4: policy rules (versioned), user and key groups, signature counts for quotas,
     * approval requests and their votes. */
    "CREATE TABLE policies(name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " document TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE policy_versions(name TEXT NOT NULL, version INTEGER NOT NULL, document TEXT,"
    " changed_at INTEGER NOT NULL, PRIMARY KEY(name, version)) WITHOUT ROWID;"
    "CREATE TABLE policy_groups(kind TEXT NOT NULL CHECK(kind IN ('user','key')),"
    " name TEXT NOT NULL, members TEXT NOT NULL, updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(kind, name)) WITHOUT ROWID;"
    "CREATE TABLE sign_usage(id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL REFERENCES users(id), key_id INTEGER NOT NULL REFERENCES keys(id),"
    " count INTEGER NOT NULL);"
    "CREATE INDEX sign_usage_key ON sign_usage(key_id, time);"
    "CREATE INDEX sign_usage_user ON sign_usage(user_id, time);"
    "CREATE TABLE approval_requests(id TEXT PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id), key_id INTEGER NOT NULL REFERENCES keys(id),"
    " rule TEXT NOT NULL, request TEXT NOT NULL, required INTEGER NOT NULL,"
    " approvers TEXT NOT NULL, status TEXT NOT NULL"
    " CHECK(status IN ('pending','approved','rejected','signed')),"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, response TEXT,"
    " decided_at INTEGER) WITHOUT ROWID;"
    "CREATE TABLE approval_votes(request_id TEXT NOT NULL REFERENCES approval_requests(id),"
    " approver TEXT NOT NULL, decision TEXT NOT NULL CHECK(decision IN ('approve','reject')),"
    " time INTEGER NOT NULL, PRIMARY KEY(request_id, approver)) WITHOUT ROWID;",
    /* 4 -> 5: the identity lifecycle: deleted identities, API keys' use and revocation time,
     * revocable enrolled keys, and what each access token was minted from. */
    "ALTER TABLE users ADD COLUMN deleted_at INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "ALTER TABLE service_account_keys ADD COLUMN revoked_at INTEGER;"
    "ALTER TABLE service_account_keys ADD COLUMN last_used_at INTEGER;"
    "ALTER TABLE access_tokens ADD COLUMN api_key_id INTEGER REFERENCES api_keys(id);"
    "ALTER TABLE access_tokens ADD COLUMN sa_kid TEXT;"
    "CREATE INDEX access_tokens_api_key ON access_tokens(api_key_id);",
    /* 5 -> 6: certificates the built-in CA revoked, and its current CRL. */
    "CREATE TABLE cert_revocations(serial TEXT PRIMARY KEY,"
    " key_id INTEGER NOT NULL REFERENCES keys(id), reason INTEGER NOT NULL,"
    " revoked_at INTEGER NOT NULL, not_after INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE crl(id INTEGER PRIMARY KEY CHECK(id = 1), number INTEGER NOT NULL,"
    " der BLOB NOT NULL, this_update INTEGER NOT NULL, next_update INTEGER NOT NULL);",
    /* 6 -> 7: the reason an approver gave for a rejection. */
    "ALTER TABLE approval_votes ADD COLUMN reason TEXT;",
    /* 7 -> 8: why and when a key was disabled (suspended), and the revocation of a key's
     * current certificate. */
    "ALTER TABLE keys ADD COLUMN disabled_reason TEXT;"
    "ALTER TABLE keys ADD COLUMN disabled_at INTEGER;"
    "ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;",
    /* 8 -> 9: usage counted per day, key and signer (one row updated per request, never a row
     * per signature), each key's total and its optional limit. */
    "CREATE TABLE usage_daily(day INTEGER NOT NULL, key_id INTEGER NOT NULL REFERENCES keys(id),"
    " user_id INTEGER NOT NULL REFERENCES users(id), signatures INTEGER NOT NULL DEFAULT 0,"
    " denials INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(day, key_id, user_id)) WITHOUT ROWID;"
    "CREATE INDEX usage_daily_key ON usage_daily(key_id, day);"
    "CREATE INDEX usage_daily_user ON usage_daily(user_id, day);"
    "ALTER TABLE keys ADD COLUMN signatures_total INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE keys ADD COLUMN usage_limit INTEGER;",
    /* 9 -> 10: key versions: a rotation keeps the earlier key (and its certificate, for
     * verification) until it is retired, which destroys it in the HSM. */
    "ALTER TABLE keys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE key_versions(key_id INTEGER NOT NULL REFERENCES keys(id),"
    " version INTEGER NOT NULL, ckaid BLOB NOT NULL UNIQUE, spki BLOB NOT NULL, cert_der BLOB,"
    " chain_pem TEXT, cert_not_after INTEGER, created_at INTEGER NOT NULL,"
    " rotated_at INTEGER NOT NULL, retired_at INTEGER, PRIMARY KEY(key_id, version))"
    " WITHOUT ROWID;",
    /* 10 -> 11: projects: a key belongs to at most one; members (a user, a service account or
     * a user group) hold roles in it (admin, signer, approver). */
    "CREATE TABLE projects(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);"
    "ALTER TABLE keys ADD COLUMN project_id INTEGER REFERENCES projects(id);"
    "CREATE INDEX keys_project ON keys(project_id);"
    "CREATE TABLE project_members(project_id INTEGER NOT NULL REFERENCES projects(id),"
    " role TEXT NOT NULL CHECK(role IN ('admin','signer','approver')),"
    " user_id INTEGER REFERENCES users(id), user_group TEXT, created_at INTEGER NOT NULL,"
    " CHECK((user_id IS NULL) <> (user_group IS NULL)));"
    "CREATE UNIQUE INDEX project_members_user ON project_members(project_id, role, user_id)"
    " WHERE user_id IS NOT NULL;"
    "CREATE UNIQUE INDEX project_members_group ON project_members(project_id, role, user_group)"
    " WHERE user_group IS NOT NULL;"
    "CREATE INDEX project_members_by_user ON project_members(user_id);",
    /* 11 -> 12: console sessions are access tokens carried in a cookie, with the hash of
     * their CSRF token and when they were last used (idle timeout); TOTP secrets of users
     * (the secret itself is in the HSM, by ckaid). */
    "ALTER TABLE access_tokens ADD COLUMN csrf_hash BLOB;"
    "ALTER TABLE access_tokens ADD COLUMN last_seen INTEGER;"
    "CREATE TABLE totp_secrets(user_id INTEGER PRIMARY KEY REFERENCES users(id),"
    " ckaid BLOB NOT NULL UNIQUE, enrollment_hash BLOB, created_at INTEGER NOT NULL,"
    " confirmed_at INTEGER, last_step INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0);",
    /* 12 -> 13: signatures and denials per hour (all keys: the dashboard's chart), and the
     * verified machine an approval request came from. */
    "CREATE TABLE usage_hourly(hour INTEGER PRIMARY KEY, signatures INTEGER NOT NULL DEFAULT 0,"
    " denials INTEGER NOT NULL DEFAULT 0);"
    "ALTER TABLE approval_requests ADD COLUMN machine TEXT;"
    "CREATE INDEX approval_requests_user ON approval_requests(user_id, created_at);",
    /* 13 -> 14: asynchronous signing jobs and their digests; workers on any node claim items
     * for a lease (claimed_by, lease_until) and store each signature with its audit seq. */
    "CREATE TABLE sign_jobs(id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
    " key_id INTEGER NOT NULL REFERENCES keys(id), key_name TEXT NOT NULL,"
    " key_type TEXT NOT NULL, ckaid BLOB NOT NULL, mechanism TEXT NOT NULL, hash TEXT NOT NULL,"
    " salt INTEGER NOT NULL, der_format INTEGER NOT NULL, actor TEXT NOT NULL,"
    " machine_id INTEGER, detail TEXT NOT NULL, status TEXT NOT NULL"
    " CHECK(status IN ('queued','running','done','failed')), total INTEGER NOT NULL,"
    " done INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL DEFAULT 0, error_code TEXT, error TEXT,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER)"
    " WITHOUT ROWID;"
    "CREATE INDEX sign_jobs_open ON sign_jobs(status, created_at);"
    "CREATE INDEX sign_jobs_user ON sign_jobs(user_id, status);"
    "CREATE TABLE sign_job_items(id INTEGER PRIMARY KEY,"
    " job_id TEXT NOT NULL REFERENCES sign_jobs(id), idx INTEGER NOT NULL,"
    " digest BLOB NOT NULL, signature BLOB, audit_seq INTEGER, claimed_by TEXT,"
    " lease_until INTEGER, UNIQUE(job_id, idx));"
    "CREATE INDEX sign_job_items_open ON sign_job_items(job_id, idx) WHERE signature IS NULL;",
    /* 14 -> 15: the time-stamping authority (RFC 3161): its HSM keys with their certificates,
     * one row per token issued (the serial numbers, never reused: AUTOINCREMENT), and the
     * token each audit checkpoint carries. */
    "CREATE TABLE tsa_keys(id INTEGER PRIMARY KEY, ckaid BLOB NOT NULL UNIQUE,"
    " type TEXT NOT NULL, spki BLOB NOT NULL, cert_der BLOB NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE tsa_tokens(serial INTEGER PRIMARY KEY AUTOINCREMENT,"
    " key_id INTEGER NOT NULL REFERENCES tsa_keys(id), gen_time_ms INTEGER NOT NULL,"
    " hash_alg TEXT NOT NULL, imprint BLOB NOT NULL, purpose TEXT NOT NULL"
    " CHECK(purpose IN ('request','checkpoint')), actor TEXT NOT NULL);"
    "CREATE INDEX tsa_tokens_time ON tsa_tokens(gen_time_ms);"
    "ALTER TABLE audit_checkpoints ADD COLUMN tsa_token BLOB;",
    /* 15 -> 16: the alerts outbox (alerts/alerts.h): every alert raised, its exact webhook
     * body, in order (id); dropped 1 when the outbox was full and webhooks skip it. */
    "CREATE TABLE alerts(id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,"
    " rule TEXT NOT NULL, subject TEXT NOT NULL, severity TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, dropped INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL);"
    "CREATE INDEX alerts_rule ON alerts(rule, subject, created_at);",
};
_Static_assert(sizeof(sqlite_steps) / sizeof(sqlite_steps[0]) == SRV_DB_SCHEMA_VERSION,
               "one migration per schema version");

/* PostgreSQL: the schema came to it at version 13, whole; each later version adds one step to
 * both lists. Text compares byte-wise (COLLATE "C"), as in SQLite, whatever the database's
 * locale; integers are BIGINT, blobs BYTEA, INTEGER PRIMARY KEY an identity column. */
#define T  "TEXT COLLATE \"C\""
#define I  "BIGINT"
#define ID "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
static const srv_schema_step pg_steps[] = {
    {13,
     "CREATE TABLE meta(key " T " PRIMARY KEY, value " T " NOT NULL);"
     "CREATE TABLE users(id " ID ", name " T " NOT NULL UNIQUE,"
     " role " T " NOT NULL CHECK(role IN ('admin','signer')), created_at " I " NOT NULL,"
     " disabled " I " NOT NULL DEFAULT 0, kind " T " NOT NULL DEFAULT 'user'"
     " CHECK(kind IN ('user','service')), deleted_at " I ");"
     "CREATE TABLE api_keys(id " ID ", user_id " I " NOT NULL REFERENCES users(id),"
     " prefix " T " NOT NULL UNIQUE, hash BYTEA NOT NULL, created_at " I " NOT NULL,"
     " revoked " I " NOT NULL DEFAULT 0, last_used_at " I ", revoked_at " I ");"
     "CREATE INDEX api_keys_user ON api_keys(user_id);"
     "CREATE TABLE machines(id " ID ", name " T " NOT NULL UNIQUE, created_at " I " NOT NULL,"
     " cert_sha256 BYTEA UNIQUE, cert_serial " T ", cert_not_after " I ", enrolled_at " I ","
     " revoked " I " NOT NULL DEFAULT 0);"
     "CREATE TABLE access_tokens(hash BYTEA PRIMARY KEY,"
     " user_id " I " NOT NULL REFERENCES users(id), expires_at " I " NOT NULL,"
     " revoked " I " NOT NULL DEFAULT 0, machine_id " I " REFERENCES machines(id),"
     " api_key_id " I " REFERENCES api_keys(id), sa_kid " T ", csrf_hash BYTEA,"
     " last_seen " I ");"
     "CREATE INDEX access_tokens_user ON access_tokens(user_id);"
     "CREATE INDEX access_tokens_machine ON access_tokens(machine_id);"
     "CREATE INDEX access_tokens_api_key ON access_tokens(api_key_id);"
     "CREATE TABLE projects(id " ID ", name " T " NOT NULL UNIQUE,"
     " description " T " NOT NULL DEFAULT '', created_at " I " NOT NULL);"
     "CREATE TABLE keys(id " ID ", name " T " NOT NULL UNIQUE, ckaid BYTEA NOT NULL UNIQUE,"
     " type " T " NOT NULL, spki BYTEA NOT NULL, is_ca " I " NOT NULL DEFAULT 0,"
     " disabled " I " NOT NULL DEFAULT 0, created_at " I " NOT NULL, disabled_reason " T ","
     " disabled_at " I ", signatures_total " I " NOT NULL DEFAULT 0, usage_limit " I ","
     " version " I " NOT NULL DEFAULT 1, project_id " I " REFERENCES projects(id));"
     "CREATE INDEX keys_project ON keys(project_id);"
     "CREATE TABLE certificates(key_id " I " PRIMARY KEY REFERENCES keys(id),"
     " der BYTEA NOT NULL, chain_pem " T " NOT NULL DEFAULT '', not_after " I " NOT NULL,"
     " created_at " I " NOT NULL, revoked_at " I ");"
     "CREATE TABLE grants(key_id " I " NOT NULL REFERENCES keys(id),"
     " user_id " I " NOT NULL REFERENCES users(id), created_at " I " NOT NULL,"
     " PRIMARY KEY(key_id, user_id));"
     "CREATE TABLE sign_requests(user_id " I " NOT NULL, request_id " T " NOT NULL,"
     " fingerprint BYTEA NOT NULL, response " T " NOT NULL, created_at " I " NOT NULL,"
     " PRIMARY KEY(user_id, request_id));"
     "CREATE TABLE audit(seq " I " PRIMARY KEY, time " T " NOT NULL, actor " T " NOT NULL,"
     " action " T " NOT NULL, outcome " T " NOT NULL, record " T " NOT NULL,"
     " hash " T " NOT NULL);"
     "CREATE TABLE enrollment_tokens(hash BYTEA PRIMARY KEY, user_id " I " REFERENCES users(id),"
     " machine_id " I " REFERENCES machines(id), expires_at " I " NOT NULL,"
     " created_at " I " NOT NULL, used_at " I ","
     " CHECK((user_id IS NULL) <> (machine_id IS NULL)));"
     "CREATE TABLE service_account_keys(kid " T " PRIMARY KEY,"
     " user_id " I " NOT NULL REFERENCES users(id), spki BYTEA NOT NULL,"
     " created_at " I " NOT NULL, revoked_at " I ", last_used_at " I ");"
     "CREATE TABLE used_jtis(user_id " I " NOT NULL REFERENCES users(id), jti " T " NOT NULL,"
     " expires_at " I " NOT NULL, PRIMARY KEY(user_id, jti));"
     "CREATE INDEX used_jtis_expiry ON used_jtis(expires_at);"
     "CREATE TABLE audit_keys(id " ID ", ckaid BYTEA NOT NULL UNIQUE, type " T " NOT NULL,"
     " spki BYTEA NOT NULL, created_at " I " NOT NULL);"
     "CREATE TABLE audit_checkpoints(seq " I " PRIMARY KEY,"
     " key_id " I " NOT NULL REFERENCES audit_keys(id), payload " T " NOT NULL,"
     " signature BYTEA NOT NULL);"
     "CREATE TABLE export_cursors(sink " T " PRIMARY KEY, seq " I " NOT NULL,"
     " updated_at " I " NOT NULL);"
     "CREATE TABLE policies(name " T " PRIMARY KEY, version " I " NOT NULL,"
     " document " T " NOT NULL, updated_at " I " NOT NULL);"
     "CREATE TABLE policy_versions(name " T " NOT NULL, version " I " NOT NULL, document " T ","
     " changed_at " I " NOT NULL, PRIMARY KEY(name, version));"
     "CREATE TABLE policy_groups(kind " T " NOT NULL CHECK(kind IN ('user','key')),"
     " name " T " NOT NULL, members " T " NOT NULL, updated_at " I " NOT NULL,"
     " PRIMARY KEY(kind, name));"
     "CREATE TABLE sign_usage(id " ID ", time " I " NOT NULL,"
     " user_id " I " NOT NULL REFERENCES users(id), key_id " I " NOT NULL REFERENCES keys(id),"
     " count " I " NOT NULL);"
     "CREATE INDEX sign_usage_key ON sign_usage(key_id, time);"
     "CREATE INDEX sign_usage_user ON sign_usage(user_id, time);"
     "CREATE TABLE approval_requests(id " T " PRIMARY KEY,"
     " user_id " I " NOT NULL REFERENCES users(id), key_id " I " NOT NULL REFERENCES keys(id),"
     " rule " T " NOT NULL, request " T " NOT NULL, required " I " NOT NULL,"
     " approvers " T " NOT NULL, status " T " NOT NULL"
     " CHECK(status IN ('pending','approved','rejected','signed')),"
     " created_at " I " NOT NULL, expires_at " I " NOT NULL, response " T ","
     " decided_at " I ", machine " T ");"
     "CREATE INDEX approval_requests_user ON approval_requests(user_id, created_at);"
     "CREATE TABLE approval_votes(request_id " T " NOT NULL REFERENCES approval_requests(id),"
     " approver " T " NOT NULL, decision " T " NOT NULL"
     " CHECK(decision IN ('approve','reject')), time " I " NOT NULL, reason " T ","
     " PRIMARY KEY(request_id, approver));"
     "CREATE TABLE cert_revocations(serial " T " PRIMARY KEY,"
     " key_id " I " NOT NULL REFERENCES keys(id), reason " I " NOT NULL,"
     " revoked_at " I " NOT NULL, not_after " I " NOT NULL);"
     "CREATE TABLE crl(id " I " PRIMARY KEY CHECK(id = 1), number " I " NOT NULL,"
     " der BYTEA NOT NULL, this_update " I " NOT NULL, next_update " I " NOT NULL);"
     "CREATE TABLE usage_daily(day " I " NOT NULL, key_id " I " NOT NULL REFERENCES keys(id),"
     " user_id " I " NOT NULL REFERENCES users(id), signatures " I " NOT NULL DEFAULT 0,"
     " denials " I " NOT NULL DEFAULT 0, PRIMARY KEY(day, key_id, user_id));"
     "CREATE INDEX usage_daily_key ON usage_daily(key_id, day);"
     "CREATE INDEX usage_daily_user ON usage_daily(user_id, day);"
     "CREATE TABLE key_versions(key_id " I " NOT NULL REFERENCES keys(id),"
     " version " I " NOT NULL, ckaid BYTEA NOT NULL UNIQUE, spki BYTEA NOT NULL,"
     " cert_der BYTEA, chain_pem " T ", cert_not_after " I ", created_at " I " NOT NULL,"
     " rotated_at " I " NOT NULL, retired_at " I ", PRIMARY KEY(key_id, version));"
     "CREATE TABLE project_members(project_id " I " NOT NULL REFERENCES projects(id),"
     " role " T " NOT NULL CHECK(role IN ('admin','signer','approver')),"
     " user_id " I " REFERENCES users(id), user_group " T ", created_at " I " NOT NULL,"
     " CHECK((user_id IS NULL) <> (user_group IS NULL)));"
     "CREATE UNIQUE INDEX project_members_user ON project_members(project_id, role, user_id)"
     " WHERE user_id IS NOT NULL;"
     "CREATE UNIQUE INDEX project_members_group ON project_members(project_id, role,"
     " user_group) WHERE user_group IS NOT NULL;"
     "CREATE INDEX project_members_by_user ON project_members(user_id);"
     "CREATE TABLE totp_secrets(user_id " I " PRIMARY KEY REFERENCES users(id),"
     " ckaid BYTEA NOT NULL UNIQUE, enrollment_hash BYTEA, created_at " I " NOT NULL,"
     " confirmed_at " I ", last_step " I " NOT NULL DEFAULT 0,"
     " failures " I " NOT NULL DEFAULT 0, locked_until " I " NOT NULL DEFAULT 0);"
     "CREATE TABLE usage_hourly(hour " I " PRIMARY KEY, signatures " I " NOT NULL DEFAULT 0,"
     " denials " I " NOT NULL DEFAULT 0);"},
    {14, "CREATE TABLE sign_jobs(id " T " PRIMARY KEY, user_id " I " NOT NULL REFERENCES users(id),"
         " key_id " I " NOT NULL REFERENCES keys(id), key_name " T " NOT NULL,"
         " key_type " T " NOT NULL, ckaid BYTEA NOT NULL, mechanism " T " NOT NULL,"
         " hash " T " NOT NULL, salt " I " NOT NULL, der_format " I " NOT NULL,"
         " actor " T " NOT NULL, machine_id " I ", detail " T " NOT NULL, status " T " NOT NULL"
         " CHECK(status IN ('queued','running','done','failed')), total " I " NOT NULL,"
         " done " I " NOT NULL DEFAULT 0, attempts " I " NOT NULL DEFAULT 0,"
         " next_attempt_at " I " NOT NULL DEFAULT 0, error_code " T ", error " T ","
         " created_at " I " NOT NULL, updated_at " I " NOT NULL, finished_at " I ");"
         "CREATE INDEX sign_jobs_open ON sign_jobs(status, created_at);"
         "CREATE INDEX sign_jobs_user ON sign_jobs(user_id, status);"
         "CREATE TABLE sign_job_items(id " ID ", job_id " T " NOT NULL REFERENCES sign_jobs(id),"
         " idx " I " NOT NULL, digest BYTEA NOT NULL, signature BYTEA, audit_seq " I ","
         " claimed_by " T ", lease_until " I ", UNIQUE(job_id, idx));"
         "CREATE INDEX sign_job_items_open ON sign_job_items(job_id, idx)"
         " WHERE signature IS NULL;"},
    {15, "CREATE TABLE tsa_keys(id " ID ", ckaid BYTEA NOT NULL UNIQUE, type " T " NOT NULL,"
         " spki BYTEA NOT NULL, cert_der BYTEA NOT NULL, created_at " I " NOT NULL);"
         "CREATE TABLE tsa_tokens(serial " ID ", key_id " I " NOT NULL REFERENCES tsa_keys(id),"
         " gen_time_ms " I " NOT NULL, hash_alg " T " NOT NULL, imprint BYTEA NOT NULL,"
         " purpose " T " NOT NULL CHECK(purpose IN ('request','checkpoint')),"
         " actor " T " NOT NULL);"
         "CREATE INDEX tsa_tokens_time ON tsa_tokens(gen_time_ms);"
         "ALTER TABLE audit_checkpoints ADD COLUMN tsa_token BYTEA;"},
    {16, "CREATE TABLE alerts(id " ID ", event_id " T " NOT NULL UNIQUE, rule " T " NOT NULL,"
         " subject " T " NOT NULL, severity " T " NOT NULL, created_at " I " NOT NULL,"
         " dropped " I " NOT NULL DEFAULT 0, body " T " NOT NULL);"
         "CREATE INDEX alerts_rule ON alerts(rule, subject, created_at);"},
};
#undef T
#undef I
#undef ID

const char *srv_schema_sqlite_step(int from)
{
    if (from < 0 || from >= (int)(sizeof(sqlite_steps) / sizeof(sqlite_steps[0])))
        return NULL;
    return sqlite_steps[from];
}

const srv_schema_step *srv_schema_pg_steps(size_t *count)
{
    *count = sizeof(pg_steps) / sizeof(pg_steps[0]);
    return pg_steps;
}
