import type { RegistryErrorCode } from './types';

const STATUS: Record<RegistryErrorCode, number> = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409 };

/** A refused registry operation: a machine-readable code and the HTTP status the API answers with. */
export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly status: number;
  /** Extra detail, e.g. the field at fault. Never holds a secret. */
  readonly details?: unknown;

  constructor(code: RegistryErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'RegistryError';
    this.code = code;
    this.status = STATUS[code];
    if (details !== undefined) this.details = details;
  }
}

export function isRegistryError(e: unknown): e is RegistryError {
  return e instanceof RegistryError;
}
