// The calculator's layer editor, generated from GET /layers: one fieldset
// per layer, one input per Keras argument chosen by the argument's kind
// (int, float, bool, choice, tuples and lists, axes, Keras objects, wrapped
// layers), with its default and limits. Nothing here is written for one
// layer type: a layer added to the registry gets its form for free.
//
// Each input carries `data-path`, the dotted path of its value in the
// request (`layers.1.layer.units`): the path a 422 names, so that the
// calculator can put the API's message beside the very input.

import { h } from "./dom.js";

/** The JSON value of an argument shown in an input, or undefined: leave it out. */
function parseList(text) {
  const inner = text.trim().replace(/^\[|\]$/g, "").trim();
  if (!inner) return [];
  return inner.split(/\s*,\s*|\s+/).map(parseScalar);
}

function parseScalar(text) {
  if (/^-?\d+$/.test(text)) return Number(text);
  if (/^(none|null)$/i.test(text)) return null;
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text; // the API says what is wrong with it
}

/** "5, 1" → [5, 1]; "None, 3" → [null, 3]. */
export function parseShape(text) {
  return parseList(text);
}

export function formatList(value) {
  if (!Array.isArray(value)) return value === undefined || value === null ? "" : String(value);
  return value.map((v) => (v === null ? "None" : String(v))).join(", ");
}

const READERS = {
  int: (el) => numberOf(el),
  float: (el) => numberOf(el),
  int_tuple: (el) => intOrList(el.value),
  axis: (el) => intOrList(el.value),
  int_list: (el) => (el.value.trim() === "" ? undefined : parseList(el.value)),
  object: (el) => {
    const text = el.value.trim();
    if (!text) return undefined;
    if (text.startsWith("{")) {
      try {
        return JSON.parse(text);
      } catch {
        return text; // the API refuses it, naming the field
      }
    }
    return text;
  },
};

function numberOf(el) {
  const text = el.value.trim();
  if (text === "") return undefined;
  return parseScalar(text);
}

function intOrList(text) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const list = parseList(trimmed);
  return list.length === 1 && !trimmed.startsWith("[") ? list[0] : list;
}

function shown(arg, value) {
  if (value === undefined) return "";
  if (arg.kind === "object") return typeof value === "string" ? value : JSON.stringify(value);
  if (Array.isArray(value)) return formatList(value);
  return value === null ? "" : String(value);
}

function describeDefault(arg) {
  if (arg.required) return "required";
  const d = arg.default;
  if (d === null) return "default: None";
  if (typeof d === "object") return `default: ${JSON.stringify(d)}`;
  return `default: ${d}`;
}

function limits(arg) {
  const parts = [];
  if (arg.minimum !== undefined) parts.push(`${arg.exclusive_minimum ? ">" : "≥"} ${arg.minimum}`);
  if (arg.maximum !== undefined) parts.push(`${arg.exclusive_maximum ? "<" : "≤"} ${arg.maximum}`);
  if (arg.length !== undefined) parts.push(`${arg.length} value${arg.length > 1 ? "s" : ""}`);
  return parts.join(", ");
}

export const idOf = (path) => `f-${path.replace(/[^A-Za-z0-9_-]/g, "-")}`;

/**
 * The editor. `registry`: Map type → GET /layers description; `onChange()`
 * after any value changes; the editor re-renders itself when layers are
 * added, removed, moved or change type.
 */
export class LayerEditor {
  constructor(list, registry, onChange) {
    this.list = list;
    this.registry = registry;
    this.onChange = onChange;
    this.layers = [];
    this.openDetails = new Set();
  }

  /** Layer types a Sequential stack takes: those called on one tensor. */
  stackTypes() {
    return [...this.registry.values()].filter((d) => d.call_form === "one").map((d) => d.type);
  }

  newLayer(type) {
    return structuredClone(this.registry.get(type).example.layer);
  }

  setLayers(layers) {
    this.layers = layers;
    this.render();
  }

  add(type) {
    this.layers.push(this.newLayer(type));
    this.render();
    this.onChange();
    const last = this.list.lastElementChild;
    last?.querySelector("input, select, textarea")?.focus();
  }

  render() {
    const focused = document.activeElement?.id;
    this.list.replaceChildren(...this.layers.map((layer, i) => this.layerItem(layer, i)));
    if (focused) document.getElementById(focused)?.focus();
  }

