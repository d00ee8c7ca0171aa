// GET /: the parameter calculator. The model is edited with a form made
// from GET /layers (layerform.js) or pasted as JSON; as the person types,
// POST /params (debounced, stale answers dropped) gives the counts, the
// summary, each layer's formula and MACs, and the training-memory
// estimate; a 422's text is shown at the field it names. The model lives
// in the URL's fragment, so a link shares it. "Train this" sends it to
// POST /train and opens the job's page.

import { ApiError, getJSON, initKeys, readProblem, request } from "./api.js";
import { $, $$, clear, debounce, formatBytes, formatInt, formatShape, h, show } from "./dom.js";
import { LayerEditor, formatList, idOf, parseShape } from "./layerform.js";

const DEBOUNCE_MS = 250;
const DTYPE_BYTES = { float16: 2, bfloat16: 2, float32: 4, float64: 8 };

const state = {
  mode: "form", // or "json"
  model: null, // the compact Sequential spec the form edits
  json: "", // the pasted text
  batch: 32,
  optimizer: "adam",
};

let editor;
let examples = [];
let sequence = 0; // the latest request: answers to older ones are dropped
let inFlight = null;

// --- the URL fragment -------------------------------------------------------

function fragmentOf() {
  const saved = state.mode === "form" ? { model: state.model } : { json: state.json };
  if (state.batch !== 32) saved.train_batch_size = state.batch;
  if (state.optimizer !== "adam") saved.optimizer = state.optimizer;
  return `#${encodeURIComponent(JSON.stringify(saved))}`;
}

function saveFragment() {
  const fragment = fragmentOf();
  if (location.hash !== fragment) history.replaceState(null, "", fragment);
}

/** The state a fragment holds, or null when there is none (or it is not ours). */
function readFragment() {
  if (location.hash.length < 2) return null;
  try {
    const saved = JSON.parse(decodeURIComponent(location.hash.slice(1)));
    if (!saved || typeof saved !== "object") return null;
    return saved;
  } catch {
    return null;
  }
}

/** Whether the form can show a model: the compact form of a Sequential
 * model (a graph, or Keras's JSON, is shown as text). */
function formCanShow(model) {
  return Boolean(model) && typeof model === "object" && !Array.isArray(model) && !("inputs" in model)
    && Array.isArray(model.input_shape) && Array.isArray(model.layers)
    && model.layers.every((layer) => layer && typeof layer === "object" && typeof layer.type === "string");
}

function applySaved(saved) {
  if (typeof saved.json === "string") {
    state.mode = "json";
    state.json = saved.json;
  } else if (formCanShow(saved.model)) {
    state.mode = "form";
    state.model = saved.model;
  } else if (saved.model !== undefined) {
    state.mode = "json";
    state.json = JSON.stringify(saved.model, null, 2);
  }
  state.batch = Number.isInteger(saved.train_batch_size) ? saved.train_batch_size : 32;
  state.optimizer = typeof saved.optimizer === "string" ? saved.optimizer : "adam";
}

// --- the editor -------------------------------------------------------------

function showState() {
  $$('input[name="mode"]').forEach((radio) => {
    radio.checked = radio.value === state.mode;
  });
  show($("#form-mode"), state.mode === "form");
  show($("#json-mode"), state.mode === "json");
  const model = state.model;
  $("#input-shape").value = formatList(model.input_shape);
  $("#model-name").value = model.name ?? "";
  $("#model-batch").value = model.batch_size ?? "";
  $("#model-dtype").value = model.dtype ?? "";
  if (model.name || model.batch_size || model.dtype) $("#model-options").open = true;
  editor.setLayers(model.layers);
  $("#model-json").value = state.json;
  $("#train-batch").value = state.batch;
  $("#optimizer").value = state.optimizer;
}

