"""Pieces every service shares: settings, database, logging, HTTP plumbing."""
