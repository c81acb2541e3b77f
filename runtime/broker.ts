/**
 * The embedded MQTT broker (aedes) that the one-command runtime starts so no
 * external service is needed.
 */
import * as net from 'node:net';

export interface EmbeddedBroker {
  /** The port it listens on (useful when asked for port 0). */
  port: number;
  host: string;
  /** Number of connected clients. */
  clients(): number;
  close(): Promise<void>;
}

interface AedesLike {
  handle: (socket: net.Socket) => void;
  connectedClients: number;
  close(cb: () => void): void;
  on(event: string, fn: (...args: unknown[]) => void): void;
}

export async function startEmbeddedBroker(port: number, host: string, log: (m: string) => void = () => {}): Promise<EmbeddedBroker> {
  // aedes 1.x is an ES module; require() of it works on Node 20.19+.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Aedes } = require('aedes') as { Aedes: { createBroker(opts?: object): Promise<AedesLike> } };
  const broker = await Aedes.createBroker();
  broker.on('clientError', (client: unknown, err: unknown) => {
    log(`mqtt client ${(client as { id?: string })?.id ?? '?'} error: ${(err as Error)?.message}`);
  });
  const server = net.createServer(broker.handle);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    port: actual,
    host,
    clients: () => broker.connectedClients,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        broker.close(() => undefined);
      });
      return closed;
    },
  };
}
