"""The router's two peers for every strategy test: the LLM and the SLM, each a scripted server on loopback."""

import pytest

from delegate.testing.scripted_server import ScriptedServer


@pytest.fixture
def llm(scripted_server):
    return scripted_server


@pytest.fixture
def slm():
    with ScriptedServer() as server:
        yield server
