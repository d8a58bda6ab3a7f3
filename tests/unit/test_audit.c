/* Unit tests of the audit chain: canonical records, hashing, and verification catching edits,
 * deletions and reordering in a real SQLite file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "common/b64.h"
#include "common/util.h"
#include "test_util.h"

static char db_path[PATH_MAX + 32];

static void test_canonical(void **state)
{
    cJSON *obj = cJSON_Parse("{\"z\":1,\"a\":{\"y\":[{\"k\":1,\"b\":2}],\"c\":null},\"m\":\"x\"}");
    char *text;
    (void)state;
    srv_audit_canonicalize(obj);
    text = cJSON_PrintUnformatted(obj);
    assert_string_equal(text, "{\"a\":{\"c\":null,\"y\":[{\"b\":2,\"k\":1}]},\"m\":\"x\",\"z\":1}");
    /* cJSON's prev links stay valid: appending after sorting lands at the end. */
    cJSON_AddNumberToObject(obj, "zz", 2);
    free(text);
    text = cJSON_PrintUnformatted(obj);
    assert_non_null(strstr(text, ",\"zz\":2}"));
    free(text);
    cJSON_Delete(obj);
}

static void test_build_is_deterministic(void **state)
{
    cJSON *d1 = cJSON_Parse("{\"b\":1,\"a\":2}"), *d2 = cJSON_Parse("{\"a\":2,\"b\":1}");
    srv_audit_event e1 = {1795351113000, "user:a", "sign", "allowed", d1};
    srv_audit_event e2 = {1795351113000, "user:a", "sign", "allowed", d2};
    char *r1, *r2, h1[65], h2[65], t[32], zero[65];
    (void)state;
    memset(zero, '0', 64);
    zero[64] = 0;
    assert_int_equal(srv_audit_build(1, zero, &e1, &r1, h1, t, NULL), SRV_OK);
    assert_int_equal(srv_audit_build(1, zero, &e2, &r2, h2, t, NULL), SRV_OK);
    assert_string_equal(r1, r2);
    assert_string_equal(h1, h2);
    assert_string_equal(r1,
                        "{\"action\":\"sign\",\"actor\":\"user:a\",\"detail\":{\"a\":2,\"b\":1},"
                        "\"outcome\":\"allowed\",\"prev\":\"0000000000000000000000000000000000"
                        "000000000000000000000000000000\",\"seq\":1,"
                        "\"time\":\"2026-11-22T12:38:33.000Z\"}");
    /* The caller's detail is not modified. */
    assert_string_equal(d1->child->string, "b");
    free(r1);
    free(r2);
    cJSON_Delete(d1);
    cJSON_Delete(d2);
}

/* Writes n records to a fresh database with the real append path. */
static void make_chain(int n)
{
    srv_db *db;
    srv_audit_head head = {0, ""};
    memset(head.hash, '0', 64);
    remove(db_path);
    assert_int_equal(srv_db_open(db_path, 1, &db, NULL), SRV_OK);
    assert_int_equal(srv_db_exec(db, "BEGIN", NULL), SRV_OK);
    for (int i = 0; i < n; i++) {
        cJSON *d = cJSON_CreateObject();
        srv_audit_event ev = {0, "user:t", "sign", "allowed", d};
        cJSON_AddNumberToObject(d, "i", i);
        assert_int_equal(srv_audit_append(db, &head, &ev, NULL), SRV_OK);
        assert_int_equal(head.seq, i + 1);
        cJSON_Delete(d);
    }
    assert_int_equal(srv_db_exec(db, "COMMIT", NULL), SRV_OK);
    srv_db_close(db);
}

static void tamper(const char *sql)
{
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(db_path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_true(sqlite3_changes(raw) > 0);
    sqlite3_close(raw);
}

static int64_t verify(srv_audit_report *rep)
{
    srv_db *db;
    assert_int_equal(srv_db_open(db_path, 0, &db, NULL), SRV_OK);
    assert_int_equal(srv_audit_verify(db, rep, NULL), SRV_OK);
    srv_db_close(db);
    return rep->first_bad;
}

static void test_verify_intact(void **state)
{
    srv_audit_report rep;
    (void)state;
    make_chain(10);
    assert_int_equal(verify(&rep), 0);
    assert_int_equal(rep.records, 10);
}

static void test_verify_catches_edit(void **state)
{
    srv_audit_report rep;
    (void)state;
    make_chain(10);
    tamper("UPDATE audit SET record = replace(record, '\"i\":4', '\"i\":9') WHERE seq = 5");
    assert_int_equal(verify(&rep), 5);
    assert_non_null(strstr(rep.reason, "edited"));
    assert_int_equal(rep.records, 4);

    /* Editing a column and leaving the record alone is caught too. */
    make_chain(10);
    tamper("UPDATE audit SET actor = 'user:someone-else' WHERE seq = 7");
    assert_int_equal(verify(&rep), 7);

    /* Rewriting a record and recomputing its own hash breaks the next record's link. */
    make_chain(10);
    {
        sqlite3 *raw;
        sqlite3_stmt *st;
        char record[1024], hex[65];
        uint8_t digest[32];
        assert_int_equal(sqlite3_open(db_path, &raw), SQLITE_OK);
        assert_int_equal(
            sqlite3_prepare_v2(raw, "SELECT record FROM audit WHERE seq = 3", -1, &st, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        snprintf(record, sizeof(record), "%s", sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        strstr(record, "\"i\":2")[4] = '8'; /* forge the detail, keep seq and prev */
        srv_sha256(record, strlen(record), digest);
        srv_hex_encode(digest, 32, hex);
        assert_int_equal(sqlite3_prepare_v2(raw,
                                            "UPDATE audit SET record = ?1, hash = ?2 WHERE seq = 3",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, record, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hex, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        sqlite3_close(raw);
    }
    assert_int_equal(verify(&rep), 4); /* record 3 is self-consistent; 4's link is not */
    assert_non_null(strstr(rep.reason, "previous-hash"));
}

static void test_verify_catches_delete_and_reorder(void **state)
{
    srv_audit_report rep;
    (void)state;
    make_chain(10);
    tamper("DELETE FROM audit WHERE seq = 6");
    assert_int_equal(verify(&rep), 6);
    assert_non_null(strstr(rep.reason, "missing"));

    make_chain(10);
    tamper("UPDATE audit SET seq = -3 WHERE seq = 3;"
           "UPDATE audit SET seq = 3 WHERE seq = 4;"
           "UPDATE audit SET seq = 4 WHERE seq = -3");
    assert_int_equal(verify(&rep), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_build_is_deterministic),
        cmocka_unit_test(test_verify_intact),
        cmocka_unit_test(test_verify_catches_edit),
        cmocka_unit_test(test_verify_catches_delete_and_reorder),
    };
    snprintf(db_path, sizeof(db_path), "%s/audit.db", test_dir_make());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
