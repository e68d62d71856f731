"""Fixtures shared by the tests (the environment is set in the root conftest.py)."""
import pytest


@pytest.fixture(autouse=True)
def _results_elsewhere(tmp_path, monkeypatch):
    """Unit tests record into a temporary folder, never into the chapters' results/."""
    monkeypatch.setenv("GLASSBOX_RESULTS_DIR", str(tmp_path / "results"))


@pytest.fixture(scope="session")
def lm():
    """The embedded LM, loaded once for every test that needs it."""
    from utils.models import load_lm
    return load_lm()


def pytest_collection_modifyitems(config, items):
    """A test that uses the LM must say so (``@pytest.mark.lm``), so ``-m "not lm"`` gives a fast run."""
    unmarked = [item.nodeid for item in items
                if "lm" in getattr(item, "fixturenames", ()) and item.get_closest_marker("lm") is None]
    if unmarked:
        raise pytest.UsageError(f"these tests load the LM but lack @pytest.mark.lm: {unmarked}")
