import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def models_dir(tmp_path_factory):
    """Built-in tiny checkpoints go to a per-session folder (never the user's ~/.cache)."""
    d = tmp_path_factory.mktemp("models")
    old = os.environ.get("HARNESS_MODELS_DIR")
    os.environ["HARNESS_MODELS_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("HARNESS_MODELS_DIR", None)
    else:
        os.environ["HARNESS_MODELS_DIR"] = old
