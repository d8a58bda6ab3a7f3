/* signum-util sign: what the synchronous path (main.c) and signing jobs share (the digest of an
 * input, writing a signature where it belongs), and signing jobs (--async, --job): one job of
 * up to 20000 digests at the server (POST /api/v1/sign/jobs, made through the agent), polled
 * with a long poll while progress is shown, then its signatures fetched page by page. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_api.h"
#include "platform.h"
#include "signum/common/b64.h"
#include "signum/common/names.h"
#include "signum/crypto.h"
#include "signum/https.h"
#include "signum/os.h"
#include "util.h"

#define JOB_POLL_WAIT_S 1 /* long poll: one progress answer a second */
/* The server's page limit: 1000 RSA-4096 signatures (the longest) are ~690 KB of base64,
 * within the agent's answer cap (IPC_API_ANSWER_MAX). */
#define JOB_PAGE_MAX      1000
#define JOB_TRANSIENT_MS  60000 /* how long an unreachable or failing server is asked again */
#define JOB_RETRY_MS      1000
#define JOB_BAR_WIDTH     40
#define JOB_LINE_EVERY_MS 1000

/* ---- shared with the synchronous path ------------------------------------------------------ */

static int parse_digest(const char *text, size_t want, uint8_t *out)
{
    size_t n = strlen(text), len = 0;
    if (n == 2 * want) {
        for (size_t i = 0; i < want; i++) {
            unsigned v;
            if (sscanf(text + 2 * i, "%2x", &v) != 1)
                return -1;
            out[i] = (uint8_t)v;
        }
        return 0;
    }
    return sgc_b64_decode(text, n, SGC_B64, out, want, &len, NULL, 0) == SGC_OK && len == want ? 0
                                                                                               : -1;
}

static int hash_file(const char *path, sg_hash hash, uint8_t *out)
{
    uint8_t buf[65536];
    size_t n, len = SG_MAX_DIGEST;
    sg_digest_ctx ctx;
    FILE *f = fopen(path, "rb" UTIL_FOPEN_CLOEXEC);
    if (!f)
        return -1;
    sg_digest_init(&ctx, hash);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        sg_digest_update(&ctx, buf, n);
    if (ferror(f)) {
        fclose(f);
        sg_digest_free(&ctx);
        return -1;
    }
    fclose(f);
    return sg_digest_final(&ctx, out, &len) == SG_OK ? 0 : -1;
}

int util_sign_digest(const char *item, int is_digest, sg_hash hash, uint8_t *out)
{
    errno = 0;
    if ((is_digest ? parse_digest(item, sg_hash_len(hash), out) : hash_file(item, hash, out)) == 0)
        return EXIT_OK;
    fprintf(stderr, "signum-util sign: %s: %s\n", item,
            is_digest ? "not a hex or base64 digest of that hash" : strerror(errno ? errno : EIO));
    return EXIT_USAGE;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb" UTIL_FOPEN_CLOEXEC);
    if (!f || fwrite(data, 1, len, f) != len) {
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f);
}

int util_sign_output(const char *file, sg_mech mech, int der, const uint8_t *sig, size_t len)
{
    uint8_t der_sig[160];
    size_t der_len = sizeof(der_sig);

    if (mech == SG_MECH_ECDSA && der) {
        if (sg_ecdsa_raw_to_der(sig, len, der_sig, &der_len) != SG_OK) {
            fprintf(stderr, "signum-util sign: cannot encode the ECDSA signature\n");
            return EXIT_FAILED;
        }
        sig = der_sig;
        len = der_len;
    }
    if (!file) {
        char *b64 = sgc_b64_encode(sig, len);
        printf("%s\n", b64 ? b64 : "");
        free(b64);
    } else {
        char path[4096];
        snprintf(path, sizeof(path), "%s.sig", file);
        if (write_file(path, sig, len) != 0) {
            fprintf(stderr, "signum-util sign: cannot write %s: %s\n", path, strerror(errno));
            return EXIT_FAILED;
        }
    }
    return EXIT_OK;
}

