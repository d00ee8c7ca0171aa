// Requests to the JSON API, with the API key when the server asks for one.
//
// With SEQLAB_API_KEYS set, the job routes answer 401 without a key. Then
// the page shows its key form (a labelled form, not window.prompt), keeps
// the key in sessionStorage (this tab only, gone when it closes), and sends
// it as `Authorization: Bearer <key>` on every request; never in a URL,
// where it would reach logs, history and Referer headers. The API decides
// what the key may see: the pages only show what it answers.

import { $, show } from "./dom.js";

const STORAGE = "seqlab.apiKey";

export function storedKey() {
  try {
    return sessionStorage.getItem(STORAGE);
  } catch {
    return null; // storage disabled: ask again each time
  }
}

function storeKey(key) {
  try {
    sessionStorage.setItem(STORAGE, key);
  } catch {
    /* the key then lives in this page only */
  }
  memoryKey = key;
}

let memoryKey = null;

function currentKey() {
  return storedKey() ?? memoryKey;
}

export function forgetKey() {
  try {
    sessionStorage.removeItem(STORAGE);
  } catch {
    /* nothing stored */
  }
  memoryKey = null;
}

/** The problem document of an error response (RFC 9457), or one made up
 * from its status when the body is something else. */
export async function readProblem(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  if (body && typeof body === "object" && "status" in body) return body;
  return { status: response.status, title: response.statusText, detail: `${response.status} ${response.statusText}` };
}

export class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.problem = problem;
    this.status = problem.status;
  }
}

/**
 * fetch() on this server with the key, if any. A 401 shows the key form and
 * the request is sent again once a key is given; any other answer is
 * returned as it is.
 */
export async function request(path, { method = "GET", json, headers = {}, signal, accept = "application/json" } = {}) {
  for (;;) {
    const sent = { Accept: accept, ...headers };
    const key = currentKey();
    if (key) sent.Authorization = `Bearer ${key}`;
    let body;
    if (json !== undefined) {
      body = JSON.stringify(json);
      sent["Content-Type"] = "application/json";
    }
    const response = await fetch(path, { method, headers: sent, body, signal, cache: "no-store", credentials: "omit" });
    if (response.status !== 401) return response;
    const problem = await readProblem(response);
    if (key) forgetKey(); // a key the server refuses is of no further use
    await askForKey(key ? `The API key was refused: ${problem.detail}` : problem.detail);
  }
}

/** The JSON body of a request that must succeed; an ApiError otherwise. */
export async function getJSON(path, options) {
  const response = await request(path, options);
  if (!response.ok) throw new ApiError(await readProblem(response));
  return response.status === 204 ? null : response.json();
}

let waiting = null; // one key form for all the requests that wait on it

function askForKey(reason) {
  if (!waiting) {
    waiting = new Promise((resolve) => {
      const panel = $("#key-panel");
      const form = $("#key-form");
      const input = $("#key-input");
      $("#key-reason").textContent = reason;
      show(panel);
      input.value = "";
      input.focus();
      const submitted = (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        form.removeEventListener("submit", submitted);
        storeKey(key);
        input.value = "";
        show(panel, false);
        showKeyStatus();
        waiting = null;
        resolve();
      };
      form.addEventListener("submit", submitted);
    });
  }
  return waiting;
}

function showKeyStatus() {
  show($("#key-status"), currentKey() !== null);
}

/** Wire the header's "Forget key" button; call once per page. */
export function initKeys() {
  showKeyStatus();
  $("#forget-key").addEventListener("click", () => {
    forgetKey();
    // Start over: what the page shows came with the key.
    window.location.reload();
  });
}
