"""Embedded local services for the run command and the tests: PostgreSQL, FTP (no Docker, no system service)."""
