"""The web console: server-rendered pages at `/` for people, beside the API at /api/v1.

It signs people in with a session cookie and reads and changes everything through the
gateway's own public API (in-process), so owner scoping and validation live in one place.
"""
