"""cellagent's Python test package: everything the Python tests, the lab's programs and
the benchmarks import. HACKING.md ("Python tests") says how it is laid out and used.

    import cellagent_test as ct          # the essentials, below
    import cellagent_test.lab            # then ct.lab.Lab, ct.lab.main ...

Modules (each imports only those above it):
- core: paths, cleanup, wait_until() (the one way to wait), Proc, run(), main().
- agent: Agent (the cellagent binary, also in a lab), write_config().
- bus: PrivateBus, a system bus for agent tests without a lab.
- mqtt: Broker, Subscriber (returns after the SUBACK), publish(), retained messages,
  certificates, the mqtt-driver.
- smspdu, modememu: the SMS PDU codec and the modem emulator (the lab's modem-emu).
- lab: the lab (bus, emulator, ModemManager, namespaces, NetworkManager) and main()
  for lab test files.
- modem, uplink, sms, commands: scenario helpers for the agent's modules.
- bench: the benchmarks' framework (scripts/bench).
"""
from cellagent_test.core import (AGENT_WRAPPER, BUILD_DIR, CELLAGENT, PY, SKIP, SOURCE_DIR,  # noqa: F401
                                 TIME_SCALE, CommandError, Proc, at_exit, cpu_seconds,
                                 free_port, main, need, on_failure, port_open, rss_kb, run,
                                 run_dir, scaled, skip, wait_until)
from cellagent_test.agent import Agent, write_config  # noqa: F401
from cellagent_test.bus import PrivateBus  # noqa: F401
from cellagent_test.mqtt import Broker, Subscriber, publish  # noqa: F401
