"""Talking to Telegram: its error taxonomy, send pacing, task documents, and intake of updates."""
