"""The commands the README and docs/ show, extracted as a user would copy them.

Fenced ``bash`` blocks: one command per line (backslash continuations and quoted strings that
span lines are joined; a trailing ``# comment`` is dropped; ``export`` lines set the environment
of the block's later commands). Inline code spans that start with ``python `` are commands too.
``tests/test_doc_commands.py`` checks that every extracted command is registered there with how it
is tested, so a new documented command without a test fails.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC_FILES = ("README.md", "docs")
FENCE = re.compile(r"^```(bash|sh|shell)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(?<!`)`(python [^`]+)`(?!`)")


@dataclass(frozen=True)
class DocCommand:
    file: str  # relative to the repository root
    command: str  # as typed (quoted strings may span lines), trailing comment removed
    env: tuple[str, ...] = ()  # ``export`` lines of the same block before it
    inline: bool = False

    @property
    def key(self) -> str:
        """The command with every run of whitespace collapsed: how the registry names it."""
        return " ".join(self.command.split())


def doc_paths() -> list[Path]:
    paths = [REPO / "README.md"]
    paths += sorted((REPO / "docs").glob("*.md"))
    return paths


def _strip_comment(line: str) -> str:
    """The command without a trailing ``# comment`` (a ``#`` outside quotes that starts a word)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)  # an apostrophe in a trailing comment opens no quote
    except ValueError:  # an open quote continues on the next line
        return False
    return not text.rstrip().endswith("\\")


def block_commands(body: str) -> list[tuple[str, tuple[str, ...]]]:
    """``(command, exports before it)`` for each command of one fenced block."""
    out: list[tuple[str, tuple[str, ...]]] = []
    exports: list[str] = []
    pending = ""
    for raw in body.splitlines():
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{raw}" if pending else raw
        if not _complete(pending):
            continue
        text = pending.replace("\\\n", " ")
        text = _strip_comment(text)
        text = re.sub(r"[ \t]+", " ", text).strip()
        pending = ""
        if not text:
            continue
        if text.startswith("export "):
            exports.append(text)
            continue
        out.append((text, tuple(exports)))
    if pending:
        raise ValueError(f"unterminated command in a fenced block: {pending!r}")
    return out


def documented_commands() -> list[DocCommand]:
    commands: list[DocCommand] = []
    for path in doc_paths():
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(REPO))
        fenced_spans = []
        for match in FENCE.finditer(text):
            fenced_spans.append(match.span())
            for command, env in block_commands(match.group(2)):
                commands.append(DocCommand(rel, command, env))
        # Inline spans outside any fenced block (``` blocks of other languages hold no inline spans).
        outside = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        for match in INLINE.finditer(outside):
            command = re.sub(r"\s+", " ", match.group(1)).strip()
            commands.append(DocCommand(rel, command, inline=True))
    return commands


def documented_augment_sets() -> dict[str, tuple[str, str]]:
    """experiment -> (paper set, scale=demo set), as the table of docs/AUGMENTATION.md lists them."""
    text = (REPO / "docs" / "AUGMENTATION.md").read_text()
    section = text.split("## Which set each experiment uses", 1)[1].split("\n## ", 1)[0]
    return {m[0]: (m[1], m[2]) for m in re.findall(r"^\| `(\w+)` \| `(\w+)` \| `(\w+)` \|", section, flags=re.M)}


if __name__ == "__main__":
    for c in documented_commands():
        print(f"{c.file}{' (inline)' if c.inline else ''}: {c.key}" + (f"   [env: {c.env}]" if c.env else ""))
