"""Test-wide settings: offline, fast scale, results collected, one model load shared."""
import os

# Set before anything imports huggingface_hub or a notebook kernel starts (kernels inherit it).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GLASSBOX_SCALE"] = "fast"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def lm():
    """The embedded LM, loaded once for every test that needs it."""
    from utils.models import load_lm
    return load_lm()
