"""Integration tests: one component over real I/O (loopback HTTP, PostgreSQL, a second process)."""
