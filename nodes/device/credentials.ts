/**
 * Where a message's device credentials are: the token a device presented (msg.token, or the HTTP
 * request of an http-in node in msg.req) and the provisioning key. Pure: no Node-RED, no registry.
 */

/** `Authorization: Bearer <token>` or `Authorization: Token <token>` (scheme case-insensitive). */
const AUTH_HEADER_RE = /^\s*(?:bearer|token)\s+(\S+)\s*$/i;

function stringOrUndefined(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function header(headers: Record<string, unknown>, name: string): string | undefined {
  // Node's http module lower-cases incoming header names; a hand-made msg.req may not.
  const own = Object.prototype.hasOwnProperty;
  if (own.call(headers, name)) return stringOrUndefined(headers[name]);
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) return stringOrUndefined(headers[k]);
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Where a token was found (for logs and tests; never the token itself). */
export type TokenOrigin = 'msg.token' | 'authorization' | 'x-device-token' | 'x-thingspeakapikey' | 'api_key';

export interface FoundToken {
  token: string;
  origin: TokenOrigin;
}

/**
 * The token a message carries, in this order: msg.token; then, when msg.req is an HTTP request
 * (http-in), the `Authorization: Bearer|Token <token>` header, the `X-Device-Token` header, the
 * ThingSpeak `X-THINGSPEAKAPIKEY` header, and the `api_key` query parameter. Undefined when none is
 * there. Values that are not non-empty strings (arrays of repeated headers, numbers) are ignored.
 */
export function findToken(msg: Record<string, unknown>): FoundToken | undefined {
  const direct = stringOrUndefined(msg.token);
  if (direct !== undefined) return { token: direct, origin: 'msg.token' };
  const req = msg.req;
  if (!isObject(req)) return undefined;
  const headers = req.headers;
  if (isObject(headers)) {
    const auth = header(headers, 'authorization');
    if (auth !== undefined) {
      const m = AUTH_HEADER_RE.exec(auth);
      if (m) return { token: m[1], origin: 'authorization' };
    }
    const dev = header(headers, 'x-device-token');
    if (dev !== undefined) return { token: dev, origin: 'x-device-token' };
    const ts = header(headers, 'x-thingspeakapikey');
    if (ts !== undefined) return { token: ts, origin: 'x-thingspeakapikey' };
  }
  const query = req.query;
  if (isObject(query) && Object.prototype.hasOwnProperty.call(query, 'api_key')) {
    const key = stringOrUndefined(query.api_key);
    if (key !== undefined) return { token: key, origin: 'api_key' };
  }
  return undefined;
}

/** The provisioning key in msg.provisioningKey, when it is a non-empty string. */
export function findProvisioningKey(msg: Record<string, unknown>): string | undefined {
  return stringOrUndefined(msg.provisioningKey);
}

/** Removes the credentials a message brought in its own properties (never the HTTP request's). */
export function stripCredentials(msg: Record<string, unknown>): void {
  delete msg.token;
  delete msg.provisioningKey;
}
