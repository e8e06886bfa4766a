"""Everything that knows SMSC: the client, its models and errors, and a local simulator."""
