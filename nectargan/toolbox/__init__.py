"""The Toolbox: a local web app to set up, launch, watch, stop, resume and queue training.

``nectargan toolbox`` (nectargan/cli/toolbox_cmd.py) serves it with Starlette
and uvicorn. Layout:

* ``app.py``: the app factory (the gate, the pages, static files, the scheduler);
* ``security.py`` and ``paths.py``: token, cookie, Host and Origin checks,
  headers; browser paths confined to the roots;
* ``context.py``: the :class:`~nectargan.toolbox.context.Toolbox` every page gets;
* ``runs_index.py`` / ``run_watch.py``: runs read incrementally from their files;
* ``launcher.py`` / ``run_queue.py``: child runs and the persisted queue;
* ``pages/``: one module per page (see ``pages/__init__.py`` to add one),
  ``templates/`` and ``static/`` beside them.

Nothing here imports torch: the Toolbox starts in well under a second and its
children do the training.
"""
