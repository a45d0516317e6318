"""Growth driver: the system bus goes away and comes back; the agent reconnects each time
(its ModemManager/NetworkManager name watches are set up again)."""
import harness as h

NAME = "system bus reconnects"
COUNT = 20
BOUND = 1.05
MODEM = False  # needs the private bus: benchlib.Env without the lab


def _count(ctx, text):
    return ctx.agent.log_text().count(text)


def ready(ctx):
    h.wait_until(lambda: _count(ctx, "on the system bus") >= 2, 30, "the name watches")


def run(ctx, start, stop):
    for i in range(start, stop):
        closed = _count(ctx, "system bus connection closed")
        watched = _count(ctx, "on the system bus")
        ctx.env.bus.stop()
        h.wait_until(lambda: _count(ctx, "system bus connection closed") > closed, 10,
                     f"the agent to see bus loss {i + 1}")
        ctx.env.bus.start()
        h.wait_until(lambda: _count(ctx, "on the system bus") >= watched + 2, 120,
                     f"the agent to watch names again {i + 1}")
