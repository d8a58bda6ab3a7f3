/* signum-util providers: registers or unregisters the Signum providers with Windows by calling
 * the DLLs' own registration code (what regsvr32 and the installer do): signumksp.dll
 * (BCryptRegisterProvider + BCryptAddContextFunctionProvider, via its SignumKspRegister export
 * so both statuses can be shown) and signumcsp.dll (the CryptoAPI Defaults\Provider entry);
 * the x86 signumcsp.dll of 32-bit hosts through SysWOW64's regsvr32 (the WOW64 view). `status`
 * reads back both architectures. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/win_acl.h"
#include "platform.h"
#include "util.h"

#define KSP_DLL  L"signumksp.dll"
#define CSP_DLL  L"signumcsp.dll"
#define CSP_NAME "Signum Cryptographic Service Provider"
#define KSP_KEY                                                                                    \
    "SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Providers\\Signum Key Storage Provider"
#define CSP_KEY "SOFTWARE\\Microsoft\\Cryptography\\Defaults\\Provider\\" CSP_NAME

typedef HRESULT(WINAPI *register_fn)(void);
typedef HRESULT(WINAPI *ksp_register_fn)(BOOL install, LONG *nt_provider, LONG *nt_context);

/* Where a provider DLL is: an explicit path, else (the KSP) System32, where CNG loads it from,
 * else beside signum-util.exe (the installation directory). 0 or -1. */
static int locate(const char *given, const wchar_t *file, int system_dir, wchar_t *out,
                  DWORD out_len)
{
    wchar_t *slash;
    DWORD n;

    if (given)
        return ag_win_widen(given, out, (int)out_len);
    if (system_dir) {
        n = GetSystemDirectoryW(out, out_len);
        if (n > 0 && n + wcslen(file) + 2 < out_len) {
            wcscat(out, L"\\");
            wcscat(out, file);
            if (GetFileAttributesW(out) != INVALID_FILE_ATTRIBUTES)
                return 0;
        }
    }
    n = GetModuleFileNameW(NULL, out, out_len);
    if (n == 0 || n >= out_len || !(slash = wcsrchr(out, L'\\')) ||
        (size_t)(slash + 1 - out) + wcslen(file) + 1 > out_len)
        return -1;
    wcscpy(slash + 1, file);
    return 0;
}

static void print_path(const char *label, const wchar_t *path)
{
    char text[MAX_PATH * 3];
    if (ag_win_narrow(path, text, (int)sizeof(text)) != 0)
        snprintf(text, sizeof(text), "(a path that is not valid UTF-16)");
    printf("%s: %s\n", label, text);
}

