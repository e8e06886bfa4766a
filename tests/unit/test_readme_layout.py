"""The READMEs' layout sections name every module, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "storage", "bench")
TEST_FOLDERS = ("fakes", "unit", "integration", "e2e")
ENTRY = re.compile(r"^(?P<indent> *)- `(?P<name>[^`]+)`")


def modules_on_disk() -> set[str]:
    """Every Python module of the project's packages, `__init__.py` files aside."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if path.name != "__init__.py" and "__pycache__" not in path.parts:
                found.add(path.relative_to(REPO).as_posix())
    return found


def layout_section(readme: str, heading: str) -> str:
    text = (REPO / readme).read_text(encoding="utf-8")
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def named_paths(section: str) -> set[str]:
    """The paths a nested list of `folder/` and `module.py` entries spells out."""
    folders: list[str] = []
    paths: set[str] = set()
    for line in section.splitlines():
        match = ENTRY.match(line)
        if match is None:
            continue
        depth = len(match["indent"]) // 2
        del folders[depth:]
        name = match["name"]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
            paths.add("/".join(folders) + "/")
        else:
            paths.add("/".join([*folders, name]))
    return paths


@pytest.mark.parametrize(
    ("readme", "heading"), [("README.md", "Layout"), ("README.ru.md", "Структура")]
)
def test_the_layout_names_every_module_and_no_other(readme: str, heading: str) -> None:
    named = named_paths(layout_section(readme, heading))

    listed_modules = {p for p in named if p.endswith(".py") and p.split("/")[0] in PACKAGES}
    assert sorted(modules_on_disk() - listed_modules) == [], f"{readme}: modules not named"
    assert sorted(listed_modules - modules_on_disk()) == [], f"{readme}: modules that are gone"
    for folder in TEST_FOLDERS:
        assert f"tests/{folder}/" in named
        assert (REPO / "tests" / folder / "__init__.py").is_file()


def test_the_parser_follows_nesting() -> None:
    section = (
        "- `bot/` — x\n  - `a.py` — y\n  - `sub/` — z\n    - `b.py` — w\n"
        "- `handlers/`\n  - `c.py`\n"
    )

    assert named_paths(section) == {
        "bot/",
        "bot/a.py",
        "bot/sub/",
        "bot/sub/b.py",
        "handlers/",
        "handlers/c.py",
    }
