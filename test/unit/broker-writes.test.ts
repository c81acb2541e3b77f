/**
 * runtime/broker.ts writeOncePerTurn: the embedded broker's connections send what was written to them in one
 * event-loop turn in one system call. Real loopback sockets (counting the stream's calls into the socket's handle),
 * and mqtt-packet writing to them as aedes does.
 */
import * as net from 'node:net';
import * as mqttPacket from 'mqtt-packet';
import { writeOncePerTurn } from '../../runtime/broker';

jest.setTimeout(30_000);

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Pair {
  /** The server's end (the one written to). */
  server: net.Socket;
  /** Everything the client's end has read so far. */
  received: () => Buffer;
  /** How many times the server's end handed data to its handle (one system call each). */
  calls: () => number;
  close: () => Promise<void>;
}

async function socketPair(wrap: boolean): Promise<Pair> {
  let server!: net.Socket;
  const listener = net.createServer((s) => {
    server = s;
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
  const { port } = listener.address() as net.AddressInfo;
  const chunks: Buffer[] = [];
  const client = net.connect(port, '127.0.0.1');
  client.on('data', (b: Buffer) => chunks.push(b));
  await new Promise<void>((r) => client.once('connect', () => r()));
  while (server === undefined) await turn();
  let n = 0;
  const s = server as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write1 = s._write.bind(server);
  const writev = s._writev.bind(server);
  s._write = (...a: unknown[]) => {
    n++;
    write1(...a);
  };
  s._writev = (...a: unknown[]) => {
    n++;
    writev(...a);
  };
  if (wrap) writeOncePerTurn(server);
  return {
    server,
    received: () => Buffer.concat(chunks),
    calls: () => n,
    close: async () => {
      client.destroy();
      server.destroy();
      await new Promise<void>((r) => listener.close(() => r()));
    },
  };
}

async function receivedAll(p: Pair, bytes: number): Promise<Buffer> {
  const until = Date.now() + 5000;
  while (p.received().length < bytes && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  return p.received();
}

describe('writeOncePerTurn', () => {
  const pieces = Array.from({ length: 50 }, (_, i) => Buffer.from(`packet ${i};`));
  const all = Buffer.concat(pieces);

  /** Writes the pieces in one synchronous loop; what the peer got and how many calls it took. */
  async function writeInOneTurn(wrap: boolean): Promise<{ received: string; calls: number; heldAtFirst: number }> {
    const p = await socketPair(wrap);
    try {
      for (const b of pieces) expect(p.server.write(b)).toBe(true);
      const heldAtFirst = p.calls();
      const received = (await receivedAll(p, all.length)).toString();
      return { received, calls: p.calls(), heldAtFirst };
    } finally {
      await p.close();
    }
  }

  it('sends the writes of one turn in one call, in order', async () => {
    const r = await writeInOneTurn(true);
    expect(r.heldAtFirst).toBe(0); // held until the turn ends
    expect(r.received).toBe(all.toString());
    expect(r.calls).toBe(1);
  });

  it('(without it the same writes take more than one call)', async () => {
    const r = await writeInOneTurn(false);
    expect(r.received).toBe(all.toString());
    expect(r.calls).toBeGreaterThan(1);
  });

  it('holds nothing past its turn: each turn is sent before the next begins', async () => {
    const p = await socketPair(true);
    try {
      let sent = '';
      for (let i = 0; i < 5; i++) {
        p.server.write(`turn ${i};`);
        p.server.write(`more ${i};`);
        sent += `turn ${i};more ${i};`;
        expect((await receivedAll(p, sent.length)).toString()).toBe(sent);
      }
      expect(p.calls()).toBe(5);
    } finally {
      await p.close();
    }
  });

  it('keeps backpressure: write() says stop past the high-water mark and drain comes once it is sent', async () => {
    const p = await socketPair(true);
    try {
      const big = Buffer.alloc(64 * 1024, 7);
      const answers = [p.server.write(big), p.server.write(big)];
      expect(answers).toEqual([false, false]);
      await new Promise<void>((r) => p.server.once('drain', () => r()));
      const got = await receivedAll(p, 2 * big.length);
      expect(got.length).toBe(2 * big.length);
      expect(got.every((x) => x === 7)).toBe(true);
    } finally {
      await p.close();
    }
  });
});

describe('with mqtt-packet, as aedes writes', () => {
  // aedes itself is an ES module jest cannot load; the built runtime's broker is exercised by the integration tests
  // (test/integration/load-faults.test.ts: bursts counted exactly in the store). mqtt-packet corks the socket for a
  // packet and uncorks it on the next tick, so packets written from one synchronous loop were joined already; aedes
  // writes each from its own callback chain, as here (a next-tick continuation each, after the last packet's uncork).
  const packets = Array.from({ length: 40 }, (_, i) =>
    i % 2 === 0
      ? { cmd: 'puback' as const, messageId: i + 1 }
      : { cmd: 'publish' as const, topic: `devices/d${i}/telemetry`, payload: Buffer.from(`{"seq":${i}}`), qos: 1 as const, messageId: i + 1, retain: false, dup: false },
  );

  async function writeAndParse(wrap: boolean): Promise<{ calls: number }> {
    const p = await socketPair(wrap);
    try {
      for (const packet of packets) {
        await new Promise((r) => process.nextTick(r));
        mqttPacket.writeToStream(packet, p.server);
      }
      const parsed: Array<{ cmd: string; messageId?: number; payload?: Buffer }> = [];
      const until = Date.now() + 5000;
      while (parsed.length < packets.length && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 5));
        parsed.length = 0;
        const parser = mqttPacket.parser();
        parser.on('packet', (x) => parsed.push(x as (typeof parsed)[number]));
        parser.parse(p.received());
      }
      expect(parsed.map((x) => [x.cmd, x.messageId])).toEqual(packets.map((x) => [x.cmd, x.messageId]));
      expect(parsed.filter((x) => x.cmd === 'publish').map((x) => x.payload?.toString())).toEqual(
        packets.filter((x) => x.cmd === 'publish').map((x) => (x as { payload: Buffer }).payload.toString()),
      );
      return { calls: p.calls() };
    } finally {
      await p.close();
    }
  }

  it('sends the packets written in one turn in one call and the peer parses every one', async () => {
    expect((await writeAndParse(true)).calls).toBe(1);
  });

  it('(without it each packet is a call of its own)', async () => {
    expect((await writeAndParse(false)).calls).toBe(packets.length);
  });
});
