"""Architecture rules that a grep can check (issue 13).

One status vocabulary: a message status, a blast or conversation status, a post-processing event type or
an outbox state is named in SQL only through its one definition (messaging/status.py, messaging.models
BlastStatus and ConversationStatus, postprocessing/events.py, postprocessing/models.py EventState and
ProcessingState), via bound parameters or `config.sql.sql_literals`. A literal such as
`'sent'` typed into a SQL string is how Python and SQL drift apart, so this test fails on any.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from messaging.models import BlastStatus, ConversationStatus
from messaging.status import MessageStatus, S, sql_literals
from postprocessing.events import EventType
from postprocessing.models import EventState, ProcessingState

ROOT = Path(__file__).resolve().parent.parent
# Not scanned: tests (they may assert on raw rows), migrations (history; they are never edited) and the
# virtualenv. migration_v1/sql holds v1's own schema, which has no status strings of ours.
SKIP_DIRS = {"tests", "migrations", ".venv", ".git", "node_modules", "__pycache__"}

VOCABULARY = sorted(
    set(MessageStatus.values)
    | set(BlastStatus.values)
    | set(ConversationStatus.values)
    | set(EventType.values)
    | set(EventState.values)
    | set(ProcessingState.values)
)
LITERAL = re.compile("'(" + "|".join(re.escape(v) for v in VOCABULARY) + ")'")
# A string is SQL when it has one of these keywords in upper case (the house style for SQL text).
SQL_KEYWORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|CASE WHEN|FILTER|VALUES|SET)\b")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _strings(tree: ast.AST):
    """(line, text) of every string in the module except docstrings; an f-string counts as one string
    with its holes as `{}` (a literal between two holes is still inside the statement)."""
    skip = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                skip.add(id(part))
            text = "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in node.values)
            yield node.lineno, text
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def literals_in_sql(source: str, name: str = "<string>") -> list[str]:
    """Every vocabulary literal inside a SQL string of a Python module's source (or of a .sql file)."""
    if name.endswith(".sql"):
        units = [(i, line) for i, line in enumerate(source.splitlines(), 1)]
    else:
        units = list(_strings(ast.parse(source, name)))
    found = []
    for line, text in units:
        if name.endswith(".sql") or SQL_KEYWORD.search(text):
            for m in LITERAL.finditer(text):
                found.append(f"{name}:{line}: {m.group(0)}")
    return found


def _project_files(*, include_tests: bool = False):
    skip = SKIP_DIRS - {"tests"} if include_tests else SKIP_DIRS
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(part in skip for part in rel.parts) or path.suffix not in {".py", ".sql"}:
            continue
        yield rel, path


def test_no_status_or_event_literals_in_sql():
    found = []
    for rel, path in _project_files():
        found += literals_in_sql(path.read_text(), str(rel))
    assert not found, (
        "status, state or event-type literals typed into SQL (use config.sql.sql_literals):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "source",
    [
        "SQL = \"UPDATE messaging_message SET status = 'sent' WHERE id = %s\"\n",
        'SQL = """\nSELECT count(*) FILTER (WHERE status IN (\'delivered\', \'failed\'))\nFROM t\n"""\n',
        "X = 1\nSQL = f\"INSERT INTO postprocessing_event (type) VALUES ('message.sent') -- {X}\"\n",
        'COLS = {"sent_at": "CASE WHEN r.status = \'delivered\' THEN now() END"}\n',
        "SQL = \"UPDATE messaging_blast SET status = 'completed' WHERE id = %s\"\n",
        "SQL = \"INSERT INTO messaging_conversation (status) SELECT 'open' FROM t\"\n",
        "SQL = \"SELECT id FROM postprocessing_event WHERE state = 'pending' LIMIT 10\"\n",
        "SQL = \"UPDATE postprocessing_eventprocessing SET state = 'dead' WHERE id = %s\"\n",
    ],
)
def test_the_scan_catches_a_planted_literal(source):
    assert literals_in_sql(source, "planted.py")


def test_the_scan_ignores_prose_and_generated_fragments():
    source = (
        '"""Messages left in \'sending\' are swept."""\n'
        "from messaging.status import S, sql_literals\n"
        "# a comment naming 'sent' is prose\n"
        "LOG = \"message stuck in 'sending'\"\n"
        'SQL = f"UPDATE messaging_message SET x = 1 WHERE status = {sql_literals(S.SENT)}"\n'
    )
    assert literals_in_sql(source, "clean.py") == []


def test_sql_literals_come_from_the_definition():
    assert sql_literals(S.SENT, S.DELIVERED) == "'sent', 'delivered'"
    assert sql_literals({S.FAILED, S.DELIVERED}) == "'delivered', 'failed'"
    assert sql_literals(EventType.MESSAGE_SENT) == "'message.sent'"
    with pytest.raises(TypeError):
        sql_literals("sent")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sql_literals()


# One outbox writer: postprocessing/services/record.py (outbox_insert); messaging composes it into its
# status statement instead of naming the event table.
OUTBOX_INSERT = re.compile(r"INSERT\s+INTO\s+(postprocessing_event\b|\{Event\._meta\.db_table\})", re.IGNORECASE)
OUTBOX_WRITER = Path("postprocessing/services/record.py")


def outbox_writers_in(source: str) -> int:
    return len(OUTBOX_INSERT.findall(source))


def test_one_outbox_writer():
    writers = [
        str(rel) for rel, path in _project_files() if rel != OUTBOX_WRITER and outbox_writers_in(path.read_text())
    ]
    assert not writers, "events written past postprocessing.services.record.outbox_insert: " + ", ".join(writers)
    assert outbox_writers_in((ROOT / OUTBOX_WRITER).read_text()) == 1


