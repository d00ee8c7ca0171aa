// GET /ui/jobs/<id>: one job. Its document comes from GET /jobs/<id>; while
// it is queued or running, its status and progress come live from
// GET /jobs/<id>/events (events.js), and the chart gains a point per
// metric with each progress event; once it ends, the whole history is drawn
// from the job's result. The API decides whether the caller may see it.

import { ApiError, getJSON, initKeys, readProblem, request } from "./api.js";
import { $, clear, formatBytes, formatInt, formatSeconds, formatTime, formatValue, h, show } from "./dom.js";
import { PALETTE, lineChart } from "./chart.js";
import { followEvents } from "./events.js";
import { modelName } from "./names.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const id = document.body.dataset.jobId;
const base = `/jobs/${encodeURIComponent(id)}`;

let job = null;
let status = null;
let stream = null;
let liveEvents = 0;
/** Metric name → [[epoch, value], ...], from progress events while it runs. */
const live = new Map();

function setStatus(next) {
  status = next;
  const badge = $("#status");
  badge.textContent = next;
  badge.dataset.status = next;
  const ended = TERMINAL.has(next);
  $("#cancel").disabled = ended || job?.cancel_requested === true;
  $("#delete").disabled = !ended;
  $("#download").disabled = !(ended && job?.result);
  $("#predict").disabled = !(next === "succeeded" || (ended && job?.result));
}

function setProgress(progress) {
  if (!progress) return;
  const done = progress.epoch + (progress.steps_per_epoch ? (progress.step ?? 0) / progress.steps_per_epoch : 0);
  const bar = $("#progress");
  bar.max = progress.epochs || 1;
  bar.value = Math.min(done, bar.max);
  let text = `epoch ${formatInt(progress.epoch)} of ${formatInt(progress.epochs)}`;
  if (progress.loss !== null && progress.loss !== undefined) text += ` · loss ${formatValue(progress.loss)}`;
  if (progress.eta_seconds) text += ` · about ${formatSeconds(progress.eta_seconds)} left`;
  $("#progress-label").textContent = text;
}

// --- the chart ----------------------------------------------------------------

/** The epoch of each history point: a block's middle epoch past 1,000 epochs (as plot.png). */
function epochsOf(count, block, epochs) {
  return Array.from({ length: count }, (_, i) => {
    const first = i * block + 1;
    const last = Math.max(first, Math.min((i + 1) * block, epochs ?? (i + 1) * block));
    return (first + last) / 2;
  });
}

function historyCurves(result) {
  const curves = new Map();
  const block = result.history_block || 1;
  for (const [name, values] of Object.entries(result.history ?? {})) {
    const xs = epochsOf(values.length, block, result.epochs_completed);
    curves.set(name, values.map((v, i) => [xs[i], v]));
  }
  return curves;
}

/** One chart per metric, its validation twin (val_…) beside it, dashed. */
function drawCharts(curves, stopped) {
  const box = $("#chart");
  const groups = new Map();
  for (const name of curves.keys()) {
    const baseName = name.startsWith("val_") ? name.slice(4) : name;
    if (!groups.has(baseName)) groups.set(baseName, []);
    groups.get(baseName).push(name);
  }
  if (!groups.size) {
    clear(box).append(h("p", { class: "empty", text: "No epoch has ended yet: the curves appear with the first." }));
    return;
  }
  const order = [...groups.keys()].sort((a, b) => (a === "loss" ? -1 : b === "loss" ? 1 : a.localeCompare(b)));
  const panels = order.map((name) => h("div", { class: "chart-panel", "data-metric": name }));
  clear(box).append(...panels);
  const marks = [];
  if (stopped?.best_epoch) marks.push({ x: stopped.best_epoch, label: `best epoch ${stopped.best_epoch}` });
  if (stopped?.reason === "early_stopping" && stopped.epoch !== stopped.best_epoch) marks.push({ x: stopped.epoch, label: `stopped at ${stopped.epoch}` });
  order.forEach((name, i) => {
    const color = PALETTE[i % PALETTE.length];
    const series = groups.get(name).sort().map((metric) => ({
      name: metric, points: curves.get(metric), color, dashed: metric.startsWith("val_"),
    }));
    const monitored = stopped?.monitor && groups.get(name).includes(stopped.monitor);
    lineChart(panels[i], { series, title: name, xLabel: "epoch", yLabel: name, marks: monitored ? marks : [] });
  });
}

function addLivePoints(progress) {
  const metrics = progress.metrics ?? {};
  let added = false;
  for (const [name, value] of Object.entries(metrics)) {
    if (!live.has(name)) live.set(name, []);
    const points = live.get(name);
    if (points.length && points[points.length - 1][0] >= progress.epoch) continue;
    points.push([progress.epoch, value]);
    added = true;
  }
  if (added && !job?.result) drawCharts(live, null);
}

