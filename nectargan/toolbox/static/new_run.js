// New-run page: the "only what differs" view, the folder picker and the dataset check.
// The server validates everything; this script only helps to look and to pick.
"use strict";

(function () {
  const form = document.getElementById("new-run-form");
  if (!form) return;

  // -- what differs from the defaults ------------------------------------------------------
  function valueOf(input) {
    if (input.type === "checkbox") return input.checked ? "true" : "false";
    return input.value;
  }
  function markChanged(row) {
    const inputs = row.querySelectorAll("[data-default]");
    const changed = Array.from(inputs).some((i) => valueOf(i) !== i.dataset.default);
    row.classList.toggle("changed", changed);
    const group = row.closest(".nr-group");
    if (group) group.classList.toggle("has-changes", !!group.querySelector(".nr-field.changed"));
  }
  form.addEventListener("input", (event) => {
    const row = event.target.closest(".nr-field");
    if (row) markChanged(row);
  });
  const only = document.getElementById("nr-only-changed");
  only.addEventListener("change", () => form.classList.toggle("only-changed", only.checked));

  // -- the dataset check -------------------------------------------------------------------
  const dataroot = document.getElementById("f-dataloader.dataroot");
  const report = document.getElementById("nr-dataset");
  function line(text, cls) {
    const div = document.createElement("div");
    div.textContent = text;
    if (cls) div.className = cls;
    return div;
  }
  async function checkDataset() {
    const path = dataroot.value.trim();
    report.replaceChildren();
    report.classList.remove("bad");
    if (!path) {
      report.append(line("Empty: the built-in synthetic dataset (dataloader.synthetic)."));
      return;
    }
    report.append(line("Checking…"));
    const answer = await fetch("/new/dataset?path=" + encodeURIComponent(path));
    const data = await answer.json();
    report.replaceChildren();
    if (data.error) {
      report.classList.add("bad");
      report.append(line(data.error, "nr-problem"));
      return;
    }
    const splits = Object.entries(data.pairs).map(([s, n]) => s + " " + n).join(", ");
    if (splits) report.append(line("Pairs: " + splits + (data.pair_size ? "; images " + data.pair_size : "")));
    data.problems.forEach((p) => report.append(line(p, "nr-problem")));
    if (data.ok) report.append(line("Layout OK.", "nr-ok"));
    report.classList.toggle("bad", !data.ok);
  }
  if (dataroot && report) dataroot.addEventListener("change", checkDataset);

  // -- the folder picker -------------------------------------------------------------------
  const dialog = document.getElementById("nr-picker");
  const list = document.getElementById("nr-picker-list");
  const shown = document.getElementById("nr-picker-path");
  const error = document.getElementById("nr-picker-error");
  const choose = document.getElementById("nr-picker-choose");
  let target = null;
  let files = "";
  let current = "";

  function item(label, onClick, cls) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    if (cls) button.className = cls;
    button.addEventListener("click", onClick);
    li.append(button);
    return li;
  }
  function pick(path) {
    target.value = path;
    target.dispatchEvent(new Event("input", { bubbles: true }));
    target.dispatchEvent(new Event("change", { bubbles: true }));
    dialog.close();
  }
  async function open(path) {
    const query = "path=" + encodeURIComponent(path) + (files ? "&files=" + files : "");
    const answer = await fetch("/new/folders?" + query);
    const data = await answer.json();
    error.textContent = data.error || "";
    if (data.error) return;
    current = data.path;
    shown.textContent = data.path || "Roots";
    choose.disabled = !data.path || !!files;
    list.replaceChildren();
    if (data.parent !== null) list.append(item("..", () => open(data.parent), "up"));
    else if (data.path) list.append(item("(roots)", () => open(""), "up"));
    data.folders.forEach((f) =>
      list.append(item(f.name + "/" + (f.dataset ? "  (dataset)" : ""), () => open(f.path), "folder"))
    );
    data.files.forEach((name) =>
      list.append(item(name, () => pick(data.path + "/" + name), "file"))
    );
    if (data.truncated) list.append(line("(only the first entries are listed)"));
  }
  document.querySelectorAll(".nr-browse").forEach((button) =>
    button.addEventListener("click", () => {
      target = document.getElementById(button.dataset.target);
      files = button.dataset.files || "";
      dialog.showModal();
      open(target.value.trim());
    })
  );
  choose.addEventListener("click", () => pick(current));
  document.getElementById("nr-picker-close").addEventListener("click", () => dialog.close());
})();
