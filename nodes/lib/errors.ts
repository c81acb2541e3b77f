import type { Reject, RejectCode } from './contract';

/** An error that carries a machine-readable reject code. */
export class ThingwireError extends Error {
  readonly code: RejectCode;
  readonly details?: unknown;

  constructor(code: RejectCode, message: string, details?: unknown) {
    super(message);
    this.name = 'ThingwireError';
    this.code = code;
    this.details = details;
  }

  toReject(index?: number): Reject {
    const r: Reject = { code: this.code, message: this.message };
    if (index !== undefined) r.index = index;
    if (this.details !== undefined) r.details = this.details;
    return r;
  }
}

export function isThingwireError(e: unknown): e is ThingwireError {
  return e instanceof ThingwireError;
}
