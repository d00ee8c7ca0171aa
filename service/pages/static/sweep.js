// GET /ui/sweeps/<id>: one sweep. Its document comes from GET /sweeps/<id>;
// while it runs, GET /sweeps/<id>/events (events.js) says when trials end,
// and the document is read again (at most every half second). The trials
// are a table sortable by any column; their curves are overlaid on one
// chart. The API decides whether the caller may see the sweep.

import { ApiError, getJSON, initKeys, readProblem, request } from "./api.js";
import { $, clear, formatInt, formatValue, h, show } from "./dom.js";
import { PALETTE, lineChart } from "./chart.js";
import { followEvents } from "./events.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const id = document.body.dataset.sweepId;
const base = `/sweeps/${encodeURIComponent(id)}`;
/** Lines drawn at most: past it, the best trials by the objective. */
const MAX_LINES = 32;

let sweep = null;
let sort = { column: "trial", descending: false };
let reading = null;
let again = false;

function showError(error) {
  const box = $("#sweep-problem");
  box.textContent = error instanceof ApiError ? error.message : `The server did not answer: ${error.message}`;
  show(box);
}

/** The table's columns: [key, header, numeric]. */
function columns(doc) {
  const metrics = [];
  for (const trial of doc.trials) {
    for (const name of Object.keys(trial.result?.final_metrics ?? {})) if (!metrics.includes(name)) metrics.push(name);
  }
  const objective = doc.objective.metric;
  const ordered = [...new Set([objective, "loss", ...metrics])].filter((m) => m === objective || metrics.includes(m));
  return [
    ["trial", "Trial", true],
    ...Object.keys(doc.vary).map((path) => [`v:${path}`, path, doc.vary[path].every((v) => typeof v === "number")]),
    ["status", "Status", false],
    ["params", "Params", true],
    ["epochs", "Epochs", true],
    ...ordered.map((m) => [`m:${m}`, m, true]),
  ];
}

function cell(trial, key) {
  if (key === "trial") return trial.trial;
  if (key === "status") return trial.status;
  if (key === "params") return trial.total_params;
  if (key === "epochs") return trial.result?.epochs_completed ?? trial.progress?.epoch ?? null;
  if (key.startsWith("v:")) return trial.values[key.slice(2)];
  return trial.result?.final_metrics?.[key.slice(2)] ?? null;
}

function compare(a, b) {
  const empty = (v) => v === null || v === undefined;
  if (empty(a) || empty(b)) return empty(a) - empty(b); // the empty cells last, either way
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(typeof a === "string" ? a : JSON.stringify(a)).localeCompare(String(typeof b === "string" ? b : JSON.stringify(b)));
}

function text(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? formatInt(value) : formatValue(value);
  return typeof value === "string" ? value : JSON.stringify(value);
}

function drawTable() {
  const cols = columns(sweep);
  const head = $("#trials thead tr");
  clear(head);
  for (const [key, header, numeric] of cols) {
    const sorted = sort.column === key;
    const button = h("button", { type: "button", class: "sort", "data-column": key, text: header });
    button.addEventListener("click", () => {
      sort = { column: key, descending: sorted ? !sort.descending : false };
      drawTable();
    });
    head.append(h("th", { scope: "col", class: numeric ? "num" : "", "aria-sort": sorted ? (sort.descending ? "descending" : "ascending") : "none" }, button));
  }
  const best = sweep.best?.trial;
  const trials = [...sweep.trials].sort((a, b) => {
    const order = compare(cell(a, sort.column), cell(b, sort.column));
    const empty = (t) => cell(t, sort.column) === null || cell(t, sort.column) === undefined;
    if (empty(a) !== empty(b)) return order; // empty last, whichever way
    return sort.descending ? -order : order;
  });
  const body = $("#trials tbody");
  clear(body);
  for (const trial of trials) {
    const cells = cols.map(([key, , numeric]) => {
      const value = cell(trial, key);
      if (key === "trial") {
        return h("td", { class: "num" }, h("a", { href: `/ui/jobs/${trial.job}`, title: `its job, ${trial.job}`, text: `${trial.trial === best ? "★ " : ""}${trial.trial}` }));
      }
      if (key === "status") return h("td", {}, h("span", { class: "badge", "data-status": trial.status, text: trial.status }));
      return h("td", { class: numeric ? "num" : "", text: text(value) });
    });
    body.append(h("tr", { "data-trial": String(trial.trial), class: trial.trial === best ? "best" : "" }, ...cells));
  }
  document.body.dataset.sortedBy = sort.column;
}