function bindModelFields() {
  const model = () => state.model;
  $("#input-shape").addEventListener("input", (e) => {
    model().input_shape = parseShape(e.target.value);
    changed();
  });
  $("#model-name").addEventListener("input", (e) => {
    const text = e.target.value.trim();
    if (text) model().name = text;
    else delete model().name;
    changed();
  });
  $("#model-batch").addEventListener("input", (e) => {
    const text = e.target.value.trim();
    if (e.target.validity.badInput) return;
    if (text) model().batch_size = Number(text);
    else delete model().batch_size;
    changed();
  });
  $("#model-dtype").addEventListener("change", (e) => {
    if (e.target.value) model().dtype = e.target.value;
    else delete model().dtype;
    changed();
  });
  $("#model-json").addEventListener("input", (e) => {
    state.json = e.target.value;
    changed();
  });
  $("#train-batch").addEventListener("input", (e) => {
    if (e.target.validity.badInput || !e.target.value) return;
    state.batch = Number(e.target.value);
    changed();
  });
  $("#optimizer").addEventListener("change", (e) => {
    state.optimizer = e.target.value;
    changed();
  });
  $$('input[name="mode"]').forEach((radio) =>
    radio.addEventListener("change", () => {
      if (!radio.checked) return;
      state.mode = radio.value;
      // The model goes along where the other mode can show it: the form's
      // into the text; pasted text in the compact Sequential form into the
      // form. Pasted Keras JSON stays in the text for the next switch.
      let pasted = null;
      try {
        pasted = JSON.parse(state.json);
      } catch {
        /* empty, or not JSON */
      }
      if (state.mode === "json" && (!state.json.trim() || formCanShow(pasted))) {
        state.json = JSON.stringify(state.model, null, 2);
      }
      if (state.mode === "form" && formCanShow(pasted)) state.model = pasted;
      showState();
      changed(true);
    }),
  );
  $("#add-layer").addEventListener("click", () => editor.add($("#add-type").value));
}

const countSoon = debounce(count, DEBOUNCE_MS);

function changed(now = false) {
  saveFragment();
  if (now) count();
  else {
    $("#busy").textContent = "Counting…";
    countSoon();
  }
}

// --- counting ---------------------------------------------------------------

/** The body POST /params and POST /train take, or a problem when the pasted text is not JSON. */
function modelBody() {
  if (state.mode === "form") return { body: state.model };
  try {
    return { body: JSON.parse(state.json) };
  } catch (error) {
    return { problem: { status: 400, detail: `body: the text is not JSON: ${error.message}`, errors: { body: [`Not JSON: ${error.message}`] } } };
  }
}

async function count() {
  const mine = ++sequence;
  if (inFlight) inFlight.abort();
  inFlight = new AbortController();
  const { body, problem } = modelBody();
  if (problem) {
    showProblem(problem);
    $("#busy").textContent = "";
    return;
  }
  const query = new URLSearchParams({ train_batch_size: String(state.batch), optimizer: state.optimizer });
  let response;
  let answer;
  try {
    response = await request(`/params?${query}`, { method: "POST", json: body, signal: inFlight.signal });
    answer = response.ok ? await response.json() : await readProblem(response);
  } catch (error) {
    if (error.name === "AbortError") return;
    if (mine === sequence) {
      $("#busy").textContent = "";
      showProblem({ detail: `The server did not answer: ${error.message}` });
    }
    return;
  }
  if (mine !== sequence) return; // a newer edit was sent meanwhile
  $("#busy").textContent = "";
  if (!response.ok) {
    showProblem(answer);
    return;
  }
  showProblem(null);
  showCounts(answer);
  drawPicture(body, query, mine);
}

function clearFieldErrors(root = document) {
  $$(".field-error", root).forEach((el) => el.remove());
  $$("[aria-invalid]", root).forEach((el) => {
    el.removeAttribute("aria-invalid");
    const described = (el.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => !id.endsWith("-error"));
    if (described.length) el.setAttribute("aria-describedby", described.join(" "));
    else el.removeAttribute("aria-describedby");
  });
  $$(".invalid", root).forEach((el) => el.classList.remove("invalid"));
}

/** The element showing the value at `path`, or the nearest one above it. */
function elementFor(path) {
  let parts = path.split(".");
  while (parts.length) {
    const found = document.querySelector(`[data-path="${CSS.escape(parts.join("."))}"]`);
    if (found && !found.closest("[hidden]")) return found;
    parts = parts.slice(0, -1);
  }
  return null;
}

/** Put each message of a problem's `errors` beside the input it names
 * (POST /train names the model's fields under `model.`). */
