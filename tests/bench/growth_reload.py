"""Growth driver: SIGHUP configuration reloads (same file: parse, validate, swap, compare)."""
import signal

import cellagent_test as ct

NAME = "SIGHUP reloads"
COUNT = 500
BOUND = 1.05
MODEM = False


def run(ctx, start, stop):
    for i in range(start, stop):
        ctx.agent.proc.send_signal(signal.SIGHUP)
        ct.wait_until(lambda: ctx.agent.log_text().count("configuration reloaded") > i, 10,
                      f"reload {i + 1}")
