/* Runs page: redraw the table from each event. */
"use strict";

Toolbox.renderers.runs = (node, data) => {
  const { el, fixed } = Toolbox;
  const body = node.querySelector("tbody");
  const rows = data.runs.map((run) => {
    const base = `/runs/${run.root}/${encodeURIComponent(run.name)}`;
    const thumb = run.thumbnail
      ? el("img", { src: `${base}/file/${run.thumbnail}`, alt: `newest example of ${run.name}` })
      : null;
    const epoch = run.total_epochs ? `${run.epochs_completed} of ${run.total_epochs}` : `${run.epochs_completed}`;
    const best = run.best;
    return el("tr", { "data-run": run.id },
      el("td", { class: "thumb" }, thumb),
      el("td", { class: "name" }, el("a", { href: base }, run.name)),
      el("td", {}, el("span", { class: `state state-${run.state}` }, run.label)),
      el("td", { "data-label": "epoch" }, epoch),
      el("td", { "data-label": "best val L1" },
        best ? fixed(best.l1, 4) : "-", best ? el("small", {}, ` (epoch ${best.epoch})`) : null),
      el("td", { "data-label": "PSNR" }, best ? fixed(best.psnr, 2) : "-"),
      el("td", { "data-label": "SSIM" }, best ? fixed(best.ssim, 3) : "-"),
      el("td", { "data-label": "last activity", "data-time": run.last_activity }));
  });
  if (!rows.length) {
    rows.push(el("tr", { class: "empty" }, el("td", { colspan: 8 }, "No runs yet.")));
  }
  body.replaceChildren(...rows);
};
