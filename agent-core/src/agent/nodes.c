/* Per-node health with back-off for failover across the configured servers (nodes.h). */
#include "nodes.h"

#include <string.h>

void ag_nodes_init(ag_nodes *n, unsigned count, unsigned base_ms, unsigned max_ms)
{
    memset(n, 0, sizeof(*n));
    n->count = count > AG_MAX_SERVERS ? AG_MAX_SERVERS : count;
    n->base_ms = base_ms ? base_ms : 1;
    n->max_ms = max_ms < n->base_ms ? n->base_ms : max_ms;
}

int ag_nodes_backing_off(const ag_nodes *n, unsigned i, uint64_t now_ms)
{
    return i < n->count && n->node[i].retry_at_ms > now_ms;
}

unsigned ag_nodes_order(const ag_nodes *n, uint64_t now_ms, unsigned order[AG_MAX_SERVERS])
{
    unsigned k, out = 0, waiting = 0, later[AG_MAX_SERVERS];

    for (k = 0; k < n->count; k++) {
        unsigned i = (n->preferred + k) % n->count;
        if (ag_nodes_backing_off(n, i, now_ms))
            later[waiting++] = i;
        else
            order[out++] = i;
    }
    /* Insertion sort of the few nodes in back-off by when they become eligible; equal
     * times keep the configuration order from the preferred node on. */
    for (k = 1; k < waiting; k++) {
        unsigned v = later[k], j = k;
        while (j > 0 && n->node[later[j - 1]].retry_at_ms > n->node[v].retry_at_ms) {
            later[j] = later[j - 1];
            j--;
        }
        later[j] = v;
    }
    for (k = 0; k < waiting; k++)
        order[out++] = later[k];
    return out;
}

unsigned ag_nodes_failed(ag_nodes *n, unsigned i, uint64_t now_ms)
{
    ag_node *node;
    uint64_t ms;
    if (i >= n->count)
        return 0;
    node = &n->node[i];
    if (node->failures < 32)
        node->failures++;
    /* base * 2^(failures-1), capped; the shift stays far below 64 bits. */
    ms = (uint64_t)n->base_ms << (node->failures - 1 < 20 ? node->failures - 1 : 20);
    if (ms > n->max_ms)
        ms = n->max_ms;
    node->retry_at_ms = now_ms + ms;
    return (unsigned)ms;
}

int ag_nodes_ok(ag_nodes *n, unsigned i)
{
    int moved;
    if (i >= n->count)
        return 0;
    n->node[i].failures = 0;
    n->node[i].retry_at_ms = 0;
    moved = n->preferred != i;
    n->preferred = i;
    return moved;
}
