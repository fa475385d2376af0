// The small error vocabulary. A user can cause an InputError or an UnsupportedError: the CLI prints
// their one-line message and exits 2. A MeasuredFailure (an accuracy budget, a validation gate) is
// the tool doing its job on a model that falls short: exit 1. Anything else is our bug: exit 3.

/** Something wrong with what the user gave us: a file, a flag, a checkpoint. The message says what and where. */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(message: string, readonly where?: string) {
    super(where ? `${where}: ${message}` : message);
  }
}

/** What an UnsupportedError is about, for callers that act on it rather than print it. */
export type UnsupportedKind =
  | 'onnx-op'
  | 'onnx-opset'
  | 'onnx-attribute'
  | 'dtype'
  | 'file-format'
  | 'tfjs-op'
  | 'tflite-op'
  | 'quantization'
  | 'architecture'
  | 'other';

/** Valid input that this tool does not handle (an ONNX op, a dtype, a pickle global). */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
  constructor(message: string, readonly where?: string, readonly kind: UnsupportedKind = 'other') {
    super(where ? `${where}: ${message}` : message);
  }
}

export function isUserError(e: unknown): e is InputError | UnsupportedError {
  return e instanceof InputError || e instanceof UnsupportedError;
}

/** A model measured and found short of what was asked (accuracy budget, validation gate). */
export class MeasuredFailure extends Error {
  override readonly name: string = 'MeasuredFailure';
}

/** Warnings collected during a run, reported by the CLI after the work. */
export class Warnings {
  readonly items: string[] = [];
  add(message: string): void {
    this.items.push(message);
  }
}
