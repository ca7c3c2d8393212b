"""Shared fixtures: a scripted OpenAI-compatible server on loopback, the record-version-2 store and its servers
(tests/support/v2_fixture.py), and offline Hugging Face settings."""

import os

import pytest

from delegate.testing.scripted_server import ScriptedServer

pytest_plugins = ["tests.support.v2_fixture"]

# Everything the tests load is local: never wait on Hub retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def scripted_server():
    """A started ScriptedServer; push Replies or set a responder, point base_url at it."""
    with ScriptedServer() as server:
        yield server
