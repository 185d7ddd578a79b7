// Dataset page: folder picker and layout check, augmentation preview, pair browser,
// download / pair / split jobs with progress and cancel. Plain JavaScript, no framework.
"use strict";

(() => {
  const el = Toolbox.el;
  const $ = (id) => document.getElementById(id);
  const pathInput = $("ds-path");
  let root = "";

  async function call(method, url, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const answer = await fetch(url, init);
    let data = {};
    try { data = await answer.json(); } catch (e) { data = { error: `HTTP ${answer.status}` }; }
    return { ok: answer.ok, data };
  }
  function show(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }
  const q = (params) => new URLSearchParams(params).toString();

  // -- picking and checking a dataset --------------------------------------------------------
  const picker = $("ds-picker");
  let pickerAt = "";
  async function browse(path) {
    const { ok, data } = await call("GET", "/dataset/folders?" + q({ path }));
    show($("ds-picker-error"), ok ? "" : data.error);
    if (!ok) return;
    pickerAt = data.path;
    $("ds-picker-path").textContent = data.path || "Roots";
    $("ds-picker-choose").disabled = !data.path;
    const list = $("ds-picker-list");
    list.replaceChildren();
    const entry = (label, onClick, cls) => {
      const button = el("button", { type: "button", class: cls }, label);
      button.addEventListener("click", onClick);
      list.append(el("li", {}, button));
    };
    if (data.parent !== null) entry("..", () => browse(data.parent), "up");
    else if (data.path) entry("(roots)", () => browse(""), "up");
    for (const f of data.folders) {
      entry(f.name + "/" + (f.dataset ? "  (dataset)" : ""), () => browse(f.path), "folder");
    }
    if (data.truncated) list.append(el("li", { class: "muted" }, "(only the first entries are listed)"));
  }
  $("ds-browse").addEventListener("click", () => { picker.hidden = false; browse(pathInput.value.trim()); });
  $("ds-picker-close").addEventListener("click", () => { picker.hidden = true; });
  $("ds-picker-choose").addEventListener("click", () => {
    pathInput.value = pickerAt;
    picker.hidden = true;
    check();
  });
  $("ds-open").addEventListener("click", check);
  pathInput.addEventListener("keydown", (e) => { if (e.key === "Enter") check(); });

  async function check() {
    const path = pathInput.value.trim();
    const { ok, data } = await call("GET", "/dataset/survey?" + q({ path }));
    show($("ds-error"), ok ? "" : data.error);
    $("ds-survey").hidden = !ok;
    if (!ok) return;
    history.replaceState(null, "", "/dataset?" + q({ path: data.root }));
    const body = $("ds-splits").querySelector("tbody");
    body.replaceChildren();
    for (const [split, n] of Object.entries(data.counts)) {
      const sizes = Object.entries(data.sizes[split] || {}).map(([s, c]) => `${s} (${c})`).join(", ");
      body.append(el("tr", {}, el("td", {}, split), el("td", {}, n), el("td", {}, sizes || "-")));
    }
    const problems = $("ds-problems");
    problems.replaceChildren(...data.problems.map((p) => el("li", {}, p)));
    const others = Object.entries(data.non_images).map(
      ([split, names]) => `not images, ignored (${split}/): ${names.join(", ")}`);
    $("ds-others").replaceChildren(...[...others, ...data.notes].map((t) => el("li", {}, t)));
    root = data.counts.train !== undefined ? data.root : "";
    if (root) {
      drawPreview();
      offset = 0;
      listPairs();
    }
  }

  // -- augmentation preview -------------------------------------------------------------------
  const augForm = $("ds-aug");
  let schema = null;
  function numberInput(name, value, prop) {
    const attrs = { type: "number", name, value, class: "ds-num", step: prop.type === "integer" ? "1" : "any" };
    if (prop.minimum !== undefined) attrs.min = prop.minimum;
    if (prop.maximum !== undefined) attrs.max = prop.maximum;
    return el("input", attrs);
  }
  function field(aug, key, prop, value) {
    const name = `${aug}.${key}`;
    let input;
    if (prop.enum) {
      input = el("select", { name }, ...prop.enum.map((v) => el("option", { selected: v === value }, v)));
    } else if (Array.isArray(value)) {
      const items = prop.items || {};
      input = el("span", { class: "ds-range" },
        numberInput(name + ".0", value[0], items), "–", numberInput(name + ".1", value[1], items));
    } else if (key === "p") {
      input = el("input", { type: "range", name, min: 0, max: 1, step: 0.05, value });
      const out = el("output", {}, Number(value).toFixed(2));
      input.addEventListener("input", () => { out.textContent = Number(input.value).toFixed(2); });
      return el("label", { class: "ds-p", title: prop.description || "" }, "p ", input, out);
    } else {
      input = numberInput(name, value, prop);
    }
    return el("label", { title: prop.description || "" }, key.replace(/_/g, " ") + " ", input);
  }
  async function buildAugmentations() {
    const { ok, data } = await call("GET", "/dataset/augmentations");
    if (!ok) return;
    schema = data;
    const list = $("ds-aug-list");
    for (const aug of data.order) {
      const spec = data.fields[aug];
      const values = data.defaults[aug];
      const box = el("fieldset", { class: "ds-augment", "data-aug": aug },
        el("legend", { title: spec.description }, aug.replace(/_/g, " ")));
      for (const [key, prop] of Object.entries(spec.properties)) box.append(field(aug, key, prop, values[key]));
      list.append(box);
    }
  }
  function augmentValues() {
    const augment = { random_crop: augForm.elements.random_crop.checked };
    for (const aug of schema.order) {
      const values = {};
      for (const [key, prop] of Object.entries(schema.fields[aug].properties)) {
        const name = `${aug}.${key}`;
        if (Array.isArray(schema.defaults[aug][key])) {
          values[key] = [0, 1].map((i) => Number(augForm.elements[`${name}.${i}`].value));
        } else if (prop.enum) {
          values[key] = augForm.elements[name].value;
        } else {
          values[key] = Number(augForm.elements[name].value);
        }
      }
      augment[aug] = values;
    }
    return augment;
  }
  let drawn = 0;
  let timer = null;
  async function drawPreview() {
    if (!root || !schema) return;
    const ticket = ++drawn;
    const f = augForm.elements;
    const body = {
      path: root, split: f.split.value, n: Number(f.n.value), columns: Number(f.columns.value),
      seed: Number(f.seed.value), load_size: Number(f.load_size.value),
      crop_size: Number(f.crop_size.value), augment: augmentValues(),
    };
    document.body.dataset.preview = "drawing";
    const { ok, data } = await call("POST", "/dataset/preview", body);
    if (ticket !== drawn) return; // a newer change is being drawn
    show($("ds-preview-error"), ok ? "" : (data.problems || [data.error]).join("\n"));
    $("ds-preview-note").textContent = ok ? (data.note || `${data.shown} pairs, input | target`) : "";
    if (ok) {
      $("ds-preview-img").src = data.image;
      $("ds-preview-img").hidden = false;
    }
    document.body.dataset.preview = ok ? `drawn-${ticket}` : "error";
  }
  augForm.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(drawPreview, 250);
  });
  augForm.addEventListener("submit", (e) => e.preventDefault());

  // -- jobs: progress and cancel -------------------------------------------------------------
  function watch(box, job, onEnd) {
    box.hidden = false;
    const bar = el("progress", { max: 1, value: 0 });
    const text = el("span", { class: "ds-progress-text" }, "starting");
    const cancel = el("button", { type: "button", class: "danger" }, "Cancel");
    const result = el("div", { class: "ds-result" });
    box.replaceChildren(el("div", { class: "ds-row" }, el("strong", {}, job.label), bar, text, cancel), result);
    box.dataset.state = "running";
    cancel.addEventListener("click", () => call("POST", `/dataset/jobs/${job.id}/cancel`));
    const source = new EventSource(`/dataset/jobs/${job.id}/events`);
    source.onmessage = (event) => {
      const s = JSON.parse(event.data);
      const p = s.progress;
      if (p.total) { bar.max = p.total; bar.value = p.done; } else { bar.removeAttribute("value"); }
      text.textContent = `${p.phase || ""} ${p.done}${p.total ? " / " + p.total : ""}`;
      if (s.state === "running") return;
      source.close();
      cancel.disabled = true;
      box.dataset.state = s.state;
      text.textContent = s.state === "done" ? "done" : s.state;
      result.replaceChildren(el("pre", { class: s.state === "done" ? "" : "error" },
        s.state === "done" ? JSON.stringify(s.result, null, 1) : s.error));
      if (onEnd) onEnd(s);
    };
  }
  /* Recent jobs, as the Toolbox keeps them (also those of a Toolbox since restarted). */
  async function listJobs() {
    const { ok, data } = await call("GET", "/dataset/jobs");
    if (!ok) return;
    $("ds-jobs-list").replaceChildren(...data.jobs.map((j) => el("tr", { "data-job": j.id, "data-state": j.state },
      el("td", { "data-time": j.started }, Toolbox.ago(j.started)), el("td", {}, j.label),
      el("td", { class: `jobs-${j.state}` }, j.state),
      el("td", { class: "small" }, j.state === "done" ? JSON.stringify(j.result) : j.error))));
  }
  listJobs();

  async function startJob(url, body, box, onEnd) {
    const { ok, data } = await call("POST", url, body);
    if (!ok) {
      box.hidden = false;
      box.dataset.state = "refused";
      box.replaceChildren(el("p", { class: "error" }, data.error));
      return;
    }
    listJobs();
    watch(box, data, (end) => {
      listJobs();
      if (onEnd) onEnd(end);
    });
  }

  $("dl-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target.elements;
    startJob("/dataset/download", { name: f.name.value, parent: f.parent.value, url: f.url.value },
      $("dl-job"), (s) => {
        if (s.state === "done") { pathInput.value = s.result.folder; check(); }
      });
  });
  function planForm(form, url, box, body) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const values = body(form.elements);
      if (e.submitter && e.submitter.name === "dry") {
        const { ok, data } = await call("POST", url, { ...values, dry_run: true });
        box.hidden = false;
        box.dataset.state = ok ? "planned" : "refused";
        box.replaceChildren(ok
          ? el("pre", {}, ["dry run: nothing written", ...data.lines, ...data.warnings].join("\n"))
          : el("p", { class: "error" }, data.error));
        return;
      }
      startJob(url, values, box);
    });
  }
  planForm($("pair-form"), "/dataset/pair", $("pair-job"),
    (f) => ({ a: f.a.value, b: f.b.value, out: f.out.value, resize: f.resize.checked }));
  planForm($("split-form"), "/dataset/split", $("split-job"), (f) => ({
    src: f.src.value, out: f.out.value, seed: Number(f.seed.value),
    ratios: f.ratios.value.trim().split(/[\s,]+/).map(Number),
  }));

  // -- pair browser ---------------------------------------------------------------------------
  const LIMIT = 48;
  let offset = 0;
  let total = 0;
  const browser = () => ({
    path: root, split: $("pb-split").value, sort: $("pb-sort").value,
    desc: $("pb-desc").checked ? "1" : "0", excluded: $("pb-excluded").checked ? "1" : "0",
  });
  function measureText(m, key) {
    if (!m) return "not measured";
    const v = m[key];
    return key === "file_size" ? `${Math.round(v / 1024)} KiB` : String(v);
  }
  async function listPairs() {
    if (!root) return;
    const params = browser();
    const { ok, data } = await call("GET", "/dataset/pairs?" + q({ ...params, offset, limit: LIMIT }));
    show($("pb-error"), ok ? "" : data.error);
    if (!ok) return;
    total = data.total;
    const last = Math.min(offset + LIMIT, total);
    $("pb-range").textContent = total
      ? `${offset + 1}–${last} of ${total} (${data.measured} measured)` : "no pairs";
    $("pb-prev").disabled = offset === 0;
    $("pb-next").disabled = last >= total;
    const key = params.sort === "name" ? "brightness" : params.sort;
    const grid = $("pb-grid");
    grid.replaceChildren(...data.items.map((item) => {
      const src = "/dataset/thumb?" + q({ path: root, split: params.split, name: item.name, excluded: params.excluded });
      const all = item.measures ? Object.entries(item.measures).map(([k, v]) => `${k}: ${v}`).join("\n") : (item.error || "");
      const move = el("button", { type: "button", class: params.excluded === "1" ? "" : "danger" },
        params.excluded === "1" ? "Restore" : "Exclude");
      move.addEventListener("click", async () => {
        const action = params.excluded === "1" ? "restore" : "exclude";
        const { ok: moved, data: answer } = await call("POST", `/dataset/${action}`,
          { path: root, split: params.split, name: item.name });
        if (!moved) { show($("pb-error"), answer.error); return; }
        listPairs();
      });
      return el("figure", { class: "pb-pair", title: all, "data-name": item.name },
        el("img", { src, alt: item.name, loading: "lazy" }),
        el("figcaption", {}, el("span", { class: "pb-name" }, item.name),
          el("span", { class: "pb-value" }, item.error ? "unreadable" : measureText(item.measures, key))),
        move);
    }));
  }
  for (const id of ["pb-split", "pb-sort", "pb-desc", "pb-excluded"]) {
    $(id).addEventListener("change", () => { offset = 0; listPairs(); });
  }
  $("pb-prev").addEventListener("click", () => { offset = Math.max(0, offset - LIMIT); listPairs(); });
  $("pb-next").addEventListener("click", () => { offset += LIMIT; listPairs(); });
  $("pb-measure").addEventListener("click", () => {
    if (root) startJob("/dataset/measure", { path: root, split: $("pb-split").value }, $("pb-job"), listPairs);
  });

  buildAugmentations().then(() => { if (pathInput.value.trim()) check(); });
})();
