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

  // -- the folder picker (static/picker.js) ----------------------------------------------
  const picker = Toolbox.picker("nr", "/new/folders");
  document.querySelectorAll(".nr-browse").forEach((button) =>
    button.addEventListener("click", () =>
      picker.open(document.getElementById(button.dataset.target), button.dataset.files)
    )
  );
})();
