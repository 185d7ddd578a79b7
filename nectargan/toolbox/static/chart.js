/* A small SVG line chart: a few series sharing x (steps) and y axes. No library. */
"use strict";

/* Y-axis labels for ticks over [y0, y1]: enough digits that neighbours differ, the same
   digits on every tick; values under 1e-3 as 2.0e-4. */
Toolbox.ticks = (values, y0, y1) => {
  const span = Math.max(y1 - y0, 1e-300), big = Math.max(Math.abs(y0), Math.abs(y1));
  if (big < 1e-3) {
    const digits = Math.max(1, Math.min(4, Math.ceil(Math.log10(big / span)) + 1));
    return values.map((y) => (y === 0 ? "0" : y.toExponential(digits)));
  }
  const decimals = Math.max(0, Math.min(8, Math.ceil(-Math.log10(span / 3)) + 1));
  return values.map((y) => y.toFixed(big >= 100 && span >= 3 ? 0 : decimals));
};

Toolbox.COLORS = ["#1558b0", "#d0641b", "#1f7a3a", "#8e3ab0", "#b3261e", "#5b6b00", "#00808a"];

/* series: [{name, x, y, color?}]; xlabel names the x axis ("step", "epoch"). */
Toolbox.lineChart = (title, series, xlabel = "step") => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 480, H = 220, R = 8, T = 8, B = 22;
  let L = 46;
  const svg = (tag, attrs) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    return n;
  };
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (y === null || !isFinite(y)) return;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    });
  }
  const box = Toolbox.el("div", { class: "chart" }, Toolbox.el("h3", {}, title));
  if (!isFinite(x0)) return box;
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += Math.abs(y0) * 0.05 + 1e-6; y0 -= Math.abs(y0) * 0.05 + 1e-6; }
  L = Math.max(46, 8 + 6.5 * Math.max(...Toolbox.ticks([y0, y1], y0, y1).map((t) => t.length)));
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  root.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#d9d9d4" }));
  const tickValues = [0, 1, 2, 3].map((i) => y0 + ((y1 - y0) * i) / 3);
  const tickLabels = Toolbox.ticks(tickValues, y0, y1);
  tickValues.forEach((y, i) => {
    const py = sy(y);
    root.append(svg("line", { x1: L, x2: W - R, y1: py, y2: py, stroke: "#eeeeea" }));
    const label = svg("text", { x: L - 4, y: py + 4, "text-anchor": "end", "font-size": 11, fill: "#6b6b66" });
    label.textContent = tickLabels[i];
    root.append(label);
  });
  for (const [x, anchor] of [[x0, "start"], [x1, "end"]]) {
    const label = svg("text", { x: sx(x), y: H - 6, "text-anchor": anchor, "font-size": 11, fill: "#6b6b66" });
    label.textContent = `${xlabel} ${Math.round(x)}`;
    root.append(label);
  }
  const legend = Toolbox.el("div", { class: "legend" });
  series.forEach((s, k) => {
    const color = s.color || Toolbox.COLORS[k % Toolbox.COLORS.length];
    let d = "", pen = "M";
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (y === null || !isFinite(y)) { pen = "M"; return; }
      d += `${pen}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      pen = "L";
    });
    root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.4 }));
    const swatch = Toolbox.el("span", { class: "swatch" });
    swatch.style.background = color;  /* CSSOM, not an inline style attribute: CSP allows it */
    legend.append(Toolbox.el("span", {}, swatch, s.name));
  });
  box.append(root, legend);
  return box;
};
