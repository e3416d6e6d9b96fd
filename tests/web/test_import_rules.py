"""The shape of the web layer, read from the import graph of bridge/ (and callbacks/).

- A capability (a package under ``bridge/``, or ``callbacks/``) imports no HTTP module of another
  capability: what pages and APIs share (token and session auth, CSRF, sign-in throttling, the
  422 route, templates, paging bounds) is in the shared web layer, ``bridge/web``.
- The shared web layer imports no capability's HTTP module (but ``bridge/web/app.py``, which
  puts the app together).
- No two modules import each other.

An HTTP module is one that imports FastAPI or Starlette, or is named like one (api, routes,
pages, sse, security, webhook).  Imports inside functions count too.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bridge", "callbacks")
# Packages of bridge/ that are no capability: what every capability builds on.
SHARED = {"web", "db", "locale"}
COMPOSITION_ROOTS = {"bridge.web.app"}
HTTP_NAMES = {"api", "routes", "pages", "sse", "security", "webhook"}
HTTP_LIBRARIES = ("fastapi", "starlette")


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@lru_cache(maxsize=None)
def imports() -> dict[str, set[str]]:
    """Module -> the project's modules it imports (``from a.b import c`` is a.b.c when c is a module)."""
    known = modules()
    return {name: {n for n in _imported(path) if n in known and n != name} for name, path in known.items()}


def is_http(name: str) -> bool:
    if name.rsplit(".", 1)[-1] in HTTP_NAMES:
        return True
    return any(n == lib or n.startswith(lib + ".") for n in _imported(modules()[name]) for lib in HTTP_LIBRARIES)


def capability(name: str) -> str | None:
    """``bridge.desk.sse`` -> ``desk``; ``callbacks.x`` -> ``callbacks``; None for shared and top-level modules."""
    parts = name.split(".")
    if parts[0] == "callbacks":
        return "callbacks"
    if len(parts) < 3 and not (len(parts) == 2 and modules()[name].name == "__init__.py"):
        return None  # bridge.daemon, bridge.cli, ...: they put the capabilities together
    return None if parts[1] in SHARED else parts[1]


def test_the_graph_is_read():
    graph = imports()
    assert "bridge.web.auth" in graph["bridge.cases.api"] and is_http("bridge.cases.api")
    assert capability("bridge.desk.sse") == "desk" and capability("bridge.web.csrf") is None
    assert capability("bridge.forum.builtin.pages") == "forum" and capability("bridge.daemon") is None
    assert not is_http("bridge.cases.service")


def test_no_capability_imports_another_capabilitys_http_module():
    problems = sorted(f"{source} imports {target}" for source, targets in imports().items()
                      for target in targets
                      if capability(source) is not None and capability(target) not in (None, capability(source))
                      and is_http(target))
    assert problems == []


def test_the_shared_web_layer_imports_no_capability_http_module():
    problems = sorted(f"{source} imports {target}" for source, targets in imports().items()
                      if source.startswith("bridge.web.") and source not in COMPOSITION_ROOTS
                      for target in targets if capability(target) is not None and is_http(target))
    assert problems == []


def test_no_two_modules_import_each_other():
    graph = imports()
    pairs = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets
                    if a in graph.get(b, set()) and not (a.startswith(b + ".") or b.startswith(a + "."))})
    assert pairs == []
