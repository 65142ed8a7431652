"""The README documents every command and every validate option (fails when one is added silently)."""

from __future__ import annotations

from pathlib import Path

import typer.main

from assay.cli.main import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands() -> list[tuple[str, object]]:
    group = typer.main.get_command(app)
    out = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        if sub:
            out += [(f"assay {name} {s}", c) for s, c in sub.items()]
        else:
            out.append((f"assay {name}", cmd))
    return out


def test_every_command_is_in_the_readme() -> None:
    # "assay dataset list|show" documents both "assay dataset list" and "assay dataset show".
    documented = set()
    for line in README.splitlines():
        for chunk in line.replace("`", " ").split("assay ")[1:]:
            words = chunk.split()
            if words:
                documented.add(f"assay {words[0]}")
                if len(words) > 1:
                    documented.update(f"assay {words[0]} {w}" for w in words[1].split("|"))
    assert [full for full, _ in commands() if full not in documented] == []


def test_every_validate_option_is_in_the_readme() -> None:
    validate = dict(commands())["assay validate"]
    options = [o for p in validate.params for o in p.opts if o.startswith("--")]  # type: ignore[attr-defined]
    assert [o for o in options if f"`{o}" not in README] == []


def test_readme_opens_with_the_two_commands() -> None:
    head = README.split("\n\n", 2)[1]
    assert "make demo" in head and "make test" in head
