/* Unit tests of the agent's IPC codec: round trips, caps, and refusal of malformed frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#ifdef _WIN32
#include <stdio.h>
#include <windows.h>
#else
#include <sys/socket.h>
#include <unistd.h>
#endif

#include "common/ipc.h"

static void test_roundtrip(void **state)
{
    uint8_t digest[32];
    ipc_writer w;
    ipc_header h;
    ipc_fields fs, inner;
    ipc_field f;
    const char *why = "";
    char text[65];
    uint32_t u = 0;
    uint64_t v = 0;
    size_t pos = 0, mark, n = 0;
    (void)state;

    memset(digest, 0xab, sizeof(digest));
    ipc_writer_init(&w, IPC_MSG_SIGN, 77);
    ipc_put_text(&w, IPC_TAG_KEY, "release");
    ipc_put_bytes(&w, IPC_TAG_DIGEST, digest, 32);
    ipc_put_bytes(&w, IPC_TAG_DIGEST, digest, 32);
    ipc_put_u32(&w, IPC_TAG_SALT, 32);
    ipc_put_u64(&w, IPC_TAG_EXPIRES, 0x0102030405060708ull);
    mark = ipc_begin_nested(&w, IPC_TAG_KEY_ENTRY);
    ipc_put_text(&w, IPC_TAG_KEY_TYPE, "ec-p256");
    ipc_end_nested(&w, mark);
    assert_int_equal(ipc_writer_finish(&w), 0);

    assert_int_equal(ipc_parse_header(w.buf, &h, &why), 0);
    assert_int_equal(h.type, IPC_MSG_SIGN);
    assert_int_equal(h.id, 77);
    assert_int_equal(h.length, w.len - IPC_HEADER_LEN);
    assert_int_equal(ipc_fields_validate(w.buf + IPC_HEADER_LEN, h.length, &fs, &why), 0);
    assert_int_equal(ipc_get_text(&fs, IPC_TAG_KEY, text, sizeof(text)), 1);
    assert_string_equal(text, "release");
    assert_int_equal(ipc_get_text(&fs, IPC_TAG_KEY, text, 7), -1); /* does not fit */
    assert_int_equal(ipc_get_text(&fs, IPC_TAG_MECH, text, sizeof(text)), 0);
    assert_int_equal(ipc_get_u32(&fs, IPC_TAG_SALT, &u), 1);
    assert_int_equal(u, 32);
    assert_int_equal(ipc_get_u64(&fs, IPC_TAG_EXPIRES, &v), 1);
    assert_true(v == 0x0102030405060708ull);
    while (ipc_next(&fs, &pos, &f))
        n += f.tag == IPC_TAG_DIGEST;
    assert_int_equal(n, 2);
    assert_int_equal(ipc_find(&fs, IPC_TAG_KEY_ENTRY, &f), 1);
    inner.data = f.value;
    inner.len = f.len;
    assert_int_equal(ipc_get_text(&inner, IPC_TAG_KEY_TYPE, text, sizeof(text)), 1);
    assert_string_equal(text, "ec-p256");
    ipc_writer_free(&w);
}

static void test_writer_caps(void **state)
{
    static uint8_t cert[16384];
    uint8_t big[70];
    ipc_writer w;
    (void)state;
    memset(big, 1, sizeof(big));
    ipc_writer_init(&w, IPC_MSG_SIGN, 1);
    ipc_put_bytes(&w, IPC_TAG_DIGEST, big, sizeof(big)); /* digest cap is 64 */
    assert_int_equal(ipc_writer_finish(&w), -1);
    ipc_writer_free(&w);
    ipc_writer_init(&w, IPC_MSG_SIGN, 1);
    ipc_put_bytes(&w, (ipc_tag)999, big, 1); /* unknown tag */
    assert_int_equal(ipc_writer_finish(&w), -1);
    ipc_writer_free(&w);
    ipc_writer_init(&w, IPC_MSG_LIST_KEYS, 1);
    /* One 16 KiB certificate more than the payload holds. */
    for (size_t i = 0; i <= IPC_MAX_PAYLOAD / sizeof(cert); i++)
        ipc_put_bytes(&w, IPC_TAG_CERT, cert, sizeof(cert));
    assert_int_equal(ipc_writer_finish(&w), -1);
    ipc_writer_free(&w);
}

