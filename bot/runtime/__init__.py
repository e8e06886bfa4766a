"""Running the application: building it, starting and stopping it, serving updates, leadership."""
