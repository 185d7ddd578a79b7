/* Run page: facts, charts, metrics, examples, checkpoints, log and dashboard from each event. */
"use strict";

(() => {
  const { el, fixed } = Toolbox;
  const field = (node, name) => node.querySelector(`[data-field="${name}"]`);
  const set = (node, name, text) => { const f = field(node, name); if (f) f.textContent = text; };

  function facts(node, data) {
    const s = data.summary;
    const label = field(node, "label");
    label.textContent = s.label;
    label.className = `state state-${s.state}`;
    set(node, "epoch", data.total_epochs ? `${data.epoch} of ${data.total_epochs}` : `${data.epoch}`);
    set(node, "iteration", data.iteration || "-");
    set(node, "its", data.its ? data.its.toFixed(2) : "-");
    set(node, "eta", data.eta || "-");
    set(node, "lr", data.lr ? `${fmt(data.lr.lr_G)} / ${fmt(data.lr.lr_D)}` : "-");
    set(node, "best", data.best ? `${fixed(data.best.l1, 4)} (epoch ${data.best.epoch})` : "-");
    set(node, "pid", data.pid || "-");
    field(node, "activity").dataset.time = s.last_activity;
    const running = data.running, finished = s.state === "finished";
    for (const form of node.querySelectorAll("form[data-when]")) {
      const want = form.dataset.when === "running" ? running : !running;
      const resumeFinished = finished && form.action.endsWith("/resume");
      form.hidden = !want || resumeFinished;
    }
  }

  const fmt = (v) => (typeof v === "number" ? v.toExponential(2) : "-");

  function charts(data) {
    const box = document.getElementById("loss-charts");
    const byTag = {};
    for (const [name, s] of Object.entries(data.losses)) {
      const tag = (s.tags && s.tags[0]) || "other";
      (byTag[tag] = byTag[tag] || []).push({ name, x: s.x, y: s.y });
    }
    const tags = Object.keys(byTag);
    if (!tags.length) return;
    box.replaceChildren(...tags.map((t) => Toolbox.lineChart(`${t} losses (weighted)`, byTag[t])));
  }

  function validation(data) {
    const rows = [...data.val].reverse().slice(0, 12).map((r) =>
      el("tr", {}, el("td", {}, r.epoch), el("td", {}, fixed(r.l1, 4)),
        el("td", {}, fixed(r.psnr, 2)), el("td", {}, fixed(r.ssim, 3))));
    document.getElementById("val-rows").replaceChildren(...rows);
  }

  function examples(node, data) {
    const box = document.getElementById("examples");
    const ex = data.examples;
    const key = ex ? `${ex.epoch}:${ex.files.join(",")}` : "";
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    set(node, "examples-epoch", ex ? `(after epoch ${ex.epoch})` : "");
    const base = node.dataset.base;
    box.replaceChildren(...(ex ? ex.files : []).map((f) =>
      el("img", { src: `${base}/file/${f}?v=${ex.epoch}`, alt: `example ${f}` })));
  }

  function checkpoints(data) {
    const items = data.checkpoints.map((c) => el("li", {}, `${c.name} `, el("small", { class: "muted" }, `${(c.bytes / 1e6).toFixed(1)} MB`)));
    document.getElementById("checkpoints").replaceChildren(...items);
  }

  function log(data) {
    const pre = document.getElementById("log");
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    pre.textContent = data.log.join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function dashboard(data) {
    const section = document.getElementById("visdom-section");
    const frame = document.getElementById("visdom");
    const up = data.visdom_up && data.visdom;
    section.hidden = !up;
    if (up) {
      const src = `http://${window.location.hostname}:${data.visdom.port}/env/${encodeURIComponent(data.visdom.env)}`;
      if (frame.getAttribute("src") !== src) frame.setAttribute("src", src);
    }
  }

  Toolbox.renderers.run = (node, data) => {
    facts(node, data);
    charts(data);
    validation(data);
    examples(node, data);
    checkpoints(data);
    log(data);
    dashboard(data);
  };
})();