  layerItem(layer, i) {
    const path = `layers.${i}`;
    const n = this.layers.length;
    const title = `Layer ${i + 1}: ${layer.type}`;
    const move = (to) => () => {
      const [moved] = this.layers.splice(i, 1);
      this.layers.splice(to, 0, moved);
      this.render();
      this.onChange();
      const button = document.getElementById(idOf(`layers.${to}`) + (to < i ? "-up" : "-down"));
      (button && !button.disabled ? button : document.getElementById(idOf(`layers.${to}`) + "-remove"))?.focus();
    };
    const fieldset = h("fieldset", { class: "layer", "data-path": path, id: idOf(path) },
      h("legend", {}, h("span", { class: "index", text: `${i + 1}` }), h("span", { class: "type", text: layer.type })),
      h("div", { class: "layer-tools" },
        h("button", { type: "button", id: `${idOf(path)}-up`, class: "icon", "aria-label": `Move ${title} up`, title: "Move up", disabled: i === 0, onclick: move(i - 1), text: "↑" }),
        h("button", { type: "button", id: `${idOf(path)}-down`, class: "icon", "aria-label": `Move ${title} down`, title: "Move down", disabled: i === n - 1, onclick: move(i + 1), text: "↓" }),
        h("button", {
          type: "button", id: `${idOf(path)}-remove`, class: "icon", "aria-label": `Remove ${title}`, title: "Remove", text: "✕",
          onclick: () => {
            this.layers.splice(i, 1);
            this.render();
            this.onChange();
            document.getElementById(idOf(`layers.${Math.min(i, this.layers.length - 1)}`) + "-remove")?.focus();
          },
        })),
    );
    const summary = this.registry.get(layer.type)?.summary;
    if (summary) fieldset.append(h("p", { class: "hint layer-summary", text: summary }));
    this.argFields(fieldset, layer, path);
    return h("li", {}, fieldset);
  }

  /** The inputs of one layer's arguments (and of the layers it wraps). */
  argFields(container, layer, path) {
    const description = this.registry.get(layer.type);
    if (!description) {
      container.append(h("p", { class: "problem", text: `Unknown layer type ${layer.type}.` }));
      return;
    }
    const main = h("div", { class: "args" });
    const more = h("div", { class: "args" });
    main.append(this.textField(layer, "name", `${path}.name`, "Name", "default: Keras's own"));
    let optional = 0;
    for (const arg of description.args) {
      if (arg.kind === "null") continue; // only None is accepted: nothing to choose
      const field = arg.kind === "layer" ? this.layerField(layer, arg, path) : this.argField(layer, arg, path);
      if (arg.required || arg.kind === "layer") main.append(field);
      else {
        more.append(field);
        optional += 1;
      }
    }
    container.append(main);
    if (optional) {
      const key = `${path}.more`;
      const set = description.args.filter((a) => !a.required && a.kind !== "layer" && a.kind !== "null" && layer[a.name] !== undefined).length;
      const details = h("details", { class: "more", "data-more": path, open: this.openDetails.has(key) },
        h("summary", { text: `Other arguments (${optional}${set ? `, ${set} set` : ""})` }), more);
      details.addEventListener("toggle", () => {
        if (details.open) this.openDetails.add(key);
        else this.openDetails.delete(key);
      });
      container.append(details);
    }
  }

  textField(obj, name, path, label, hint) {
    const id = idOf(path);
    const input = h("input", {
      id, type: "text", "data-path": path, autocomplete: "off", spellcheck: "false",
      value: obj[name] ?? "", "aria-describedby": `${id}-hint`,
    });
    input.addEventListener("input", () => {
      const text = input.value.trim();
      if (text) obj[name] = text;
      else delete obj[name];
      this.onChange();
    });
    return h("div", { class: "field" }, h("label", { for: id, text: label }), input, h("p", { class: "hint", id: `${id}-hint`, text: hint }));
  }