def test_the_outbox_scan_catches_a_planted_insert():
    assert outbox_writers_in('SQL = """\n    insert into postprocessing_event (type) SELECT 1"""\n') == 1
    assert outbox_writers_in("INSERT INTO postprocessing_eventprocessing (event_id) VALUES (1)") == 0


# One place builds Celery command lines: config/workers.py (the dev server, tests and benchmarks call it).
_CELERY_ARGV_MARKERS = {"worker", "beat"}


def celery_command_lines_in(source: str, name: str = "<string>") -> list[str]:
    """List/tuple literals that spell a Celery command line (`..., "-A", "config", "worker", ...`)."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.List | ast.Tuple):
            words = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            if {"-A", "config"} <= words or (words & _CELERY_ARGV_MARKERS and "celery" in words):
                found.append(f"{name}:{node.lineno}")
    return found


def test_celery_command_lines_are_built_in_one_place():
    found = []
    for rel, path in _project_files(include_tests=True):
        if path.suffix == ".py" and str(rel) != "config/workers.py":
            found += celery_command_lines_in(path.read_text(), str(rel))
    assert not found, "Celery command line built outside config/workers.py:\n" + "\n".join(found)


def test_the_command_line_scan_catches_a_planted_one():
    planted = 'CMD = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "send"]\n'
    assert celery_command_lines_in(planted, "planted.py")
    # The dev server's old form: the app prefix in one list, the subcommand spliced in later.
    planted = 'celery = [PY, "-m", "celery", "-A", "config"]\nCMD = [*celery, "beat"]\n'
    assert celery_command_lines_in(planted, "planted.py")


# One enqueue-after-commit helper: config/wakeup.py (wake_on_commit, and its callable form
# wake_on_commit_call), which logs a refused publish instead of raising it. A new `transaction.on_commit`
# elsewhere is a publish that a broker hiccup would turn into an error after the commit.
ON_COMMIT_ALLOWED = {
    "config/wakeup.py": "the helper itself",
    "shortener/services/links.py": "fills the link cache after commit: a Redis write, not an enqueue",
}
_ON_COMMIT_NAMES = {"on_commit", "delay_on_commit", "apply_async_on_commit"}


def on_commit_calls_in(source: str, name: str = "<string>") -> list[str]:
    """Calls of `transaction.on_commit(...)`, a bare `on_commit(...)` or Celery's `*_on_commit`."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in _ON_COMMIT_NAMES:
                found.append(f"{name}:{node.lineno}")
    return found


def test_enqueue_after_commit_goes_through_config_wakeup():
    found = []
    for rel, path in _project_files():
        if path.suffix == ".py" and str(rel) not in ON_COMMIT_ALLOWED:
            found += on_commit_calls_in(path.read_text(), str(rel))
    assert not found, "on_commit outside config/wakeup.py (use wake_on_commit / wake_on_commit_call):\n" + "\n".join(
        found
    )
    for allowed in ON_COMMIT_ALLOWED:  # an entry that no longer calls on_commit is dropped from the list
        assert on_commit_calls_in((ROOT / allowed).read_text(), allowed), allowed


def test_the_on_commit_scan_catches_a_planted_one():
    assert on_commit_calls_in("transaction.on_commit(lambda: task.delay(1))\n", "planted.py")
    assert on_commit_calls_in("from django.db.transaction import on_commit\non_commit(publish)\n", "planted.py")
    assert on_commit_calls_in("send_batch.delay_on_commit(1, 2)\n", "planted.py")
    assert on_commit_calls_in("wake_on_commit(send_batch, [1])\nwake_on_commit_call(publish)\n", "clean.py") == []


# The layering (docs/architecture.md) as import-linter contracts in pyproject.toml.
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint_imports(config: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(config), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_layers_contract_is_kept():
    result = _lint_imports(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr


def _copy_packages(dest: Path) -> None:
    """The project's Python packages (root_packages of the contract) and pyproject.toml, into dest."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package in config["tool"]["importlinter"]["root_packages"]:
        for path in (ROOT / package).rglob("*.py"):
            target = dest / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (dest / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())


@pytest.mark.parametrize(
    ("module", "planted", "arrow"),
    [
        # messaging's admin importing backfill's (the arrow issue 13 removed): messaging sits below backfill.
        ("messaging/admin.py", "from backfill.admin import backfill_statuses", "messaging.admin -> backfill.admin"),
        # the post-processing framework importing a message model: postprocessing sits below messaging.
        ("postprocessing/registry.py", "from messaging.models import Message", "postprocessing.registry -> messaging"),
        # carrier intake reading message rows through messaging's services.
        ("carriers/services.py", "from messaging.services import status", "carriers.services -> messaging"),
    ],
)
def test_import_layers_contract_fails_on_an_upward_import(tmp_path, module, planted, arrow):
    # A copy of the project with one wrong import planted: the contract must break and name it.
    _copy_packages(tmp_path)
    target = tmp_path / module
    source = target.read_text()
    target.write_text(source + f"\n{planted}  # noqa\n")
    result = _lint_imports(tmp_path / "pyproject.toml", cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert arrow in result.stdout


def test_the_copy_without_a_planted_import_keeps_the_contract(tmp_path):
    # The copy itself is sound (so the failures above come from the planted import, not from the copy).
    _copy_packages(tmp_path)
    result = _lint_imports(tmp_path / "pyproject.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
