/* Utilities page: start export / infer jobs (the CLI commands as child processes), follow them live. */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await answer.json(); } catch (e) { data = {error: `${answer.status} ${answer.statusText}`}; }
    if (!answer.ok) throw new Error(data.error || `${answer.status} ${answer.statusText}`);
    return data;
  }

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  function setField(box, name, text) {
    const node = box.querySelector(`[data-field="${name}"]`);
    if (node) node.textContent = text;
    return node;
  }

  /* Follow one job by server-sent events; render(box, snapshot) on each change. */
  function follow(box, job, render) {
    if (box.source) box.source.close();
    box.hidden = false;
    box.dataset.job = job.id;
    const stop = box.querySelector("[data-stop]");
    stop.onclick = () => post(`/utilities/jobs/${job.id}/stop`).catch(() => {});
    const draw = (snap) => {
      setField(box, "state", snap.state);
      box.querySelector('[data-field="state"]').className = snap.state === "failed" ? "ut-bad" : (snap.state === "done" ? "ut-ok" : "");
      setField(box, "command", snap.command);
      const log = setField(box, "log", snap.log.join("\n"));
      log.scrollTop = log.scrollHeight;
      const err = setField(box, "error", snap.error);
      err.hidden = !snap.error;
      stop.hidden = snap.state !== "running";
      box.dataset.state = snap.state;
      render(box, snap);
    };
    draw(job);
    if (job.state !== "running") return;
    box.source = new EventSource(`/utilities/jobs/${job.id}/events`);
    box.source.onmessage = (event) => {
      const snap = JSON.parse(event.data);
      if (snap.state === "deleted") return box.source.close();
      draw(snap);
      if (snap.state !== "running") {
        box.source.close();
        jobs.refresh();
      }
    };
  }

  function renderExport(box, snap) {
    const check = snap.check;
    $("ex-check").hidden = !check;
    const list = $("ex-checked");
    list.replaceChildren();
    if (!check) return;
    setField(box, "diff", check.max_abs_diff.toExponential(2));
    setField(box, "path", check.path);
    setField(box, "format", check.format + (check.opset ? `, opset ${check.opset}` : ""));
    for (const line of check.checked) list.append(Toolbox.el("li", {}, line));
    loadModels();
  }

  function renderInfer(box, snap) {
    setField(box, "outputs", snap.outputs_dir);
    const zip = $("in-zip");
    zip.href = `/utilities/jobs/${encodeURIComponent(snap.id)}/zip`;
    zip.hidden = snap.state !== "done" || !snap.images.length;
    const grid = $("in-images");
    const shown = new Set(Array.from(grid.querySelectorAll("img"), (img) => img.dataset.name));
    for (const name of snap.images) {
      if (shown.has(name) || snap.state === "running") continue;  // a file being written is not ready yet
      const src = `/utilities/jobs/${encodeURIComponent(snap.id)}/images/${encodeURIComponent(name)}`;
      grid.append(Toolbox.el("figure", {},
        Toolbox.el("img", {src, alt: `${name}: input | output`, "data-name": name, loading: "lazy"}),
        Toolbox.el("figcaption", {}, name)));
    }
  }

  async function loadModels() {
    try {
      const answer = await fetch("/utilities/models");
      const data = await answer.json();
      const list = $("in-models");
      list.replaceChildren(...data.models.map((m) => Toolbox.el("option", {value: m.path}, `${m.run}: ${m.name}`)));
      if (!$("in-model").value && data.models.length) $("in-model").value = data.models[0].path;
    } catch (e) { /* the list is a convenience; typing a path still works */ }
  }

  $("ex-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = {
      run: form.get("run"), epoch: form.get("epoch"), format: form.get("format"),
      opset: form.get("opset"), overwrite: form.get("overwrite") === "on",
      static: form.get("static_on") === "on" ? [form.get("static_h"), form.get("static_w")] : null,
    };
    showError($("ex-error"), "");
    try {
      follow($("ex-job"), await post("/utilities/export", body), renderExport);
      jobs.refresh();
    } catch (e) { showError($("ex-error"), e.message); }
  });

  $("in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = {model: form.get("model"), folder: form.get("folder"), tile: form.get("tile"), paired: form.get("paired") === "on"};
    showError($("in-error"), "");
    $("in-images").replaceChildren();
    try {
      follow($("in-job"), await post("/utilities/infer", body), renderInfer);
      jobs.refresh();
    } catch (e) { showError($("in-error"), e.message); }
  });

  const picker = Toolbox.picker("ut", "/utilities/folders");
  for (const button of document.querySelectorAll(".ut-browse")) {
    button.addEventListener("click", () => picker.open($(button.dataset.target), button.dataset.files));
  }

  /* Earlier jobs: Show puts one back in its box, as it ended (or follows it, still running). */
  const jobs = Toolbox.jobList($("ut-jobs-list"), {
    base: "/utilities/jobs",
    onShow(job) {
      if (job.kind === "export") follow($("ex-job"), job, renderExport);
      else {
        $("in-images").replaceChildren();
        follow($("in-job"), job, renderInfer);
      }
      $(job.kind === "export" ? "ex-job" : "in-job").scrollIntoView();
    },
    onError: (message) => showError($("ut-jobs-error"), message),
  });

  loadModels();
})();
