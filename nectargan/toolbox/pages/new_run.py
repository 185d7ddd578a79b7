"""The New-run page: a form generated from the config schema, checked by that schema.

One form, one POST route, the button pressed in ``_action``: ``check`` shows
every problem beside its field, ``start`` and ``queue`` do so too and go on
only when the whole form is valid, its paths lie inside the roots and the
dataset passes the layout check; ``load`` fills the form from a config file
(ours, or upstream's through ``config import``'s converter, listing what it
could not map); ``save`` writes the form's config as a file inside a root.
Two GET routes feed the page's script: the folder picker and the dataset check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.errors import UserError
from nectargan.toolbox.config_files import load_config_file, save_config
from nectargan.toolbox.folders import (
    DatasetCheck,
    browse_answer,
    check_dataset,
    check_run_paths,
)
from nectargan.toolbox.form import (
    FORM_LEVEL,
    FormResult,
    changed_fields,
    choice_text,
    default_texts,
    read_form,
)
from nectargan.toolbox.form_fields import form_groups
from nectargan.toolbox.pages import Page
from nectargan.toolbox.paths import PathRefused

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox
    from nectargan.toolbox.launcher import Launch

PAGE = Page("new_run", "New run", "/new", order=20)
ACTIONS = ("check", "start", "queue", "load", "save")
FOLDER_WAIT_S = 60.0  # a new run names its folder once torch is loaded: seconds
LOG_TAIL_LINES = 12


def _log_tail(log: Path) -> list[str]:
    """The last lines a run wrote, to show why it ended at once."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines[-LOG_TAIL_LINES:] if line.strip()]


def _dataset_check(texts: Mapping[str, str], roots: Sequence[Path]) -> DatasetCheck | None:
    """The layout check of the form's dataset root, shown before Start (None: synthetic)."""
    raw = texts.get("dataloader.dataroot", "").strip()
    if not raw:
        return None
    try:
        return check_dataset(raw, roots)
    except PathRefused as exc:
        return DatasetCheck(raw, {}, "", [str(exc)])


def _merge(result: FormResult, errors: Mapping[str, list[str]]) -> None:
    for key, messages in errors.items():
        for message in messages:
            result.add_error(key, message)


def check_for_run(result: FormResult, roots: Sequence[Path]) -> dict[str, Any] | None:
    """The config to start when the form, its paths and its dataset are all fine."""
    if not result.valid or result.config is None:
        return None
    data = result.config.to_dict()
    _, errors = check_run_paths(data, roots)
    _merge(result, errors)
    return data if result.valid else None