/* Loads one DLL and runs its registration; prints the outcome; 0 or -1. */
static int run_one(const char *label, const wchar_t *path, int install, int ksp)
{
    HMODULE dll;
    HRESULT hr;
    int rc = -1;

    print_path(label, path);
    dll = LoadLibraryExW(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    if (!dll) {
        printf("  FAIL cannot load it (error %lu)\n", GetLastError());
        return -1;
    }
    if (ksp) {
        ksp_register_fn fn =
            (ksp_register_fn)(void (*)(void))GetProcAddress(dll, "SignumKspRegister");
        LONG nt_provider = 0, nt_context = 0;
        if (!fn) {
            printf("  FAIL it is not the Signum KSP (no SignumKspRegister export)\n");
            goto out;
        }
        hr = fn(install ? TRUE : FALSE, &nt_provider, &nt_context);
        printf("  %s %s: provider 0x%08lx, key storage context 0x%08lx\n",
               SUCCEEDED(hr) ? "OK" : "FAIL", install ? "BCryptRegisterProvider" : "unregister",
               (unsigned long)nt_provider, (unsigned long)nt_context);
    } else {
        register_fn fn = (register_fn)(void (*)(void))GetProcAddress(
            dll, install ? "DllRegisterServer" : "DllUnregisterServer");
        if (!fn) {
            printf("  FAIL it exports no %s\n",
                   install ? "DllRegisterServer" : "DllUnregisterServer");
            goto out;
        }
        hr = fn();
        printf("  %s %s: 0x%08lx\n", SUCCEEDED(hr) ? "OK" : "FAIL",
               install ? "DllRegisterServer" : "DllUnregisterServer", (unsigned long)hr);
    }
    if (SUCCEEDED(hr))
        rc = 0;
    else if ((unsigned long)hr == 0x80070005UL)
        printf("  (access denied: run it from an elevated prompt)\n");
out:
    FreeLibrary(dll);
    return rc;
}

/* The machine type of a PE image (0x8664 x64, 0x14c x86), or 0 if it cannot be read. */
static unsigned pe_machine(const wchar_t *path)
{
    unsigned char dos[64], nt[6];
    unsigned long at;
    unsigned machine = 0;
    FILE *f = _wfopen(path, L"rb");

    if (!f)
        return 0;
    if (fread(dos, 1, sizeof(dos), f) == sizeof(dos) && dos[0] == 'M' && dos[1] == 'Z') {
        at = dos[60] | (unsigned long)dos[61] << 8 | (unsigned long)dos[62] << 16 |
             (unsigned long)dos[63] << 24;
        if (at < 0x10000 && fseek(f, (long)at, SEEK_SET) == 0 &&
            fread(nt, 1, sizeof(nt), f) == sizeof(nt) && !memcmp(nt, "PE\0\0", 4))
            machine = nt[4] | (unsigned)nt[5] << 8;
    }
    fclose(f);
    return machine;
}

static const char *machine_name(unsigned machine)
{
    return machine == 0x8664 ? "x64" : machine == 0x14c ? "x86" : "unreadable";
}

/* The x86 CSP: its CryptoAPI entry in the WOW64 view (HKLM\SOFTWARE\WOW6432Node), where the
 * 32-bit regsvr32 wrote it and where 32-bit hosts look; 0 or 1 (missing). */
static int show_csp32(void)
{
    char image[MAX_PATH * 3];
    wchar_t wimage[MAX_PATH + 1];
    DWORD size = sizeof(image), type = 0;
    HKEY key;
    LSTATUS st;

    if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, CSP_KEY, 0, KEY_QUERY_VALUE | KEY_WOW64_32KEY, &key) !=
        ERROR_SUCCESS) {
        printf("CSP32 not registered (no HKLM\\SOFTWARE\\WOW6432Node\\%s)\n",
               CSP_KEY + strlen("SOFTWARE\\"));
        return 1;
    }
    st = RegGetValueA(key, NULL, "Image Path", RRF_RT_REG_SZ, &type, image, &size);
    RegCloseKey(key);
    if (st != ERROR_SUCCESS) {
        printf("CSP32 not registered (no Image Path in the WOW64 view)\n");
        return 1;
    }
    printf("CSP32 registered: %s (WOW64 view, Image Path %s, %s)\n", CSP_NAME, image,
           ag_win_widen(image, wimage, MAX_PATH + 1) == 0 ? machine_name(pe_machine(wimage))
                                                          : "unreadable");
    return 0;
}

/* The x86 KSP: CNG's registration is shared by both architectures and names the image by file
 * name, which a 32-bit process resolves in SysWOW64; 0 or 1 (missing). */
static int show_ksp32(void)
{
    wchar_t path[MAX_PATH + 1];
    UINT n = GetSystemWow64DirectoryW(path, MAX_PATH + 1);

    if (n == 0 || n + wcslen(KSP_DLL) + 2 > MAX_PATH + 1) {
        printf("KSP32 not installed (no SysWOW64 directory)\n");
        return 1;
    }
    wcscat(path, L"\\" KSP_DLL);
    if (GetFileAttributesW(path) == INVALID_FILE_ATTRIBUTES) {
        print_path("KSP32 not installed: no file", path);
        return 1;
    }
    print_path("KSP32 installed (x86, for 32-bit hosts; CNG registration shared with the KSP)",
               path);
    printf("      image: %s\n", machine_name(pe_machine(path)));
    return 0;
}

/* The x86 CSP (for 32-bit hosts) registered or unregistered as the installer does: by the
 * 32-bit regsvr32 of SysWOW64 (this 64-bit process cannot load an x86 DLL), so its entry is
 * written to the WOW64 view. Without an x86 DLL (default: x86\signumcsp.dll beside
 * signum-util.exe) or without WOW64 there is nothing to do, unless one was named. 0 or -1. */
