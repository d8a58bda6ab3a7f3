/* Windows access control shared by the agent, config.c and signum-util (header-only so that
 * signum-util, which links config.c, needs nothing more): the current user's SID, security
 * attributes granting only that user, and the check that an object is private to us. */
#ifndef AG_WIN_ACL_H
#define AG_WIN_ACL_H
#ifdef _WIN32

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef union {
    TOKEN_USER tu;
    BYTE raw[256];
} ag_win_user;

/* The user this process runs as; 0 or -1. */
static inline int ag_win_current_user(ag_win_user *u)
{
    HANDLE token = NULL;
    DWORD n = 0;
    int rc = -1;
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token) &&
        GetTokenInformation(token, TokenUser, u, sizeof(*u), &n))
        rc = 0;
    if (token)
        CloseHandle(token);
    return rc;
}

/* Security attributes whose protected DACL grants the current user full access and nobody
 * anything (ace_flags: "" for files and pipes, "OICI" for directories). Free with
 * ag_win_private_sa_free. 0 or -1. */
static inline int ag_win_private_sa(SECURITY_ATTRIBUTES *sa, const char *ace_flags)
{
    ag_win_user u;
    char *sid = NULL, sddl[320];
    PSECURITY_DESCRIPTOR sd = NULL;
    int n;

    memset(sa, 0, sizeof(*sa));
    if (ag_win_current_user(&u) != 0 || !ConvertSidToStringSidA(u.tu.User.Sid, &sid))
        return -1;
    n = snprintf(sddl, sizeof(sddl), "O:%sD:P(A;%s;GA;;;%s)", sid, ace_flags, sid);
    LocalFree(sid);
    if (n < 0 || (size_t)n >= sizeof(sddl) ||
        !ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
        return -1;
    sa->nLength = sizeof(*sa);
    sa->lpSecurityDescriptor = sd;
    sa->bInheritHandle = FALSE;
    return 0;
}

static inline void ag_win_private_sa_free(SECURITY_ATTRIBUTES *sa)
{
    if (sa->lpSecurityDescriptor)
        LocalFree(sa->lpSecurityDescriptor);
    sa->lpSecurityDescriptor = NULL;
}

/* 1 if the object's owner is us and its DACL grants nobody but us, SYSTEM and the
 * Administrators (who can read everything anyway) any access; else 0. */
static inline int ag_win_object_private(HANDLE h, SE_OBJECT_TYPE type)
{
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    ag_win_user u;
    int ok = 0;

    if (ag_win_current_user(&u) != 0 ||
        GetSecurityInfo(h, type, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
                        NULL, &dacl, NULL, &sd) != ERROR_SUCCESS)
        return 0;
    if (!owner || !EqualSid(owner, u.tu.User.Sid) || !dacl)
        goto out; /* a NULL DACL grants everyone everything */
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *ace = NULL;
        PSID who;
        if (!GetAce(dacl, i, (void **)&ace))
            goto out;
        if (ace->AceType != ACCESS_ALLOWED_ACE_TYPE || (ace->AceFlags & INHERIT_ONLY_ACE))
            continue;
        who = (PSID) & ((ACCESS_ALLOWED_ACE *)ace)->SidStart;
        if (!EqualSid(who, u.tu.User.Sid) && !IsWellKnownSid(who, WinLocalSystemSid) &&
            !IsWellKnownSid(who, WinBuiltinAdministratorsSid))
            goto out;
    }
    ok = 1;
out:
    LocalFree(sd);
    return ok;
}

/* UTF-8 <-> UTF-16; 0 or -1 (invalid or too long). */
static inline int ag_win_widen(const char *in, wchar_t *out, int out_len)
{
    return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, in, -1, out, out_len) > 0 ? 0 : -1;
}

static inline int ag_win_narrow(const wchar_t *in, char *out, int out_len)
{
    return WideCharToMultiByte(CP_UTF8, 0, in, -1, out, out_len, NULL, NULL) > 0 ? 0 : -1;
}

#endif
#endif
