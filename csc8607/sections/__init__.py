"""One small module per section of the course report, each running the shared engine."""
