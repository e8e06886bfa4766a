"""End-to-end tests: the real Application, or the bot's process, over the emulator and simulator."""
