// The small error vocabulary. A user can cause an InputError or an UnsupportedError; the CLI prints
// their one-line message and exits 2. Anything else is our bug and is reported as an internal error.

/** Something wrong with what the user gave us: a file, a flag, a checkpoint. The message says what and where. */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(message: string, readonly where?: string) {
    super(where ? `${where}: ${message}` : message);
  }
}

/** Valid input that this tool does not handle (an ONNX op, a dtype, a pickle global). */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
  constructor(message: string, readonly where?: string) {
    super(where ? `${where}: ${message}` : message);
  }
}

export function isUserError(e: unknown): e is InputError | UnsupportedError {
  return e instanceof InputError || e instanceof UnsupportedError;
}

/** Warnings collected during a run, reported by the CLI after the work. */
export class Warnings {
  readonly items: string[] = [];
  add(message: string): void {
    this.items.push(message);
  }
}
