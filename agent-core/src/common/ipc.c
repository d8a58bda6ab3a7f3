/* Frame and field encoding for the agent's IPC protocol, with a cap on everything. */
#include "ipc.h"

#include <stdlib.h>
#include <string.h>

#include "signum/common/buf.h"

typedef enum { KIND_BYTES, KIND_TEXT, KIND_U32, KIND_U64, KIND_NESTED } field_kind;

static const struct {
    uint16_t tag;
    field_kind kind;
    uint32_t cap;
} field_caps[] = {
    {IPC_TAG_CODE, KIND_U32, 4},
    {IPC_TAG_MESSAGE, KIND_TEXT, 1024},
    {IPC_TAG_VERSION, KIND_TEXT, 64},
    {IPC_TAG_PID, KIND_U32, 4},
    {IPC_TAG_KEY, KIND_TEXT, 64},
    {IPC_TAG_KEY_ID, KIND_BYTES, 64},
    {IPC_TAG_KEY_TYPE, KIND_TEXT, 16},
    {IPC_TAG_PUBLIC_KEY, KIND_BYTES, 4096},
    {IPC_TAG_CERT, KIND_BYTES, 16384},
    {IPC_TAG_CHAIN, KIND_BYTES, 16384},
    {IPC_TAG_KEY_ENTRY, KIND_NESTED, 128 * 1024},
    {IPC_TAG_MECH, KIND_TEXT, 16},
    {IPC_TAG_HASH, KIND_TEXT, 16},
    {IPC_TAG_DIGEST, KIND_BYTES, 64},
    {IPC_TAG_SALT, KIND_U32, 4},
    {IPC_TAG_SIGNATURE, KIND_BYTES, 1024},
    {IPC_TAG_REQUEST_ID, KIND_TEXT, 128},
    {IPC_TAG_PROVENANCE, KIND_TEXT, IPC_PROVENANCE_MAX},
    {IPC_TAG_SECRET, KIND_TEXT, 256},
    {IPC_TAG_IDENTITY, KIND_TEXT, 128},
    {IPC_TAG_SERVER, KIND_TEXT, 512},
    {IPC_TAG_EXPIRES, KIND_U64, 8},
    {IPC_TAG_AUTH_METHOD, KIND_TEXT, 32},
    {IPC_TAG_LOGGED_IN, KIND_U32, 4},
    {IPC_TAG_APPLICATION, KIND_TEXT, 256},
    {IPC_TAG_AUDIT_ID, KIND_U64, 8},
    {IPC_TAG_COUNT, KIND_U32, 4},
    {IPC_TAG_METHOD, KIND_TEXT, 8},
    {IPC_TAG_PATH, KIND_TEXT, 512},
    {IPC_TAG_BODY, KIND_TEXT, IPC_API_BODY_MAX},
    {IPC_TAG_HTTP_STATUS, KIND_U32, 4},
    {IPC_TAG_ANSWER, KIND_TEXT, IPC_API_ANSWER_MAX},
};

/* An API answer and its status always fit one frame. */
_Static_assert(IPC_API_ANSWER_MAX + 64 <= IPC_MAX_PAYLOAD, "API answer cap exceeds a frame");
_Static_assert(IPC_API_BODY_MAX + 1024 <= IPC_MAX_PAYLOAD, "API body cap exceeds a frame");
_Static_assert(IPC_PROVENANCE_MAX + 64 * 1024 <= IPC_MAX_PAYLOAD, "provenance exceeds a frame");

