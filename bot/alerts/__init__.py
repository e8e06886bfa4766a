"""Task alerts: the watcher that polls and diffs, the typed alert model, and delivery to chats."""