/* An API call's body and answer: full-size ones fit one frame, one byte more is refused, and
 * a text field may hold no NUL. */
static void test_api_caps(void **state)
{
    char *text = malloc(IPC_API_ANSWER_MAX + 2);
    ipc_writer w;
    ipc_fields fs;
    ipc_field f;
    const char *why = "";
    uint32_t status = 0;
    (void)state;
    assert_non_null(text);
#define FILL(n) (memset(text, 'x', (n)), text[(n)] = '\0')
    FILL(IPC_API_BODY_MAX);
    ipc_writer_init(&w, IPC_MSG_API, 1);
    ipc_put_text(&w, IPC_TAG_METHOD, "DELETE");
    ipc_put_text(&w, IPC_TAG_PATH, "/api/v1/admin/policies/x");
    ipc_put_text(&w, IPC_TAG_BODY, text);
    assert_int_equal(ipc_writer_finish(&w), 0);
    assert_int_equal(ipc_fields_validate(w.buf + IPC_HEADER_LEN, w.len - IPC_HEADER_LEN, &fs, &why),
                     0);
    assert_true(ipc_find(&fs, IPC_TAG_BODY, &f));
    assert_int_equal(f.len, IPC_API_BODY_MAX);
    ipc_writer_free(&w);
    FILL(IPC_API_BODY_MAX + 1); /* one byte over */
    ipc_writer_init(&w, IPC_MSG_API, 1);
    ipc_put_text(&w, IPC_TAG_BODY, text);
    assert_int_equal(ipc_writer_finish(&w), -1);
    ipc_writer_free(&w);
    ipc_writer_init(&w, IPC_MSG_API, 1);
    ipc_put_text(&w, IPC_TAG_METHOD, "GETTTTTTT"); /* 9 > 8 */
    assert_int_equal(ipc_writer_finish(&w), -1);
    ipc_writer_free(&w);

    FILL(IPC_API_ANSWER_MAX);
    ipc_writer_init(&w, IPC_MSG_API | IPC_REPLY, 1);
    ipc_put_u32(&w, IPC_TAG_HTTP_STATUS, 200);
    ipc_put_text(&w, IPC_TAG_ANSWER, text);
    assert_int_equal(ipc_writer_finish(&w), 0);
    assert_int_equal(ipc_fields_validate(w.buf + IPC_HEADER_LEN, w.len - IPC_HEADER_LEN, &fs, &why),
                     0);
    assert_int_equal(ipc_get_u32(&fs, IPC_TAG_HTTP_STATUS, &status), 1);
    assert_int_equal(status, 200);
    ipc_writer_free(&w);
    FILL(IPC_API_ANSWER_MAX + 1);
    ipc_writer_init(&w, IPC_MSG_API | IPC_REPLY, 1);
    ipc_put_text(&w, IPC_TAG_ANSWER, text);
    assert_int_equal(ipc_writer_finish(&w), -1);
    ipc_writer_free(&w);

    /* A NUL inside the body is refused by the reader. */
    ipc_writer_init(&w, IPC_MSG_API, 1);
    ipc_put_bytes(&w, IPC_TAG_BODY, "{\"a\0\"}", 6);
    assert_int_equal(ipc_writer_finish(&w), 0);
    assert_int_equal(ipc_fields_validate(w.buf + IPC_HEADER_LEN, w.len - IPC_HEADER_LEN, &fs, &why),
                     -1);
    ipc_writer_free(&w);
    free(text);
#undef FILL
}

static void expect_invalid(const uint8_t *data, size_t len, const char *want)
{
    ipc_fields fs;
    const char *why = "";
    assert_int_equal(ipc_fields_validate(data, len, &fs, &why), -1);
    assert_non_null(strstr(why, want));
}