function markFields(errors) {
  for (const [path, messages] of Object.entries(errors ?? {})) {
    let el = elementFor(path);
    if (!el && path.startsWith("model.")) el = elementFor(path.slice("model.".length));
    if (!el && state.mode === "json" && !/^(data|fit|compile|validation|example)\b/.test(path)) el = $("#model-json");
    if (!el) continue;
    const details = el.closest("details");
    if (details) details.open = true;
    const control = el.matches("input, select, textarea") ? el : el.querySelector("legend") ?? el;
    el.classList.add("invalid");
    const errorId = `${el.id || idOf(path)}-error`;
    const note = h("p", { class: "field-error", id: errorId, text: `${path}: ${messages.join(" ")}` });
    if (el.matches("fieldset")) el.querySelector("legend").after(note);
    else (el.closest(".field") ?? el.parentElement).append(note);
    if (control.matches("input, select, textarea")) {
      control.setAttribute("aria-invalid", "true");
      const described = control.getAttribute("aria-describedby");
      control.setAttribute("aria-describedby", described ? `${described} ${errorId}` : errorId);
    }
  }
}

function showProblem(problem) {
  clearFieldErrors($(".editor"));
  const box = $("#problem");
  $(".results").classList.toggle("stale", Boolean(problem));
  if (!problem) {
    show(box, false);
    return;
  }
  clear(box).append(
    h("p", { class: "problem-title", text: problem.status === 422 ? "Keras would refuse this model:" : "The model could not be counted:" }),
    h("p", { class: "problem-detail", text: problem.detail ?? problem.title }),
  );
  show(box);
  markFields(problem.errors);
}

function layerBytes(layer) {
  let bytes = 0;
  for (const weight of layer.weights ?? []) {
    bytes += weight.shape.reduce((a, b) => a * b, 1) * (DTYPE_BYTES[weight.dtype] ?? 4);
  }
  return bytes;
}

function showCounts(doc) {
  $("#total-params").textContent = formatInt(doc.total_params);
  $("#trainable-params").textContent = formatInt(doc.trainable_params);
  $("#non-trainable-params").textContent = formatInt(doc.non_trainable_params);
  $("#param-bytes").textContent = formatBytes(doc.param_bytes);
  $("#macs").textContent = doc.macs === null ? "unknown (a length is open)" : formatInt(doc.macs);
  $("#model-file").textContent = formatBytes(doc.model_file_bytes);
  $("#train-memory").textContent = doc.train_memory_bytes === null ? "unknown (a length is open)" : formatBytes(doc.train_memory_bytes);
  const m = doc.train_memory;
  $("#memory-parts").textContent = m
    ? `Batch ${m.batch_size}, ${m.optimizer}: weights ${formatBytes(m.weights)}, gradients ${formatBytes(m.gradients)}, ` +
      `optimizer state ${formatBytes(m.optimizer_state)}, activations ${formatBytes(m.activations)}.`
    : "";
  const warnings = $("#warnings");
  clear(warnings).append(...(doc.warnings ?? []).map((w) => h("li", { text: `${w.field}: ${w.message}` })));
  show(warnings, (doc.warnings ?? []).length > 0);
  const rows = [];
  for (const layer of doc.layers) {
    rows.push(layerRow(layer, false));
    for (const sub of layer.sublayers ?? []) rows.push(layerRow(sub, true));
  }
  clear($("#layer-table tbody")).append(...rows);
  $("#summary").textContent = doc.summary;
}

function shapeCell(shape) {
  // Several outputs: one unbreakable tuple each, so that the cell wraps between them.
  const tuples = Array.isArray(shape) && shape.some(Array.isArray) ? shape : [shape];
  const cell = h("td", { class: "shape" });
  tuples.forEach((tuple, i) => cell.append(i ? ", " : "", h("span", { text: formatShape(tuple) })));
  return cell;
}

function layerRow(layer, nested) {
  return h("tr", { class: nested ? "sublayer" : "" },
    h("th", { scope: "row" }, nested ? "└ " : "", h("span", { text: layer.name }), " ", h("span", { class: "type", text: `(${layer.type})` })),
    shapeCell(layer.output_shape),
    h("td", { class: "num", text: formatInt(layer.params) }),
    h("td", { class: "num", text: nested ? "" : formatBytes(layerBytes(layer)) }),
    h("td", { class: "num", text: layer.macs === null ? "—" : formatInt(layer.macs) }),
    h("td", { class: "formula", text: layer.formula ?? "" }),
  );
}

/** The model's graph: POST /params answers Accept: image/svg+xml with a
 * drawing in the manner of Keras's plot_model(show_shapes=True). */
