/* The capped growing buffer and array growth. */
#include "signum/common/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void sgc_buf_init(sgc_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int sgc_buf_reserve(sgc_buf *b, size_t n)
{
    size_t need, cap;
    char *nb;

    if (n > b->max - b->len) /* len <= max always, so this cannot wrap */
        return SGC_E_TOO_LARGE;
    need = b->len + n + 1;
    if (need <= b->cap)
        return SGC_OK;
    /* Double (fewer copies for bodies read in small pieces), but never allocate past max+1. */
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1 && b->max < SIZE_MAX)
        cap = b->max + 1;
    if (cap < need)
        cap = need;
    if (!(nb = realloc(b->data, cap)))
        return SGC_E_NOMEM;
    b->data = nb;
    b->cap = cap;
    return SGC_OK;
}

int sgc_buf_add(sgc_buf *b, const void *data, size_t n)
{
    int rc = sgc_buf_reserve(b, n);
    if (rc != SGC_OK)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return SGC_OK;
}

int sgc_buf_add_str(sgc_buf *b, const char *s)
{
    return sgc_buf_add(b, s, strlen(s));
}

char *sgc_buf_take(sgc_buf *b, size_t *len)
{
    char *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

void sgc_buf_free(sgc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int sgc_array_grow(void **items, size_t *cap, size_t need, size_t elem, size_t max_items)
{
    size_t n;
    void *grown;

    if (need <= *cap)
        return SGC_OK;
    if (need > max_items || elem == 0 || need > SIZE_MAX / elem)
        return SGC_E_TOO_LARGE;
    n = *cap ? *cap : elem < 32 ? 256 / elem : 8; /* first: 256 bytes or 8 items */
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    if (n > max_items)
        n = max_items;
    if (n > SIZE_MAX / elem)
        n = need;
    if (!(grown = realloc(*items, n * elem)))
        return SGC_E_NOMEM;
    *items = grown;
    *cap = n;
    return SGC_OK;
}
