"""Fixtures shared by the tests (the environment is set in the root conftest.py)."""
import pytest


@pytest.fixture(scope="session")
def lm():
    """The embedded LM, loaded once for every test that needs it."""
    from utils.models import load_lm
    return load_lm()
