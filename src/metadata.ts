// Model metadata values are strings (ONNX metadata_props); the structured ones hold JSON. A value
// that does not parse is treated as absent: metadata written by other tools must not stop a run.

export function metadataJson<T>(metadata: Readonly<Record<string, string>>, key: string): T | undefined {
  const text = metadata[key];
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Class names in index order, from the `labels` entry. */
export function labelsOf(metadata: Readonly<Record<string, string>>): string[] | undefined {
  const labels = metadataJson<unknown>(metadata, 'labels');
  return Array.isArray(labels) ? labels.map(String) : undefined;
}
