/* Keyboard shortcuts: Ctrl+1..9 (or Alt+1..9) opens the Nth page of the nav bar.
   Chromium lets a page claim Ctrl/Alt+digit (its tab switching is not a reserved key), so
   preventDefault keeps the Toolbox's tab; Alt+digit is there for browsers that keep Ctrl+digit. */
"use strict";

(() => {
  const links = () => Array.from(document.querySelectorAll(".topbar nav a"));

  document.addEventListener("keydown", (event) => {
    if (event.shiftKey || event.metaKey || event.ctrlKey === event.altKey) return;  // exactly one of Ctrl, Alt
    const digit = /^Digit([1-9])$/.exec(event.code);
    if (!digit) return;
    const link = links()[Number(digit[1]) - 1];
    if (!link) return;
    event.preventDefault();
    if (link.getAttribute("aria-current") !== "page") window.location.assign(link.href);
  });

  document.addEventListener("DOMContentLoaded", () => {
    links().forEach((link, i) => {
      if (i > 8) return;
      link.setAttribute("aria-keyshortcuts", `Control+${i + 1} Alt+${i + 1}`);
      link.title = `Ctrl+${i + 1} or Alt+${i + 1}`;
    });
  });
})();
