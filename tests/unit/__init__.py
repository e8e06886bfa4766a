"""Unit tests: one module's logic in process (SQLite on a temporary path counts as in process)."""
