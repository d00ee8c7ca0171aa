// GET /ui/jobs: the caller's jobs, newest first, from GET /jobs (a page at
// a time: "More jobs" follows next_page_token; the status filter is the
// API's ?status=). With API keys the API lists the key's tenant's jobs
// only. A list entry names its model (name and parameter count); the job's
// whole document (GET /jobs/<id>, kept for the page's life) is read only for
// the curves of the jobs ticked to compare.

import { ApiError, getJSON, initKeys } from "./api.js";
import { $, clear, formatInt, formatTime, formatValue, h, show } from "./dom.js";
import { PALETTE, lineChart } from "./chart.js";
import { modelName } from "./names.js";

const PAGE_SIZE = 20;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
/** Job documents by id (promises), read once. */
const documents = new Map();
/** Jobs ticked for the chart, in the order ticked. */
const compared = [];
let nextToken = null;
let listing = 0; // the latest listing: answers to older ones are dropped

function documentOf(id) {
  if (!documents.has(id)) {
    const read = getJSON(`/jobs/${encodeURIComponent(id)}`);
    read.catch(() => documents.delete(id)); // read again next time
    documents.set(id, read);
  }
  return documents.get(id);
}

function statusFilter() {
  const match = /^#status=(\w+)$/.exec(location.hash);
  return match ? match[1] : "";
}

function row(job) {
  const short = job.id.slice(0, 8);
  const progress = job.progress;
  const model = h("td", { class: "model", text: job.model?.name ?? "—" });
  const params = h("td", { class: "num params", "data-label": "params", text: job.model ? formatInt(job.model.total_params) : "—" });
  const box = h("input", { type: "checkbox", id: `compare-${job.id}`, "aria-label": `Compare job ${short}`, checked: compared.includes(job.id) });
  box.addEventListener("change", () => {
    const at = compared.indexOf(job.id);
    if (box.checked && at < 0) compared.push(job.id);
    if (!box.checked && at >= 0) compared.splice(at, 1);
    drawComparison();
  });
  const bar = progress
    ? h("progress", { max: progress.epochs || 1, value: progress.epoch, "aria-label": `Job ${short}: epoch ${progress.epoch} of ${progress.epochs}` })
    : null;
  const finalLoss = TERMINAL.has(job.status) && progress ? formatValue(progress.loss ?? progress.metrics?.loss) : "—";
  const tr = h("tr", { "data-job": job.id, "data-status": job.status },
    h("td", { class: "pick" }, box),
    h("td", { class: "job" }, h("a", { href: `/ui/jobs/${job.id}`, text: short, title: job.id })),
    model,
    params,
    h("td", { class: "status" }, h("span", { class: "badge", "data-status": job.status, text: job.status })),
    h("td", { class: "progress-cell" }, h("div", {}, bar, h("span", { text: progress ? `${formatInt(progress.epoch)}/${formatInt(progress.epochs)} epochs` : "—" }))),
    h("td", { class: "num loss", "data-label": "final loss", text: finalLoss }),
    h("td", { class: "created" }, h("time", { datetime: job.created_at, text: formatTime(job.created_at) })),
  );
  return tr;
}

async function list(more = false) {
  const mine = ++listing;
  const query = new URLSearchParams({ page_size: String(PAGE_SIZE) });
  const status = statusFilter();
  if (status) query.set("status", status);
  if (more && nextToken) query.set("page_token", nextToken);
  const problem = $("#jobs-problem");
  let page;
  try {
    page = await getJSON(`/jobs?${query}`);
  } catch (error) {
    if (mine !== listing) return;
    problem.textContent = error instanceof ApiError ? error.message : `The server did not answer: ${error.message}`;
    show(problem);
    return;
  }
  if (mine !== listing) return;
  show(problem, false);
  const body = $("#jobs-table tbody");
  if (!more) clear(body);
  body.append(...page.jobs.map(row));
  nextToken = page.next_page_token;
  show($("#more"), Boolean(nextToken));
  show($("#jobs-empty"), body.children.length === 0);
  show($("#jobs-table").closest(".table-scroll"), body.children.length > 0);
  document.body.dataset.listed = String(body.children.length);
}

async function drawComparison() {
  const box = $("#compare-chart");
  const ids = [...compared];
  if (!ids.length) {
    clear(box);
    return;
  }
  const docs = await Promise.all(ids.map((id) => documentOf(id).catch(() => null)));
  if (ids.join() !== compared.join()) return; // ticked again meanwhile
  const series = [];
  docs.forEach((doc, i) => {
    if (!doc?.result?.history) return;
    const { history, history_block: block = 1, epochs_completed: epochs } = doc.result;
    const label = `${modelName(doc) ?? "model"} ${doc.id.slice(0, 8)}`;
    const color = PALETTE[i % PALETTE.length];
    for (const metric of ["loss", "val_loss"]) {
      const values = history[metric];
      if (!values) continue;
      const points = values.map((v, j) => {
        const first = j * block + 1;
        const last = Math.max(first, Math.min((j + 1) * block, epochs ?? (j + 1) * block));
        return [(first + last) / 2, v];
      });
      series.push({ name: `${label} ${metric}`, points, color, dashed: metric === "val_loss" });
    }
  });
  lineChart(box, { series, title: "Loss of the ticked jobs", xLabel: "epoch", yLabel: "loss", empty: "The ticked jobs have no history yet." });
}

function start() {
  initKeys();
  const select = $("#status-filter");
  select.value = statusFilter();
  select.addEventListener("change", () => {
    history.replaceState(null, "", select.value ? `#status=${select.value}` : location.pathname);
    list();
  });
  $("#refresh").addEventListener("click", () => {
    for (const [id, doc] of documents) {
      doc.then((d) => { if (!TERMINAL.has(d.status)) documents.delete(id); }, () => {});
    }
    list();
  });
  $("#more").addEventListener("click", () => list(true));
  list().then(() => {
    document.body.dataset.ready = "true";
  });
}

start();
