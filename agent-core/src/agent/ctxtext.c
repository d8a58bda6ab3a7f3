/* The caller's context as text the server takes: its JSON parser accepts only UTF-8, and it
 * caps each context field (server/src/api/sign.c). What the kernel says about a process is
 * bytes (a path or an argument may be Latin-1), so invalid bytes are escaped losslessly:
 *
 *   a byte that is not part of a well-formed UTF-8 character   ->  \xNN (two lowercase hex)
 *   a backslash                                                 ->  \\
 *   anything else (well-formed UTF-8, RFC 3629)                 ->  itself
 *
 * Reversing it: read \\ as one backslash and \xNN as the byte NN; no other backslash occurs.
 * Documented in agent-core/README.md and in server/API.md (POST /api/v1/sign, context). */
#include <string.h>

#include "agent.h"

/* Length of the well-formed UTF-8 character at in[0..len), or 0 if it is not one. */
static size_t utf8_char(const unsigned char *in, size_t len)
{
    unsigned char c = in[0];
    size_t n, i;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0; /* a continuation byte, an overlong lead (C0, C1) or beyond U+10FFFF */
    if (n > len)
        return 0;
    /* The second byte's range excludes overlongs, surrogates and code points over U+10FFFF. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (in[1] < lo || in[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (in[i] < 0x80 || in[i] > 0xBF)
            return 0;
    return n;
}

size_t ag_ctx_escape(const void *bytes, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *in = bytes;
    size_t i = 0, o = 0;

    while (i < len) {
        size_t n = utf8_char(in + i, len - i);
        if (n == 1 && in[i] == '\\') {
            if (o + 2 > cap)
                break;
            out[o++] = '\\';
            out[o++] = '\\';
            i++;
        } else if (n == 0) {
            if (o + 4 > cap)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[in[i] >> 4];
            out[o++] = hex[in[i] & 15];
            i++;
        } else {
            /* A whole character or nothing: the cut always falls on a boundary. */
            if (o + n > cap)
                break;
            memcpy(out + o, in + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return o;
}

size_t ag_ctx_fit(const char *s, size_t cap)
{
    size_t n = strlen(s);
    if (n <= cap)
        return n;
    /* Back off continuation bytes so the cut falls before a character's first byte. */
    n = cap;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* ---- secrets in a command line ------------------------------------------------------------ */

/* Options whose next argument is a secret, as signing tools spell them (pkcs11-tool, p11tool,
 * openssl, osslsigncode, jarsigner, keytool, gpg, signtool). Compared case-insensitively. */
static const char *const secret_options[] = {
    "--pin",      "--so-pin",  "--new-pin", "--puk",      "-p",       "-pin",
    "-pass",      "-passin",   "-passout",  "-storepass", "-keypass", "--passphrase",
    "--password", "-password", "/p",        "--api-key",  NULL};

static int ascii_ieq(const char *a, size_t alen, const char *b)
{
    size_t n = strlen(b);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* Whether arg is one of the options, alone (*inline_at 0) or as "OPTION=VALUE" (*inline_at
 * the offset of the value). */
static int secret_option(const char *arg, size_t len, size_t *inline_at)
{
    const char *eq = memchr(arg, '=', len);
    *inline_at = 0;
    for (const char *const *o = secret_options; *o; o++) {
        if (ascii_ieq(arg, len, *o))
            return 1;
        if (eq && ascii_ieq(arg, (size_t)(eq - arg), *o) && (*o)[1] == '-') {
            *inline_at = (size_t)(eq - arg) + 1;
            return 1;
        }
    }
    return 0;
}

static size_t put(char *out, size_t o, size_t cap, const char *s, size_t n)
{
    if (o + n > cap)
        n = cap > o ? cap - o : 0;
    memcpy(out + o, s, n);
    return o + n;
}

size_t ag_ctx_redact(const char *in, size_t len, char sep, char *out, size_t cap)
{
    static const char hidden[] = "***", pin_value[] = "pin-value=";
    size_t i = 0, o = 0;
    int next_secret = 0;

    while (i < len) {
        size_t n = 0, at = 0;
        const char *arg = in + i;
        while (i + n < len && arg[n] != sep)
            n++;
        if (o > 0 || i > 0)
            o = put(out, o, cap, &sep, 1);
        if (next_secret) {
            o = put(out, o, cap, hidden, sizeof(hidden) - 1);
            next_secret = 0;
        } else if (secret_option(arg, n, &at)) {
            if (at) {
                o = put(out, o, cap, arg, at);
                o = put(out, o, cap, hidden, sizeof(hidden) - 1);
            } else {
                o = put(out, o, cap, arg, n);
                next_secret = 1;
            }
        } else {
            /* A PKCS#11 URI may carry the PIN: pkcs11:...?pin-value=SECRET&... */
            size_t k = 0;
            while (k < n) {
                size_t rest = n - k;
                if (rest >= sizeof(pin_value) - 1 &&
                    memcmp(arg + k, pin_value, sizeof(pin_value) - 1) == 0) {
                    o = put(out, o, cap, arg + k, sizeof(pin_value) - 1);
                    o = put(out, o, cap, hidden, sizeof(hidden) - 1);
                    k += sizeof(pin_value) - 1;
                    while (k < n && arg[k] != '&' && arg[k] != ';')
                        k++;
                } else {
                    o = put(out, o, cap, arg + k, 1);
                    k++;
                }
            }
        }
        i += n + (i + n < len ? 1 : 0);
    }
    return o;
}
