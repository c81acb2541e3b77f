/**
 * The dashboard's login: once the editor has one (THINGWIRE_ADMIN_PASSWORD_HASH), the dashboard asks for the same user
 * and password with HTTP Basic authentication: its pages and assets (FlowFuse Dashboard's `middleware` setting) and
 * its socket.io connection (`ioMiddleware`: a connection without the login is refused before it can send or receive
 * a message). The dashboard can register devices and show their tokens, acknowledge alerts and read every device's
 * data, so it is not left open where the editor is closed. The HTTP API (/api/v1) keeps its own keys and tokens.
 *
 * A bcrypt comparison costs ~50-100 ms by design; a page load makes dozens of requests, so a header that passed is
 * remembered (by an HMAC under a per-start key, never the header itself) for 10 minutes; at most 1,000 are kept.
 */
import * as crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import bcrypt from 'bcryptjs';
import type { NextFunction, Request, Response } from 'express';

const REMEMBER_MS = 10 * 60_000;
const MAX_REMEMBERED = 1000;

export interface DashboardAuth {
  /** Express middleware for the dashboard's HTTP routes. */
  http(req: Request, res: Response, next: NextFunction): void;
  /** socket.io middleware for the dashboard's connection (also keeps the dashboard's own default checks). */
  io(socket: { request: IncomingMessage; handshake: { xdomain: boolean }; client: { conn: { close(): void } } }, next: (err?: Error) => void): void;
  /** Whether an Authorization header carries the login. */
  check(header: string | undefined): Promise<boolean>;
}

export function dashboardAuth(user: string, passwordHash: string, now: () => number = Date.now): DashboardAuth {
  const key = crypto.randomBytes(32);
  const passed = new Map<string, number>();

  async function check(header: string | undefined): Promise<boolean> {
    if (typeof header !== 'string' || !/^Basic [A-Za-z0-9+/=]{1,1024}$/.test(header)) return false;
    const digest = crypto.createHmac('sha256', key).update(header).digest('hex');
    const until = passed.get(digest);
    if (until !== undefined && until > now()) return true;
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const name = decoded.slice(0, colon);
    const sameUser = name.length === user.length && crypto.timingSafeEqual(Buffer.from(name), Buffer.from(user));
    const ok = await bcrypt.compare(decoded.slice(colon + 1), passwordHash).catch(() => false);
    if (!ok || !sameUser) return false;
    if (passed.size >= MAX_REMEMBERED) passed.delete(passed.keys().next().value as string);
    passed.set(digest, now() + REMEMBER_MS);
    return true;
  }

  return {
    check,
    http(req, res, next) {
      void check(req.headers.authorization).then((ok) => {
        if (ok) return next();
        res.set('WWW-Authenticate', 'Basic realm="Thingwire dashboard", charset="UTF-8"');
        res.status(401).type('text/plain').send('The Thingwire dashboard needs the editor login (THINGWIRE_ADMIN_USER and its password).\n');
      });
    },
    io(socket, next) {
      void check(socket.request.headers.authorization).then((ok) => {
        if (!ok) return next(new Error('unauthorized: the Thingwire dashboard needs the editor login'));
        // The dashboard's own checks, which a custom ioMiddleware replaces: no direct websocket, same origin only.
        if ((socket.request.url ?? '').includes('transport=websocket')) return socket.client.conn.close();
        if (socket.handshake.xdomain !== false) return next(new Error('cross-origin dashboard connections are refused'));
        next();
      });
    },
  };
}
