"""Virtual devices on the real SDK: `fieldline demo` (the whole system on one laptop)
and `fieldline simulate` (a load generator for any deployment).

signals.py    what a virtual sensor reads at a simulated moment (pure)
scenario.py   the demo's story in time: --speed, the drifting and the silent device
virtual.py    one SDK `Device` with a radio that can go out of range, and its counters
fleet.py      many virtual devices on one event loop, sampling on schedule
api.py        the public API calls the simulator makes (on provision's client)
demo*.py      `fieldline demo`: stack, account, devices, rules, guide
simulate.py   `fieldline simulate`: provision N, run, live line, read back, clean up
commands.py   the two commands for backend/cli.py
"""
