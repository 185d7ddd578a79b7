/* Shared by every page: live streams, relative times, confirmations. No framework. */
"use strict";

const Toolbox = {
  renderers: {},

  /* Build an element: el("td", {class: "x"}, "text", child). Text is always text, never HTML. */
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  ago(seconds) {
    if (!seconds) return "-";
    const d = Math.max(0, Date.now() / 1000 - seconds);
    if (d < 60) return `${Math.round(d)} s ago`;
    if (d < 3600) return `${Math.round(d / 60)} min ago`;
    if (d < 86400) return `${(d / 3600).toFixed(1)} h ago`;
    return new Date(seconds * 1000).toLocaleString();
  },

  fixed(value, digits) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "-";
  },

  refreshTimes() {
    for (const node of document.querySelectorAll("[data-time]")) {
      node.textContent = Toolbox.ago(Number(node.dataset.time));
    }
  },

  /* Each [data-stream] element follows its server-sent events with renderers[data-render]. */
  connect(node) {
    const render = Toolbox.renderers[node.dataset.render];
    if (!render) return;
    const source = new EventSource(node.dataset.stream);
    source.onmessage = (event) => {
      render(node, JSON.parse(event.data));
      Toolbox.refreshTimes();
      document.body.dataset.live = "1";
    };
    source.onerror = () => { document.body.dataset.live = "0"; };
  },
};

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  Toolbox.refreshTimes();
  setInterval(Toolbox.refreshTimes, 5000);
  for (const node of document.querySelectorAll("[data-stream]")) Toolbox.connect(node);
});
