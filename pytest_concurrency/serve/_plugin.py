"""pytest fixtures and markers for the servers (registered by ``pytest_concurrency.plugin``)."""
