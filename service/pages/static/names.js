// What the pages call a job's model.

/** The model's Keras name: the job document's `model.name`; for a job queued
 * before documents had it, the first line of its summary (`Model: "…"`). */
export function modelName(doc) {
  if (doc.model?.name) return doc.model.name;
  const match = /^Model: "(.*)"/.exec(doc.params?.summary ?? "");
  return match ? match[1] : doc.request?.model?.name ?? null;
}
