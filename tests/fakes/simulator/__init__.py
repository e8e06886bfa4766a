"""The SMSC simulator's own tests, over real HTTP on loopback."""
