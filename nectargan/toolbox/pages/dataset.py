"""Dataset: pick a dataset folder, check it, download, pair and split, preview, browse pairs.

The page's script talks to the JSON routes below; each does what a ``nectargan
data`` command does, through the same function (see ``dataset_actions``). Long
work (download, pair, split, measures) runs as a :class:`~nectargan.toolbox.jobs.Job`
whose progress the page follows by server-sent events and can cancel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nectargan.errors import UserError
from nectargan.toolbox import dataset_actions as actions
from nectargan.toolbox.folders import browse
from nectargan.toolbox.jobs import Jobs
from nectargan.toolbox.pages import Page
from nectargan.toolbox.pages.api import json_body
from nectargan.toolbox.paths import PathRefused
from nectargan.toolbox.sse import event_stream

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PAGE = Page(name="dataset", title="Dataset", path="/dataset", order=20)
JOB_EVENTS_S = 0.3
JOBS_RECORD = "dataset-jobs.json"  # beside queue.json in the state dir


def _error(exc: Exception) -> JSONResponse:
    status = 403 if isinstance(exc, PathRefused) else 400
    message = str(exc)
    return JSONResponse({"error": message, "problems": message.splitlines()}, status_code=status)


async def _answer(fn: Callable[[], Any]) -> Response:
    """``fn()`` in a worker thread (it reads files), as JSON; a user error as 400/403."""
    try:
        return JSONResponse(await run_in_threadpool(fn))
    except UserError as exc:
        return _error(exc)
    except OSError as exc:
        return JSONResponse({"error": f"cannot read it: {exc}"}, status_code=404)


class DatasetPage:
    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.roots = toolbox.roots
        self.jobs = Jobs(toolbox.state_dir / JOBS_RECORD)

    def page(self, request: Request) -> Response:
        from nectargan.dataset.download import DATASETS
        from nectargan.dataset.measures import MEASURES

        return self.toolbox.render(
            request,
            "dataset.html",
            active="dataset",
            title="Dataset",
            roots=self.roots,
            path=request.query_params.get("path", ""),
            datasets=DATASETS,
            measures=MEASURES,
        )

    # -- reading -----------------------------------------------------------------------------

    async def folders(self, request: Request) -> Response:
        path = request.query_params.get("path", "")
        return await _answer(lambda: browse(path, self.roots).to_dict())

    async def survey(self, request: Request) -> Response:
        path = request.query_params.get("path")
        return await _answer(lambda: actions.survey(path, self.roots))

    async def augmentations(self, request: Request) -> Response:
        return await _answer(actions.augmentation_form)

    async def preview(self, request: Request) -> Response:
        body = await json_body(request)
        return await _answer(lambda: actions.preview(body, self.roots))

    async def pairs(self, request: Request) -> Response:
        from nectargan.dataset.pairs import MAX_PAGE, list_pairs

        q = request.query_params

        def page() -> dict[str, Any]:
            root = actions.dataset_root(q.get("path"), self.roots)
            return list_pairs(
                root,
                actions.split_arg(q.get("split", "train")),
                offset=actions.int_arg(q.get("offset", 0), "offset", 0, 10**9),
                limit=actions.int_arg(q.get("limit", 60), "limit", 1, MAX_PAGE),
                sort=q.get("sort", "name"),
                descending=q.get("desc") == "1",
                excluded=q.get("excluded") == "1",
            ).to_dict()

        return await _answer(page)

    async def thumb(self, request: Request) -> Response:
        from nectargan.dataset.pairs import thumbnail

        q = request.query_params

        def image() -> bytes:
            root = actions.dataset_root(q.get("path"), self.roots)
            split = actions.split_arg(q.get("split"))
            return thumbnail(root, split, q.get("name", ""), excluded=q.get("excluded") == "1")

        try:
            data = await run_in_threadpool(image)
        except UserError as exc:
            return _error(exc)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private"})

    # -- changing ----------------------------------------------------------------------------

    async def move(self, request: Request) -> Response:
        from nectargan.dataset.pairs import exclude_pair, restore_pair

        body = await json_body(request)
        move = exclude_pair if request.url.path.endswith("/exclude") else restore_pair

        def act() -> dict[str, str]:
            root = actions.dataset_root(body.get("path"), self.roots)
            split = actions.split_arg(body.get("split"))
            return {"moved_to": str(move(root, split, str(body.get("name", ""))))}

        return await _answer(act)

    async def download(self, request: Request) -> Response:
        body = await json_body(request)

        def start() -> dict[str, Any]:
            args = actions.download_args(body, self.roots)
            if self.jobs.running("download"):
                raise actions.BadInput("a download is running; wait for it or cancel it")
            label = f"download {args['name']} to {args['root']}"
            return self.jobs.start(
                "download", label, lambda t: actions.run_download(args, t)
            ).snapshot()

        return await _answer(start)

    async def pair(self, request: Request) -> Response:
        body = await json_body(request)
        return await self._plan_then_work("pair", body, actions.pair_plan, _pair_work)

    async def split(self, request: Request) -> Response:
        body = await json_body(request)
        return await self._plan_then_work("split", body, actions.split_plan, _split_work)

    async def _plan_then_work(self, kind: str, body: dict, plan_fn, work_fn) -> Response:
        """``dry_run``: the plan, said; otherwise a job that plans again and does the work."""
        if body.get("dry_run"):
            return await _answer(lambda: actions.describe_plan(plan_fn(body, self.roots)))

        def start() -> dict[str, Any]:
            def work(task):  # the checks run again here, with progress: files may have changed
                return work_fn(plan_fn(body, self.roots, task), task)

            return self.jobs.start(kind, f"{kind} into {body.get('out')}", work).snapshot()

        return await _answer(start)

    async def measure(self, request: Request) -> Response:
        from nectargan.dataset.measures import measure_split

        body = await json_body(request)

        def start() -> dict[str, Any]:
            root = actions.dataset_root(body.get("path"), self.roots)
            split = actions.split_arg(body.get("split", "train"))

            def work(task):
                result = measure_split(root, split, task)
                return {"measured": sum("m" in e for e in result.values()), "total": len(result)}

            return self.jobs.start("measure", f"measure {root.name}/{split}", work).snapshot()

        return await _answer(start)

    # -- jobs --------------------------------------------------------------------------------

    async def job_list(self, request: Request) -> Response:
        return JSONResponse({"jobs": [job.snapshot() for job in self.jobs.list()]})

    def _job(self, request: Request):
        return self.jobs.get(request.path_params["job"])

    async def job(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse(job.snapshot())

    async def job_events(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return event_stream(request, job.snapshot, JOB_EVENTS_S)

    async def cancel(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        job.task.cancel()
        return JSONResponse(job.snapshot())


def _pair_work(plan, task) -> dict[str, Any]:
    from nectargan.dataset.tools import carry_out_pair

    return {"counts": carry_out_pair(plan, task), "out": str(plan.out_dir)}


def _split_work(plan, task) -> dict[str, Any]:
    from nectargan.dataset.tools import carry_out_split

    counts = carry_out_split(plan, task)
    return {"counts": counts, "out": str(plan.out_dir), "warnings": plan.warnings}


def routes(toolbox: Toolbox) -> list[BaseRoute]:
    page = DatasetPage(toolbox)
    return [
        Route("/dataset", page.page),
        Route("/dataset/folders", page.folders),
        Route("/dataset/survey", page.survey),
        Route("/dataset/augmentations", page.augmentations),
        Route("/dataset/preview", page.preview, methods=["POST"]),
        Route("/dataset/pairs", page.pairs),
        Route("/dataset/thumb", page.thumb),
        Route("/dataset/exclude", page.move, methods=["POST"]),
        Route("/dataset/restore", page.move, methods=["POST"]),
        Route("/dataset/download", page.download, methods=["POST"]),
        Route("/dataset/pair", page.pair, methods=["POST"]),
        Route("/dataset/split", page.split, methods=["POST"]),
        Route("/dataset/measure", page.measure, methods=["POST"]),
        Route("/dataset/jobs", page.job_list),
        Route("/dataset/jobs/{job:str}", page.job),
        Route("/dataset/jobs/{job:str}/events", page.job_events),
        Route("/dataset/jobs/{job:str}/cancel", page.cancel, methods=["POST"]),
    ]
