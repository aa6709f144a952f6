"""One module per ``edgeemo`` verb. Each has ``register(verbs)``, which adds its parser and sets
``handler`` to a function taking the parsed arguments and returning the exit code."""
