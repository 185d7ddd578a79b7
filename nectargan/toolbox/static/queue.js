/* Queue page: entries change state as runs start and end; reload the table when they do. */
"use strict";

Toolbox.renderers.queue = (node, data) => {
  const key = data.entries.map((e) => e.id + e.state + (e.experiment_dir || "") + e.result).join("|");
  if (node.dataset.key && node.dataset.key !== key) window.location.reload();
  node.dataset.key = key;
};
