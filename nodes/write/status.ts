/** The write node's status, from the store writer's figures. */
import type { WriterStats } from '../lib/store/writer';
import type { NodeAPI, NodeStatus } from '../lib/red';

const TYPE = 'thingwire-write';

export function statusOf(s: WriterStats, _: NodeAPI['_']): NodeStatus {
  const text = _(`${TYPE}.status.${s.state}`, {
    written: s.written,
    queued: s.bufferedLines,
    batches: s.memoryBatches,
    spooled: s.spooledBatches,
    rejected: s.rejected + s.dropped,
  });
  return { fill: s.state === 'ok' ? (s.rejected + s.dropped > 0 ? 'yellow' : 'green') : s.state === 'retrying' ? 'yellow' : 'red', shape: s.state === 'ok' ? 'dot' : 'ring', text };
}

