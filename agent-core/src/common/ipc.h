/* The agent's local IPC protocol, version 1: length-prefixed frames of typed, bounded fields.
 *
 * Frame: 16-byte header, then `length` bytes of payload, all integers big-endian:
 *   u32 magic "SGN1" | u16 version | u16 type | u32 id | u32 length
 * Payload: fields, each u16 tag | u32 length | bytes. A field's tag fixes its kind and its cap
 * (ipc_field_caps in ipc.c); unknown tags are refused, so a field can never be larger than
 * its cap and a frame never larger than IPC_MAX_PAYLOAD. A reply has type (request | 0x8000);
 * an error reply is IPC_MSG_ERROR with CODE and MESSAGE. */
#ifndef SG_IPC_H
#define SG_IPC_H

#include <stddef.h>
#include <stdint.h>

#define IPC_MAGIC       0x53474e31u /* "SGN1" */
#define IPC_VERSION     1
#define IPC_HEADER_LEN  16
#define IPC_MAX_PAYLOAD (1088 * 1024) /* IPC_API_BODY_MAX or _ANSWER_MAX and the other fields */
#define IPC_MAX_FIELDS  1024
#define IPC_REPLY       0x8000

typedef enum {
    IPC_MSG_HELLO = 1,
    IPC_MSG_STATUS = 2,
    IPC_MSG_LIST_KEYS = 3,
    IPC_MSG_SIGN = 4,
    IPC_MSG_LOGIN = 5,
    IPC_MSG_LOGOUT = 6,
    IPC_MSG_SHUTDOWN = 7,
    IPC_MSG_API = 8, /* one allow-listed, authenticated API call made by the agent for the user */
    IPC_MSG_ERROR = 0xffff
} ipc_msg_type;

typedef enum {
    IPC_TAG_CODE = 1,         /* u32: sg_status */
    IPC_TAG_MESSAGE = 2,      /* text <= 1024 */
    IPC_TAG_VERSION = 3,      /* text <= 64 */
    IPC_TAG_PID = 4,          /* u32 */
    IPC_TAG_KEY = 10,         /* text <= 64: key name */
    IPC_TAG_KEY_ID = 11,      /* bytes <= 64: CKA_ID */
    IPC_TAG_KEY_TYPE = 12,    /* text <= 16 */
    IPC_TAG_PUBLIC_KEY = 13,  /* bytes <= 4096: DER SubjectPublicKeyInfo */
    IPC_TAG_CERT = 14,        /* bytes <= 16384: DER certificate */
    IPC_TAG_CHAIN = 15,       /* bytes <= 16384, repeated: DER issuer certificates */
    IPC_TAG_KEY_ENTRY = 16,   /* nested fields <= 128 KiB, repeated: one key */
    IPC_TAG_MECH = 20,        /* text <= 16: rsa-pkcs1 | rsa-pss | ecdsa */
    IPC_TAG_HASH = 21,        /* text <= 16: sha256 | sha384 | sha512 */
    IPC_TAG_DIGEST = 22,      /* bytes <= 64, repeated (batch) */
    IPC_TAG_SALT = 23,        /* u32: PSS salt length */
    IPC_TAG_SIGNATURE = 25,   /* bytes <= 1024, repeated */
    IPC_TAG_REQUEST_ID = 26,  /* text <= 128: makes a retried sign idempotent at the server */
    IPC_TAG_PROVENANCE = 27,  /* text <= IPC_PROVENANCE_MAX: a sign request's provenance (JSON) */
    IPC_TAG_SECRET = 30,      /* text <= 256: an API key handed to the agent */
    IPC_TAG_IDENTITY = 31,    /* text <= 128: who the agent is logged in as */
    IPC_TAG_SERVER = 32,      /* text <= 512: server URL in use */
    IPC_TAG_EXPIRES = 33,     /* u64: access token expiry (unix seconds), 0 if none */
    IPC_TAG_AUTH_METHOD = 34, /* text <= 32 */
    IPC_TAG_LOGGED_IN = 35,   /* u32: 1 if the agent holds a valid access token */
    IPC_TAG_APPLICATION = 40, /* text <= 256: what the client says it is (advisory) */
    IPC_TAG_AUDIT_ID = 41,    /* u64 */
    IPC_TAG_COUNT = 42,       /* u32 */
    IPC_TAG_METHOD = 50,      /* text <= 8: HTTP method of an API call */
    IPC_TAG_PATH = 51,        /* text <= 512: path of an API call, from /api/v1/ */
    IPC_TAG_BODY = 52,        /* text <= IPC_API_BODY_MAX: JSON body of an API call */
    IPC_TAG_HTTP_STATUS = 53, /* u32: the server's HTTP status */
    IPC_TAG_ANSWER = 54       /* text <= IPC_API_ANSWER_MAX: the server's answer body */
} ipc_tag;