  argField(obj, arg, parentPath) {
    const path = `${parentPath}.${arg.name}`;
    const id = idOf(path);
    const hintText = [describeDefault(arg), limits(arg), arg.doc].filter(Boolean).join(" · ");
    const value = obj[arg.name];
    let input;
    const commit = (v) => {
      if (v === undefined) delete obj[arg.name];
      else obj[arg.name] = v;
      this.onChange();
    };
    if (arg.kind === "bool") {
      input = h("input", { id, type: "checkbox", "data-path": path, checked: value ?? arg.default ?? false });
      input.addEventListener("change", () => {
        commit(!arg.required && input.checked === arg.default ? undefined : input.checked);
      });
      return h("div", { class: "field check" }, input, h("label", { for: id, text: arg.name }),
        h("p", { class: "hint", id: `${id}-hint`, text: hintText }));
    }
    if (arg.kind === "choice") {
      const options = [];
      if (!arg.required) options.push(h("option", { value: "", text: `default (${arg.default ?? "None"})` }));
      if (arg.nullable && arg.default !== null) options.push(h("option", { value: "null", text: "None" }));
      for (const choice of arg.choices ?? []) {
        if (choice === null) continue;
        options.push(h("option", { value: JSON.stringify(choice), text: String(choice) }));
      }
      input = h("select", { id, "data-path": path, "aria-describedby": `${id}-hint` }, ...options);
      input.value = value === undefined ? "" : JSON.stringify(value);
      if (input.selectedIndex < 0) {
        // A value the list does not hold (from a link): keep it, and let the API judge it.
        input.append(h("option", { value: JSON.stringify(value), text: String(value) }));
        input.value = JSON.stringify(value);
      }
      input.addEventListener("change", () => commit(input.value === "" ? undefined : JSON.parse(input.value)));
    } else {
      const numeric = arg.kind === "int" || arg.kind === "float";
      const attrs = {
        id, "data-path": path, autocomplete: "off", spellcheck: "false",
        "aria-describedby": `${id}-hint`, value: shown(arg, value), required: arg.required,
      };
      if (numeric) {
        Object.assign(attrs, { type: "number", step: arg.kind === "int" ? "1" : "any" });
        if (arg.minimum !== undefined && !arg.exclusive_minimum) attrs.min = arg.minimum;
        if (arg.maximum !== undefined && !arg.exclusive_maximum) attrs.max = arg.maximum;
        if (!arg.required) attrs.placeholder = arg.default === null ? "None" : String(arg.default);
      } else {
        attrs.type = "text";
        if (!arg.required && arg.default !== undefined) attrs.placeholder = shown(arg, arg.default) || "None";
      }
      const listId = arg.kind === "object" && arg.classes ? `${id}-list` : null;
      if (listId) attrs.list = listId;
      input = h("input", attrs);
      input.addEventListener("input", () => {
        if (numeric && input.validity.badInput) return; // not a number yet: wait for more typing
        commit(READERS[arg.kind](input));
      });
      if (listId) {
        return h("div", { class: "field" }, h("label", { for: id, text: arg.name }), input,
          h("datalist", { id: listId }, ...arg.classes.map((c) => h("option", { value: c }))),
          h("p", { class: "hint", id: `${id}-hint`, text: hintText }));
      }
    }
    return h("div", { class: "field" }, h("label", { for: id, text: arg.name }), input,
      h("p", { class: "hint", id: `${id}-hint`, text: hintText }));
  }

  /** A wrapped layer (TimeDistributed's, Bidirectional's): its type, then its own arguments. */
  layerField(obj, arg, parentPath) {
    const path = `${parentPath}.${arg.name}`;
    const id = idOf(path);
    const types = arg.layer_types ?? this.stackTypes();
    const value = obj[arg.name];
    const select = h("select", { id: `${id}-type`, "data-path": `${path}.type` },
      ...(arg.required ? [] : [h("option", { value: "", text: "None" })]),
      ...types.map((t) => h("option", { value: t, text: t })));
    select.value = value ? value.type : "";
    select.addEventListener("change", () => {
      if (select.value === "") delete obj[arg.name];
      else obj[arg.name] = this.newLayer(select.value);
      this.render();
      this.onChange();
    });
    const fieldset = h("fieldset", { class: "wrapped", "data-path": path, id },
      h("legend", { text: arg.name }),
      h("div", { class: "field" }, h("label", { for: `${id}-type`, text: `${arg.name}: type` }), select,
        arg.doc ? h("p", { class: "hint", text: arg.doc }) : null));
    if (value) this.argFields(fieldset, value, path);
    return fieldset;
  }
}
