/* p11bench: the same PKCS#11 signing loop against any module (SoftHSMv2 directly, or
 * libsignumpkcs11.so through the agent and the server), so the two can be compared in one run.
 * Each thread opens its own session and signs a fixed digest (CKM_RSA_PKCS with a SHA-256
 * DigestInfo, or CKM_ECDSA with the raw digest) until its count or the time limit is reached.
 * Prints one JSON object: throughput, latency percentiles, errors. */
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    CK_FUNCTION_LIST_PTR fn;
    CK_SLOT_ID slot;
    const char *label;
    int ec;
    long count;         /* signatures per thread */
    double max_seconds; /* bound on the whole run */
    double start;
    /* results */
    double *lat; /* microseconds, one per signature */
    long done;
    long errors;
    CK_RV last_rv;
} worker;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const CK_BYTE digestinfo_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};

static CK_RV find_key(worker *w, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_LABEL, (void *)w->label, strlen(w->label)}};
    CK_ULONG n = 0;
    CK_RV rv = w->fn->C_FindObjectsInit(s, tmpl, 2);
    if (rv == CKR_OK)
        rv = w->fn->C_FindObjects(s, key, 1, &n);
    w->fn->C_FindObjectsFinal(s);
    return rv == CKR_OK && n == 0 ? CKR_KEY_HANDLE_INVALID : rv;
}

static void *run(void *arg)
{
    worker *w = arg;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    CK_BYTE data[19 + 32], sig[1024];
    CK_MECHANISM m = {w->ec ? CKM_ECDSA : CKM_RSA_PKCS, NULL, 0};
    CK_ULONG data_len, sig_len;
    CK_RV rv;

    memcpy(data, digestinfo_sha256, sizeof(digestinfo_sha256));
    for (int i = 0; i < 32; i++)
        data[19 + i] = (CK_BYTE)(i * 7 + 1);
    data_len = w->ec ? 32 : sizeof(data);
    rv = w->fn->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK)
        rv = find_key(w, s, &key);
    if (rv != CKR_OK) {
        w->errors = w->count;
        w->last_rv = rv;
        return NULL;
    }
    for (long i = 0; i < w->count && now() - w->start < w->max_seconds; i++) {
        const CK_BYTE *in = w->ec ? data + 19 : data;
        double t0 = now();
        sig_len = sizeof(sig);
        rv = w->fn->C_SignInit(s, &m, key);
        if (rv == CKR_OK)
            rv = w->fn->C_Sign(s, (CK_BYTE_PTR)in, data_len, sig, &sig_len);
        if (rv != CKR_OK) {
            w->errors++;
            w->last_rv = rv;
            continue;
        }
        w->lat[w->done++] = (now() - t0) * 1e6;
    }
    w->fn->C_CloseSession(s);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *module, *label, *pin;
    long threads, count;
    double seconds;
    void *dl;
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST_PTR fn;
    CK_C_INITIALIZE_ARGS args;
    CK_SLOT_ID slots[16];
    CK_ULONG nslots = 16;
    CK_SESSION_HANDLE login_session;
    pthread_t *tids;
    worker *ws;
    double *all, elapsed, t0, sum = 0;
    long total = 0, errors = 0;
    CK_RV last = CKR_OK;
    int ec;

    if (argc != 9) {
        fprintf(stderr, "usage: p11bench MODULE KEY_LABEL PIN rsa|ec THREADS COUNT_PER_THREAD "
                        "MAX_SECONDS SLOT_INDEX\n");
        return 2;
    }
    module = argv[1];
    label = argv[2];
    pin = argv[3];
    ec = strcmp(argv[4], "ec") == 0;
    threads = strtol(argv[5], NULL, 10);
    count = strtol(argv[6], NULL, 10);
    seconds = strtod(argv[7], NULL);
    if (threads < 1 || threads > 256 || count < 1 || count > 10000000 || seconds <= 0) {
        fprintf(stderr, "p11bench: threads 1-256, count 1-10^7, seconds > 0\n");
        return 2;
    }
    dl = dlopen(module, RTLD_NOW);
    if (!dl || !(get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) ||
        get(&fn) != CKR_OK) {
        fprintf(stderr, "p11bench: cannot load %s\n", module);
        return 1;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    if (fn->C_Initialize(&args) != CKR_OK || fn->C_GetSlotList(CK_TRUE, slots, &nslots) != CKR_OK ||
        nslots <= (CK_ULONG)strtol(argv[8], NULL, 10)) {
        fprintf(stderr, "p11bench: no token at slot index %s\n", argv[8]);
        return 1;
    }
    /* Login applies to the whole application: once, before the threads start. */
    if (fn->C_OpenSession(slots[strtol(argv[8], NULL, 10)], CKF_SERIAL_SESSION, NULL, NULL,
                          &login_session) != CKR_OK) {
        fprintf(stderr, "p11bench: cannot open a session\n");
        return 1;
    }
    if (*pin) {
        CK_RV rv = fn->C_Login(login_session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            fprintf(stderr, "p11bench: C_Login: 0x%lx\n", (unsigned long)rv);
            return 1;
        }
    }
    tids = calloc((size_t)threads, sizeof(*tids));
    ws = calloc((size_t)threads, sizeof(*ws));
    t0 = now();
    for (long i = 0; i < threads; i++) {
        ws[i] = (worker){fn, slots[strtol(argv[8], NULL, 10)],      label, ec, count, seconds,
                         t0, calloc((size_t)count, sizeof(double)), 0,     0,  CKR_OK};
        pthread_create(&tids[i], NULL, run, &ws[i]);
    }
    for (long i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    elapsed = now() - t0;
    for (long i = 0; i < threads; i++) {
        total += ws[i].done;
        errors += ws[i].errors;
        if (ws[i].last_rv != CKR_OK)
            last = ws[i].last_rv;
    }
    all = calloc((size_t)(total ? total : 1), sizeof(double));
    for (long i = 0, k = 0; i < threads; i++)
        for (long j = 0; j < ws[i].done; j++)
            all[k++] = ws[i].lat[j];
    qsort(all, (size_t)total, sizeof(double), cmp);
    for (long i = 0; i < total; i++)
        sum += all[i];
    printf("{\"threads\":%ld,\"signatures\":%ld,\"errors\":%ld,\"last_error\":\"0x%lx\","
           "\"seconds\":%.3f,\"per_second\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"mean_us\":%.1f}\n",
           threads, total, errors, (unsigned long)last, elapsed, total / elapsed,
           total ? all[total / 2] : 0.0, total ? all[(long)(total * 0.99)] : 0.0,
           total ? sum / (double)total : 0.0);
    fn->C_CloseSession(login_session);
    fn->C_Finalize(NULL);
    for (long i = 0; i < threads; i++)
        free(ws[i].lat);
    free(ws);
    free(tids);
    free(all);
    return errors ? 1 : 0;
}
