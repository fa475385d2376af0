// Small helpers for JSON from a user's file: its parse errors on one line, and the checks of parsed
// values (huggingface.ts and safetensors.ts keep private copies of isObject and shown).

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON value as an error message shows it, cut short. */
export function shown(v: unknown): string {
  // String() for numbers: JSON.stringify writes Infinity (from 1e999 in the file) as null.
  const s = typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * A JSON.parse error's message on one line: V8 quotes the text around the fault, newlines and
 * control characters included, and an error message is one line.
 */
export function parseErrorMessage(e: unknown): string {
  return String((e as Error)?.message ?? e).replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ');
}

/**
 * Model metadata (string values, as ONNX's metadata_props hold them) with the values that are JSON
 * objects or arrays parsed, for formats that store structured metadata (TF.js, TFLite).
 */
export function structuredMetadata(meta: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) {
    let value: unknown = v;
    if (/^\s*[[{]/.test(v)) {
      try {
        value = JSON.parse(v);
      } catch {
        value = v;
      }
    }
    out[k] = value;
  }
  return out;
}
