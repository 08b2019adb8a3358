"""The core stays platform-free: nothing under bot/ imports a platform SDK."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("slack_sdk", "slack_bolt", "discord")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def offending(path: Path) -> list[str]:
    return sorted(name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN)


def test_bot_imports_no_platform_sdk() -> None:
    files = sorted((ROOT / "bot").rglob("*.py"))
    assert len(files) > 10
    found = {str(p.relative_to(ROOT)): offending(p) for p in files if offending(p)}
    assert found == {}


def test_the_check_catches_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import discord\n"
        "from slack_bolt.async_app import AsyncApp\n"
        "import importlib\n"
        "importlib.import_module('slack_sdk.web')\n"
        "from bot.chat import Message\n"
    )
    assert offending(sample) == ["discord", "slack_bolt.async_app", "slack_sdk.web"]
