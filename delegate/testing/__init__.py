"""Offline stand-ins for what delegate talks to, for tests and benchmarks (yours and ours); imports nothing of delegate."""
