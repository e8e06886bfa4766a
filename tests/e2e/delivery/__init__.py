"""End-to-end: alert delivery when the disk, the database file or Telegram misbehave (issue 8)."""