// --- the document -------------------------------------------------------------

function term(name, value) {
  if (value === undefined || value === null || value === "") return [];
  return [h("dt", { text: name }), h("dd", {}, value)];
}

function renderJob(doc) {
  job = doc;
  const params = doc.params ?? {};
  const name = modelName(doc);
  const request_ = doc.request ?? {};
  const result = doc.result;
  $("#model-name").textContent = `${name ?? "model"} · ${formatInt(params.total_params)} params`;
  document.title = `Job ${id.slice(0, 8)} (${doc.status}) · seqlab`;
  setStatus(doc.status);
  setProgress(doc.progress);
  const error = $("#job-error");
  show(error, Boolean(doc.error));
  if (doc.error) error.textContent = `${doc.error.type}: ${doc.error.message}`;

  const stopped = result?.stopped;
  let stoppedText = null;
  if (stopped) {
    stoppedText = {
      epochs: `all ${formatInt(stopped.epoch)} epochs ran`,
      early_stopping: `early stopping, after epoch ${formatInt(stopped.epoch)}`,
      cancelled: `cancelled, after epoch ${formatInt(stopped.epoch)}`,
      time_limit: `time limit, after epoch ${formatInt(stopped.epoch)}`,
    }[stopped.reason] ?? `${stopped.reason} after epoch ${stopped.epoch}`;
    if (stopped.monitor) {
      stoppedText += ` · monitored ${stopped.monitor}, best ${formatValue(stopped.best)}`;
      if (stopped.best_epoch) stoppedText += ` at epoch ${stopped.best_epoch}`;
      if (stopped.restored_best_weights) stoppedText += " (its weights restored)";
    }
  }
  const compile = request_.compile ?? {};
  const fit = request_.fit ?? {};
  const shapes = request_.data_shapes;
  const timings = result?.timings ?? {};
  const details = $("#details");
  clear(details).append(
    ...term("Model", name),
    ...term("Parameters", params.total_params !== undefined ? formatInt(params.total_params) : null),
    ...term("Preset", doc.example),
    ...term("Optimizer", compile.optimizer ? `${compile.optimizer}${compile.learning_rate ? ` (learning rate ${compile.learning_rate})` : ""}` : null),
    ...term("Loss", typeof compile.loss === "string" ? compile.loss : compile.loss ? JSON.stringify(compile.loss) : null),
    ...term("Epochs", fit.epochs === undefined ? null : result ? `${formatInt(result.epochs_completed)} of ${formatInt(fit.epochs)}` : formatInt(fit.epochs)),
    ...term("Batch size", fit.batch_size),
    ...term("Data", shapes ? `x ${JSON.stringify(shapes.x)}, y ${JSON.stringify(shapes.y)}` : null),
    ...term("Stopped", stoppedText),
    ...term("Final metrics", result?.final_metrics ? Object.entries(result.final_metrics).map(([k, v]) => `${k} ${formatValue(v)}`).join(", ") : null),
    ...term("Device", result?.device),
    ...term("Backend", result?.backend ? `${result.backend}${result.keras_version ? ` (Keras ${result.keras_version})` : ""}` : null),
    ...term("Peak memory", result?.peak_rss_bytes ? formatBytes(result.peak_rss_bytes) : null),
    ...term("Created", formatTime(doc.created_at)),
    ...term("Started", doc.started_at ? formatTime(doc.started_at) : null),
    ...term("Finished", doc.finished_at ? formatTime(doc.finished_at) : null),
    ...term("Attempt", doc.attempt && doc.attempt > 1 ? String(doc.attempt) : null),
    ...term("Timings", Object.entries(timings).map(([key, value]) => `${key.replace(/_seconds$/, "").replaceAll("_", " ")} ${formatSeconds(value)}`).join(" · ")),
    ...(doc.warnings ?? []).flatMap((w) => term("Warning", w)),
  );
  $("#summary").textContent = result?.summary ?? params.summary ?? "";
  if (result?.history && Object.keys(result.history).length) drawCharts(historyCurves(result), stopped);
  else drawCharts(live, null);
  const instances = $("#instances");
  if (!instances.value) instances.value = exampleInstances(shapes?.x);
  $("#predict-hint").textContent = shapes?.x ? `Training inputs: ${JSON.stringify(shapes.x)} (samples first).` : "";
}

/** One all-zero instance of the model's input shape (by input name for
 * a Functional model of several inputs), to start the predict form. */
