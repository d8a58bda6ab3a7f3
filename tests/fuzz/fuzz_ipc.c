/* The agent's IPC decoder (agent-core/src/common/ipc.c): a frame as ipc_read_frame reads it
 * from a socket, the header check, field validation with caps and nesting, and the typed
 * getters the agent and the client library use. Property: a validated payload re-encoded
 * with the writer gives back the same bytes, so reader and writer agree on the format. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/ipc.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static const ipc_tag all_tags[] = {
    IPC_TAG_CODE,       IPC_TAG_MESSAGE,     IPC_TAG_VERSION,   IPC_TAG_PID,
    IPC_TAG_KEY,        IPC_TAG_KEY_ID,      IPC_TAG_KEY_TYPE,  IPC_TAG_PUBLIC_KEY,
    IPC_TAG_CERT,       IPC_TAG_CHAIN,       IPC_TAG_KEY_ENTRY, IPC_TAG_MECH,
    IPC_TAG_HASH,       IPC_TAG_DIGEST,      IPC_TAG_SALT,      IPC_TAG_SIGNATURE,
    IPC_TAG_REQUEST_ID, IPC_TAG_SECRET,      IPC_TAG_IDENTITY,  IPC_TAG_SERVER,
    IPC_TAG_EXPIRES,    IPC_TAG_AUTH_METHOD, IPC_TAG_LOGGED_IN, IPC_TAG_APPLICATION,
    IPC_TAG_AUDIT_ID,   IPC_TAG_COUNT,       IPC_TAG_METHOD,    IPC_TAG_PATH,
    IPC_TAG_BODY,       IPC_TAG_HTTP_STATUS, IPC_TAG_ANSWER,
};

/* Every getter on every tag, the way the agent's handlers pick fields out. */
static void getters(const ipc_fields *fs)
{
    char text[1025];
    for (size_t i = 0; i < sizeof(all_tags) / sizeof(all_tags[0]); i++) {
        ipc_field f;
        uint32_t u32;
        uint64_t u64;
        int rc = ipc_get_text(fs, all_tags[i], text, sizeof(text));
        if (rc == 1)
            FUZZ_CHECK(strlen(text) < sizeof(text));
        if (ipc_find(fs, all_tags[i], &f))
            FUZZ_CHECK(f.tag == all_tags[i] && f.value >= fs->data &&
                       f.value + f.len <= fs->data + fs->len);
        (void)ipc_get_u32(fs, all_tags[i], &u32);
        (void)ipc_get_u64(fs, all_tags[i], &u64);
    }
}

/* Re-encodes validated fields; nested entries are walked like the client's parse_key. */
static void reencode(ipc_writer *w, const ipc_fields *fs, int depth)
{
    size_t pos = 0;
    ipc_field f;
    while (ipc_next(fs, &pos, &f)) {
        FUZZ_CHECK(f.value + f.len <= fs->data + fs->len);
        if (f.tag == IPC_TAG_KEY_ENTRY) {
            ipc_fields inner;
            const char *why = NULL;
            size_t mark;
            FUZZ_CHECK(depth == 0);
            FUZZ_CHECK(ipc_fields_validate(f.value, f.len, &inner, &why) == 0);
            getters(&inner);
            mark = ipc_begin_nested(w, IPC_TAG_KEY_ENTRY);
            reencode(w, &inner, depth + 1);
            ipc_end_nested(w, mark);
        } else {
            ipc_put_bytes(w, (ipc_tag)f.tag, f.value, f.len);
        }
    }
}

/* The frame reader on a real socket: what an agent or client reads is what was sent. */
static void read_frame(const uint8_t *data, size_t size)
{
    int sv[2];
    ipc_header hdr;
    uint8_t *payload = NULL;
    const char *why = NULL;
    int rc;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return;
    /* -max_len keeps the input well under a socket buffer: the write never blocks. */
    if (size && write(sv[0], data, size) != (ssize_t)size)
        goto out;
    shutdown(sv[0], SHUT_WR);
    rc = ipc_read_frame(sv[1], &hdr, &payload, 1000, 1000, &why);
    if (rc == 0) {
        FUZZ_CHECK(size >= IPC_HEADER_LEN + (size_t)hdr.length);
        FUZZ_CHECK(hdr.length == 0 || memcmp(payload, data + IPC_HEADER_LEN, hdr.length) == 0);
    } else {
        FUZZ_CHECK(payload == NULL);
        FUZZ_CHECK(rc == -1 || (rc == -3 && why));
    }
out:
    free(payload);
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ipc_header hdr;
    ipc_fields fs;
    ipc_writer w;
    const char *why = NULL;
    const uint8_t *payload;
    size_t len;

    read_frame(data, size);
    if (size < IPC_HEADER_LEN)
        return 0;
    if (ipc_parse_header(data, &hdr, &why) != 0) {
        FUZZ_CHECK(why != NULL);
        return 0;
    }
    FUZZ_CHECK(hdr.version == IPC_VERSION && hdr.length <= IPC_MAX_PAYLOAD);
    /* The fields as the header frames them, or what is there if the input is short. */
    payload = data + IPC_HEADER_LEN;
    len = size - IPC_HEADER_LEN;
    if (hdr.length < len)
        len = hdr.length;
    if (ipc_fields_validate(payload, len, &fs, &why) != 0) {
        FUZZ_CHECK(why != NULL);
        return 0;
    }
    getters(&fs);
    ipc_writer_init(&w, hdr.type, hdr.id);
    reencode(&w, &fs, 0);
    FUZZ_CHECK(ipc_writer_finish(&w) == 0);
    FUZZ_CHECK(w.len == IPC_HEADER_LEN + len);
    FUZZ_CHECK(memcmp(w.buf + IPC_HEADER_LEN, payload, len) == 0);
    if (len == hdr.length)
        FUZZ_CHECK(memcmp(w.buf, data, IPC_HEADER_LEN) == 0);
    ipc_writer_free(&w);
    return 0;
}
