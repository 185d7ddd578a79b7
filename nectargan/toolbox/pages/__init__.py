"""The Toolbox's pages: one module each, registered in :data:`PAGE_MODULES`.

A page module defines

* ``PAGE``: a :class:`Page` (its nav-bar entry), or ``None`` for a module that
  only serves data (the JSON API);
* ``routes(toolbox) -> list[BaseRoute]``: its Starlette routes, built with the
  running :class:`~nectargan.toolbox.context.Toolbox` (settings, runs, launcher,
  queue, ``toolbox.render(request, "page.html", **values)``).

Its template ``templates/<name>.html`` extends ``base.html`` (the nav bar) and
fills ``{% block content %}``; its script, if any, is a file in ``static/``
loaded with ``{% block scripts %}`` (the CSP allows no inline script or style).
Adding a page is one module plus one line here; a module missing from this
checkout is skipped, so pages can land one at a time.

A page whose imports are heavy (pydantic, numpy, PIL: the config schema, image
reading) is also named in :data:`LAZY_PAGES` with its nav entry: it is imported
on its first request (or by the warm-up a few seconds after start), so the
Toolbox answers its first request without them. A test checks that nothing
heavy is imported at start and that each entry here equals the module's ``PAGE``.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_MODULES = (
    "nectargan.toolbox.pages.runs",
    "nectargan.toolbox.pages.run",
    "nectargan.toolbox.pages.new_run",
    "nectargan.toolbox.pages.dataset",
    "nectargan.toolbox.pages.queue",
    "nectargan.toolbox.pages.testing",
    "nectargan.toolbox.pages.utilities",
    "nectargan.toolbox.pages.review",
    "nectargan.toolbox.pages.settings",
    "nectargan.toolbox.pages.api",
)


@dataclass(frozen=True)
class Page:
    """A nav-bar entry: ``name`` (also the template's name), label, link, position."""

    name: str
    title: str
    path: str
    order: int = 50


# Imported on first use, not at start; their nav entries, so the nav bar is whole before.
LAZY_PAGES = {
    "nectargan.toolbox.pages.new_run": Page("new_run", "New run", "/new", order=20),
    "nectargan.toolbox.pages.dataset": Page("dataset", "Dataset", "/dataset", order=20),
    "nectargan.toolbox.pages.testing": Page("testing", "Testing", "/testing", order=40),
    "nectargan.toolbox.pages.utilities": Page("utilities", "Utilities", "/utilities", order=70),
    "nectargan.toolbox.pages.review": Page("review", "Review", "/review", order=45),
}
