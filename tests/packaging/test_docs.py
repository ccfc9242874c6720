"""The README stays short and true: its links and anchors resolve, its commands and make targets exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 200
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_readme_is_short_and_its_commands_exist(capsys) -> None:
    from webapp.cli import main

    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)  # notes for maintainers
    named = set(re.findall(r"`face-studio ([a-z]+)", text))
    assert len(named) >= 8, named
    for command in sorted(named):
        try:
            main([command, "--help"])
        except SystemExit as done:
            assert done.code == 0, f"face-studio {command} --help exited {done.code}"
        assert f"usage: face-studio {command}" in capsys.readouterr().out, command
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    made = set(re.findall(r"`make ([a-z][\w-]*)", text))
    assert {"run", "test"} <= made <= targets, made - targets
