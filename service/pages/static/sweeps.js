// GET /ui/sweeps: the caller's sweeps, newest first, from GET /sweeps.

import { ApiError, getJSON, initKeys } from "./api.js";
import { $, clear, formatTime, formatValue, h, show } from "./dom.js";

function row(sweep) {
  const short = sweep.id.slice(0, 8);
  const best = sweep.best ? `trial ${sweep.best.trial}: ${sweep.best.metric} ${formatValue(sweep.best.value)}` : "—";
  const varied = Object.entries(sweep.vary).map(([path, values]) => `${path} × ${values.length}`).join(", ");
  return h("tr", { "data-sweep": sweep.id, "data-status": sweep.status },
    h("td", { class: "job" }, h("a", { href: `/ui/sweeps/${sweep.id}`, text: short, title: sweep.id })),
    h("td", { class: "status" }, h("span", { class: "badge", "data-status": sweep.status, text: sweep.status })),
    h("td", { class: "num", text: String(sweep.trial_count) }),
    h("td", { class: "varied", text: varied }),
    h("td", { class: "best", text: best }),
    h("td", { class: "created" }, h("time", { datetime: sweep.created_at, text: formatTime(sweep.created_at) })),
  );
}

async function list() {
  const problem = $("#sweeps-problem");
  let page;
  try {
    page = await getJSON("/sweeps?page_size=100");
  } catch (error) {
    problem.textContent = error instanceof ApiError ? error.message : `The server did not answer: ${error.message}`;
    show(problem);
    return;
  }
  show(problem, false);
  const body = $("#sweeps-table tbody");
  clear(body);
  body.append(...page.sweeps.map(row));
  show($("#sweeps-empty"), page.sweeps.length === 0);
  show($("#sweeps-table").closest(".table-scroll"), page.sweeps.length > 0);
  document.body.dataset.listed = String(page.sweeps.length);
}

function start() {
  initKeys();
  $("#refresh").addEventListener("click", list);
  list().then(() => {
    document.body.dataset.ready = "true";
  });
}

start();
