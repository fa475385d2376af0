// Small helpers for checking parsed JSON from a user's file, shared by the readers that check JSON
// field by field (huggingface.ts and safetensors.ts keep private copies of the same two).

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON value as an error message shows it, cut short. */
export function shown(v: unknown): string {
  // String() for numbers: JSON.stringify writes Infinity (from 1e999 in the file) as null.
  const s = typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
