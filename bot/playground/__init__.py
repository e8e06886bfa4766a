"""The playground: the real bot on the SMSC simulator and the Bot API emulator, in a browser.

`python -m bot demo` (`make demo`) starts, in one process and with no configuration, the SMSC
simulator, the Bot API emulator, the bot built by `build_application` exactly as in production
(watcher, outbox, pacing) and a web chat with a control panel on one port: see `runner.py`.
Nothing is imported here, so `bot.playground.cli` can set PTB's environment first.
"""
