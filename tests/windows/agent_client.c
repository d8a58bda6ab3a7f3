/* A Windows test program for the agent under Wine: uses the client library as a provider does
 * (status, key listing, signing; the agent is started on demand), or talks raw frames to the
 * agent's pipe to test its handling of malformed input and stalled clients. Prints one JSON
 * object on stdout; exit code 0 on success, 1 on an error answer, 2 on usage.
 *
 *   agent_client.exe status | keys | shutdown
 *   agent_client.exe sign KEY rsa-pkcs1|rsa-pss|ecdsa sha256|sha384|sha512 HEXDIGEST
 *   agent_client.exe raw HEXBYTES       write these bytes, print the agent's reply frame
 *   agent_client.exe stall MS HEXBYTES  write these bytes, then hold the pipe open MS ms
 *   agent_client.exe pipe-acl           the pipe's owner and DACL as the OS reports them */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ipc.h"
#include "signum/client.h"

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_hex(const uint8_t *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    putchar('"');
}

static int fail(sg_status st)
{
    printf("{\"error\":");
    print_json_string(sg_status_name(st));
    printf(",\"message\":");
    print_json_string(sg_last_error());
    printf("}\n");
    return 1;
}

static int unhex(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static int cmd_status(sg_client *c)
{
    sg_agent_status s;
    sg_status st = sg_status_get(c, &s);
    if (st != SG_OK)
        return fail(st);
    printf("{\"version\":");
    print_json_string(s.version);
    printf(",\"pid\":%lu,\"logged_in\":%d,\"identity\":", (unsigned long)s.pid, s.logged_in);
    print_json_string(s.identity);
    printf(",\"server\":");
    print_json_string(s.server);
    printf(",\"auth_method\":");
    print_json_string(s.auth_method);
    printf("}\n");
    return 0;
}

static int cmd_keys(sg_client *c)
{
    sg_key_list *list = NULL;
    sg_status st = sg_list_keys(c, &list);
    if (st != SG_OK)
        return fail(st);
    printf("{\"keys\":[");
    for (size_t i = 0; i < list->count; i++) {
        const sg_key *k = &list->keys[i];
        printf("%s{\"name\":", i ? "," : "");
        print_json_string(k->name);
        printf(",\"type\":");
        print_json_string(k->type);
        printf(",\"public_key\":");
        print_hex(k->public_key, k->public_key_len);
        printf(",\"cert\":");
        print_hex(k->cert ? k->cert : (const uint8_t *)"", k->cert ? k->cert_len : 0);
        printf("}");
    }
    printf("]}\n");
    sg_key_list_free(list);
    return 0;
}

static int cmd_sign(sg_client *c, char **argv)
{
    uint8_t digest[64], sig[1024], *sigs[1] = {sig};
    const uint8_t *digests[1] = {digest};
    size_t dlen, lens[1] = {sizeof(sig)};
    sg_sign_request req;
    sg_status st;

    memset(&req, 0, sizeof(req));
    req.key = argv[0];
    if (!strcmp(argv[1], "rsa-pkcs1"))
        req.mech = SG_MECH_RSA_PKCS1;
    else if (!strcmp(argv[1], "rsa-pss"))
        req.mech = SG_MECH_RSA_PSS, req.salt_default = 1;
    else if (!strcmp(argv[1], "ecdsa"))
        req.mech = SG_MECH_ECDSA;
    else
        return 2;
    if (!strcmp(argv[2], "sha256"))
        req.hash = SG_HASH_SHA256;
    else if (!strcmp(argv[2], "sha384"))
        req.hash = SG_HASH_SHA384;
    else if (!strcmp(argv[2], "sha512"))
        req.hash = SG_HASH_SHA512;
    else
        return 2;
    if (unhex(argv[3], digest, sizeof(digest), &dlen) != 0)
        return 2;
    (void)dlen;
    req.count = 1;
    req.digests = digests;
    st = sg_sign(c, &req, sigs, lens);
    if (st != SG_OK)
        return fail(st);
    printf("{\"signature\":");
    print_hex(sig, lens[0]);
    printf("}\n");
    return 0;
}

/* Opens the agent's pipe directly (no autostart), as a hostile local client would. */
static HANDLE open_pipe(void)
{
    char name[256];
    wchar_t wname[256];
    if (sg_default_socket(name, sizeof(name)) != 0 ||
        MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 256) <= 0)
        return INVALID_HANDLE_VALUE;
    return CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                       FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                       NULL);
}

