/* The folder picker of every page (New run, Utilities): a dialog listing one folder at a time,
   as the server lists it (confined to the Toolbox's roots; it refuses anything else). */
"use strict";

/* picker("nr", "/new/folders") drives the dialog #nr-picker made by templates/_picker.html. */
Toolbox.picker = function (prefix, url) {
  const part = (name) => document.getElementById(`${prefix}-picker${name}`);
  const dialog = part(""), list = part("-list"), shown = part("-path"), error = part("-error");
  const choose = part("-choose");
  let target = null, files = "", current = "";

  function item(label, onClick, cls) {
    const button = Toolbox.el("button", { type: "button", class: cls }, label);
    button.addEventListener("click", onClick);
    return Toolbox.el("li", {}, button);
  }
  function pick(path) {
    target.value = path;
    target.dispatchEvent(new Event("input", { bubbles: true }));
    target.dispatchEvent(new Event("change", { bubbles: true }));
    dialog.close();
  }
  async function show(path) {
    const query = "path=" + encodeURIComponent(path) + (files ? "&files=" + files : "");
    const answer = await fetch(`${url}?${query}`);
    const data = await answer.json();
    error.textContent = data.error || "";
    if (data.error) return;
    current = data.path;
    shown.textContent = data.path || "Roots";
    choose.disabled = !data.path || !!files;
    list.replaceChildren();
    if (data.parent !== null) list.append(item("..", () => show(data.parent), "up"));
    else if (data.path) list.append(item("(roots)", () => show(""), "up"));
    data.folders.forEach((f) =>
      list.append(item(f.name + "/" + (f.dataset ? "  (dataset)" : ""), () => show(f.path), "folder")));
    data.files.forEach((name) => list.append(item(name, () => pick(data.path + "/" + name), "file")));
    if (data.truncated) list.append(Toolbox.el("li", { class: "muted" }, "(only the first entries are listed)"));
  }
  choose.addEventListener("click", () => pick(current));
  part("-close").addEventListener("click", () => dialog.close());

  /* Open on input ``into``'s folder; ``wanted`` = a file suffix (json, onnx) to pick a file. */
  return {
    open(into, wanted) {
      target = into;
      files = wanted || "";
      dialog.showModal();
      const typed = into.value.trim();
      show(files && typed.endsWith("." + files) ? typed.replace(/\/[^/]*$/, "") : typed);
    },
  };
};
