// Follows a job's Server-Sent Events (GET /jobs/<id>/events).
//
// Read with fetch() and a streaming reader, not EventSource: EventSource
// cannot send an Authorization header, and an API key must never go into a
// URL (it would reach server logs, history and Referer headers). So this
// does what EventSource does, the same way with or without keys: it parses
// the id:/event:/data:/retry: lines, and after a drop (or the server's
// `reconnect` event, or its end of a long stream) it connects again with
// the last id: seen as the Last-Event-ID header, so that the server resumes
// strictly after it: nothing missed, nothing twice. Failures back off from
// the stream's retry: delay, doubling up to 30 s.

import { readProblem, request } from "./api.js";
import { sleep } from "./dom.js";

const MAX_DELAY_MS = 30_000;

/**
 * Start following `path`. `onEvent({type, data, id})` gets each message
 * (data as text); `isFinal(message)` says which message ends the stream for
 * good; `onState(state, detail)` hears "open", "reconnecting", "closed" and
 * "error" (a problem document: the stream cannot be read). Returns
 * {close()}.
 */
export function followEvents(path, { onEvent, isFinal, onState = () => {} }) {
  let lastId = null;
  let retryMs = 2000;
  let failures = 0;
  let stopped = false;
  let controller = null;
  let finished = false;

  let received = 0; // messages on the current connection

  function dispatch(message) {
    received += 1;
    onEvent(message);
    if (isFinal(message)) finished = true;
  }

  async function readStream(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    let type = "";
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // Lines end with \r\n, \n or \r; a \r at the end may be half of a \r\n.
      const lines = buffer.split(/\r\n|\n|\r(?!$)/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          // A blank line ends a message; one without data is not dispatched.
          if (id !== null) lastId = id;
          if (data.length) dispatch({ type: type || "message", data: data.join("\n"), id: lastId });
          data = [];
          type = "";
          id = null;
          continue;
        }
        if (line.startsWith(":")) continue; // a comment: the keep-alive
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "event") type = text;
        else if (field === "id" && !text.includes("\0")) id = text;
        else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
      }
    }
  }

  async function run() {
    while (!stopped && !finished) {
      controller = new AbortController();
      let delay = retryMs;
      try {
        const headers = lastId === null ? {} : { "Last-Event-ID": lastId };
        const response = await request(path, { headers, signal: controller.signal, accept: "text/event-stream" });
        if (response.ok) {
          onState("open");
          received = 0;
          await readStream(response);
          if (finished) break;
          if (received > 0) {
            failures = 0;
            delay = 0; // the server ended a long stream (event: reconnect): go on at once
          } else {
            failures += 1; // closed without a word: back off
            delay = Math.min(retryMs * 2 ** (failures - 1), MAX_DELAY_MS);
          }
        } else {
          const problem = await readProblem(response);
          if (response.status === 429 || response.status >= 500) {
            const after = Number(response.headers.get("Retry-After"));
            failures += 1;
            delay = Math.max(after * 1000 || 0, Math.min(retryMs * 2 ** failures, MAX_DELAY_MS));
          } else {
            onState("error", problem); // 404: no such job (or another tenant's)
            return;
          }
        }
      } catch (error) {
        if (stopped) return;
        failures += 1; // a dropped connection
        delay = Math.min(retryMs * 2 ** (failures - 1), MAX_DELAY_MS);
      }
      if (stopped || finished) break;
      onState("reconnecting", { delay, lastId });
      await sleep(delay);
    }
    if (!stopped) onState("closed");
  }

  run();
  return {
    close() {
      stopped = true;
      if (controller) controller.abort();
    },
    get lastId() {
      return lastId;
    },
  };
}
