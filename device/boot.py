# Runs first on every boot (the board runs it before main.py; the unix port does not).
# Nothing here may need the network: a board must boot and sample with the broker down.
import gc

gc.collect()
