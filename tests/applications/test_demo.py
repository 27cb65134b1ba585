"""``markovcat demo`` and ``markovcat --version``: plain, labelled output, the same figures on every run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from markovcat.experiments import cli
from markovcat.experiments.demo import run


def _timing_free(text: str) -> str:
    return re.sub(r"demo finished in [0-9.]+ s", "demo finished in ... s", text)


def test_the_demo_says_what_each_check_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--out", str(tmp_path), "--train-steps", "0"]) == 0
    text = capsys.readouterr().out
    for heading in ("== 1.", "== 2.", "== 3."):
        assert heading in text
    assert "== 4." not in text and "training skipped" in text
    assert "sym(MLP), Haar gamma: passed, as it should" in text
    assert "deliberately broken (the check must catch it): caught" in text
    verdicts = [line for line in text.splitlines() if line.startswith("  ") and not line.startswith("      ")]
    assert not any("FAILED" in line for line in verdicts)  # FAILED appears only inside a labelled report
    assert "as expected" in text  # an equation that must not hold is shown as such, not as an error
    for name in ("sym_program.svg", "copy_stochastic.png", "sym.svg"):
        assert (tmp_path / name).stat().st_size > 0


def test_the_demo_takes_steps_not_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--train-seconds", "60"])
    assert exit_info.value.code == 2
    assert "--train-seconds was replaced by --train-steps" in capsys.readouterr().err
    for bad in ("-1", "1.5", "many"):
        with pytest.raises(SystemExit):
            cli.main(["demo", "--train-steps", bad])
        assert "number of steps" in capsys.readouterr().err
    assert cli.parser().parse_args(["demo", "--steps", "7"]).train_steps == 7
    with pytest.raises(ValueError, match="non-negative integer"):
        run(train_steps=-3)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"markovcat {cli.version()}"


@pytest.mark.slow
def test_the_default_demo_prints_the_same_figures_twice(tmp_path: Path) -> None:
    """The whole default ``markovcat demo``, twice: identical output but for the timing line; sym(MLP) wins."""
    runs = []
    for _ in range(2):
        lines: list[str] = []
        run(tmp_path, out=lines.append, progress=False)
        runs.append(_timing_free("\n".join(lines)))
    assert runs[0] == runs[1]
    assert "after the same number of steps, sym(MLP) has the lower error" in runs[0]


def test_help_lists_every_command_in_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for command in ("demo", "gallery", "experiment"):
        assert f"    {command}" in text
    assert "``" not in text and ":func:" not in text


def test_gallery_command_draws_into_the_folder_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gallery", str(tmp_path / "figures"), "--format", "svg"]) == 0
    drawn = list((tmp_path / "figures").glob("*.svg"))
    assert len(drawn) > 10 and (tmp_path / "figures" / "README.md").exists()
    assert f"wrote {len(list((tmp_path / 'figures').iterdir()))} files" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["gallery"])  # the folder is required: --help is never taken for one
