/**
 * Listens to a Node-RED runtime's editor comms websocket (/comms), where the
 * debug nodes publish what they receive: a real observation point on a real
 * flow, as the editor's debug sidebar sees it.
 */
import WebSocket from 'ws';

export interface DebugMessage {
  id: string;
  name?: string;
  msg: string;
  format: string;
  property?: string;
  topic?: string;
}

/** A node's status as the editor receives it (topic status/<node id>). */
export interface StatusMessage {
  id: string;
  text?: string;
  fill?: string;
}

export class DebugTap {
  readonly messages: DebugMessage[] = [];
  readonly statuses: StatusMessage[] = [];
  private constructor(private readonly ws: WebSocket) {}

  static async open(url: string): Promise<DebugTap> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/comms`);
    const tap = new DebugTap(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ subscribe: 'debug' }));
    ws.send(JSON.stringify({ subscribe: 'status/#' }));
    ws.on('message', (data) => {
      let batch: Array<{ topic: string; data: DebugMessage }>;
      try {
        const parsed = JSON.parse(data.toString()) as unknown;
        batch = (Array.isArray(parsed) ? parsed : [parsed]) as typeof batch;
      } catch {
        return;
      }
      for (const m of batch) {
        if (m.topic === 'debug') tap.messages.push(m.data);
        else if (typeof m.topic === 'string' && m.topic.startsWith('status/')) {
          const st = (m.data ?? {}) as { text?: string; fill?: string };
          tap.statuses.push({ id: m.topic.slice('status/'.length), text: st.text, fill: st.fill });
        }
      }
    });
    return tap;
  }

  close(): void {
    this.ws.close();
  }
}
