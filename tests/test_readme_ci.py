"""The README's two set-up commands are the project's entry points; .ci/run must run the second."""

from __future__ import annotations

from conftest import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_commands():
    """What segcli is, in one paragraph, then the two commands: the first code block of the page."""
    text = (REPO / "README.md").read_text()
    before = text.split("```", 1)[0]
    assert text.index("```bash") == text.index("```")
    assert before.startswith("# segcli\n") and len(before.strip().split("\n\n")) == 2  # title, one paragraph
    assert len(before.strip().splitlines()) <= 6
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("segcli demo") and "torch==2.13.0" in commands[0]
    assert "pytest" in commands[1] and "torch==2.13.0" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci]
