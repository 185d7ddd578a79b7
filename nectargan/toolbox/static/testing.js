/* Testing page: start `nectargan test`, follow it, show the results grid; upload and infer. */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = Toolbox.el;
  const WORST_FIRST = { l1: (a, b) => b.l1 - a.l1, psnr: (a, b) => a.psnr - b.psnr,
                        ssim: (a, b) => a.ssim - b.ssim, image: (a, b) => String(a.image).localeCompare(b.image) };
  let current = null;  // the shown result's detail
  let batch = null;    // the upload batch id

  const runPath = () => {
    const [root, ...rest] = $("ts-run").value.split("/");
    return { root: Number(root), name: rest.join("/") };
  };
  const runApi = () => {
    const r = runPath();
    return `/api/testing/runs/${r.root}/${encodeURIComponent(r.name)}`;
  };
  const runFile = (file) => {
    const r = runPath();
    return `/runs/${r.root}/${encodeURIComponent(r.name)}/file/${file.split("/").map(encodeURIComponent).join("/")}`;
  };

  function say(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  async function getJson(url, options) {
    const answer = await fetch(url, options);
    let data = {};
    try { data = await answer.json(); } catch (e) { data = { error: `${answer.status} ${answer.statusText}` }; }
    if (!answer.ok) throw new Error(data.error || `${answer.status}`);
    return data;
  }
  const postJson = (url, body) => getJson(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  /* -- the run: its checkpoints and earlier results ------------------------------------- */

  async function loadRun(pick) {
    if (!$("ts-run").value) return;
    say($("ts-message"), "");
    let info;
    try { info = await getJson(runApi()); } catch (e) {
      say($("ts-message"), `This run cannot be read: ${e.message}`);
      $("ts-grid").replaceChildren(el("p", { class: "muted" }, "No run to show."));
      $("ts-result").replaceChildren();
      return;
    }
    const epoch = $("ts-epoch");
    epoch.replaceChildren(el("option", { value: "latest" }, "latest"));
    if (info.has_best) epoch.append(el("option", { value: "best" }, `best (epoch ${info.best_epoch ?? "?"})`));
    for (const n of info.epochs.slice().reverse()) epoch.append(el("option", { value: String(n) }, `epoch ${n}`));
    const select = $("ts-result");
    select.replaceChildren(...info.results.map((r) => el("option", { value: r.name },
      `${r.name}: ${r.split}, ${r.n_images} images, L1 ${Toolbox.fixed(r.metrics.l1, 4)}`)));
    if (pick) select.value = pick;
    if (select.value) await loadResult(select.value);
    else {
      current = null;
      $("ts-grid").replaceChildren(el("p", { class: "muted" }, "No test results for this run yet."));
    }
  }

  async function loadResult(name) {
    try { current = await getJson(`${runApi()}/results/${encodeURIComponent(name)}`); } catch (e) {
      say($("ts-message"), `This result cannot be read: ${e.message}`);
      return;
    }
    const means = $("ts-means");
    const field = (key, text) => { means.querySelector(`[data-field="${key}"]`).textContent = text; };
    field("n_images", current.n_images);
    field("l1", Toolbox.fixed(current.metrics.l1, 4));
    field("psnr", Toolbox.fixed(current.metrics.psnr, 2));
    field("ssim", Toolbox.fixed(current.metrics.ssim, 4));
    field("epoch", current.epoch);
    field("split", current.split);
    drawGrid();
  }

  function drawGrid() {
    if (!current) return;
    const rows = current.rows.slice().sort(WORST_FIRST[$("ts-sort").value]);
    $("ts-grid").replaceChildren(...rows.map((row) => el("figure", { class: "ts-cell", "data-image": row.image },
      row.file ? el("img", { src: runFile(row.file), alt: `${row.image}: input, output, target`, loading: "lazy" })
               : el("div", { class: "muted" }, "(no image: tested with --no-images)"),
      el("figcaption", {}, el("b", {}, row.image), ` L1 ${Toolbox.fixed(row.l1, 4)} · PSNR ${Toolbox.fixed(row.psnr, 2)} · SSIM ${Toolbox.fixed(row.ssim, 3)}`))));
  }

  /* -- a test ----------------------------------------------------------------------------- */

  async function follow(job, onEnd, show) {
    for (;;) {
      show(job);
      if (job.state !== "running") return onEnd(job);
      await new Promise((r) => setTimeout(r, 500));
      try { job = await getJson(`/api/testing/jobs/${job.id}`); } catch (e) {
        return onEnd({ state: "failed", error: e.message });
      }
    }
  }

  /* POST a job's start with its button held down; a refusal is said in ``message``. */
  async function startJob(url, body, button, message, followIt) {
    say(message, "");
    button.disabled = true;
    let job;
    try { job = await postJson(url, body); } catch (e) {
      say(message, e.message);
      button.disabled = false;
      return;
    }
    jobList.refresh();
    await followIt(job);
  }

  function startTest() {
    const body = { epoch: $("ts-epoch").value, split: $("ts-split").value, max_images: $("ts-max").value };
    return startJob(`${runApi()}/test`, body, $("ts-test"), $("ts-message"), followTest);
  }

  async function followTest(job) {
    const button = $("ts-test");
    button.disabled = true;
    const box = $("ts-progress");
    box.hidden = false;
    await follow(job, async (end) => {
      jobList.refresh();
      button.disabled = false;
      if (end.state === "done") {
        box.querySelector("[data-field=progress]").textContent = `done: ${end.result}`;
        await loadRun(end.result);
      } else say($("ts-message"), `test ${end.state}: ${end.error}`);
    }, (j) => {
      const bar = box.querySelector("progress");
      bar.max = j.total || 1;
      bar.value = Math.min(j.written || 0, bar.max);
      box.querySelector("[data-field=progress]").textContent =
        `${j.written || 0}${j.total ? ` of ${j.total}` : ""} images written`;
    });
  }

  /* -- infer ------------------------------------------------------------------------------ */

  async function upload(files) {
    const list = $("ts-uploads");
    say($("ts-infer-message"), "");
    for (const file of files) {
      const item = el("li", {}, `${file.name}: uploading`);
      list.append(item);
      const query = new URLSearchParams({ name: file.name });
      if (batch) query.set("batch", batch);
      try {
        const done = await getJson(`/api/testing/uploads?${query}`, { method: "PUT", body: file });
        batch = done.batch;
        item.textContent = `${done.name}: ${done.width}x${done.height} px`;
        item.className = "ok";
      } catch (e) {
        item.textContent = e.message;
        item.className = "bad";
      }
    }
  }

  function startInfer() {
    const folder = $("ts-folder").value.trim();
    const r = runPath();
    const body = { root: r.root, name: r.name, epoch: $("ts-epoch").value };
    if (folder) body.folder = folder; else body.batch = batch;
    $("ts-zip").hidden = true;
    return startJob("/api/testing/infer", body, $("ts-infer"), $("ts-infer-message"), followInfer);
  }

  async function followInfer(job) {
    const button = $("ts-infer");
    button.disabled = true;
    const progress = $("ts-infer-progress");
    await follow(job, (end) => {
      jobList.refresh();
      button.disabled = false;
      if (end.state !== "done") return say($("ts-infer-message"), `infer ${end.state}: ${end.error}`);
      say(progress, `${end.written} outputs`);
      drawInfer(end);
    }, (j) => say(progress, `${j.written} of ${j.inputs ? j.inputs.length : "?"} images done`));
  }

  function drawInfer(job) {
    const base = `/api/testing/infer/${job.id}`;
    const outputs = new Map();
    // `nectargan infer` writes <stem>.png
    for (const name of job.outputs || []) outputs.set(name.replace(/\.[^.]+$/, ""), name);
    $("ts-infer-grid").replaceChildren(...job.inputs.map((name) => {
      const out = outputs.get(name.replace(/\.[^.]+$/, ""));
      return el("figure", { class: "ts-cell ts-pair" },
        el("img", { src: `${base}/in/${encodeURIComponent(name)}`, alt: `${name}: input` }),
        out ? el("img", { src: `${base}/out/${encodeURIComponent(out)}`, alt: `${name}: output` }) : el("span", {}, "no output"),
        el("figcaption", {}, `${name}: input | output`));
    }));
    const zip = $("ts-zip");
    zip.href = `${base}/zip`;
    zip.hidden = false;
  }

  /* -- earlier jobs (kept on disk: a restarted Toolbox still lists them) ------------------ */

  let jobList = { refresh() {} };

  async function showJob(job) {
    say($("ts-jobs-message"), "");
    if (job.kind === "test") {
      const wanted = `${job.root}/${job.name}`;
      if (![...$("ts-run").options].some((o) => o.value === wanted)) {
        return say($("ts-jobs-message"), job.run_error || `run ${job.name} is no longer listed`);
      }
      $("ts-run").value = wanted;
      if (job.state === "running") return followTest(job);
      await loadRun(job.result || undefined);
      if (job.state !== "done") say($("ts-message"), `test ${job.state}: ${job.error}`);
      $("ts-grid").scrollIntoView();
    } else {
      $("ts-infer-grid").replaceChildren();
      if (job.state === "running") return followInfer(job);
      if (job.state !== "done") say($("ts-infer-message"), `infer ${job.state}: ${job.error}`);
      else say($("ts-infer-message"), "");
      say($("ts-infer-progress"), `${job.written} outputs`);
      drawInfer(job);
      $("ts-infer-grid").scrollIntoView();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    jobList = Toolbox.jobList($("ts-jobs"), {
      base: "/api/testing/jobs",
      onShow: showJob,
      onError: (message) => say($("ts-jobs-message"), message),
    });
    $("ts-run").addEventListener("change", () => loadRun());
    $("ts-result").addEventListener("change", () => loadResult($("ts-result").value));
    $("ts-sort").addEventListener("change", drawGrid);
    $("ts-test").addEventListener("click", startTest);
    $("ts-infer").addEventListener("click", startInfer);
    const picker = Toolbox.picker("ts", "/api/testing/folders");
    $("ts-browse").addEventListener("click", () => picker.open($("ts-folder")));
    $("ts-files").addEventListener("change", (e) => upload(Array.from(e.target.files)));
    const drop = $("ts-drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      upload(Array.from(e.dataTransfer.files));
    });
    const wanted = new URLSearchParams(location.search).get("run");
    if (wanted) $("ts-run").value = wanted;
    loadRun();
  });
})();
