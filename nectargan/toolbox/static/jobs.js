/* The list of a page's jobs (kept on disk by the Toolbox, so they outlive a restart):
   each with its state, Show, Stop while it runs, Delete once it ended. Shared by Testing and Utilities. */
"use strict";

Toolbox.jobList = function (node, options) {
  const el = Toolbox.el;
  let timer = null;

  async function call(url, method) {
    const answer = await fetch(url, { method: method || "GET", headers: { "Content-Type": "application/json" } });
    let data = {};
    try { data = await answer.json(); } catch (e) { data = { error: `${answer.status} ${answer.statusText}` }; }
    if (!answer.ok) throw new Error(data.error || `${answer.status}`);
    return data;
  }

  function button(label, onClick, attrs) {
    const b = el("button", Object.assign({ type: "button" }, attrs || {}), label);
    b.addEventListener("click", onClick);
    return b;
  }

  function row(job) {
    const actions = el("td", { class: "jobs-actions" },
      button("Show", () => options.onShow(job), { "data-action": "show" }));
    if (job.state === "running") {
      actions.append(button("Stop", () => act(options.base + `/${job.id}/stop`), { "data-action": "stop" }));
    } else {
      actions.append(button("Delete", () => act(options.base + `/${job.id}/delete`), { "data-action": "delete" }));
    }
    const state = el("td", { class: `jobs-state jobs-${job.state}` }, job.state);
    const why = job.error ? el("div", { class: "muted small" }, job.error) : null;
    return el("tr", { "data-job": job.id, "data-state": job.state },
      el("td", { "data-time": job.started }, Toolbox.ago(job.started)),
      el("td", {}, job.label, why), state, actions);
  }

  async function act(url) {
    try { await call(url, "POST"); } catch (e) { options.onError(e.message); }
    refresh();
  }

  async function refresh() {
    clearTimeout(timer);
    let data;
    try { data = await call(options.base); } catch (e) { return options.onError(e.message); }
    const body = node.querySelector("tbody");
    body.replaceChildren(...data.jobs.map(row));
    node.querySelector("[data-empty]").hidden = data.jobs.length > 0;
    if (data.jobs.some((j) => j.state === "running")) timer = setTimeout(refresh, 2000);
  }

  refresh();
  return { refresh };
};
