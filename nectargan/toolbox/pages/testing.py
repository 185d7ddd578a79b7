"""Testing: ``nectargan test`` on a run's checkpoint with its results grid, and
``nectargan infer`` on uploaded images or a folder under the roots.

Both run as child processes (:mod:`nectargan.toolbox.child_jobs`): the same
code as the CLI. Images are served by run and relative name, or by job and
file name, never by a path the browser sent.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.dataset.io import is_image_file
from nectargan.toolbox import test_results as results
from nectargan.toolbox import uploads
from nectargan.toolbox.child_jobs import ChildJob, ChildJobs, new_job_id
from nectargan.toolbox.pages import Page
from nectargan.toolbox.paths import PathRefused, child_name, confine

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="testing", title="Testing", path="/testing", order=40)
RUN = "/api/testing/runs/{root:int}/{name}"
SPLITS = ("test", "val", "train")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MAX_INFER_IMAGES = 2_000


def refused(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def parse_epoch(value: Any) -> str:
    """``best``, ``latest`` or a whole number of epochs, as ``nectargan test --epoch`` takes."""
    text = str(value if value is not None else "latest").strip().lower()
    if text == "latest":
        return "-1"
    if text == "best" or (text.isdigit() and 0 < int(text) <= 1_000_000):
        return text
    raise ValueError(f"epoch: expected best, latest or a number of epochs, got {value!r}")


def parse_max_images(value: Any) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"max_images: expected a number of images >= 1, got {value!r}")
    return int(text)


def job_payload(toolbox: Toolbox, job: ChildJob) -> dict[str, Any]:
    """A job's state for the page: progress while it runs, the result or error once ended."""
    state = job.state
    out: dict[str, Any] = {"id": job.id, "kind": job.kind, "state": state, **job.meta}
    lines = job.log_lines()
    out["log"] = lines[-12:]
    if job.kind == "test":
        run = toolbox.run_dir(job.meta["root"], job.meta["name"])
        out["written"] = results.written_since(run, job.started)
        if state == "done":
            out["result"] = results.result_named_in(lines, run)
    else:
        out["outputs"] = infer_outputs(job)
        out["written"] = len(out["outputs"])
    if state == "failed":
        out["error"] = job.error_line()
    return out


def infer_outputs(job: ChildJob) -> list[str]:
    folder = Path(job.meta["out_dir"])
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if is_image_file(p))


