/* The enrollment QR code as SVG (libqrencode): one path of unit squares, dark modules only,
 * a quiet zone of 4 modules. Shown once, with the otpauth:// URI beside it. */
#include "qr.h"

#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUIET 4

char *srv_qr_svg(const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    size_t cap, len = 0;
    char *out = NULL;
    int w, n;

    if (!qr)
        return NULL;
    w = qr->width;
    /* At most one "M x y h1v1h-1z" (<= 32 bytes) per module, plus the frame. */
    cap = (size_t)w * (size_t)w * 32 + 512;
    if (!(out = malloc(cap)))
        goto out;
    n = snprintf(out, cap,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                 "shape-rendering=\"crispEdges\"><rect width=\"100%%\" height=\"100%%\" "
                 "fill=\"#fff\"/><path fill=\"#000\" d=\"",
                 w + 2 * QUIET, w + 2 * QUIET);
    len = (size_t)n;
    for (int y = 0; y < w; y++) {
        for (int x = 0; x < w; x++) {
            int run = 0;
            while (x + run < w && (qr->data[y * w + x + run] & 1))
                run++;
            if (!run)
                continue;
            len += (size_t)snprintf(out + len, cap - len, "M%d %dh%dv1h-%dz", x + QUIET, y + QUIET,
                                    run, run);
            x += run - 1;
        }
    }
    snprintf(out + len, cap - len, "\"/></svg>");
out:
    QRcode_free(qr);
    return out;
}
