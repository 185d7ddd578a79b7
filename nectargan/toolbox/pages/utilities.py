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
from nectargan.toolbox.child_jobs import OUTPUTS, ChildJob, ChildJobs, JobBusy, new_job_id
from nectargan.toolbox.folders import browse_answer
from nectargan.toolbox.pages import Page
from nectargan.toolbox.pages.api import json_body
from nectargan.toolbox.paths import PathRefused, child_name
from nectargan.toolbox.sse import event_stream
from nectargan.toolbox.utility_jobs import (
    export_args,
    exported_models,
    infer_args,
    opset_range,
    output_images,
    snapshot,
)
from nectargan.toolbox.zips import zip_response

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="utilities", title="Utilities", path="/utilities", order=70)
JOB_EVENTS_S = 0.3


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "problems": [message]}, status_code=status)


class UtilitiesPage:
    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.jobs = ChildJobs(
            toolbox.state_dir, toolbox.options.python, toolbox.roots[0], "utilities"
        )

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
            keep_jobs=self.jobs.keep,
        )

    def models(self, request: Request) -> Response:
        roots = self.toolbox.output_roots()
        runs = [(r.id, roots[r.root] / r.name) for r in self._runs() if r.root < len(roots)]
        return JSONResponse({"models": exported_models(runs)})

    async def folders(self, request: Request) -> Response:
        """The picker: folders under the roots, and ``.onnx`` files when picking a model."""
        suffix = ".onnx" if request.query_params.get("files") == "onnx" else None
        path = request.query_params.get("path", "")
        answer, status = await run_in_threadpool(browse_answer, path, self.toolbox.roots, suffix)
        return JSONResponse(answer, status_code=status)

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
        job = self.jobs.start("export", f"export {name}", args)
        return JSONResponse(snapshot(job), status_code=201)

    async def infer(self, request: Request) -> Response:
        body = await json_body(request)
        job_id = new_job_id()
        out = self.jobs.job_dir(job_id) / OUTPUTS
        try:
            args = await run_in_threadpool(infer_args, body, self.toolbox.roots, out)
        except UserError as exc:
            return _error(str(exc), 403 if isinstance(exc, PathRefused) else 400)
        label = f"infer {args[2].rsplit('/', 1)[-1]} on {args[-1]}"
        job = self.jobs.start("infer", label, args, job_id=job_id)
        return JSONResponse(snapshot(job), status_code=201)

    # -- following -----------------------------------------------------------------------------

    def _job(self, request: Request) -> ChildJob:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, f"no such job {request.path_params['job']!r} (deleted?)")
        return job

    def _fresh(self, job_id: str) -> dict[str, Any]:
        """The job's snapshot, read again (its state may have ended since)."""
        job = self.jobs.get(job_id)
        return snapshot(job) if job is not None else {"id": job_id, "state": "deleted"}

    def job_list(self, request: Request) -> Response:
        return JSONResponse({"jobs": [snapshot(job) for job in self.jobs.list()]})

    def job(self, request: Request) -> Response:
        try:
            return JSONResponse(snapshot(self._job(request)))
        except HTTPException as exc:
            return _error(str(exc.detail), 404)

    def events(self, request: Request) -> Response:
        try:
            job = self._job(request)
        except HTTPException as exc:
            return _error(str(exc.detail), 404)
        return event_stream(request, lambda: self._fresh(job.id), JOB_EVENTS_S)

    def stop(self, request: Request) -> Response:
        try:
            job = self._job(request)
        except HTTPException as exc:
            return _error(str(exc.detail), 404)
        self.jobs.stop(job)
        return JSONResponse(snapshot(job))

    def delete(self, request: Request) -> Response:
        try:
            job = self._job(request)
            self.jobs.delete(job)
        except HTTPException as exc:
            return _error(str(exc.detail), 404)
        except JobBusy as exc:
            return _error(str(exc), 409)
        return JSONResponse({"deleted": job.id})

    def zip(self, request: Request) -> Response:
        """An infer job's output images as one zip, streamed."""
        try:
            job = self._job(request)
        except HTTPException as exc:
            return _error(str(exc.detail), 404)
        if job.kind != "infer":
            return _error(f"job {job.id}: an {job.kind} job has no images to zip", 404)
        names = output_images(job.outputs)
        return zip_response(job.outputs, names, f"nectargan-onnx-infer-{job.id}.zip")

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
        Route("/utilities/folders", page.folders),
        Route("/utilities/export", page.export, methods=["POST"]),
        Route("/utilities/infer", page.infer, methods=["POST"]),
        Route("/utilities/jobs", page.job_list),
        Route("/utilities/jobs/{job:str}", page.job),
        Route("/utilities/jobs/{job:str}/delete", page.delete, methods=["POST"]),
        Route("/utilities/jobs/{job:str}/zip", page.zip),
        Route("/utilities/jobs/{job:str}/events", page.events),
        Route("/utilities/jobs/{job:str}/stop", page.stop, methods=["POST"]),
        Route("/utilities/jobs/{job:str}/images/{name:str}", page.image),
    ]