static void test_rejects_malformed_fields(void **state)
{
    static const uint8_t truncated[] = {0x00, 0x0a, 0x00};
    static const uint8_t unknown[] = {0x03, 0xe7, 0, 0, 0, 0};
    static const uint8_t too_long[] = {0x00, 0x0a, 0, 0, 0, 65, 'x'};
    static const uint8_t past_end[] = {0x00, 0x0a, 0, 0, 0, 9, 'x', 'y'};
    static const uint8_t bad_int[] = {0x00, 0x17, 0, 0, 0, 2, 0, 1};
    static const uint8_t nul_text[] = {0x00, 0x0a, 0, 0, 0, 3, 'a', 0, 'b'};
    /* KEY_ENTRY inside KEY_ENTRY */
    static const uint8_t nested2[] = {0x00, 0x10, 0, 0, 0, 6, 0x00, 0x10, 0, 0, 0, 0};
    (void)state;
    expect_invalid(truncated, sizeof(truncated), "truncated");
    expect_invalid(unknown, sizeof(unknown), "unknown");
    expect_invalid(too_long, sizeof(too_long), "longer");
    expect_invalid(past_end, sizeof(past_end), "longer");
    expect_invalid(bad_int, sizeof(bad_int), "integer");
    expect_invalid(nul_text, sizeof(nul_text), "NUL");
    expect_invalid(nested2, sizeof(nested2), "nesting");
}

static void test_field_count_cap(void **state)
{
    size_t n = IPC_MAX_FIELDS + 1, len = n * 10;
    uint8_t *data = calloc(1, len);
    ipc_fields fs;
    const char *why = "";
    (void)state;
    for (size_t i = 0; i < n; i++) {
        data[i * 10 + 1] = IPC_TAG_SALT; /* u32 fields: 6 + 4 bytes */
        data[i * 10 + 5] = 4;
    }
    assert_int_equal(ipc_fields_validate(data, len, &fs, &why), -1);
    assert_non_null(strstr(why, "too many"));
    assert_int_equal(ipc_fields_validate(data, len - 10, &fs, &why), 0);
    free(data);
}

static void test_headers(void **state)
{
    uint8_t hdr[IPC_HEADER_LEN] = {'S', 'G', 'N', '1', 0, 1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0};
    ipc_header h;
    const char *why = "";
    (void)state;
    assert_int_equal(ipc_parse_header(hdr, &h, &why), 0);
    hdr[0] = 'X';
    assert_int_equal(ipc_parse_header(hdr, &h, &why), -1);
    assert_non_null(strstr(why, "magic"));
    hdr[0] = 'S';
    hdr[5] = 2;
    assert_int_equal(ipc_parse_header(hdr, &h, &why), -1);
    assert_non_null(strstr(why, "version"));
    hdr[5] = 1;
    hdr[12] = 0x7f; /* length 2 GiB */
    assert_int_equal(ipc_parse_header(hdr, &h, &why), -1);
    assert_non_null(strstr(why, "larger"));
}

/* A connected pair of stream ends of the kind the agent and the client library use: a Unix
 * socket pair, or on Windows the two ends of an overlapped named pipe. */
#ifdef _WIN32
static int stream_pair(ipc_fd sv[2])
{
    char name[96];
    HANDLE server, client;
    snprintf(name, sizeof(name), "\\\\.\\pipe\\signum-test-%lu", GetCurrentProcessId());
    server =
        CreateNamedPipeA(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 4096, 4096, 0, NULL);
    if (server == INVALID_HANDLE_VALUE)
        return -1;
    client = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED, NULL);
    if (client == INVALID_HANDLE_VALUE) {
        CloseHandle(server);
        return -1;
    }
    sv[0] = (ipc_fd)server;
    sv[1] = (ipc_fd)client;
    return 0;
}
#else
static int stream_pair(ipc_fd sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
}
#endif

static void test_read_frame_timeouts(void **state)
{
    ipc_fd sv[2] = {0, 0};
    ipc_header h;
    uint8_t *payload = NULL;
    const char *why = "";
    static const uint8_t half[] = {'S', 'G', 'N', '1', 0, 1};
    (void)state;
    assert_int_equal(stream_pair(sv), 0);
    /* Nothing sent: the first-byte timeout fires. */
    assert_int_equal(ipc_read_frame(sv[0], &h, &payload, 50, 50, &why), -2);
    /* Half a header, then silence: the rest timeout fires rather than blocking forever. */
    assert_int_equal(ipc_write_all(sv[1], half, sizeof(half), 1000), 0);
    assert_int_equal(ipc_read_frame(sv[0], &h, &payload, 1000, 100, &why), -2);
    assert_null(payload);
    ipc_close(sv[1]);
    assert_int_equal(ipc_read_frame(sv[0], &h, &payload, 100, 100, &why), -1); /* EOF */
    ipc_close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_writer_caps),
        cmocka_unit_test(test_api_caps),
        cmocka_unit_test(test_rejects_malformed_fields),
        cmocka_unit_test(test_field_count_cap),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_read_frame_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
