"""smsc-tasks-bot: SMSC deferred tasks in Telegram."""

__version__ = "0.1.0"