static int lookup(uint16_t tag, field_kind *kind, uint32_t *cap)
{
    for (size_t i = 0; i < sizeof(field_caps) / sizeof(field_caps[0]); i++)
        if (field_caps[i].tag == tag) {
            *kind = field_caps[i].kind;
            *cap = field_caps[i].cap;
            return 1;
        }
    return 0;
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- writing ------------------------------------------------------------------------------ */

static int reserve(ipc_writer *w, size_t more)
{
    void *items = w->buf;
    if (w->failed)
        return 0;
    /* A frame is never larger than its header and IPC_MAX_PAYLOAD. */
    if (more > IPC_HEADER_LEN + IPC_MAX_PAYLOAD - w->len ||
        sgc_array_grow(&items, &w->cap, w->len + more, 1, IPC_HEADER_LEN + IPC_MAX_PAYLOAD) !=
            SGC_OK) {
        w->failed = 1;
        return 0;
    }
    w->buf = items;
    return 1;
}

void ipc_writer_init(ipc_writer *w, uint16_t type, uint32_t id)
{
    memset(w, 0, sizeof(*w));
    if (!reserve(w, IPC_HEADER_LEN))
        return;
    put_be32(w->buf, IPC_MAGIC);
    put_be16(w->buf + 4, IPC_VERSION);
    put_be16(w->buf + 6, type);
    put_be32(w->buf + 8, id);
    put_be32(w->buf + 12, 0);
    w->len = IPC_HEADER_LEN;
}

void ipc_writer_free(ipc_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

void ipc_put_bytes(ipc_writer *w, ipc_tag tag, const void *data, size_t len)
{
    field_kind kind;
    uint32_t cap;
    if (!lookup((uint16_t)tag, &kind, &cap) || len > cap || !reserve(w, 6 + len)) {
        w->failed = 1;
        return;
    }
    put_be16(w->buf + w->len, (uint16_t)tag);
    put_be32(w->buf + w->len + 2, (uint32_t)len);
    if (len)
        memcpy(w->buf + w->len + 6, data, len);
    w->len += 6 + len;
}

void ipc_put_text(ipc_writer *w, ipc_tag tag, const char *text)
{
    ipc_put_bytes(w, tag, text, strlen(text));
}

void ipc_put_u32(ipc_writer *w, ipc_tag tag, uint32_t v)
{
    uint8_t b[4];
    put_be32(b, v);
    ipc_put_bytes(w, tag, b, 4);
}

void ipc_put_u64(ipc_writer *w, ipc_tag tag, uint64_t v)
{
    uint8_t b[8];
    put_be32(b, (uint32_t)(v >> 32));
    put_be32(b + 4, (uint32_t)v);
    ipc_put_bytes(w, tag, b, 8);
}

size_t ipc_begin_nested(ipc_writer *w, ipc_tag tag)
{
    size_t mark = w->len;
    if (!reserve(w, 6))
        return 0;
    put_be16(w->buf + w->len, (uint16_t)tag);
    put_be32(w->buf + w->len + 2, 0);
    w->len += 6;
    return mark;
}

void ipc_end_nested(ipc_writer *w, size_t mark)
{
    field_kind kind;
    uint32_t cap;
    size_t inner;
    if (w->failed || mark < IPC_HEADER_LEN)
        return;
    inner = w->len - mark - 6;
    if (!lookup(be16(w->buf + mark), &kind, &cap) || inner > cap) {
        w->failed = 1;
        return;
    }
    put_be32(w->buf + mark + 2, (uint32_t)inner);
}

int ipc_writer_finish(ipc_writer *w)
{
    if (w->failed || !w->buf)
        return -1;
    put_be32(w->buf + 12, (uint32_t)(w->len - IPC_HEADER_LEN));
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

int ipc_parse_header(const uint8_t hdr[IPC_HEADER_LEN], ipc_header *out, const char **why)
{
    if (be32(hdr) != IPC_MAGIC) {
        *why = "bad magic: not a Signum agent frame";
        return -1;
    }
    out->version = be16(hdr + 4);
    out->type = be16(hdr + 6);
    out->id = be32(hdr + 8);
    out->length = be32(hdr + 12);
    if (out->version != IPC_VERSION) {
        *why = "unsupported protocol version";
        return -1;
    }
    if (out->length > IPC_MAX_PAYLOAD) {
        *why = "frame larger than the protocol allows";
        return -1;
    }
    return 0;
}

static int validate(const uint8_t *data, size_t len, int depth, unsigned *count, const char **why)
{
    size_t pos = 0;
    while (pos < len) {
        field_kind kind;
        uint32_t cap, flen;
        uint16_t tag;
        if (len - pos < 6) {
            *why = "truncated field header";
            return -1;
        }
        tag = be16(data + pos);
        flen = be32(data + pos + 2);
        if (++*count > IPC_MAX_FIELDS) {
            *why = "too many fields";
            return -1;
        }
        if (!lookup(tag, &kind, &cap)) {
            *why = "unknown field tag";
            return -1;
        }
        if (flen > cap || flen > len - pos - 6) {
            *why = "field longer than its cap or than the frame";
            return -1;
        }
        if ((kind == KIND_U32 && flen != 4) || (kind == KIND_U64 && flen != 8)) {
            *why = "integer field of the wrong size";
            return -1;
        }
        if (kind == KIND_TEXT && memchr(data + pos + 6, '\0', flen)) {
            *why = "text field holds a NUL byte";
            return -1;
        }
        if (kind == KIND_NESTED) {
            if (depth > 0) {
                *why = "nesting deeper than one level";
                return -1;
            }
            if (validate(data + pos + 6, flen, depth + 1, count, why) != 0)
                return -1;
        }
        pos += 6 + flen;
    }
    return 0;
}

int ipc_fields_validate(const uint8_t *data, size_t len, ipc_fields *out, const char **why)
{
    unsigned count = 0;
    if (validate(data, len, 0, &count, why) != 0)
        return -1;
    out->data = data;
    out->len = len;
    return 0;
}

int ipc_next(const ipc_fields *fs, size_t *pos, ipc_field *f)
{
    if (*pos + 6 > fs->len)
        return 0;
    f->tag = be16(fs->data + *pos);
    f->len = be32(fs->data + *pos + 2);
    f->value = fs->data + *pos + 6;
    *pos += 6 + f->len;
    return 1;
}

int ipc_find(const ipc_fields *fs, ipc_tag tag, ipc_field *f)
{
    size_t pos = 0;
    while (ipc_next(fs, &pos, f))
        if (f->tag == tag)
            return 1;
    return 0;
}

int ipc_get_text(const ipc_fields *fs, ipc_tag tag, char *out, size_t out_len)
{
    ipc_field f;
    if (!ipc_find(fs, tag, &f))
        return 0;
    if (f.len >= out_len)
        return -1;
    memcpy(out, f.value, f.len);
    out[f.len] = '\0';
    return 1;
}

int ipc_get_u32(const ipc_fields *fs, ipc_tag tag, uint32_t *out)
{
    ipc_field f;
    if (!ipc_find(fs, tag, &f) || f.len != 4)
        return 0;
    *out = be32(f.value);
    return 1;
}

int ipc_get_u64(const ipc_fields *fs, ipc_tag tag, uint64_t *out)
{
    ipc_field f;
    if (!ipc_find(fs, tag, &f) || f.len != 8)
        return 0;
    *out = (uint64_t)be32(f.value) << 32 | be32(f.value + 4);
    return 1;
}

int ipc_read_frame(ipc_fd fd, ipc_header *hdr, uint8_t **payload, int first_timeout_ms,
                   int rest_timeout_ms, const char **why)
{
    uint8_t raw[IPC_HEADER_LEN];
    uint8_t *body;
    int rc;

    *payload = NULL;
    /* The first byte may take long (an idle connection); once a frame has begun, the rest
     * must follow promptly, so a half-sent frame cannot hold a reader forever. */
    rc = ipc_read_all(fd, raw, 1, first_timeout_ms);
    if (rc != 0)
        return rc;
    rc = ipc_read_all(fd, raw + 1, IPC_HEADER_LEN - 1, rest_timeout_ms);
    if (rc != 0)
        return rc;
    if (ipc_parse_header(raw, hdr, why) != 0)
        return -3;
    body = malloc(hdr->length ? hdr->length : 1);
    if (!body) {
        *why = "out of memory";
        return -3;
    }
    rc = ipc_read_all(fd, body, hdr->length, rest_timeout_ms);
    if (rc != 0) {
        free(body);
        return rc;
    }
    *payload = body;
    return 0;
}