function exampleInstances(shapes) {
  const zeros = (shape) => {
    if (!Array.isArray(shape) || shape.length < 2 || shape.some((d) => typeof d !== "number")) return null;
    const dims = shape.slice(1);
    if (dims.reduce((a, b) => a * b, 1) > 200) return null;
    const fill = (rest) => (rest.length ? Array.from({ length: rest[0] }, () => fill(rest.slice(1))) : 0);
    return [fill(dims)];
  };
  if (Array.isArray(shapes)) {
    const one = zeros(shapes);
    return one ? JSON.stringify(one) : "";
  }
  if (!shapes || typeof shapes !== "object") return "";
  const byName = Object.fromEntries(Object.entries(shapes).map(([name, shape]) => [name, zeros(shape)]));
  return Object.values(byName).every(Boolean) ? JSON.stringify(byName) : "";
}

async function reload() {
  renderJob(await getJSON(base));
}

// --- live ---------------------------------------------------------------------

function follow() {
  const badge = $("#live");
  stream = followEvents(`${base}/events`, {
    isFinal: (message) => message.type === "status" && TERMINAL.has(JSON.parse(message.data).status),
    onEvent: (message) => {
      liveEvents += 1;
      badge.dataset.events = String(liveEvents);
      const data = JSON.parse(message.data);
      if (message.type === "status") {
        setStatus(data.status);
        if (TERMINAL.has(data.status)) reload().catch(showError);
      } else if (message.type === "progress") {
        setProgress(data);
        addLivePoints(data);
      }
    },
    onState: (state, detail) => {
      badge.textContent = state === "open" ? "live" : state === "reconnecting" ? "reconnecting…" : "";
      show(badge, state === "open" || state === "reconnecting");
      if (state === "error") showError(new ApiError(detail));
    },
  });
}

// --- actions ------------------------------------------------------------------

function say(text) {
  $("#action-message").textContent = text;
}

async function cancel() {
  const response = await request(`${base}/cancel`, { method: "POST" });
  if (response.ok) {
    const doc = await response.json();
    say(response.status === 202 ? "Cancelling: the job stops at the end of its current epoch." : "Cancelled: the job will not start.");
    job = { ...job, cancel_requested: true };
    setStatus(doc.status);
    if (!stream || TERMINAL.has(doc.status)) await reload();
  } else say((await readProblem(response)).detail);
}

async function download() {
  say("Downloading the model…");
  const response = await request(`${base}/model`, { accept: "application/octet-stream" });
  if (!response.ok) {
    say((await readProblem(response)).detail);
    return;
  }
  // fetch, not a link: a link cannot carry the API key.
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: `seqlab-${id}.keras` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  say("Model downloaded.");
}

async function remove() {
  const response = await request(base, { method: "DELETE" });
  if (response.status === 204) {
    say("Deleted.");
    location.assign("/ui/jobs");
  } else say((await readProblem(response)).detail);
}

async function predict(event) {
  event.preventDefault();
  const box = $("#predict-problem");
  const out = $("#prediction");
  const field = $("#instances");
  field.removeAttribute("aria-invalid");
  show(box, false);
  let instances;
  try {
    instances = JSON.parse(field.value);
  } catch (error) {
    box.textContent = `instances: not JSON: ${error.message}`;
    field.setAttribute("aria-invalid", "true");
    show(box);
    return;
  }
  $("#predict").disabled = true;
  out.textContent = "Predicting…";
  show(out);
  try {
    const answer = await getJSON(`${base}/predict`, { method: "POST", json: { instances } });
    out.textContent = `${JSON.stringify(answer.predictions)}\n\n(${answer.model_cached ? "model was loaded" : `model loaded in ${formatSeconds(answer.model_load_seconds)}`}, predicted in ${formatSeconds(answer.predict_seconds)})`;
  } catch (error) {
    show(out, false);
    box.textContent = error.message;
    if (error.problem?.errors && Object.keys(error.problem.errors).some((k) => k.startsWith("instances"))) field.setAttribute("aria-invalid", "true");
    show(box);
  } finally {
    $("#predict").disabled = false;
  }
}

function showError(error) {
  const box = $("#job-problem");
  box.textContent = error.status === 404
    ? "No such job: it was deleted, it expired, or it belongs to another API key."
    : error.message;
  show(box);
  // A job that is not there has no status, chart or buttons to show.
  if (error.status === 404) for (const part of document.querySelectorAll("main > .panel, main > .two")) show(part, false);
}

async function start() {
  initKeys();
  $("#cancel").addEventListener("click", () => cancel().catch(showError));
  $("#download").addEventListener("click", () => download().catch(showError));
  $("#delete").addEventListener("click", () => {
    show($("#confirm-delete"));
    $("#confirm-no").focus();
  });
  $("#confirm-no").addEventListener("click", () => {
    show($("#confirm-delete"), false);
    $("#delete").focus();
  });
  $("#confirm-yes").addEventListener("click", () => remove().catch(showError));
  $("#predict-form").addEventListener("submit", predict);
  try {
    await reload();
  } catch (error) {
    showError(error);
    return;
  }
  if (!TERMINAL.has(status)) follow();
  document.body.dataset.ready = "true";
}

start();