class NewRunPage:
    """The page's handlers, bound to the running Toolbox."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox

    def render(
        self,
        request: Request,
        result: FormResult,
        status_code: int = 200,
        **extra: Any,
    ) -> Response:
        texts = {**default_texts(), **result.texts}
        return self.toolbox.render(
            request,
            "new_run.html",
            status_code=status_code,
            active=PAGE.name,
            title=PAGE.title,
            groups=form_groups(),
            texts=texts,
            defaults=default_texts(),
            errors=result.errors,
            form_errors=result.errors.get(FORM_LEVEL, []),
            changed=changed_fields(texts),
            choice_text=choice_text,
            dataset=_dataset_check(texts, self.toolbox.roots),
            roots=[str(r) for r in self.toolbox.roots],
            only_changed=getattr(request.state, "only_changed", False),
            **extra,
        )

    # Handlers that read files (a dataset survey can take seconds) are plain functions:
    # Starlette runs them in its worker threads, so the event loop never waits on a disk.

    def show(self, request: Request) -> Response:
        """A fresh form: the defaults, writing into the first output root (listed on Runs)."""
        output = str(self.toolbox.output_roots()[0])
        return self.render(request, FormResult(None, {"common.output_directory": output}))

    async def submit(self, request: Request) -> Response:
        form = await request.form()
        items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        return await run_in_threadpool(self.act, request, items)

    def act(self, request: Request, items: list[tuple[str, str]]) -> Response:
        """The button pressed: check, start, queue, load or save."""
        fields = dict(items)
        request.state.only_changed = "_only_changed" in fields  # the view the user chose
        action = fields.get("_action", "check")
        if action not in ACTIONS:
            return self.render(
                request, FormResult(None, {}, {FORM_LEVEL: [f"unknown action {action!r}"]}), 400
            )
        if action == "load":
            return self.load(request, fields.get("_config_path", ""))
        result = read_form(items)
        if action == "save":
            return self.save(request, result, fields)
        data = check_for_run(result, self.toolbox.roots)
        if data is None or action == "check":
            notice = "The form is valid." if data is not None else ""
            return self.render(request, result, 200 if data else 422, notice=notice)
        return self.launch(request, result, data, queued=action == "queue")

    def load(self, request: Request, raw: str) -> Response:
        try:
            loaded = load_config_file(raw, self.toolbox.roots)
        except UserError as exc:
            failed = FormResult(None, {}, {FORM_LEVEL: [str(exc)]})
            return self.render(request, failed, 422, config_path=raw)
        kind = "upstream config (converted)" if loaded.upstream else "config"
        return self.render(
            request,
            loaded.form,
            notice=f"Loaded {kind} {loaded.path}.",
            unmapped=loaded.unmapped,
            config_path=loaded.path,
        )

    def save(self, request: Request, result: FormResult, fields: Mapping[str, str]) -> Response:
        raw = fields.get("_save_path", "")
        if not result.valid or result.config is None:
            return self.render(request, result, 422, save_path=raw)
        try:
            path = save_config(result.config, raw, self.toolbox.roots, "_overwrite" in fields)
        except UserError as exc:
            result.errors.setdefault(FORM_LEVEL, []).append(str(exc))
            return self.render(request, result, 422, save_path=raw)
        return self.render(request, result, notice=f"Saved {path}.", save_path=str(path))

    def launch(
        self, request: Request, result: FormResult, data: dict[str, Any], queued: bool
    ) -> Response:
        """Start now (then open the run's page) or queue; the launcher's own checks apply."""
        launcher = self.toolbox.launcher
        try:
            config = launcher.prepare_config(data)
            if queued:
                self.toolbox.queue.add(config)
                return RedirectResponse("/queue", status_code=303)
            launch = launcher.start_new(config)
        except UserError as exc:  # LaunchRefused, QueueError: say why beside the form
            result.add_error(FORM_LEVEL, str(exc))
            return self.render(request, result, 422)
        self.wait_for_folder(launch)
        if launch.experiment_dir is None and launch.exit_code is not None:
            result.add_error(FORM_LEVEL, f"the run ended at once (exit {launch.exit_code}):")
            result.errors[FORM_LEVEL] += _log_tail(Path(launch.log))
            return self.render(request, result, 422)
        return RedirectResponse(self.run_page(launch.experiment_dir), status_code=303)

    def wait_for_folder(self, launch: Launch) -> None:
        """Until the run names its folder (torch loads first) or ends; the Runs page otherwise."""
        deadline = time.monotonic() + FOLDER_WAIT_S
        while time.monotonic() < deadline:
            if not self.toolbox.options.background:  # else the scheduler thread refreshes
                self.toolbox.launcher.refresh()
            if launch.experiment_dir is not None or launch.exit_code is not None:
                return
            time.sleep(0.2)

    def run_page(self, experiment_dir: str | None) -> str:
        """The Run page of ``experiment_dir`` when it is in an output root, else Runs."""
        if experiment_dir is None:
            return "/"
        folder = Path(experiment_dir).resolve()
        for index, root in enumerate(self.toolbox.output_roots()):
            if folder.parent == root.resolve():
                return f"/runs/{index}/{quote(folder.name)}"
        return "/"

    def folders(self, request: Request) -> Response:
        suffix = ".json" if request.query_params.get("files") == "json" else None
        path = request.query_params.get("path", "")
        answer, status = browse_answer(path, self.toolbox.roots, suffix)
        return JSONResponse(answer, status_code=status)

    def dataset(self, request: Request) -> Response:
        try:
            check = check_dataset(request.query_params.get("path", ""), self.toolbox.roots)
        except PathRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)
        return JSONResponse(check.to_dict())


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    page = NewRunPage(toolbox)
    return [
        Route("/new", page.show, methods=["GET"]),
        Route("/new", page.submit, methods=["POST"]),
        Route("/new/folders", page.folders, methods=["GET"]),
        Route("/new/dataset", page.dataset, methods=["GET"]),
    ]
