"""Utilities: export a run's generator (ONNX or TorchScript) and test an ONNX model on a folder.

Both run the CLI command itself as a child process (``nectargan export``,
``nectargan infer --model``; see :mod:`nectargan.toolbox.utility_jobs`), whose
output the page follows live by server-sent events. Runs are named by output
root number and folder name, folders and models by paths confined to the
roots, and result images by job and file name: no raw path is ever served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.errors import UserError
from nectargan.toolbox.pages import Page
from nectargan.toolbox.pages.api import json_body
from nectargan.toolbox.paths import PathRefused, child_name
from nectargan.toolbox.sse import event_stream
from nectargan.toolbox.utility_jobs import (
    UtilityJob,
    UtilityJobs,
    export_args,
    exported_models,
    infer_args,
    opset_range,
)

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="utilities", title="Utilities", path="/utilities", order=70)
JOB_EVENTS_S = 0.3


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "problems": [message]}, status_code=status)


class UtilitiesPage:
    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.jobs = UtilityJobs(toolbox.state_dir, toolbox.options.python, toolbox.roots[0])

    def _runs(self) -> list[Any]:
        return [r for r in self.toolbox.runs.list() if r.state != "running"]

    def page(self, request: Request) -> Response:
        low, high = opset_range()
        return self.toolbox.render(
            request,
            "utilities.html",
            active="utilities",
            title="Utilities",
            runs=self._runs(),
            roots=self.toolbox.roots,
            opset_low=low,
            opset_high=high,
        )

    def models(self, request: Request) -> Response:
        roots = self.toolbox.output_roots()
        runs = [(r.id, roots[r.root] / r.name) for r in self._runs() if r.root < len(roots)]
        return JSONResponse({"models": exported_models(runs)})

    # -- starting ------------------------------------------------------------------------------

    async def export(self, request: Request) -> Response:
        body = await json_body(request)
        run = str(body.get("run", ""))
        root, _, name = run.partition("/")
        if not root.isdigit() or not name:
            return _error(f"run {run!r}: expected a run from the list", 400)
        try:
            folder = self.toolbox.run_dir(int(root), name)
        except HTTPException as exc:
            return _error(f"run {run!r}: {exc.detail} (deleted? reload the page)", 404)
        try:
            args = export_args(folder, body)
        except UserError as exc:
            return _error(str(exc), 400)
        job_id, job_folder = self.jobs.new_folder("export")
        job = self.jobs.start(job_id, "export", f"export {name}", args, job_folder)
        return JSONResponse(job.snapshot(), status_code=201)

    async def infer(self, request: Request) -> Response:
        body = await json_body(request)
        job_id, job_folder = self.jobs.new_folder("infer")
        out = job_folder / "outputs"
        try:
            args = await run_in_threadpool(infer_args, body, self.toolbox.roots, out)
        except UserError as exc:
            return _error(str(exc), 403 if isinstance(exc, PathRefused) else 400)
        label = f"infer {args[2].rsplit('/', 1)[-1]} on {args[-1]}"
        job = self.jobs.start(job_id, "infer", label, args, job_folder)
        return JSONResponse(job.snapshot(), status_code=201)

    # -- following -----------------------------------------------------------------------------

    def _job(self, request: Request) -> UtilityJob:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, "no such job (the Toolbox was restarted?)")
        return job

    def job(self, request: Request) -> Response:
        try:
            return JSONResponse(self._job(request).snapshot())
        except HTTPException as exc:
            return _error(str(exc.detail), 404)

    def events(self, request: Request) -> Response:
        try:
            job = self._job(request)
        except HTTPException as exc:
            return _error(str(exc.detail), 404)
        return event_stream(request, job.snapshot, JOB_EVENTS_S)

    def stop(self, request: Request) -> Response:
        try:
            job = self._job(request)
        except HTTPException as exc:
            return _error(str(exc.detail), 404)
        self.jobs.stop(job)
        return JSONResponse(job.snapshot())

    def image(self, request: Request) -> Response:
        """One output image of an infer job, by its file name (one component, in outputs/)."""
        try:
            job = self._job(request)
            name = child_name(request.path_params["name"], "image")
        except HTTPException as exc:
            return _error(str(exc.detail), 404)
        except PathRefused as exc:
            return _error(str(exc), 404)
        path = (job.outputs / name).resolve()
        if job.kind != "infer" or path.parent != job.outputs.resolve() or not path.is_file():
            return _error(f"image {name!r}: not among this job's outputs", 404)
        return FileResponse(path, headers={"Cache-Control": "private"})


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    page = UtilitiesPage(toolbox)
    return [
        Route("/utilities", page.page),
        Route("/utilities/models", page.models),
        Route("/utilities/export", page.export, methods=["POST"]),
        Route("/utilities/infer", page.infer, methods=["POST"]),
        Route("/utilities/jobs/{job:str}", page.job),
        Route("/utilities/jobs/{job:str}/events", page.events),
        Route("/utilities/jobs/{job:str}/stop", page.stop, methods=["POST"]),
        Route("/utilities/jobs/{job:str}/images/{name:str}", page.image),
    ]