/* ---- Ctrl-C: the job stays on the server ---------------------------------------------------- */

static char interrupt_note[512];
static size_t interrupt_note_len;

static void on_interrupt(int sig)
{
    (void)sig;
    /* Only async-signal-safe calls: the note was written before the handler was set. */
    if (write(2, interrupt_note, interrupt_note_len) < 0)
        _exit(130);
    _exit(130);
}

static void keep_job_on_interrupt(const char *job_id)
{
    int n = snprintf(interrupt_note, sizeof(interrupt_note),
                     "\nsignum-util sign: interrupted; job %s stays on the server\n"
                     "  next: 'signum-util sign --job %s' with the same inputs fetches its "
                     "signatures\n",
                     job_id, job_id);
    interrupt_note_len = n > 0 && (size_t)n < sizeof(interrupt_note) ? (size_t)n : 0;
    signal(SIGINT, on_interrupt);
}

/* ---- progress ------------------------------------------------------------------------------ */

typedef struct {
    int tty;
    long long last_ms;
    double last_done;
} progress;

/* A one-line bar on a terminal; elsewhere "signed N of M" lines, at most one a second (and the
 * last one when the job is done). */
static void progress_show(progress *p, double done, double total, int final)
{
    if (p->tty) {
        int fill = total > 0 ? (int)(done * JOB_BAR_WIDTH / total) : JOB_BAR_WIDTH;
        fprintf(stderr, "\r[%.*s%*s] %.0f/%.0f %3d%%", fill,
                "########################################", JOB_BAR_WIDTH - fill, "", done, total,
                total > 0 ? (int)(done * 100 / total) : 100);
        if (final)
            fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    long long now = util_monotonic_ms();
    if ((final || now - p->last_ms >= JOB_LINE_EVERY_MS) && (final || done != p->last_done)) {
        fprintf(stderr, "signed %.0f of %.0f\n", done, total);
        fflush(stderr);
        p->last_ms = now;
        p->last_done = done;
    }
}

/* ---- the job ------------------------------------------------------------------------------- */

/* One call through the agent, judged as the admin commands judge theirs; EXIT_OK with *doc.
 * A server that cannot be reached, or answers what the agent's one retry rule retries
 * (ag_http_retryable: 5xx, 429 but a spent quota), is asked again for up to JOB_TRANSIENT_MS:
 * polls and pages change nothing, and a submission carries one request_id, so the server
 * keeps one job. */
static int job_call(sg_client *c, const char *method, const char *path, const char *body,
                    cJSON **doc)
{
    long long give_up = util_monotonic_ms() + JOB_TRANSIENT_MS;
    long status = 0;
    char *raw = NULL;
    sg_status st;
    int rc;

    for (;;) {
        st = sg_api_call(c, method, path, body, &status, &raw);
        if (!(st == SG_ERR_NETWORK || st == SG_ERR_TIMEOUT || st == SG_ERR_SERVER ||
              (st == SG_OK && ag_http_retryable(status, raw))) ||
            util_monotonic_ms() >= give_up)
            break;
        sg_api_answer_free(raw);
        raw = NULL;
        sg_os_sleep_ms(JOB_RETRY_MS);
    }
    rc = adm_finish("sign", st, status, &raw, doc);
    sg_api_answer_free(raw);
    return rc;
}

static char *job_body(const util_sign_job_args *a, const uint8_t (*digests)[SG_MAX_DIGEST])
{
    char rid[33];
    uint8_t raw[16];
    cJSON *body = cJSON_CreateObject(), *arr;
    char *text = NULL;

    if (!body)
        return NULL;
    if (sg_os_random(raw, sizeof(raw)) != 0)
        goto out;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(rid + 2 * i, 3, "%02x", raw[i]);
    cJSON_AddStringToObject(body, "key", a->key);
    cJSON_AddStringToObject(body, "mechanism", sgc_mech_name((int)a->mech));
    cJSON_AddStringToObject(body, "hash", sgc_hash_name((int)a->hash));
    if (a->salt >= 0)
        cJSON_AddNumberToObject(body, "salt_length", (double)a->salt);
    cJSON_AddStringToObject(body, "request_id", rid);
    arr = cJSON_AddArrayToObject(body, "digests");
    for (size_t i = 0; arr && i < a->count; i++) {
        char *b64 = sgc_b64_encode(digests[i], sg_hash_len(a->hash));
        if (!b64 || !cJSON_AddItemToArray(arr, cJSON_CreateString(b64))) {
            free(b64);
            goto out;
        }
        free(b64);
    }
    text = cJSON_PrintUnformatted(body);
out:
    cJSON_Delete(body);
    return text;
}

/* Hashes the inputs and submits the job (retried with the same request_id); its id in id. */
static int job_submit(sg_client *c, const util_sign_job_args *a, char *id, size_t id_len)
{
    uint8_t(*digests)[SG_MAX_DIGEST] = calloc(a->count ? a->count : 1, sizeof(*digests));
    char *body = NULL;
    cJSON *doc = NULL;
    int rc = EXIT_FAILED;

    if (!digests)
        goto out;
    if (a->count > UTIL_JOB_MAX_DIGESTS) {
        fprintf(stderr, "signum-util sign: a signing job takes at most %d inputs, not %zu\n",
                UTIL_JOB_MAX_DIGESTS, a->count);
        rc = EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; i < a->count; i++)
        if ((rc = util_sign_digest(a->items[i], a->digests, a->hash, digests[i])) != EXIT_OK)
            goto out;
    rc = EXIT_FAILED;
    if (!(body = job_body(a, (const uint8_t(*)[SG_MAX_DIGEST])digests)))
        goto out;
    if (strlen(body) > SG_API_BODY_MAX) {
        fprintf(stderr,
                "signum-util sign: %zu %s digests make a job of %zu KiB, over the agent's "
                "%d KiB; give at most %zu inputs per job\n",
                a->count, sgc_hash_name((int)a->hash), strlen(body) / 1024, SG_API_BODY_MAX / 1024,
                a->count * SG_API_BODY_MAX / strlen(body));
        rc = EXIT_USAGE;
        goto out;
    }
    rc = job_call(c, "POST", "/api/v1/sign/jobs", body, &doc);
    if (rc != EXIT_OK)
        goto out;
    if (!adm_str(doc, "job_id") || strlen(adm_str(doc, "job_id")) >= id_len) {
        fprintf(stderr, "signum-util sign: the server's answer has no job id\n");
        rc = EXIT_FAILED;
        goto out;
    }
    snprintf(id, id_len, "%s", adm_str(doc, "job_id"));
out:
    cJSON_Delete(doc);
    free(body);
    free(digests);
    return rc;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* A failed job: the server's reason, and the exit code its error code maps to. */
static int job_failed(const char *id, const cJSON *job)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(job, "error");
    cJSON *wrap = cJSON_CreateObject();
    char *text = NULL;
    ag_error err;
    sg_status st = SG_ERR_SERVER;

    if (wrap && e && cJSON_AddItemReferenceToObject(wrap, "error", (cJSON *)e))
        text = cJSON_PrintUnformatted(wrap);
    /* The one map of server error codes (errmap.c); an unknown code counts as a server fault. */
    st = ag_map_server_error(500, text, &err);
    fprintf(stderr, "signum-util sign: job %s failed: %s: %s\n", id,
            adm_str(e, "code") ? adm_str(e, "code") : "unknown",
            adm_str(e, "message") ? adm_str(e, "message") : "the server gave no reason");
    free(text);
    cJSON_Delete(wrap);
    return util_exit_for(st);
}

/* Fetches the signatures page by page and writes each where the synchronous path would. */
static int job_fetch(sg_client *c, const util_sign_job_args *a, const char *id, const cJSON *job)
{
    const char *mech_name = adm_str(job, "mechanism"), *fmt = adm_str(job, "signature_format");
    int m = mech_name ? sgc_mech_parse(mech_name) : -1;
    /* A job whose ECDSA signatures the server made DER already is not converted again. */
    int der = a->der && !(fmt && !strcmp(fmt, "der"));
    size_t offset = 0;
    int rc = EXIT_OK;

    if (m < 0) {
        fprintf(stderr, "signum-util sign: job %s names no mechanism this tool knows\n", id);
        return EXIT_FAILED;
    }
    while (offset < a->count && rc == EXIT_OK) {
        char path[256];
        cJSON *page = NULL;
        const cJSON *sigs, *s;
        size_t i = offset;

        snprintf(path, sizeof(path), "/api/v1/sign/jobs/%s?offset=%zu&limit=%d", id, offset,
                 JOB_PAGE_MAX);
        if ((rc = job_call(c, "GET", path, NULL, &page)) != EXIT_OK)
            break;
        sigs = cJSON_GetObjectItemCaseSensitive(page, "signatures");
        cJSON_ArrayForEach(s, sigs)
        {
            uint8_t sig[UTIL_SIG_MAX];
            size_t len = 0;
            if (i >= a->count || !cJSON_IsString(s) ||
                sgc_b64_decode(s->valuestring, strlen(s->valuestring), SGC_B64, sig, sizeof(sig),
                               &len, NULL, 0) != SGC_OK) {
                fprintf(stderr, "signum-util sign: job %s: a malformed signature page\n", id);
                rc = EXIT_FAILED;
                break;
            }
            rc = util_sign_output(a->digests ? NULL : a->items[i], (sg_mech)m, der, sig, len);
            if (rc != EXIT_OK)
                break;
            i++;
        }
        if (rc == EXIT_OK && i == offset) {
            fprintf(stderr, "signum-util sign: job %s: no signatures from offset %zu\n", id,
                    offset);
            rc = EXIT_FAILED;
        }
        offset = i;
        cJSON_Delete(page);
    }
    return rc;
}

int util_sign_job(sg_client *c, const util_sign_job_args *a)
{
    char id[129], path[256];
    progress p = {isatty(2), 0, -1};
    cJSON *job = NULL;
    int rc;

    if (a->job_id) {
        if (!adm_name_ok(a->job_id))
            return adm_bad_name("sign --job", a->job_id);
        snprintf(id, sizeof(id), "%s", a->job_id);
    } else if ((rc = job_submit(c, a, id, sizeof(id))) != EXIT_OK) {
        return rc;
    }
    keep_job_on_interrupt(id);
    if (!a->job_id)
        fprintf(stderr, "signum-util sign: job %s: %zu digests queued\n", id, a->count);
    for (;;) {
        const char *status;
        double done, total;

        snprintf(path, sizeof(path), "/api/v1/sign/jobs/%s?wait=%d&limit=1", id, JOB_POLL_WAIT_S);
        if ((rc = job_call(c, "GET", path, NULL, &job)) != EXIT_OK)
            goto out;
        status = adm_str(job, "status");
        done = num(job, "done");
        total = num(job, "total");
        if (total != (double)a->count) {
            fprintf(stderr,
                    "signum-util sign: job %s holds %.0f digests, but %zu inputs were "
                    "given\n",
                    id, total, a->count);
            rc = EXIT_USAGE;
            goto out;
        }
        if (!status || (strcmp(status, "queued") && strcmp(status, "running") &&
                        strcmp(status, "done") && strcmp(status, "failed"))) {
            fprintf(stderr, "signum-util sign: job %s: the server's answer has no known status\n",
                    id);
            rc = EXIT_FAILED;
            goto out;
        }
        if (!strcmp(status, "failed")) {
            rc = job_failed(id, job);
            goto out;
        }
        progress_show(&p, done, total, !strcmp(status, "done"));
        if (!strcmp(status, "done"))
            break;
        cJSON_Delete(job);
        job = NULL;
    }
    rc = job_fetch(c, a, id, job);
out:
    signal(SIGINT, SIG_DFL);
    cJSON_Delete(job);
    return rc;
}
