/* p11signloop: one long-lived PKCS#11 process, as a build tool or signing service keeps one: it
 * opens one session, logs in once and signs a fixed SHA-256 digest with CKM_ECDSA in a loop on
 * that session, so that a test can take access away while it runs (tests/tools/test_scenarios.py).
 *
 * Usage: p11signloop MODULE LABEL PIN MAX_COUNT MAX_SECONDS PAUSE_MS STOP_AFTER_FAILURES
 *
 * Prints "login 0xRV" once, then for each attempt "I T0 T1 0xRV" (T0, T1: CLOCK_MONOTONIC
 * seconds before C_SignInit and after C_Sign, the clock Python's time.monotonic() reads), and
 * stops after MAX_COUNT attempts, MAX_SECONDS, or STOP_AFTER_FAILURES failures in a row. Exits 0
 * when the loop ran, 1 when the module, session, login or key could not be set up, 2 on usage. */
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static CK_RV find_key(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s, const char *label,
                      CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ULONG n = 0;
    CK_RV rv = fn->C_FindObjectsInit(s, tmpl, 2);
    if (rv == CKR_OK) {
        rv = fn->C_FindObjects(s, key, 1, &n);
        fn->C_FindObjectsFinal(s);
    }
    return rv == CKR_OK && n == 0 ? CKR_KEY_HANDLE_INVALID : rv;
}

/* One attempt: C_SignInit and C_Sign on the open session; the first failure's code. */
static CK_RV sign_once(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                       CK_BYTE *digest)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE sig[512];
    CK_ULONG sig_len = sizeof(sig);
    CK_RV rv = fn->C_SignInit(s, &m, key);
    if (rv == CKR_OK)
        rv = fn->C_Sign(s, digest, 32, sig, &sig_len);
    return rv;
}

int main(int argc, char **argv)
{
    CK_C_INITIALIZE_ARGS init = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL};
    CK_FUNCTION_LIST_PTR fn = NULL;
    CK_C_GetFunctionList get;
    CK_SLOT_ID slot;
    CK_ULONG nslots = 1;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    CK_BYTE digest[32];
    CK_RV rv;
    long count, pause, stop_after, failures = 0;
    double seconds, start;
    void *dl;

    if (argc != 8) {
        fputs("usage: p11signloop MODULE LABEL PIN MAX_COUNT MAX_SECONDS PAUSE_MS "
              "STOP_AFTER_FAILURES\n",
              stderr);
        return 2;
    }
    count = atol(argv[4]);
    seconds = atof(argv[5]);
    pause = atol(argv[6]);
    stop_after = atol(argv[7]);
    if (count <= 0 || seconds <= 0 || pause < 0 || stop_after <= 0) {
        fputs("p11signloop: counts and times must be positive\n", stderr);
        return 2;
    }
    for (int i = 0; i < 32; i++)
        digest[i] = (CK_BYTE)(i * 7 + 1);

    dl = dlopen(argv[1], RTLD_NOW);
    if (!dl || !(get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) ||
        get(&fn) != CKR_OK) {
        const char *why = dlerror();
        fprintf(stderr, "p11signloop: cannot load %s: %s\n", argv[1],
                why ? why : "no C_GetFunctionList");
        return 1;
    }
    if ((rv = fn->C_Initialize(&init)) != CKR_OK ||
        (rv = fn->C_GetSlotList(CK_TRUE, &slot, &nslots)) != CKR_OK || nslots == 0 ||
        (rv = fn->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
        fprintf(stderr, "p11signloop: no session: 0x%lx\n", (unsigned long)rv);
        return 1;
    }
    rv = fn->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]));
    printf("login 0x%lx\n", (unsigned long)rv);
    fflush(stdout);
    if ((rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) ||
        (rv = find_key(fn, s, argv[2], &key)) != CKR_OK) {
        fprintf(stderr, "p11signloop: login or key %s: 0x%lx\n", argv[2], (unsigned long)rv);
        return 1;
    }

    start = now();
    for (long i = 0; i < count && now() - start < seconds && failures < stop_after; i++) {
        double t0 = now(), t1;
        rv = sign_once(fn, s, key, digest);
        t1 = now();
        printf("%ld %.6f %.6f 0x%lx\n", i, t0, t1, (unsigned long)rv);
        fflush(stdout);
        failures = rv == CKR_OK ? 0 : failures + 1;
        if (pause)
            pause_ms(pause);
    }
    fn->C_Logout(s);
    fn->C_CloseSession(s);
    fn->C_Finalize(NULL);
    return 0;
}
