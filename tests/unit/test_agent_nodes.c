/* Unit tests of the agent's failover policy (agent-core/src/agent/nodes.c): the order nodes are
 * tried in, the back-off a failed node gets (doubling, capped), its re-probe once the interval
 * has passed, and the preferred node following the last one that answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/nodes.h"

static void assert_order(const ag_nodes *n, uint64_t now, const unsigned *want, unsigned count)
{
    unsigned order[AG_MAX_SERVERS];
    assert_int_equal(ag_nodes_order(n, now, order), count);
    for (unsigned i = 0; i < count; i++)
        assert_int_equal(order[i], want[i]);
}

static void test_healthy_order_starts_at_preferred(void **state)
{
    ag_nodes n;
    (void)state;
    ag_nodes_init(&n, 3, 1000, 30000);
    assert_order(&n, 5, (unsigned[]){0, 1, 2}, 3);
    assert_int_equal(ag_nodes_ok(&n, 0), 0); /* already preferred: no failover */
    assert_int_equal(ag_nodes_ok(&n, 2), 1); /* a failover */
    assert_order(&n, 5, (unsigned[]){2, 0, 1}, 3);
}

static void test_failed_node_is_skipped_then_reprobed(void **state)
{
    ag_nodes n;
    (void)state;
    ag_nodes_init(&n, 3, 1000, 30000);
    assert_int_equal(ag_nodes_failed(&n, 0, 10000), 1000);
    assert_true(ag_nodes_backing_off(&n, 0, 10000));
    /* In back-off: tried last, after the healthy nodes. */
    assert_order(&n, 10000, (unsigned[]){1, 2, 0}, 3);
    assert_order(&n, 10999, (unsigned[]){1, 2, 0}, 3);
    /* The interval has passed: eligible again in its place (the re-probe). */
    assert_false(ag_nodes_backing_off(&n, 0, 11000));
    assert_order(&n, 11000, (unsigned[]){0, 1, 2}, 3);
    /* The re-probe fails: the interval doubles. */
    assert_int_equal(ag_nodes_failed(&n, 0, 11000), 2000);
    assert_order(&n, 12999, (unsigned[]){1, 2, 0}, 3);
    assert_order(&n, 13000, (unsigned[]){0, 1, 2}, 3);
    /* It answers: healthy again, and the next failure starts from the base interval. */
    ag_nodes_ok(&n, 0);
    assert_int_equal(n.node[0].failures, 0);
    assert_int_equal(ag_nodes_failed(&n, 0, 20000), 1000);
}

static void test_backoff_doubles_up_to_the_cap(void **state)
{
    static const unsigned want[] = {500, 1000, 2000, 4000, 8000, 10000, 10000};
    ag_nodes n;
    (void)state;
    ag_nodes_init(&n, 2, 500, 10000);
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(ag_nodes_failed(&n, 1, 0), want[i]);
    /* However many failures in a row, no overflow past the cap. */
    for (unsigned i = 0; i < 100; i++)
        assert_int_equal(ag_nodes_failed(&n, 1, 0), 10000);
    assert_int_equal(n.node[1].retry_at_ms, 10000);
}

static void test_all_down_tried_soonest_first(void **state)
{
    ag_nodes n;
    (void)state;
    ag_nodes_init(&n, 3, 1000, 30000);
    ag_nodes_ok(&n, 1);
    ag_nodes_failed(&n, 1, 100); /* eligible at 1100 */
    ag_nodes_failed(&n, 2, 100);
    ag_nodes_failed(&n, 2, 100); /* 2000 ms: eligible at 2100 */
    ag_nodes_failed(&n, 0, 50);  /* eligible at 1050 */
    /* Nobody eligible: every node still tried, the one back soonest first. */
    assert_order(&n, 200, (unsigned[]){0, 1, 2}, 3);
    /* Node 0 eligible: first; the others by their time. */
    assert_order(&n, 1060, (unsigned[]){0, 1, 2}, 3);
    ag_nodes_failed(&n, 0, 1060); /* 2000 ms: eligible at 3060 */
    assert_order(&n, 1060, (unsigned[]){1, 2, 0}, 3);
    /* Node 1 (preferred) eligible again, 2 not yet. */
    assert_order(&n, 1100, (unsigned[]){1, 2, 0}, 3);
    assert_order(&n, 2100, (unsigned[]){1, 2, 0}, 3);
    assert_order(&n, 3060, (unsigned[]){1, 2, 0}, 3);
}

static void test_single_node_and_bounds(void **state)
{
    ag_nodes n;
    (void)state;
    ag_nodes_init(&n, 1, 1000, 30000);
    ag_nodes_failed(&n, 0, 0);
    /* One node: always tried, back-off or not. */
    assert_order(&n, 0, (unsigned[]){0}, 1);
    /* Indexes out of range change nothing. */
    assert_int_equal(ag_nodes_failed(&n, 5, 0), 0);
    assert_int_equal(ag_nodes_ok(&n, 5), 0);
    assert_int_equal(n.preferred, 0);
    /* More nodes than the array holds are cut to it; zero intervals made sane. */
    ag_nodes_init(&n, AG_MAX_SERVERS + 3, 0, 0);
    assert_int_equal(n.count, AG_MAX_SERVERS);
    assert_int_equal(ag_nodes_failed(&n, 0, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy_order_starts_at_preferred),
        cmocka_unit_test(test_failed_node_is_skipped_then_reprobed),
        cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
        cmocka_unit_test(test_all_down_tried_soonest_first),
        cmocka_unit_test(test_single_node_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
