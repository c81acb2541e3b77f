/** The alert node's status line, from the engine's stats(). No Node-RED here. */
import type { NodeStatus } from '../lib/red';
import type { AlertStats } from './engine';

const TYPE = 'thingwire-alert';

/**
 * "2 firing · 1 pending · 1 acked" (and "· 1 silence(s)" when there are any): a red dot while
 * alerts fire and not every active one is acknowledged, yellow when only pending or all acknowledged,
 * green with the number of keys watched when nothing is active, grey before the first key.
 */
export function statusOf(s: AlertStats, _: (key: string, subs?: Record<string, unknown>) => string): NodeStatus {
  const active = s.firing + s.pending;
  if (active === 0) {
    const text = s.keys === 0 ? _(`${TYPE}.status.idle`) : _(`${TYPE}.status.ok`, { keys: s.keys });
    return { fill: s.keys === 0 ? 'grey' : 'green', shape: 'dot', text: s.silences > 0 ? `${text} · ${_(`${TYPE}.status.silences`, { silences: s.silences })}` : text };
  }
  const parts = [_(`${TYPE}.status.firing`, { firing: s.firing }), _(`${TYPE}.status.pending`, { pending: s.pending }), _(`${TYPE}.status.acked`, { acked: s.acknowledged })];
  if (s.silences > 0) parts.push(_(`${TYPE}.status.silences`, { silences: s.silences }));
  return { fill: s.firing > 0 && s.acknowledged < active ? 'red' : 'yellow', shape: 'dot', text: parts.join(' · ') };
}
