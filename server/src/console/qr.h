/* A QR code as an SVG document (malloc'd; NULL when the text does not fit or memory ran out). */
#ifndef SRV_QR_H
#define SRV_QR_H

char *srv_qr_svg(const char *text);

#endif
