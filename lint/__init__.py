"""concurrency-lint: find blocking calls in async code, missing awaits and CPU work on threads."""
