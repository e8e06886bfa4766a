"""Stand-ins at the process edge and the harnesses that run the real application against them."""
