"""Fieldline backend: one package, one sub-package per service (see docs/architecture.md)."""
