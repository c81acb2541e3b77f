/** The window node's status line, from the engine's stats(). No Node-RED here. */
import type { NodeAPI, NodeStatus } from '../lib/red';
import type { WindowStats } from './engine';

const TYPE = 'thingwire-window';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f;
}

function parts(ms: number, timeZone: string): { date: string; time: string } {
  const p: Record<string, string> = {};
  for (const x of formatter(timeZone).formatToParts(ms)) p[x.type] = x.value;
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}:${p.second}` };
}

/** A watermark in the node's zone: "12:03:00" on the day of `now`, "2026-05-04 12:03:00" otherwise, "-" before any reading. */
export function formatWatermark(wm: number, now: number, timeZone: string): string {
  if (!Number.isFinite(wm)) return '-';
  const w = parts(wm, timeZone);
  return w.date === parts(now, timeZone).date ? w.time : `${w.date} ${w.time}`;
}

/** "12 keys · 14 open · wm 12:03:00" (green dot), or "waiting for readings" before the first one. */
export function statusOf(s: WindowStats, now: number, timeZone: string, _: NodeAPI['_']): NodeStatus {
  if (s.keys === 0 && s.readings === 0) return { fill: 'grey', shape: 'dot', text: _(`${TYPE}.status.waiting`) };
  return {
    fill: 'green',
    shape: 'dot',
    text: _(`${TYPE}.status.running`, { keys: s.keys, open: s.openWindows, wm: formatWatermark(s.watermark, now, timeZone) }),
  };
}
