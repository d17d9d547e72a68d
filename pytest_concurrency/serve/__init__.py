"""Real servers under each concurrency model, a load generator and its reports."""
