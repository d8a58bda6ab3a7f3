/* A growing byte buffer with a hard cap (like curl's dynbuf): anything read from the network
 * or a file is collected through one of these, so every such site has its own limit and
 * one tested growth rule. The data is always NUL-terminated once something was added. */
#ifndef SGC_BUF_H
#define SGC_BUF_H

#include <stddef.h>

#include "rc.h"

typedef struct {
    char *data; /* NULL until the first byte */
    size_t len;
    size_t cap; /* allocated bytes, including the NUL */
    size_t max; /* len never passes this */
} sgc_buf;

void sgc_buf_init(sgc_buf *b, size_t max);
/* SGC_OK, SGC_E_TOO_LARGE (len + n > max; nothing added) or SGC_E_NOMEM (nothing added). */
int sgc_buf_add(sgc_buf *b, const void *data, size_t n);
int sgc_buf_add_str(sgc_buf *b, const char *s);
/* Makes room for n more bytes (and the NUL) without adding them; the same codes. */
int sgc_buf_reserve(sgc_buf *b, size_t n);
/* Hands the data over (NULL if nothing was added) and resets the buffer (the cap stays). */
char *sgc_buf_take(sgc_buf *b, size_t *len);
void sgc_buf_free(sgc_buf *b);

/* Grows an array *items of *cap elements of size elem so that it holds need elements,
 * doubling (from 256 bytes or 8 items, whichever is more) but never past max_items. SGC_OK,
 * SGC_E_TOO_LARGE or SGC_E_NOMEM (the array and *cap unchanged). */
int sgc_array_grow(void **items, size_t *cap, size_t need, size_t elem, size_t max_items);

#endif
