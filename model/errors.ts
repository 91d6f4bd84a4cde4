/**
 * An error caused by the user's input (a bad fleet file, a bad flag, an unknown node). The CLI prints
 * only its message (one paragraph: what, where, how to fix) and exits with `exitCode` (2 = bad input,
 * 1 = a failure found, e.g. drift or a failed task); it never prints a stack trace for these.
 */
export class UserError extends Error {
  /** Process exit code the CLI uses for this error: 2 for bad input unless stated otherwise. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}
