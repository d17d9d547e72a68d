"""pytest-concurrency-guard: catch concurrency mistakes in tests, under load and before the code runs."""