/* Caps of an API call's body and answer; both fit one frame with room for the other fields.
 * The body takes a signing job of 20000 SHA-256 digests (about 940 KB of JSON, within the
 * server's default max_body of 1 MiB); the answer a page of 1000 RSA-4096 signatures (about
 * 690 KB of base64). */
#define IPC_API_BODY_MAX   (1024 * 1024)
#define IPC_API_ANSWER_MAX (1024 * 1024)
/* A sign request's "provenance" object: a DSSE envelope of up to 256 KiB in base64, and the
 * digests and ID token that go with it (the server takes 256 KiB of envelope). */
#define IPC_PROVENANCE_MAX (512 * 1024)

/* A growing frame being built; cap enforced on every append. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int failed; /* set when an append would exceed a cap or allocation failed */
} ipc_writer;

void ipc_writer_init(ipc_writer *w, uint16_t type, uint32_t id);
void ipc_writer_free(ipc_writer *w);
void ipc_put_bytes(ipc_writer *w, ipc_tag tag, const void *data, size_t len);
void ipc_put_text(ipc_writer *w, ipc_tag tag, const char *text);
void ipc_put_u32(ipc_writer *w, ipc_tag tag, uint32_t v);
void ipc_put_u64(ipc_writer *w, ipc_tag tag, uint64_t v);
/* Nested fields: begin returns a mark; end patches the length. */
size_t ipc_begin_nested(ipc_writer *w, ipc_tag tag);
void ipc_end_nested(ipc_writer *w, size_t mark);
/* Finishes the header; returns 0 if the frame is valid and can be sent. */
int ipc_writer_finish(ipc_writer *w);

typedef struct {
    uint16_t version, type;
    uint32_t id, length;
} ipc_header;

/* Parses and checks a header: 0 ok, -1 bad magic/version/length (message in why). */
int ipc_parse_header(const uint8_t hdr[IPC_HEADER_LEN], ipc_header *out, const char **why);

/* A read-only view of fields (a payload or a nested entry), validated on creation. */
typedef struct {
    const uint8_t *data;
    size_t len;
} ipc_fields;

typedef struct {
    uint16_t tag;
    const uint8_t *value;
    uint32_t len;
} ipc_field;

/* Checks every field's tag, length against its cap, nesting, and the field count. */
int ipc_fields_validate(const uint8_t *data, size_t len, ipc_fields *out, const char **why);
/* Iterates: *pos starts at 0; returns 1 and fills f while fields remain. */
int ipc_next(const ipc_fields *fs, size_t *pos, ipc_field *f);
/* First field with this tag, or 0. */
int ipc_find(const ipc_fields *fs, ipc_tag tag, ipc_field *f);
/* Copies a text field (no NUL inside) into out; 0 if absent, -1 if malformed or too long. */
int ipc_get_text(const ipc_fields *fs, ipc_tag tag, char *out, size_t out_len);
int ipc_get_u32(const ipc_fields *fs, ipc_tag tag, uint32_t *out);
int ipc_get_u64(const ipc_fields *fs, ipc_tag tag, uint64_t *out);

/* A connection to or from the agent: a Unix stream socket, or on Windows a named-pipe HANDLE
 * opened for overlapped I/O (ipc_io_posix.c, ipc_io_win.c). */
#ifdef _WIN32
typedef intptr_t ipc_fd;
#else
typedef int ipc_fd;
#endif

/* Blocking I/O with a timeout per call (ms, <0 waits forever):
 * 0 ok, -1 error/EOF, -2 timeout. */
int ipc_write_all(ipc_fd fd, const void *buf, size_t len, int timeout_ms);
int ipc_read_all(ipc_fd fd, void *buf, size_t len, int timeout_ms);
void ipc_close(ipc_fd fd);

/* Reads one whole frame into a malloc'd payload (caller frees). Same return codes, and -3 for
 * a malformed frame (why says how). */
int ipc_read_frame(ipc_fd fd, ipc_header *hdr, uint8_t **payload, int first_timeout_ms,
                   int rest_timeout_ms, const char **why);

#endif
