import { ThingwireError } from './errors';

/** Default largest payload a node accepts before parsing: 256 KiB. */
export const DEFAULT_MAX_BYTES = 256 * 1024;

/**
 * Turns a raw payload (Buffer, string or already-parsed value) into a value,
 * checking its size before parsing so a huge payload never reaches JSON.parse.
 * Already-parsed values (objects, numbers, booleans) are returned as they are.
 */
export function parsePayload(payload: unknown, maxBytes: number = DEFAULT_MAX_BYTES): unknown {
  if (Buffer.isBuffer(payload)) {
    if (payload.length > maxBytes) throw tooLarge(payload.length, maxBytes);
    return parseJson(payload.toString('utf8'));
  }
  if (typeof payload === 'string') {
    // A UTF-8 byte count lies between length and 3 * length for JS strings.
    if (payload.length > maxBytes) throw tooLarge(payload.length, maxBytes);
    if (payload.length * 3 > maxBytes) {
      const bytes = Buffer.byteLength(payload, 'utf8');
      if (bytes > maxBytes) throw tooLarge(bytes, maxBytes);
    }
    return parseJson(payload);
  }
  return payload;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const preview = text.length > 40 ? `${text.slice(0, 40)}...` : text;
    throw new ThingwireError('malformed_json', `payload is not valid JSON (${(e as Error).message}): ${JSON.stringify(preview)}`);
  }
}

function tooLarge(bytes: number, maxBytes: number): ThingwireError {
  return new ThingwireError('payload_too_large', `payload is at least ${bytes} bytes, over the limit of ${maxBytes} bytes`, {
    bytes,
    maxBytes,
  });
}
