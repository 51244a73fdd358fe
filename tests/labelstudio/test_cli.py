"""``skdynal labelstudio`` is reached through the main command (no server needed)."""

import pytest

from skdynal.cli import main


def test_help_lists_the_rules(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["labelstudio", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "skdynal labelstudio" in out and "stabilizing" in out and "--budget" in out


def test_missing_api_key_is_named(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    assert main(["labelstudio", "--project", "1", "--dir", str(tmp_path)]) == 2
    assert "pass --api-key or set LABEL_STUDIO_API_KEY" in capsys.readouterr().err
