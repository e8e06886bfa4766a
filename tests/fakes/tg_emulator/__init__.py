"""The Telegram Bot API emulator's own tests, driven by python-telegram-bot and raw HTTP."""