def infer_inputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_image_file(p))[:MAX_INFER_IMAGES]


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    jobs = ChildJobs(toolbox.options.python, toolbox.state_dir, toolbox.roots[0])

    def page(request: Request) -> Response:
        runs = [s.to_json() for s in toolbox.runs.list()]
        return toolbox.render(
            request,
            "testing.html",
            active="testing",
            title="Testing",
            runs=runs,
            max_upload_mb=uploads.MAX_UPLOAD_BYTES // (1024 * 1024),
        )

    def run_info(request: Request) -> Response:
        run = toolbox.run_dir(request.path_params["root"], request.path_params["name"])
        return JSONResponse({**results.run_choices(run), "results": results.list_results(run)})

    def result(request: Request) -> Response:
        run = toolbox.run_dir(request.path_params["root"], request.path_params["name"])
        detail = results.result_detail(run, request.path_params["result"])
        if detail is None:
            raise HTTPException(404, f"no test result {request.path_params['result']!r}")
        return JSONResponse(detail)

    async def start_test(request: Request) -> Response:
        root, name = request.path_params["root"], request.path_params["name"]
        run = toolbox.run_dir(root, name)
        data = await json_body(request)
        try:
            epoch = parse_epoch(data.get("epoch"))
            max_images = parse_max_images(data.get("max_images"))
        except ValueError as exc:
            return refused(str(exc))
        split = str(data.get("split") or "test")
        if split not in SPLITS:
            return refused(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
        args = ["test", "--experiment", str(run), "--epoch", epoch, "--split", split]
        if max_images:
            args += ["--max-images", str(max_images)]
        total = results.split_size(run, split, max_images)
        job = jobs.start("test", args, root=root, name=name, total=total)
        return JSONResponse(job_payload(toolbox, job), status_code=202)

    def job_status(request: Request) -> Response:
        job = jobs.get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, f"no job {request.path_params['job']!r}")
        return JSONResponse(job_payload(toolbox, job))

    async def upload(request: Request) -> Response:
        name = request.query_params.get("name", "")
        try:
            uploads.checked_name(name)
            if uploads.too_large(request.headers.get("content-length")):
                raise uploads.UploadRefused(
                    f"upload {name!r}: larger than the limit of "
                    f"{uploads.MAX_UPLOAD_BYTES // (1024 * 1024)} MB",
                    status=413,
                )
            batch = request.query_params.get("batch") or uploads.new_batch_id()
            target = uploads.batch_dir(toolbox.state_dir, batch) / name
            await uploads.save_stream(request.stream(), target, name)
            width, height = uploads.check_image(target, name)
        except uploads.UploadRefused as exc:
            return refused(str(exc), exc.status)
        return JSONResponse({"batch": batch, "name": name, "width": width, "height": height})

    async def start_infer(request: Request) -> Response:
        data = await json_body(request)
        try:
            run = toolbox.run_dir(int(data.get("root", -1)), str(data.get("name", "")))
            epoch = parse_epoch(data.get("epoch"))
            source = infer_source(toolbox, data)
        except (ValueError, PathRefused, uploads.UploadRefused) as exc:
            return refused(str(exc))
        except HTTPException as exc:
            return refused(str(exc.detail), exc.status_code)
        names = infer_inputs(source)
        if not names:
            return refused(f"folder {str(source)!r} holds no images")
        job_id = new_job_id()
        out_dir = toolbox.state_dir / "infer" / job_id
        args = ["infer", "--experiment", str(run), "--epoch", "latest" if epoch == "-1" else epoch]
        args += ["--output", str(out_dir), str(source)]
        meta = {"run": run.name, "source": str(source), "inputs": names, "out_dir": str(out_dir)}
        job = jobs.start("infer", args, job_id=job_id, **meta)
        return JSONResponse(job_payload(toolbox, job), status_code=202)

    def infer_file(request: Request) -> Response:
        job = infer_job(jobs, request.path_params["job"])
        side, file = request.path_params["side"], request.path_params["file"]
        try:
            child_name(file, "file")
        except PathRefused as exc:
            raise HTTPException(404, str(exc)) from None
        folder = Path(job.meta["out_dir"] if side == "out" else job.meta["source"])
        allowed = infer_outputs(job) if side == "out" else job.meta["inputs"]
        if side not in ("in", "out") or file not in allowed:
            raise HTTPException(404, f"no {side} image {file!r} in this job")
        path = folder / file
        kind = IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=kind)

    def infer_zip(request: Request) -> Response:
        job = infer_job(jobs, request.path_params["job"])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for file in infer_outputs(job):
                archive.write(Path(job.meta["out_dir"]) / file, arcname=file)
        disposition = f'attachment; filename="nectargan-infer-{job.id}.zip"'
        return Response(
            buffer.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": disposition},
        )

    return [
        Route("/testing", page),
        Route(RUN, run_info),
        Route(RUN + "/results/{result}", result),
        Route(RUN + "/test", start_test, methods=["POST"]),
        Route("/api/testing/jobs/{job}", job_status),
        Route("/api/testing/uploads", upload, methods=["PUT", "POST"]),
        Route("/api/testing/infer", start_infer, methods=["POST"]),
        Route("/api/testing/infer/{job}/zip", infer_zip),
        Route("/api/testing/infer/{job}/{side}/{file}", infer_file),
    ]


async def json_body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise HTTPException(400, "expected a JSON object") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "expected a JSON object")
    return data


def infer_source(toolbox: Toolbox, data: dict[str, Any]) -> Path:
    """The uploaded batch's folder, or a folder under the roots; never both."""
    batch, folder = data.get("batch"), data.get("folder")
    if bool(batch) == bool(folder):
        raise ValueError("give batch (uploaded images) or folder (under the roots), not both")
    if batch:
        path = uploads.batch_dir(toolbox.state_dir, str(batch))
        if not path.is_dir():
            raise ValueError(f"batch {batch!r}: no images were uploaded to it")
        return path
    path = confine(str(folder), toolbox.roots)
    if not path.is_dir():
        raise ValueError(f"folder {str(folder)!r}: expected an existing folder")
    return path


def infer_job(jobs: ChildJobs, job_id: str) -> ChildJob:
    job = jobs.get(job_id)
    if job is None or job.kind != "infer":
        raise HTTPException(404, f"no inference job {job_id!r}")
    return job
