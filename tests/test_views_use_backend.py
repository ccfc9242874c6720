"""The views reach SD work through one interface, ``webapp.backend``: never the Ray front end
(``webapp.serving``) or the local service (``webapp.generation.service``) directly, so no view branches on
``--ray``. The editing handlers the Edit view binds are held to the same rule. Read from the source (AST)."""

from __future__ import annotations

from tests.test_import_graph import import_graph

FORBIDDEN = ("webapp.serving", "webapp.generation.service", "webapp.generation.pipeline", "webapp.backend.local")
HELD = ("webapp.views.", "webapp.editing.handlers", "webapp.app")


def test_views_import_the_backend_interface_only():
    graph = import_graph()
    wrong = [f"{src} imports {dst}" for src, dsts in graph.items() if src.startswith(HELD) for dst in sorted(dsts)
             if dst.startswith(FORBIDDEN)]
    assert not wrong, "views must go through webapp.backend:\n" + "\n".join(wrong)
    users = {src for src, dsts in graph.items() if src.startswith("webapp.views.") and "webapp.backend" in dsts}
    assert users >= {"webapp.views.generate", "webapp.views.edit", "webapp.views.parse"}


def test_only_the_backend_package_picks_local_or_ray():
    """One registry: outside webapp.serving itself (its Serve application registers its own backend), only
    webapp.backend imports the Ray front end."""
    graph = import_graph()
    importers = {src for src, dsts in graph.items() if "webapp.serving.remote" in dsts}
    assert {src for src in importers if not src.startswith("webapp.serving.")} <= {"webapp.backend"}, importers
