/* Which configured server to try next: per-node health with back-off (the failover policy of
 * src/agent/transport.c, kept free of I/O and clocks so it is unit-tested on its own).
 *
 * A node that fails (no connection, a timeout, a 5xx) is skipped for a back-off interval that
 * doubles with each failure in a row (base_ms, 2 * base_ms, ... capped at max_ms). Once the
 * interval has passed the node is eligible again and the next request that reaches it in the
 * order is its re-probe: a success clears its record, a failure doubles the interval. Nodes
 * still in back-off are tried last (soonest eligible first), never left out: with every node
 * down the agent still tries each one before it gives up. */
#ifndef AG_NODES_H
#define AG_NODES_H

#include <stdint.h>

#include "signum/agent_config.h"

typedef struct {
    unsigned failures;    /* in a row; 0: healthy */
    uint64_t retry_at_ms; /* skipped until then (monotonic ms); 0: eligible */
} ag_node;

typedef struct {
    unsigned count;
    unsigned preferred; /* the node that answered last: connections to it are warm */
    unsigned base_ms, max_ms;
    ag_node node[AG_MAX_SERVERS];
} ag_nodes;

void ag_nodes_init(ag_nodes *n, unsigned count, unsigned base_ms, unsigned max_ms);
/* The order to try the nodes in now: the eligible ones from the preferred node on, in
 * configuration order, then those in back-off by the time they become eligible. Returns the
 * number written to order (always count). */
unsigned ag_nodes_order(const ag_nodes *n, uint64_t now_ms, unsigned order[AG_MAX_SERVERS]);
/* Node i failed at now_ms: its back-off interval, in ms. */
unsigned ag_nodes_failed(ag_nodes *n, unsigned i, uint64_t now_ms);
/* Node i answered: healthy again, and preferred from now on. Returns 1 if it was not
 * preferred before (a failover or a return). */
int ag_nodes_ok(ag_nodes *n, unsigned i);
/* Whether node i is in back-off at now_ms. */
int ag_nodes_backing_off(const ag_nodes *n, unsigned i, uint64_t now_ms);

#endif