static int cmd_raw(const char *hex, int stall_ms)
{
    static uint8_t bytes[IPC_MAX_PAYLOAD + 64];
    size_t n;
    HANDLE h;
    ipc_header hdr;
    uint8_t *payload = NULL;
    const char *why = "";
    int rc;

    if (unhex(hex, bytes, sizeof(bytes), &n) != 0)
        return 2;
    h = open_pipe();
    if (h == INVALID_HANDLE_VALUE) {
        printf("{\"error\":\"open\",\"code\":%lu}\n", GetLastError());
        return 1;
    }
    if (n && ipc_write_all((ipc_fd)h, bytes, n, 5000) != 0) {
        printf("{\"error\":\"write\"}\n");
        CloseHandle(h);
        return 1;
    }
    if (stall_ms >= 0) {
        /* Hold the connection with a frame begun and never finished. */
        printf("{\"stalled_ms\":%d}\n", stall_ms);
        fflush(stdout);
        Sleep((DWORD)stall_ms);
        CloseHandle(h);
        return 0;
    }
    rc = ipc_read_frame((ipc_fd)h, &hdr, &payload, 10000, 10000, &why);
    if (rc != 0) {
        printf("{\"closed\":true,\"rc\":%d}\n", rc);
    } else {
        ipc_fields fs;
        uint32_t code = 0;
        char msg[1025] = "";
        if (ipc_fields_validate(payload, hdr.length, &fs, &why) == 0) {
            ipc_get_u32(&fs, IPC_TAG_CODE, &code);
            ipc_get_text(&fs, IPC_TAG_MESSAGE, msg, sizeof(msg));
        }
        printf("{\"type\":%u,\"id\":%lu,\"code\":%lu,\"code_name\":", (unsigned)hdr.type,
               (unsigned long)hdr.id, (unsigned long)code);
        print_json_string(code < SG_STATUS_COUNT ? sg_status_name((sg_status)code) : "?");
        printf(",\"message\":");
        print_json_string(msg);
        printf("}\n");
    }
    free(payload);
    CloseHandle(h);
    return 0;
}

static void print_sid(PSID sid)
{
    char *text = NULL;
    if (sid && ConvertSidToStringSidA(sid, &text)) {
        print_json_string(text);
        LocalFree(text);
    } else {
        printf("null");
    }
}

static int cmd_pipe_acl(void)
{
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    HANDLE h = open_pipe(), token = NULL;
    union {
        TOKEN_USER tu;
        BYTE raw[256];
    } me;
    DWORD n = 0, e;

    if (h == INVALID_HANDLE_VALUE) {
        printf("{\"error\":\"open\",\"code\":%lu}\n", GetLastError());
        return 1;
    }
    e = GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                        &owner, NULL, &dacl, NULL, &sd);
    if (e != ERROR_SUCCESS || !OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token) ||
        !GetTokenInformation(token, TokenUser, &me, sizeof(me), &n)) {
        printf("{\"error\":\"GetSecurityInfo\",\"code\":%lu}\n", e);
        CloseHandle(h);
        return 1;
    }
    printf("{\"user\":");
    print_sid(me.tu.User.Sid);
    printf(",\"owner\":");
    print_sid(owner);
    printf(",\"dacl\":");
    if (!dacl) {
        printf("null");
    } else {
        printf("[");
        for (DWORD i = 0; i < dacl->AceCount; i++) {
            ACE_HEADER *ace = NULL;
            if (!GetAce(dacl, i, (void **)&ace))
                break;
            printf("%s{\"type\":%u,\"flags\":%u,\"mask\":%lu,\"sid\":", i ? "," : "",
                   (unsigned)ace->AceType, (unsigned)ace->AceFlags,
                   (unsigned long)((ACCESS_ALLOWED_ACE *)ace)->Mask);
            print_sid((PSID) & ((ACCESS_ALLOWED_ACE *)ace)->SidStart);
            printf("}");
        }
        printf("]");
    }
    printf("}\n");
    LocalFree(sd);
    CloseHandle(token);
    CloseHandle(h);
    return 0;
}

int main(int argc, char **argv)
{
    sg_client_options opts;
    sg_client *c = NULL;
    sg_status st;
    int rc = 2;

    if (argc >= 3 && !strcmp(argv[1], "raw"))
        return cmd_raw(argv[2], -1);
    if (argc >= 4 && !strcmp(argv[1], "stall"))
        return cmd_raw(argv[3], atoi(argv[2]));
    if (argc == 2 && !strcmp(argv[1], "pipe-acl"))
        return cmd_pipe_acl();
    memset(&opts, 0, sizeof(opts));
    opts.application = "agent_client.exe";
    if ((st = sg_client_new(&opts, &c)) != SG_OK)
        return fail(st);
    if (argc == 2 && !strcmp(argv[1], "status"))
        rc = cmd_status(c);
    else if (argc == 2 && !strcmp(argv[1], "keys"))
        rc = cmd_keys(c);
    else if (argc == 6 && !strcmp(argv[1], "sign"))
        rc = cmd_sign(c, argv + 2);
    else if (argc == 2 && !strcmp(argv[1], "shutdown"))
        rc = (st = sg_agent_shutdown(c)) == SG_OK ? (printf("{\"shutdown\":true}\n"), 0) : fail(st);
    if (rc == 2)
        fprintf(stderr, "usage: see the comment at the top of agent_client.c\n");
    sg_client_free(c);
    return rc;
}
