"""Public routes, one module per resource, each exporting `router`; the gateway
component includes every module here."""
