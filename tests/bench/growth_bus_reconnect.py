"""Growth driver: the system bus goes away and comes back; the agent reconnects each time
(ModemManager and NetworkManager clients and name watches set up again). Reconnection is
seen on the bus itself (the agent's pid among its clients), not in the agent's log."""
import cellagent_test as ct

NAME = "system bus reconnects"
COUNT = 20
BOUND = 1.05
MODEM = False  # needs the private bus: ct.bench.Env without the lab


def _on_bus(ctx):
    return ctx.agent.proc.pid in ctx.env.bus.client_pids()


def ready(ctx):
    ct.wait_until(lambda: _on_bus(ctx), 30, "the agent on the system bus")


def run(ctx, start, stop):
    for i in range(start, stop):
        ctx.env.bus.stop()
        ctx.env.bus.start()
        ct.wait_until(lambda: _on_bus(ctx), 120, f"the agent back on the bus {i + 1}")
