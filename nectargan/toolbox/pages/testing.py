"""Testing: ``nectargan test`` on a run's checkpoint with its results grid, and
``nectargan infer`` on uploaded images or a folder under the roots.

Both run as child processes (:mod:`nectargan.toolbox.child_jobs`): the same
code as the CLI. Images are served by run and relative name, or by job and
file name, never by a path the browser sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan import experiment_layout as layout
from nectargan.dataset.io import is_image_file
from nectargan.errors import CheckpointUserError
from nectargan.runs.epochs import LATEST, parse_epoch
from nectargan.toolbox import test_results as results
from nectargan.toolbox import uploads
from nectargan.toolbox.child_jobs import OUTPUTS, ChildJob, ChildJobs, JobBusy, new_job_id
from nectargan.toolbox.folders import browse_answer
from nectargan.toolbox.pages import Page
from nectargan.toolbox.paths import PathRefused, child_name, confine
from nectargan.toolbox.zips import zip_response

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="testing", title="Testing", path="/testing", order=40)
RUN = "/api/testing/runs/{root:int}/{name}"
SPLITS = ("test", "val", "train")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MAX_INFER_IMAGES = 2_000


def refused(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def epoch_arg(value: Any) -> str:
    """The child command's ``--epoch``: refused here, before a job starts, with the CLI's reading."""
    try:
        return str(parse_epoch(LATEST if value is None else value))
    except CheckpointUserError:
        raise ValueError(
            f"epoch: expected best, latest or a number of epochs, got {value!r}"
        ) from None


def parse_max_images(value: Any) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"max_images: expected a number of images >= 1, got {value!r}")
    return int(text)


def job_payload(toolbox: Toolbox, job: ChildJob) -> dict[str, Any]:
    """A job's state for the page: progress while it runs, the result or error once ended."""
    out: dict[str, Any] = {**job.meta, **job.summary()}
    lines = job.log_lines()
    out["log"] = lines[-12:]
    if job.kind == "test":
        try:
            run = toolbox.run_dir(job.meta["root"], job.meta["name"])
        except HTTPException as exc:  # the run was deleted since: the job's record stays
            out["written"], out["run_error"] = 0, str(exc.detail)
        else:
            out.update(test_progress(run, job, lines))
    else:
        out["outputs"] = infer_outputs(job)
        out["written"] = len(out["outputs"])
    return out


def test_progress(run: Path, job: ChildJob, lines: list[str]) -> dict[str, Any]:
    """Triplets written so far (running), or the result and its image count (ended: read
    from its metrics, not counted, since a list holds many ended tests)."""
    if job.state == "running":
        return {"written": results.written_since(run, job.started)}
    name = results.result_named_in(lines, run) if job.state == "done" else None
    metrics = results.read_metrics(run / layout.TEST_DIR / name) if name else None
    return {"result": name, "written": (metrics or {}).get("n_images", 0)}


def infer_outputs(job: ChildJob) -> list[str]:
    if not job.outputs.is_dir():
        return []
    return sorted(p.name for p in job.outputs.iterdir() if is_image_file(p))


def infer_inputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_image_file(p))[:MAX_INFER_IMAGES]


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    jobs = ChildJobs(
        toolbox.state_dir,
        toolbox.options.python,
        toolbox.roots[0],
        "testing",
        uploads=uploads.uploads_dir(toolbox.state_dir),
    )

    def page(request: Request) -> Response:
        runs = [s.to_json() for s in toolbox.runs.list()]
        return toolbox.render(
            request,
            "testing.html",
            active="testing",
            title="Testing",
            runs=runs,
            max_upload_mb=uploads.MAX_UPLOAD_BYTES // (1024 * 1024),
            keep_jobs=jobs.keep,
        )

    def folders(request: Request) -> Response:  # sync: a worker thread lists the folder
        path = request.query_params.get("path", "")
        answer, status = browse_answer(path, toolbox.roots)
        return JSONResponse(answer, status_code=status)

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
            epoch = epoch_arg(data.get("epoch"))
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
        label = f"test {name}, epoch {data.get('epoch') or 'latest'}, {split}"
        job = jobs.start("test", label, args, root=root, name=name, total=total)
        return JSONResponse(job_payload(toolbox, job), status_code=202)

    def job_status(request: Request) -> Response:
        return JSONResponse(job_payload(toolbox, find_job(jobs, request.path_params["job"])))

    def job_list(request: Request) -> Response:
        return JSONResponse({"jobs": [job_payload(toolbox, job) for job in jobs.list()]})

    def job_stop(request: Request) -> Response:
        job = find_job(jobs, request.path_params["job"])
        jobs.stop(job)
        return JSONResponse(job_payload(toolbox, job))

    def job_delete(request: Request) -> Response:
        job = find_job(jobs, request.path_params["job"])
        try:
            jobs.delete(job)
        except JobBusy as exc:
            return refused(str(exc), 409)
        return JSONResponse({"deleted": job.id})

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
            epoch = epoch_arg(data.get("epoch"))
            source = infer_source(toolbox, data)
        except (ValueError, PathRefused, uploads.UploadRefused) as exc:
            return refused(str(exc))
        except HTTPException as exc:
            return refused(str(exc.detail), exc.status_code)
        names = infer_inputs(source)
        if not names:
            return refused(f"folder {str(source)!r} holds no images")
        job_id = new_job_id()
        epoch_text = "latest" if epoch == "-1" else epoch
        args = ["infer", "--experiment", str(run), "--epoch", epoch_text]
        args += ["--output", str(jobs.job_dir(job_id) / OUTPUTS), str(source)]
        meta = {"run": run.name, "source": str(source), "inputs": names}
        if data.get("batch"):
            meta["batch"] = str(data["batch"])
        label = f"infer {run.name}, epoch {epoch_text}, {len(names)} image(s)"
        job = jobs.start("infer", label, args, job_id=job_id, **meta)
        return JSONResponse(job_payload(toolbox, job), status_code=202)

    def infer_file(request: Request) -> Response:
        job = infer_job(jobs, request.path_params["job"])
        side, file = request.path_params["side"], request.path_params["file"]
        try:
            child_name(file, "file")
        except PathRefused as exc:
            raise HTTPException(404, str(exc)) from None
        folder = job.outputs if side == "out" else Path(job.meta["source"])
        allowed = infer_outputs(job) if side == "out" else job.meta["inputs"]
        if side not in ("in", "out") or file not in allowed:
            raise HTTPException(404, f"no {side} image {file!r} in this job")
        path = folder / file
        kind = IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=kind)

    def infer_zip(request: Request) -> Response:
        job = infer_job(jobs, request.path_params["job"])
        return zip_response(job.outputs, infer_outputs(job), f"nectargan-infer-{job.id}.zip")

    return [
        Route("/testing", page),
        Route("/api/testing/folders", folders),
        Route(RUN, run_info),
        Route(RUN + "/results/{result}", result),
        Route(RUN + "/test", start_test, methods=["POST"]),
        Route("/api/testing/jobs", job_list),
        Route("/api/testing/jobs/{job}", job_status),
        Route("/api/testing/jobs/{job}/stop", job_stop, methods=["POST"]),
        Route("/api/testing/jobs/{job}/delete", job_delete, methods=["POST"]),
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


def find_job(jobs: ChildJobs, job_id: str) -> ChildJob:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


def infer_job(jobs: ChildJobs, job_id: str) -> ChildJob:
    job = jobs.get(job_id)
    if job is None or job.kind != "infer":
        raise HTTPException(404, f"no inference job {job_id!r}")
    return job