static int run_csp32(const char *given, int install)
{
    wchar_t dll[MAX_PATH + 1], regsvr[MAX_PATH + 1], cmd[2 * MAX_PATH + 40];
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    DWORD code = 1;
    UINT n;

    if (locate(given, L"x86\\" CSP_DLL, 0, dll, MAX_PATH + 1) != 0)
        return -1;
    if (!given && GetFileAttributesW(dll) == INVALID_FILE_ATTRIBUTES) {
        printf("CSP32: no x86\\signumcsp.dll beside signum-util.exe: nothing to %s\n",
               install ? "register" : "unregister");
        return 0;
    }
    n = GetSystemWow64DirectoryW(regsvr, MAX_PATH + 1);
    if (n == 0 || n + wcslen(L"\\regsvr32.exe") >= MAX_PATH + 1) {
        printf("CSP32: no WOW64 on this system: nothing to %s\n",
               install ? "register" : "unregister");
        return given ? -1 : 0;
    }
    wcscat(regsvr, L"\\regsvr32.exe");
    print_path("CSP32 (x86, WOW64 view)", dll);
    _snwprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" /s %ls\"%ls\"", regsvr,
               install ? L"" : L"/u ", dll);
    cmd[sizeof(cmd) / sizeof(cmd[0]) - 1] = L'\0';
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    if (!CreateProcessW(regsvr, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        printf("  FAIL cannot start SysWOW64\\regsvr32.exe (error %lu)\n", GetLastError());
        return -1;
    }
    /* regsvr32 /s only loads the DLL and calls one function: a minute is plenty. */
    if (WaitForSingleObject(pi.hProcess, 60000) != WAIT_OBJECT_0 ||
        !GetExitCodeProcess(pi.hProcess, &code))
        code = (DWORD)-1;
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    printf("  %s regsvr32%s (32-bit): exit %lu\n", code == 0 ? "OK" : "FAIL", install ? "" : " /u",
           (unsigned long)code);
    if (code == 5)
        printf("  (access denied: run it from an elevated prompt)\n");
    return code == 0 ? 0 : -1;
}

/* What Windows knows of our providers, read back: the x64 ones, then the x86 ones for 32-bit
 * hosts (exit 1 if any of the four is missing). */
static int show_status(void)
{
    char image[MAX_PATH * 3];
    DWORD size = sizeof(image), type = 0;
    HKEY key;
    int failures = 0;

    if (RegGetValueA(HKEY_LOCAL_MACHINE, CSP_KEY, "Image Path", RRF_RT_REG_SZ, &type, image,
                     &size) == ERROR_SUCCESS) {
        printf("CSP  registered: %s (Image Path %s)\n", CSP_NAME, image);
    } else {
        printf("CSP  not registered (no HKLM\\%s)\n", CSP_KEY);
        failures++;
    }
    /* Where CNG keeps provider registrations (BCryptQueryProviderRegistration would say the
     * same, but Wine 8 aborts the process on it). */
    if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, KSP_KEY, 0, KEY_READ, &key) == ERROR_SUCCESS) {
        printf("KSP  registered: Signum Key Storage Provider (HKLM\\%s)\n", KSP_KEY);
        RegCloseKey(key);
    } else {
        printf("KSP  not registered (no HKLM\\%s)\n", KSP_KEY);
        failures++;
    }
    failures += show_csp32();
    failures += show_ksp32();
    return failures ? EXIT_FAILED : EXIT_OK;
}

int util_cmd_providers(int argc, char **argv)
{
    static const char usage[] =
        "Usage: signum-util providers register|unregister|status [--ksp DLL] [--csp DLL]\n"
        "                           [--csp32 DLL]\n"
        "  register    register the Signum KSP (CNG) and CSP (CryptoAPI) with Windows, as the\n"
        "              installer does (needs an elevated prompt on Windows)\n"
        "  unregister  undo it\n"
        "  status      what Windows reports of both registrations, x64 and x86 (the\n"
        "              providers of 32-bit hosts); exit 1 if one is missing\n"
        "  --ksp DLL   signumksp.dll to use (default: System32, else beside signum-util.exe)\n"
        "  --csp DLL   signumcsp.dll to use (default: beside signum-util.exe)\n"
        "  --csp32 DLL the x86 signumcsp.dll, registered in the WOW64 view by SysWOW64's\n"
        "              regsvr32 (default: x86\\signumcsp.dll beside signum-util.exe, if there)\n";
    const char *ksp = NULL, *csp = NULL, *csp32 = NULL, *verb = NULL;
    wchar_t path[MAX_PATH + 1];
    int install, failures = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--ksp") && i + 1 < argc) {
            ksp = argv[++i];
        } else if (!strcmp(argv[i], "--csp32") && i + 1 < argc) {
            csp32 = argv[++i];
        } else if (!strcmp(argv[i], "--csp") && i + 1 < argc) {
            csp = argv[++i];
        } else if (!verb && argv[i][0] != '-') {
            verb = argv[i];
        } else {
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (!verb ||
        (strcmp(verb, "register") && strcmp(verb, "unregister") && strcmp(verb, "status"))) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(verb, "status"))
        return show_status();
    install = !strcmp(verb, "register");
    if (locate(ksp, KSP_DLL, 1, path, MAX_PATH + 1) != 0 || run_one("KSP", path, install, 1) != 0)
        failures++;
    if (locate(csp, CSP_DLL, 0, path, MAX_PATH + 1) != 0 || run_one("CSP", path, install, 0) != 0)
        failures++;
    if (run_csp32(csp32, install) != 0)
        failures++;
    return failures ? EXIT_FAILED : EXIT_OK;
}