async function drawPicture(body, query, mine) {
  const panel = $("#picture");
  let response;
  try {
    response = await request(`/params?${query}`, { method: "POST", json: body, accept: "image/svg+xml" });
  } catch {
    show(panel, false);
    return;
  }
  if (mine !== sequence) return;
  const type = response.headers.get("Content-Type") ?? "";
  if (!response.ok || !type.startsWith("image/svg+xml")) {
    show(panel, false);
    return;
  }
  // Parsed as XML and imported: the SVG's markup is never handed to innerHTML,
  // and a script inside it would not run (nor would the page's CSP let it).
  const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
  const root = parsed.documentElement;
  if (root.nodeName !== "svg" || parsed.querySelector("parsererror")) {
    show(panel, false);
    return;
  }
  for (const el of [root, ...root.querySelectorAll("*")]) {
    if (el.localName === "script" || el.localName === "foreignObject") el.remove();
    for (const attr of [...(el.attributes ?? [])]) if (attr.name.toLowerCase().startsWith("on")) el.removeAttribute(attr.name);
  }
  const svg = document.importNode(root, true);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "The model's layers and their connections");
  clear($("#picture-box")).append(svg);
  show(panel);
}

// --- train this -------------------------------------------------------------

function showPresets() {
  const select = $("#preset");
  select.replaceChildren(...examples.map((e) => h("option", { value: e.name, text: e.name.replaceAll("_", " ") })));
  select.value = examples.some((e) => e.name === "many_to_many") ? "many_to_many" : examples[0]?.name;
  const describe = () => {
    const preset = examples.find((e) => e.name === select.value);
    $("#preset-description").textContent = preset ? `${preset.description} Trains with ${preset.compile.loss} and ${preset.compile.optimizer}.` : "";
    if (preset) $("#epochs").value = preset.fit.epochs;
  };
  select.addEventListener("change", describe);
  describe();
  // Only the chosen source's input is in use (and in the tab order).
  const sources = $$('input[name="data-source"]');
  const useSource = () => {
    const chosen = $('input[name="data-source"]:checked').value;
    $("#preset").disabled = chosen !== "preset";
    $("#dataset-id").disabled = chosen !== "dataset";
  };
  sources.forEach((radio) => radio.addEventListener("change", useSource));
  useSource();
}

async function train(event) {
  event.preventDefault();
  const box = $("#train-problem");
  clearFieldErrors($("#train-form"));
  show(box, false);
  const { body: model, problem } = modelBody();
  const fail = (p) => {
    clear(box).append(h("p", { class: "problem-title", text: "The job was not queued:" }), h("p", { class: "problem-detail", text: p.detail ?? p.title }));
    show(box);
    markFields(p.errors);
  };
  if (problem) return fail(problem);
  const source = $('input[name="data-source"]:checked').value;
  const epochs = Number($("#epochs").value);
  const request_ = source === "preset"
    ? { example: $("#preset").value, model, fit: { epochs } }
    : { model, data: { dataset: $("#dataset-id").value.trim() }, fit: { epochs } };
  const button = $("#train");
  button.disabled = true;
  try {
    const job = await getJSON("/train", { method: "POST", json: request_ });
    location.assign(`/ui/jobs/${encodeURIComponent(job.id)}`);
  } catch (error) {
    fail(error instanceof ApiError ? error.problem : { detail: error.message });
  } finally {
    button.disabled = false;
  }
}

// --- start ------------------------------------------------------------------

async function start() {
  initKeys();
  const [layers, presets] = await Promise.all([getJSON("/layers"), getJSON("/examples")]);
  examples = presets.examples;
  const registry = new Map(layers.layers.map((d) => [d.type, d]));
  editor = new LayerEditor($("#layers"), registry, () => changed());
  $("#add-type").replaceChildren(...editor.stackTypes().map((t) => h("option", { value: t, text: t })));
  $("#add-type").value = registry.has("Dense") ? "Dense" : editor.stackTypes()[0];
  const seed = examples.find((e) => e.name === "many_to_many") ?? examples[0];
  state.model = structuredClone(seed.model);
  const saved = readFragment();
  if (saved) applySaved(saved);
  if (!state.model) state.model = structuredClone(seed.model);
  bindModelFields();
  showState();
  showPresets();
  $("#train-form").addEventListener("submit", train);
  window.addEventListener("hashchange", () => {
    const again = readFragment();
    if (again && location.hash !== fragmentOf()) {
      applySaved(again);
      showState();
      count();
    }
  });
  saveFragment();
  await count();
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  const box = $("#problem");
  clear(box).append(h("p", { text: `The calculator could not start: ${error.message}` }));
  show(box);
});
