/* Unit tests of the audit volume limits for unauthenticated refusals (audit/denials.h): the
 * burst per source and code, the per-source ceiling, the aggregated record written at stop as
 * a real record of the chain, and truncation on a UTF-8 character boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "audit/denials.h"
#include "test_util.h"

static char db_path[PATH_MAX + 32];

typedef struct {
    int n;
    cJSON *last; /* the last record's detail */
    char last_action[64];
} scan;

static int collect(const srv_audit_row *row, void *ctx)
{
    scan *s = ctx;
    cJSON *rec = cJSON_Parse(row->record);
    s->n++;
    cJSON_Delete(s->last);
    s->last = cJSON_DetachItemFromObject(rec, "detail");
    snprintf(s->last_action, sizeof(s->last_action), "%s", row->action);
    cJSON_Delete(rec);
    return 0;
}

static srv_writer *fresh_writer(void)
{
    srv_writer *w;
    char wal[PATH_MAX + 40];
    remove(db_path);
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    remove(wal);
    assert_int_equal(srv_writer_start(db_path, &w, NULL), SRV_OK);
    return w;
}

static void read_log(scan *s)
{
    srv_db *db;
    srv_audit_report rep;
    memset(s, 0, sizeof(*s));
    assert_int_equal(srv_db_open(db_path, 0, &db, NULL), SRV_OK);
    assert_int_equal(srv_audit_verify(db, &rep, NULL), SRV_OK);
    assert_int_equal(rep.first_bad, 0);
    assert_int_equal(srv_db_audit_iterate(db, 0, collect, s, NULL), SRV_OK);
    srv_db_close(db);
}

static void test_burst_then_one_aggregate(void **state)
{
    srv_writer *w = fresh_writer();
    srv_denials *d;
    scan s;
    (void)state;

    assert_int_equal(srv_denials_start(w, 3600, 2, &d, NULL), SRV_OK);
    /* The first two of a source and code are recorded one by one; the rest are counted. */
    assert_int_equal(srv_denials_admit(d, "192.0.2.1", "not_found", "http.request", "/a"), 1);
    assert_int_equal(srv_denials_admit(d, "192.0.2.1", "not_found", "http.request", "/b"), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(srv_denials_admit(d, "192.0.2.1", "not_found", "http.request", "/c"), 0);
    /* Another code or another source has its own burst. */
    assert_int_equal(srv_denials_admit(d, "192.0.2.1", "bad_credentials", "auth.token", "/t"), 1);
    assert_int_equal(srv_denials_admit(d, "192.0.2.2", "not_found", "http.request", "/a"), 1);
    /* Nothing was written by the aggregator yet; stopping flushes the one aggregate. */
    srv_denials_stop(d);
    srv_writer_stop(w);
    read_log(&s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.last_action, "audit.denials");
    assert_int_equal(cJSON_GetObjectItem(s.last, "count")->valueint, 5);
    assert_string_equal(cJSON_GetObjectItem(s.last, "peer")->valuestring, "192.0.2.1");
    assert_string_equal(cJSON_GetObjectItem(s.last, "code")->valuestring, "not_found");
    assert_string_equal(cJSON_GetObjectItem(s.last, "path")->valuestring, "/c");
    cJSON_Delete(s.last);
}

static void test_per_source_ceiling(void **state)
{
    srv_writer *w = fresh_writer();
    srv_denials *d;
    int individual = 0;
    scan s;
    (void)state;

    assert_int_equal(srv_denials_start(w, 3600, 2, &d, NULL), SRV_OK);
    /* Twenty codes from one source: at most 4 x burst = 8 individual records. */
    for (int i = 0; i < 20; i++) {
        char code[16];
        snprintf(code, sizeof(code), "code%d", i);
        individual += srv_denials_admit(d, "198.51.100.7", code, "http.request", "/");
    }
    assert_int_equal(individual, 8);
    srv_denials_stop(d);
    srv_writer_stop(w);
    read_log(&s);
    assert_int_equal(s.n, 12); /* one aggregate per code over the ceiling */
    cJSON_Delete(s.last);
}

static void test_truncation_on_a_character_boundary(void **state)
{
    /* "/" and 300 two-byte characters: 601 bytes. */
    char path[602];
    cJSON *d = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "list");
    const char *cut;
    (void)state;

    path[0] = '/';
    for (int i = 0; i < 300; i++) {
        path[1 + 2 * i] = (char)0xC3;
        path[2 + 2 * i] = (char)0xA9;
    }
    path[601] = '\0';
    cJSON_AddStringToObject(d, "path", path);
    cJSON_AddStringToObject(d, "short", "ok");
    cJSON_AddItemToArray(arr, cJSON_CreateString(path));
    srv_audit_truncate_strings(d, 256);
    cut = cJSON_GetObjectItem(d, "path")->valuestring;
    assert_int_equal(strlen(cut), 1 + 2 * 126 + 3);
    assert_memory_equal(cut, path, 1 + 2 * 126);
    assert_string_equal(cut + 1 + 2 * 126, "...");
    assert_int_equal(cJSON_GetObjectItem(d, "path_length")->valueint, 601);
    assert_string_equal(cJSON_GetObjectItem(d, "short")->valuestring, "ok");
    assert_null(cJSON_GetObjectItem(d, "short_length"));
    /* Strings in arrays are cut too (no name to give a length to). */
    assert_int_equal(strlen(cJSON_GetArrayItem(arr, 0)->valuestring), 256);
    cJSON_Delete(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_one_aggregate),
        cmocka_unit_test(test_per_source_ceiling),
        cmocka_unit_test(test_truncation_on_a_character_boundary),
    };
    snprintf(db_path, sizeof(db_path), "%s/denials.db", test_dir_make());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
