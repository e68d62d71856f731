"""The claim ledger: claims hold on the right end of their interval, fail loudly, and reach the JSON."""
import json

import pytest

from utils import report
from utils.report import ClaimFailed, claim, record


def test_claim_holds_and_is_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSBOX_RESULTS_DIR", str(tmp_path))
    claim("effect_positive", 0.8, ">", 0.0, ci=(0.3, 1.2), chapter="99_test")
    claim("loss_small", 0.1, "<", 0.5, chapter="99_test")
    record("99_test", extra=1.0)
    saved = json.loads((tmp_path / "99_test.json").read_text())
    entry = saved["claims"]["effect_positive"]
    assert entry["value"] == 0.8 and entry["threshold"] == 0.0 and entry["ci"] == [0.3, 1.2]
    assert entry["margin"] == pytest.approx(0.3) and entry["holds"] and entry["seed"] == 0
    assert saved["claims"]["loss_small"]["margin"] == pytest.approx(0.4)
    assert "Claims: 2 of 2 hold" in capsys.readouterr().out


def test_a_difference_is_judged_on_its_interval():
    # the point estimate is above the threshold, the lower end is not: the claim fails
    with pytest.raises(ClaimFailed) as err:
        claim("beats_random", 0.2, ">", 0.0, ci=(-0.05, 0.4), chapter="99_test")
    message = str(err.value)
    assert "beats_random" in message and "0.2" in message and "> 0" in message and "seed 0" in message
    with pytest.raises(ClaimFailed):
        claim("below", 0.2, "<", 0.3, ci=(0.1, 0.35), chapter="99_test")
    with pytest.raises(ClaimFailed):
        claim("nan_value", float("nan"), ">", 0.0, chapter="99_test")


def test_claims_are_reported_not_raised_on_another_model(monkeypatch, capsys):
    monkeypatch.setenv("GLASSBOX_MODEL", "/some/local/model")
    assert report.claim_mode() == "report"
    claim("fails_here", 0.1, ">", 0.5, chapter="99_other")
    assert "finding" in capsys.readouterr().out
    assert not report.claims("99_other")["fails_here"]["holds"]
    monkeypatch.setenv("GLASSBOX_CLAIMS", "strict")
    with pytest.raises(ClaimFailed):
        claim("fails_here", 0.1, ">", 0.5, chapter="99_other")
    monkeypatch.setenv("GLASSBOX_CLAIMS", "lenient")
    with pytest.raises(ValueError, match="GLASSBOX_CLAIMS"):
        report.claim_mode()


def test_claim_rejects_bad_arguments():
    with pytest.raises(ValueError, match="op"):
        claim("x", 1.0, "!=", 0.0, chapter="99_test")
    with pytest.raises(ValueError, match="interval"):
        claim("x", 1.0, ">", 0.0, ci=(2.0, 1.0), chapter="99_test")


def test_degenerate_data_is_an_error_on_the_embedded_model_and_a_failed_claim_elsewhere(monkeypatch):
    import numpy as np

    from utils import stats
    from utils.report import claim
    monkeypatch.delenv("GLASSBOX_MODEL", raising=False)
    monkeypatch.setenv("GLASSBOX_CLAIMS", "strict")
    with pytest.raises(stats.TooFewUnits, match="at least 2"):
        stats.bootstrap_ci(np.array([1.0]))
    monkeypatch.setenv("GLASSBOX_CLAIMS", "report")
    ci = stats.bootstrap_ci(np.array([]))
    assert np.isnan(ci).all()
    claim("undefined_interval", 1.0, ">", 0.0, ci=ci, chapter="test")      # would hold without the interval
    assert not report.claims("test")["undefined_interval"]["holds"], "an undefined interval supports no claim"
