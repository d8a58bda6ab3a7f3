/* batchbench: signatures per second through the client library -> signum-agent -> server,
 * sending BATCH digests per request (1 = one digest per request), from THREADS threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signum/client.h"
#include "signum/crypto.h"

typedef struct {
    sg_client *c;
    const char *key;
    sg_mech mech;
    long batch, requests;
    double max_seconds, start;
    long signatures, errors;
    sg_status last;
} worker;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    worker *w = arg;
    uint8_t digests[64][32], sigs[64][1024];
    const uint8_t *dptr[64];
    uint8_t *sptr[64];
    size_t lens[64];
    for (int i = 0; i < 64; i++) {
        memset(digests[i], i + 1, 32);
        dptr[i] = digests[i];
        sptr[i] = sigs[i];
    }
    for (long r = 0; r < w->requests && now() - w->start < w->max_seconds; r++) {
        sg_sign_request req = {w->key, w->mech, SG_HASH_SHA256, 0, 1, (size_t)w->batch, dptr, NULL};
        sg_status st;
        for (int i = 0; i < 64; i++)
            lens[i] = sizeof(sigs[i]);
        st = sg_sign(w->c, &req, sptr, lens);
        if (st == SG_OK)
            w->signatures += w->batch;
        else {
            w->errors++;
            w->last = st;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    sg_client *c;
    pthread_t tids[64];
    worker ws[64];
    long threads, batch, requests, total = 0, errors = 0;
    double seconds, t0, elapsed;
    sg_status last = SG_OK;

    if (argc != 7) {
        fprintf(stderr, "usage: batchbench KEY rsa|ec THREADS BATCH REQUESTS_PER_THREAD "
                        "MAX_SECONDS\n");
        return 2;
    }
    threads = strtol(argv[3], NULL, 10);
    batch = strtol(argv[4], NULL, 10);
    requests = strtol(argv[5], NULL, 10);
    seconds = strtod(argv[6], NULL);
    if (threads < 1 || threads > 64 || batch < 1 || batch > 64 || requests < 1 || seconds <= 0)
        return 2;
    if (sg_client_new(NULL, &c) != SG_OK) {
        fprintf(stderr, "batchbench: %s\n", sg_last_error());
        return 1;
    }
    t0 = now();
    for (long i = 0; i < threads; i++) {
        ws[i] = (worker){c,     argv[1],  strcmp(argv[2], "ec") ? SG_MECH_RSA_PKCS1 : SG_MECH_ECDSA,
                         batch, requests, seconds,
                         t0,    0,        0,
                         SG_OK};
        pthread_create(&tids[i], NULL, run, &ws[i]);
    }
    for (long i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        total += ws[i].signatures;
        errors += ws[i].errors;
        if (ws[i].last != SG_OK)
            last = ws[i].last;
    }
    elapsed = now() - t0;
    printf("{\"threads\":%ld,\"batch\":%ld,\"signatures\":%ld,\"errors\":%ld,\"last_error\":\"%s\","
           "\"seconds\":%.3f,\"per_second\":%.1f}\n",
           threads, batch, total, errors, sg_status_name(last), elapsed, total / elapsed);
    sg_client_free(c);
    return errors ? 1 : 0;
}
