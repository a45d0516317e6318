"""Growth driver: the broker restarts under the agent (the connection is lost without a
DISCONNECT, queued and in-flight messages go back to the agent's queue, the reconnect runs
through the backoff). Each operation is one broker restart and the agent online again,
then one cmd/mqtt-reconnect (a second reconnect, and it resets the backoff: without it the
20 losses in a row would climb the 1 s .. 5 min backoff for about an hour)."""
import cellagent_test as ct

NAME = "broker restarts (each followed by cmd/mqtt-reconnect)"
COUNT = 20
BOUND = 1.05
MODEM = False


def _connections(ctx):
    return ctx.agent.log_text().count("[mqtt] connected to")


def ready(ctx):
    ct.wait_until(lambda: _connections(ctx) >= 1, 30, "the agent connected")


def run(ctx, start, stop):
    broker = ctx.env.broker
    for i in range(start, stop):
        n = _connections(ctx)
        broker.stop()
        broker.start()
        ct.wait_until(lambda: _connections(ctx) > n, 60, f"the agent back after restart {i + 1}")
        ct.publish(broker.port, "cellagent/bench/cmd/mqtt-reconnect", '{"id":"r%d"}' % i)
        ct.wait_until(lambda: _connections(ctx) > n + 1, 60,
                      f"the agent back after cmd/mqtt-reconnect {i + 1}")
