/* Review page: draw one run, or several compared, from /api/review (charts: chart.js). */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = Toolbox.el;
  let one = null;

  function say(text) {
    $("rv-message").textContent = text || "";
    $("rv-message").hidden = !text;
  }

  async function getJson(url) {
    const answer = await fetch(url);
    let data = {};
    try { data = await answer.json(); } catch (e) { data = { error: `${answer.status} ${answer.statusText}` }; }
    if (!answer.ok) throw new Error(data.error || `${answer.status}`);
    return data;
  }

  const byTag = (losses, pick) => {
    const groups = {};
    for (const [name, loss] of Object.entries(losses)) {
      const tag = (loss.tags && loss.tags[0]) || "other";
      (groups[tag] = groups[tag] || []).push({ name, ...pick(loss) });
    }
    return groups;
  };

  function drawLosses() {
    const raw = $("rv-raw").checked;
    const groups = byTag(one.losses, (l) => (raw ? l.raw : l.weighted));
    const kind = raw ? "raw" : "weighted";
    $("rv-losses").replaceChildren(...Object.entries(groups).map(([tag, series]) =>
      Toolbox.lineChart(`${tag} losses (${kind})`, series)));
    if (!Object.keys(groups).length) $("rv-losses").replaceChildren(el("p", { class: "muted" }, "No loss log."));
  }

  function column(rows, key) {
    return { x: rows.map((r) => r.epoch), y: rows.map((r) => (typeof r[key] === "number" ? r[key] : null)) };
  }

  function drawEpochCharts() {
    const v = one.val_metrics, s = one.epoch_stats;
    const charts = [];
    if (v.length) {
      charts.push(Toolbox.lineChart("val L1", [{ name: "L1", ...column(v, "l1") }], "epoch"));
      charts.push(Toolbox.lineChart("val PSNR (dB)", [{ name: "PSNR", ...column(v, "psnr") }], "epoch"));
      charts.push(Toolbox.lineChart("val SSIM", [{ name: "SSIM", ...column(v, "ssim") }], "epoch"));
    }
    if (s.length) {
      charts.push(Toolbox.lineChart("learning rate", [{ name: "G", ...column(s, "lr_G") }, { name: "D", ...column(s, "lr_D") }], "epoch"));
      charts.push(Toolbox.lineChart("throughput (images/s)", [{ name: "images/s", ...column(s, "images_per_s") }], "epoch"));
    }
    $("rv-epochs").replaceChildren(...(charts.length ? charts : [el("p", { class: "muted" }, "No per-epoch records.")]));
  }

  function drawExamples() {
    const slider = $("rv-slider");
    const epoch = one.examples[Number(slider.value)];
    $("rv-example-epoch").textContent = epoch ? `epoch ${epoch.epoch}` : "none";
    const [root, ...rest] = one.id.split("/");
    const base = `/runs/${root}/${encodeURIComponent(rest.join("/"))}/file/`;
    $("rv-examples").replaceChildren(...(epoch ? epoch.images : []).map((f) =>
      el("img", { src: base + f.split("/").map(encodeURIComponent).join("/"), alt: `example ${f}` })));
  }

  function drawOne(data, id) {
    one = { ...data, id };
    $("rv-title").textContent = data.name;
    $("rv-one").querySelector("[data-field=epochs]").textContent = `${data.epochs} epochs`;
    drawLosses();
    drawEpochCharts();
    const slider = $("rv-slider");
    slider.max = Math.max(0, data.examples.length - 1);
    slider.value = slider.max;
    drawExamples();
    const changed = Object.entries(data.changed);
    $("rv-changed").replaceChildren(...(changed.length
      ? changed.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, JSON.stringify(v))))
      : [el("tr", {}, el("td", {}, "nothing: every key is at its default"))]));
    $("rv-config").textContent = JSON.stringify(data.config, null, 2);
    $("rv-timing").replaceChildren(...data.timing.map((t) => el("li", {}, t)));
    $("rv-one").hidden = false;
  }

  function drawMany(data) {
    const colored = (series) => series.map((s, i) => (s ? { name: data.runs[i].label, color: data.colors[i], ...s } : null)).filter(Boolean);
    $("rv-runs").replaceChildren(...data.runs.map((r, i) => {
      const metric = (key, digits) => el("td", { class: r.best_in.includes(key) ? "best" : null }, Toolbox.fixed(r.best ? r.best[key] : null, digits));
      const name = el("td", {}, el("span", { class: "swatch" }), r.label);
      name.firstChild.style.background = data.colors[i];
      return el("tr", {}, name, el("td", {}, r.epochs), el("td", {}, r.best ? r.best.epoch : "-"),
        metric("l1", 4), metric("psnr", 2), metric("ssim", 4),
        el("td", {}, Toolbox.fixed(r.images_per_s, 1)), el("td", {}, Toolbox.fixed(r.seconds_per_epoch, 1)));
    }));
    $("rv-notes").replaceChildren(...data.notes.map((n) => el("li", {}, n)));
    $("rv-overlay-losses").replaceChildren(...Object.entries(data.losses).map(([name, series]) =>
      Toolbox.lineChart(name, colored(series))));
    $("rv-overlay-val").replaceChildren(...data.val.map((pane) =>
      Toolbox.lineChart(pane.title, colored(data.runs.map((_, i) => pane.series[String(i)] || null)), "epoch")));
    $("rv-diff-head").replaceChildren(el("tr", {}, el("th", {}, "key"), ...data.runs.map((r) => el("th", {}, r.label))));
    $("rv-diff").replaceChildren(...(data.differences.length
      ? data.differences.map((d) => el("tr", { "data-key": d.key }, el("th", {}, d.key), ...d.values.map((v) => el("td", {}, v))))
      : [el("tr", {}, el("td", {}, "none: the configs are the same"))]));
    $("rv-many").hidden = false;
  }

  async function show() {
    say("");
    $("rv-one").hidden = true;
    $("rv-many").hidden = true;
    const ids = Array.from(document.querySelectorAll("#rv-pick input[name=run]:checked")).map((i) => i.value);
    if (!ids.length) return;
    history.replaceState(null, "", `/review?${new URLSearchParams(ids.map((id) => ["run", id]))}`);
    const started = performance.now();
    try {
      if (ids.length === 1) {
        const [root, ...rest] = ids[0].split("/");
        drawOne(await getJson(`/api/review/runs/${root}/${encodeURIComponent(rest.join("/"))}`), ids[0]);
      } else {
        drawMany(await getJson(`/api/review/compare?${new URLSearchParams(ids.map((id) => ["run", id]))}`));
      }
    } catch (e) {
      say(`Cannot show this: ${e.message}`);
    }
    document.body.dataset.drawnMs = String(Math.round(performance.now() - started));
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("rv-pick").addEventListener("submit", (e) => { e.preventDefault(); show(); });
    $("rv-raw").addEventListener("change", () => one && drawLosses());
    $("rv-slider").addEventListener("input", () => one && drawExamples());
    show();
  });
})();