function drawChart() {
  const metric = sweep.objective.metric;
  let trials = sweep.trials.filter((t) => t.result?.history?.[metric]);
  if (trials.length > MAX_LINES) {
    const sign = sweep.objective.mode === "max" ? -1 : 1;
    trials = [...trials].sort((a, b) => sign * ((a.result.final_metrics?.[metric] ?? Infinity) - (b.result.final_metrics?.[metric] ?? Infinity))).slice(0, MAX_LINES);
  }
  const series = trials.map((trial, i) => {
    const { history, history_block: block = 1, epochs_completed: epochs } = trial.result;
    const points = history[metric].map((v, j) => {
      const first = j * block + 1;
      const last = Math.max(first, Math.min((j + 1) * block, epochs ?? (j + 1) * block));
      return [(first + last) / 2, v];
    });
    const label = Object.entries(trial.values).map(([k, v]) => `${k.split(".").pop()}=${JSON.stringify(v)}`).join(" ");
    return { name: `${trial.trial}: ${label}`, points, color: PALETTE[i % PALETTE.length] };
  });
  const title = `${metric} of ${trials.length === sweep.trials.length ? "every" : `the best ${trials.length} of ${sweep.trials.length}`} trial${trials.length === 1 ? "" : "s"}`;
  lineChart($("#chart"), { series, title, xLabel: "epoch", yLabel: metric, empty: "No trial has a history yet." });
  document.body.dataset.lines = String(series.length);
}

function draw() {
  const badge = $("#status");
  badge.textContent = sweep.status;
  badge.dataset.status = sweep.status;
  $("#counts").textContent = `${sweep.trial_count} trials: ` + Object.entries(sweep.trial_statuses).map(([s, n]) => `${n} ${s}`).join(", ");
  const best = sweep.best;
  $("#best").textContent = best ? `Best: trial ${best.trial}, ${best.metric} ${formatValue(best.value)} (${best.mode}).` : "No trial has ended yet.";
  $("#cancel").disabled = TERMINAL.has(sweep.status);
  drawTable();
  drawChart();
  document.body.dataset.status = sweep.status;
}

/** Read the sweep again (one read at a time; a request meanwhile reads once more after). */
async function reload() {
  if (reading) {
    again = true;
    return reading;
  }
  reading = (async () => {
    do {
      again = false;
      sweep = await getJSON(base);
      draw();
      await new Promise((resolve) => setTimeout(resolve, 500));
    } while (again);
  })();
  try {
    await reading;
  } finally {
    reading = null;
  }
}

function follow() {
  const badge = $("#live");
  followEvents(`${base}/events`, {
    isFinal: (message) => message.type === "status" && TERMINAL.has(JSON.parse(message.data).status),
    onEvent: (message) => {
      const data = JSON.parse(message.data);
      if ((message.type === "trial" && TERMINAL.has(data.status)) || message.type === "status") reload().catch(showError);
    },
    onState: (state, detail) => {
      badge.textContent = state === "open" ? "live" : state === "reconnecting" ? "reconnecting…" : "";
      show(badge, state === "open" || state === "reconnecting");
      if (state === "error") showError(new ApiError(detail));
    },
  });
}

async function cancel() {
  const response = await request(`${base}/cancel`, { method: "POST" });
  if (!response.ok) {
    $("#action-message").textContent = (await readProblem(response)).detail;
    return;
  }
  $("#action-message").textContent = response.status === 202 ? "Stopping the running trials…" : "Cancelled.";
  await reload();
}

async function start() {
  initKeys();
  $("#cancel").addEventListener("click", () => cancel().catch(showError));
  try {
    sweep = await getJSON(base);
  } catch (error) {
    for (const panel of document.querySelectorAll("section.panel")) show(panel, false);
    showError(error);
    document.body.dataset.ready = "true";
    return;
  }
  draw();
  if (!TERMINAL.has(sweep.status)) follow();
  document.body.dataset.ready = "true";
}

start();
