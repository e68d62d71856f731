"""A failing check reads as one short message in a notebook; the learner's own bug keeps its traceback."""
import re

import pytest
import torch

from utils.checks import CheckFailed, call, expect_tensor

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def shown(check_code: str) -> list[str]:
    """What IPython prints for the error raised by ``check_code`` (ANSI colours removed)."""
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.user_ns.update(call=call, expect_tensor=expect_tensor, torch=torch)
    captured = []
    shell._showtraceback = lambda etype, evalue, stb: captured.extend(stb)
    shell.run_cell(check_code)
    return [ANSI.sub("", line) for line in "\n".join(captured).splitlines()]


def test_stub_is_one_line():
    lines = shown("def residual_norms(x):\n    raise NotImplementedError('write me')\ncall(residual_norms, 1)")
    assert len(lines) == 1 and "residual_norms is not written yet" in lines[0]


def test_wrong_answer_is_short():
    lines = shown("expect_tensor(torch.zeros(2, 3), 'norms', shape=(3,))")
    assert 1 <= len(lines) <= 5 and "norms has shape (2, 3), expected (3,)" in lines[-1]
    assert not any("utils/checks" in line for line in lines)


def test_learners_own_bug_keeps_its_traceback():
    lines = shown("def mine(x):\n    return x[5]\ncall(mine, [1, 2])")
    text = "\n".join(lines)
    assert "return x[5]" in text and "IndexError" in text           # their frame, their error
    assert "check failed: mine raised IndexError" in lines[-1]
    assert "utils/checks" not in text                                 # none of the check's internals


def test_pytest_still_sees_the_chain():
    def mine(x):
        raise ValueError("boom")
    with pytest.raises(CheckFailed) as err:
        call(mine, 1)
    assert isinstance(err.value.__cause__, ValueError)


def test_widgets_are_detected_on_a_subclassed_kernel_shell(monkeypatch):
    """Colab's shell subclasses ipykernel's ZMQInteractiveShell: widgets work there too."""
    import IPython

    from utils import plotting

    class ZMQInteractiveShell:            # stands in for ipykernel's class (only the name is read)
        pass

    class ColabShell(ZMQInteractiveShell):
        pass

    for shell, expected in ((ColabShell(), True), (ZMQInteractiveShell(), True), (object(), False), (None, False)):
        monkeypatch.setattr(IPython, "get_ipython", lambda shell=shell: shell)
        assert plotting.widgets_available() is expected
