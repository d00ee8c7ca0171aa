// What the pages call a job's model.

/** The model's Keras name: the first line of its summary says it
 * (`Model: "sequential"`); the job document has no other place for it. */
export function modelName(doc) {
  const match = /^Model: "(.*)"/.exec(doc.params?.summary ?? "");
  return match ? match[1] : doc.request?.model?.name ?? null;
}
