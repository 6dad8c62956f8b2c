"""Fieldline device SDK (MicroPython and CPython)."""
