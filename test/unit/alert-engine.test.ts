/**
 * The thingwire-alert engine (nodes/alert/engine.ts) with a controllable clock: each rule type,
 * every lifecycle transition, hysteresis, for-duration and N samples, re-notify, silences,
 * flapping, escalation and de-escalation, ack/unack, deadman from liveness events, dedupe under
 * many interleaved updates, snapshot/restore continuing identically, bounded keys, rejects.
 */
import { AlertEngine, AlertRulesError, MAX_BATCH, type AlertOutput } from '../../nodes/alert/engine';
import type { AlertEvent } from '../../nodes/lib/contract';
import type { LivenessEvent } from '../../nodes/lib/registry/types';
import { mulberry32 } from '../../runtime/sim-model';

const T0 = Date.UTC(2026, 0, 5, 12);
const S = 1000;
const MIN = 60_000;

/** A clocked engine: `at(t)` moves time; read() sends a reading at the current time. */
class Rig {
  readonly e: AlertEngine;
  now = T0;
  constructor(rules: unknown, opts: { maxKeys?: number; maxSilences?: number } = {}) {
    this.e = new AlertEngine({ rules, ...opts });
  }
  at(dt: number): this {
    this.now += dt;
    return this;
  }
  read(device: string, metrics: Record<string, unknown>, ts = this.now, tags?: Record<string, string>): AlertOutput {
    return this.e.ingest({ device, ts, metrics, ...(tags ? { tags } : {}) }, this.now);
  }
  /** Sends a reading; the earliest deadline of the keys it evaluated (AlertEngine.lastIngestDue). */
  readDue(device: string, metrics: Record<string, unknown>): number {
    this.read(device, metrics);
    return this.e.lastIngestDue(this.now);
  }
  /** Events of reading(s) as compact tuples [state, severity, reason, notify]. */
  r(device: string, metrics: Record<string, unknown>): string[] {
    return brief(this.read(device, metrics).events);
  }
  tick(): string[] {
    return brief(this.e.tick(this.now));
  }
  live(device: string, state: 'online' | 'offline', reason: LivenessEvent['reason'] = state === 'online' ? 'data' : 'timeout'): string[] {
    const ev: LivenessEvent = { device, state, since: this.now, lastSeen: null, reason };
    return brief(this.e.ingest(ev, this.now).events);
  }
}

function brief(events: readonly AlertEvent[]): string[] {
  return events.map((e) => `${e.state}:${e.severity}:${e.reason}${e.notify ? '!' : ''}${e.suppressed ? `(${e.suppressed})` : ''}`);
}

describe('thresholds and the lifecycle', () => {
  test('ok > firing > resolved > ok with hysteresis; one id per episode; event fields', () => {
    const g = new Rig([{ id: 'hot', metric: 'temperature', when: { above: 80, hysteresis: 2 }, severity: 'major', message: 'too hot' }]);
    expect(g.r('d1', { temperature: 70 })).toEqual([]);
    const fire = g.at(S).read('d1', { temperature: 81, humidity: 3 }).events;
    expect(fire).toHaveLength(1);
    expect(fire[0]).toEqual({
      key: 'd1/temperature/hot',
      device: 'd1',
      rule: 'hot',
      state: 'firing',
      severity: 'major',
      since: T0 + S,
      at: T0 + S,
      acknowledged: false,
      id: fire[0].id,
      thresholds: { raise: 'temperature > 80', clear: 'not (temperature > 78)' },
      silenced: false,
      flapping: false,
      metric: 'temperature',
      value: 81,
      message: 'too hot',
      values: { temperature: 81 },
      reason: 'firing',
      notify: true,
    });
    expect(g.at(S).r('d1', { temperature: 90 })).toEqual([]);
    expect(g.at(S).r('d1', { temperature: 79 })).toEqual([]); // inside the hysteresis
    const res = g.at(S).read('d1', { temperature: 78 }).events;
    expect(brief(res)).toEqual(['resolved:major:resolve!']);
    expect(res[0].id).toBe(fire[0].id);
    expect(res[0].since).toBe(g.now);
    expect(g.at(S).r('d1', { temperature: 70 })).toEqual([]); // resolved > ok silently
    const again = g.at(S).read('d1', { temperature: 85 }).events;
    expect(brief(again)).toEqual(['firing:major:firing!']);
    expect(again[0].id).not.toBe(fire[0].id);
  });

  test('below, inside and outside bands, equals on booleans and strings', () => {
    const g = new Rig([
      { id: 'cold', metric: 't', when: { below: 0 } },
      { id: 'in', metric: 'h', when: { inside: [40, 60] }, severity: 'info' },
      { id: 'out', metric: 'p', when: { outside: [1, 2] }, severity: 'minor' },
      { id: 'door', metric: 'open', when: { equals: true } },
      { id: 'mode', metric: 'mode', when: { equals: 'fault' }, severity: 'critical' },
    ]);
    expect(g.r('d', { t: -1, h: 50, p: 1.5, open: false, mode: 'run' })).toEqual(['firing:warning:firing!', 'firing:info:firing!']);
    expect(g.at(S).r('d', { t: 1, h: 70, p: 3, open: true, mode: 'fault' })).toEqual([
      'resolved:warning:resolve!',
      'resolved:info:resolve!',
      'firing:minor:firing!',
      'firing:warning:firing!',
      'firing:critical:firing!',
    ]);
    expect(g.e.active(g.now).map((a) => a.key)).toEqual(['d/mode/mode', 'd/p/out', 'd/open/door']);
  });

  test('pending for a duration (tick), cancelled when it stops holding', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, for: '30s' }]);
    const p = g.read('d', { t: 81 }).events;
    expect(brief(p)).toEqual(['pending:warning:pending']);
    expect(g.e.nextDeadline()).toBe(T0 + 30 * S);
    expect(g.at(10 * S).r('d', { t: 82 })).toEqual([]);
    expect(g.at(10 * S).tick()).toEqual([]);
    expect(g.at(5 * S).r('d', { t: 79 })).toEqual(['ok:warning:cancel']);
    expect(g.e.nextDeadline()).toBe(Infinity);
    expect(g.at(S).r('d', { t: 81 })).toEqual(['pending:warning:pending']);
    const start = g.now;
    expect(g.at(29 * S).tick()).toEqual([]);
    const f = g.e.tick((g.now = start + 30 * S));
    expect(brief(f)).toEqual(['firing:warning:firing!']);
    expect(f[0].id).toBe(g.e.snapshot().keys[0][10]);
    expect(f[0].since).toBe(start + 30 * S);
  });

  test('pending for N samples: a reading in between that does not hold starts over', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, samples: 3 }]);
    expect(g.r('d', { t: 81 })).toEqual(['pending:warning:pending']);
    expect(g.at(S).r('d', { t: 82 })).toEqual([]);
    expect(g.at(S).r('d', { t: 70 })).toEqual(['ok:warning:cancel']);
    expect(g.at(S).r('d', { t: 81 })).toEqual(['pending:warning:pending']);
    expect(g.at(S).r('d', { t: 81 })).toEqual([]);
    expect(g.at(S).tick()).toEqual([]); // samples are not time: tick does not complete them
    expect(g.at(S).r('d', { t: 81 })).toEqual(['firing:warning:firing!']);
  });

  test('for and samples together need both', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, samples: 2, for: '10s' }]);
    expect(g.r('d', { t: 81 })).toEqual(['pending:warning:pending']);
    expect(g.at(20 * S).tick()).toEqual([]);
    expect(g.e.nextDeadline()).toBe(Infinity);
    expect(g.r('d', { t: 81 })).toEqual(['firing:warning:firing!']);
  });

  test('an explicit clear condition', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, clear: { below: 50 } }]);
    g.r('d', { t: 90 });
    expect(g.at(S).r('d', { t: 60 })).toEqual([]);
    expect(g.at(S).r('d', { t: 49 })).toEqual(['resolved:warning:resolve!']);
  });
});

describe('rule types', () => {
  test('rate of change over the last two values, per minute', () => {
    const g = new Rig([{ id: 'rise', metric: 'p', when: { rate: true, per: 'min', above: 10 } }]);
    expect(g.r('d', { p: 0 })).toEqual([]);
    expect(g.at(30 * S).r('d', { p: 4 })).toEqual([]); // 8/min
    const f = g.at(30 * S).read('d', { p: 10 }).events; // 12/min
    expect(brief(f)).toEqual(['firing:warning:firing!']);
    expect(f[0].value).toBeCloseTo(12, 10);
    expect(f[0].thresholds!.raise).toBe('rate(p)/min > 10');
    expect(g.at(30 * S).r('d', { p: 12 })).toEqual(['resolved:warning:resolve!']);
    // The same timestamp again and an older one change nothing.
    expect(g.read('d', { p: 100 }, g.now).events).toEqual([]);
    expect(g.read('d', { p: 100 }, g.now - 5 * S).events).toEqual([]);
    expect(g.e.stats().stale).toBe(1);
  });

  test('rate over a window of event time', () => {
    const g = new Rig([{ id: 'rise', metric: 'p', when: { rate: true, per: 'min', over: '5m', above: 1 } }]);
    // 0.9/min for 10 minutes, one reading every 10 s: never above 1.
    let v = 0;
    const ts0 = g.now;
    for (let i = 0; i <= 60; i++) expect(g.read('d', { p: (v = 0.15 * i) }, ts0 + i * 10 * S).events).toEqual([]);
    // A jump of 2 within the window: over 5 minutes the rise is 4.5 + 2 = 6.5 -> 1.3/min.
    const f = g.read('d', { p: v + 2 }, ts0 + 610 * S).events;
    expect(brief(f)).toEqual(['firing:warning:firing!']);
    expect(f[0].value as number).toBeGreaterThan(1.2);
    expect(f[0].value as number).toBeLessThan(1.45);
  });

  test('anomaly scores and flags, from AnomalyScore and from the anomaly node\'s events', () => {
    const g = new Rig([
      { id: 'score', metric: 'temperature', when: { anomaly: true, above: 0.8 }, severity: 'minor' },
      { id: 'flag', metric: 'temperature', when: { anomaly: true } },
      { id: 'maint', when: { maintenance: 'bearing' }, severity: 'major' },
      { id: 'prob', when: { maintenance: 'bearing', above: 0.5 }, severity: 'critical' },
    ]);
    const score = (metric: string, s: number, anomalous: boolean, maintenance?: object) =>
      brief(g.e.ingest([{ device: 'm1', metric, ts: g.now, value: 1, score: s, anomalous, expected: 1, lower: 0, upper: 2, signal: 'level', learning: false, ...(maintenance ? { maintenance } : {}) }], g.now).events);
    expect(score('temperature', 0.5, false)).toEqual([]);
    expect(g.at(S) && score('temperature', 0.9, true)).toEqual(['firing:minor:firing!', 'firing:warning:firing!']);
    expect(g.at(S) && score('temperature', 0.1, false)).toEqual(['resolved:minor:resolve!', 'resolved:warning:resolve!']);
    const ev = (rule: string, metric: string, state: string): string[] => brief(g.e.ingest({ key: `m1/${metric}/${rule}`, device: 'm1', rule, state, severity: 'major', since: g.now, metric }, g.now).events);
    expect(g.at(S) && ev('anomaly', 'temperature', 'firing')).toEqual(['firing:warning:firing!']);
    expect(g.at(S) && ev('anomaly', 'temperature', 'resolved')).toEqual(['resolved:warning:resolve!']);
    expect(g.at(S) && ev('maintenance', 'bearing', 'firing')).toEqual(['firing:major:firing!']);
    expect(g.at(S) && ev('maintenance', 'bearing', 'resolved')).toEqual(['resolved:major:resolve!']);
    const est = { threshold: 80, direction: 'above', ttf: 3_600_000, ttfLow: null, ttfHigh: null, probability: 0.7, horizon: 86_400_000, slope: 1, model: 'theil-sen', alert: true };
    expect(g.at(S) && score('bearing', 0.1, false, est)).toEqual(['firing:major:firing!', 'firing:critical:firing!']);
    // Events of other rules (e.g. this node's own, looped back) are ignored, not rejected.
    const out = g.e.ingest({ key: 'x', device: 'm1', rule: 'hot', state: 'firing', severity: 'major', since: g.now }, g.now);
    expect([out.events, out.rejects, g.e.stats().ignored]).toEqual([[], [], 1]);
  });

  test('deadman from liveness events: for-duration, online resolves, unknown devices make no key', () => {
    const g = new Rig([{ id: 'offline', when: { offline: true }, for: '2m', severity: 'major' }]);
    expect(g.live('d1', 'online')).toEqual([]);
    expect(g.e.stats().keys).toBe(0);
    expect(g.live('d1', 'offline', 'never-seen')).toEqual(['pending:major:pending']);
    expect(g.at(MIN).tick()).toEqual([]);
    expect(g.at(MIN).tick()).toEqual(['firing:major:firing!']);
    const ev = g.e.active(g.now)[0];
    expect([ev.key, ev.value, ev.values]).toEqual(['d1/offline', true, { offline: true }]);
    expect(g.at(S).live('d1', 'online')).toEqual(['resolved:major:resolve!']);
    // Offline then online within the hold: cancelled, never fired.
    expect(g.at(S).live('d1', 'offline')).toEqual(['pending:major:pending']);
    expect(g.at(S).live('d1', 'online')).toEqual(['ok:major:cancel']);
    expect(g.at(10 * MIN).tick()).toEqual([]);
  });

  test('deadman combined with a metric; tags from meta select rules and build keys', () => {
    const g = new Rig([
      { id: 'flat', when: { all: [{ offline: true }, { metric: 'battery', below: 10 }] }, severity: 'critical' },
      { id: 'site', tags: { site: 'mad' }, key: '{tags.site}/{rule}', when: { offline: true } },
    ]);
    g.read('d1', { battery: 5 });
    const out = g.at(S).e.ingest({ device: 'd1', state: 'offline', since: g.now, lastSeen: g.now - S, reason: 'timeout' }, g.now, { tags: { site: 'mad' } });
    expect(out.events.map((e) => [e.key, e.state, e.severity])).toEqual([
      ['d1/flat', 'firing', 'critical'],
      ['mad/site', 'firing', 'warning'],
    ]);
  });

  test('AND / OR / NOT over several metrics of one device', () => {
    const g = new Rig([{ id: 'muggy', when: { all: [{ metric: 't', above: 30 }, { any: [{ metric: 'h', above: 80 }, { not: { metric: 'fan', equals: true } }] }] } }]);
    expect(g.r('d', { t: 31, h: 50, fan: true })).toEqual([]);
    expect(g.at(S).r('d', { h: 85 })).toEqual(['firing:warning:firing!']);
    expect(g.at(S).r('d', { h: 50 })).toEqual(['resolved:warning:resolve!']);
    expect(g.at(S).r('d', { fan: false })).toEqual(['firing:warning:firing!']);
    expect(g.at(S).r('d', { t: 20 })).toEqual(['resolved:warning:resolve!']);
  });

  test('metric globs: one key per metric; devices and tags filter', () => {
    const g = new Rig([{ id: 'hi', devices: ['pump-*'], tags: { site: 'mad' }, metric: 'temp*', when: { above: 50 } }]);
    const out = g.read('pump-1', { temp_in: 60, temp_out: 70, load: 99 }, g.now, { site: 'mad' });
    expect(out.events.map((e) => e.key)).toEqual(['pump-1/temp_in/hi', 'pump-1/temp_out/hi']);
    expect(out.evaluations).toBe(2);
    expect(g.read('fan-1', { temp_in: 60 }, g.now, { site: 'mad' }).events).toEqual([]);
    expect(g.read('pump-2', { temp_in: 60 }, g.now, { site: 'bcn' }).events).toEqual([]);
    expect(g.read('pump-3', { temp_in: 60 }).events).toEqual([]);
  });
});

describe('escalation and de-escalation', () => {
  const rules = [
    {
      id: 'hot',
      metric: 't',
      levels: [
        { severity: 'warning', when: { above: 70 }, clear: { below: 65 } },
        { severity: 'critical', when: { above: 90 }, clear: { below: 85 }, samples: 2 },
      ],
    },
  ];

  test('each level with its own hold and clear', () => {
    const g = new Rig(rules);
    const first = g.read('d', { t: 75 }).events[0];
    expect(g.at(S).r('d', { t: 95 })).toEqual([]); // critical holding, 1 of 2 samples
    const esc = g.at(S).read('d', { t: 96 }).events;
    expect(brief(esc)).toEqual(['firing:critical:escalate!']);
    expect([esc[0].id, esc[0].previousSeverity, esc[0].since]).toEqual([first.id, 'warning', T0]);
    expect(g.at(S).r('d', { t: 87 })).toEqual([]); // critical's hysteresis
    const de = g.at(S).read('d', { t: 68 }).events; // critical clears; warning does not (68 > 65)
    expect(brief(de)).toEqual(['firing:warning:de-escalate!']);
    expect(de[0].previousSeverity).toBe('critical');
    expect(g.at(S).r('d', { t: 64 })).toEqual(['resolved:warning:resolve!']);
    // Straight from ok to the most severe level whose raise holds.
    expect(g.at(S).r('d', { t: 99 })).toEqual(['pending:critical:pending']);
    expect(g.at(S).r('d', { t: 75 })).toEqual(['firing:warning:firing!']); // pending switches to warning, which has no hold
  });

  test('pending moves between levels; a crash from critical straight to resolved', () => {
    const g = new Rig(rules);
    expect(g.r('d', { t: 99 })).toEqual(['pending:critical:pending']);
    expect(g.at(S).r('d', { t: 99 })).toEqual(['firing:critical:firing!']);
    expect(g.at(S).r('d', { t: 10 })).toEqual(['resolved:critical:resolve!']);
    expect(g.at(S).r('d', { t: 99 })).toEqual(['pending:critical:pending']);
    expect(g.at(S).r('d', { t: 75 })).toEqual(['firing:warning:firing!']);
  });

  test('an escalation drops the acknowledgement; a de-escalation keeps it', () => {
    const g = new Rig(rules);
    const id = g.read('d', { t: 75 }).events[0].id!;
    expect(g.e.ack(id, { by: 'ana' }, g.now).ok).toBe(true);
    g.at(S).read('d', { t: 95 });
    const esc = g.at(S).read('d', { t: 95 }).events[0];
    expect([esc.reason, esc.acknowledged, esc.ack]).toEqual(['escalate', false, undefined]);
    g.e.ack(id, { by: 'bo', comment: 'on it' }, g.now);
    const de = g.at(S).read('d', { t: 80 }).events[0];
    expect([de.reason, de.acknowledged, de.ack]).toEqual(['de-escalate', true, { by: 'bo', at: g.now - S, comment: 'on it' }]);
  });
});

describe('operators: ack, re-notify, silences', () => {
  test('ack / unack by id or key; re-notify only while unacknowledged', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, renotify: '10m' }]);
    const id = g.read('d', { t: 90 }).events[0].id!;
    expect(g.e.nextDeadline()).toBe(T0 + 10 * MIN);
    expect(g.at(10 * MIN).tick()).toEqual(['firing:warning:renotify!']);
    expect(g.at(5 * MIN).tick()).toEqual([]);
    const a = g.e.ack('d/t/hot', { by: 'ana', comment: 'looking' }, g.now);
    expect([a.ok, brief(a.events), a.events[0].ack, a.events[0].id]).toEqual([true, ['firing:warning:ack'], { by: 'ana', at: g.now, comment: 'looking' }, id]);
    expect(g.e.nextDeadline()).toBe(Infinity);
    expect(g.at(60 * MIN).tick()).toEqual([]);
    expect(g.e.stats().acknowledged).toBe(1);
    const u = g.e.unack(id, g.now);
    expect(brief(u.events)).toEqual(['firing:warning:unack']);
    expect(u.events[0].ack).toBeUndefined();
    expect(g.at(S).tick()).toEqual(['firing:warning:renotify!']); // overdue since the last notification
    expect(g.at(10 * MIN).tick()).toEqual(['firing:warning:renotify!']);
    // Acks on what is not active, bad acks.
    expect(g.e.ack('nope', { by: 'x' }, g.now)).toMatchObject({ ok: false, code: 'not_found' });
    expect(g.e.ack(id, { by: '' }, g.now)).toMatchObject({ ok: false, code: 'invalid' });
    expect(g.e.ack(id, { by: 'x', comment: 5 } as never, g.now)).toMatchObject({ ok: false, code: 'invalid' });
    expect(g.e.unack('nope', g.now)).toMatchObject({ ok: false, code: 'not_found' });
    g.at(S).read('d', { t: 10 });
    expect(g.e.ack(id, { by: 'late' }, g.now)).toMatchObject({ ok: false, code: 'not_found' });
  });

  test('a silence marks notifications suppressed but the state still changes; its end catches up', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, renotify: '5m' }]);
    const s = g.e.silence({ device: 'pump-*', until: g.now + 30 * MIN, by: 'ana', comment: 'maintenance' }, g.now);
    expect(s.ok).toBe(true);
    expect(g.e.nextDeadline()).toBe(T0 + 30 * MIN);
    expect(g.r('pump-1', { t: 90 })).toEqual(['firing:warning:firing(silenced)']);
    expect(g.r('fan-1', { t: 90 })).toEqual(['firing:warning:firing!']);
    expect(g.e.active(g.now).map((a) => [a.device, a.silenced])).toEqual([
      ['fan-1', false],
      ['pump-1', true],
    ]);
    expect(g.at(5 * MIN).tick()).toEqual(['firing:warning:renotify!']); // fan-1 only
    expect(g.at(S).r('pump-1', { t: 70 })).toEqual(['resolved:warning:resolve']); // never notified: nothing to resolve
    expect(g.at(S).r('pump-1', { t: 95 })).toEqual(['firing:warning:firing(silenced)']);
    // The silence ends while pump-1 fires: the firing is notified then.
    g.now = T0 + 30 * MIN;
    expect(g.tick()).toEqual(['firing:warning:unsilenced!', 'firing:warning:renotify!']);
    expect(g.e.silences(g.now)).toEqual([]);
  });

  test('silenced after a notified firing: the suppressed resolution is sent when the silence is removed', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 } }]);
    const id = g.read('d', { t: 90 }).events[0].id;
    const s = g.e.silence({ rule: 'hot', until: g.now + 60 * MIN }, g.now);
    expect(brief(s.events)).toEqual(['firing:warning:silenced']);
    expect(g.at(S).r('d', { t: 10 })).toEqual(['resolved:warning:resolve(silenced)']);
    expect(g.at(S).r('d', { t: 20 })).toEqual([]);
    const u = g.e.unsilence(s.id!, g.now);
    expect(brief(u.events)).toEqual(['resolved:warning:unsilenced!']);
    expect(u.events[0].id).toBe(id);
    expect(g.e.unsilence(s.id!, g.now)).toMatchObject({ ok: false, code: 'not_found' });
    expect(g.e.stats()).toMatchObject({ pending: 0, firing: 0, silences: 0 });
  });

  test('silence by key; bad silences; the limit', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 } }], { maxSilences: 2 });
    g.e.silence({ key: 'a/t/hot', until: g.now + MIN }, g.now);
    expect(g.r('a', { t: 90 })).toEqual(['firing:warning:firing(silenced)']);
    expect(g.r('b', { t: 90 })).toEqual(['firing:warning:firing!']);
    for (const bad of [{ until: g.now + MIN }, { device: 'a', until: g.now }, { device: 'bad id', until: g.now + 1 }, { rule: 5, until: g.now + 1 }, null]) {
      expect(g.e.silence(bad as never, g.now)).toMatchObject({ ok: false, code: 'invalid' });
    }
    expect(g.e.silence({ device: 'x', until: g.now + 1 }, g.now).ok).toBe(true);
    expect(g.e.silence({ device: 'y', until: g.now + 1 }, g.now)).toMatchObject({ ok: false, code: 'limit' });
  });
});

describe('flapping', () => {
  test('N changes within the window: flapping, notifications held until stable, then caught up', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, flap: { changes: 4, window: '10m', stable: '5m' } }]);
    expect(g.r('d', { t: 90 })).toEqual(['firing:warning:firing!']);
    expect(g.at(MIN).r('d', { t: 70 })).toEqual(['resolved:warning:resolve!']);
    expect(g.at(MIN).r('d', { t: 90 })).toEqual(['firing:warning:firing!']);
    // The change that makes it flap is held back; the 'flapping' event is notified once.
    expect(g.at(MIN).r('d', { t: 70 })).toEqual(['resolved:warning:resolve(flapping)', 'resolved:warning:flapping!']);
    expect(g.at(MIN).r('d', { t: 90 })).toEqual(['firing:warning:firing(flapping)']);
    expect(g.e.active(g.now)[0].flapping).toBe(true);
    expect(g.at(MIN).r('d', { t: 70 })).toEqual(['resolved:warning:resolve(flapping)']);
    expect(g.at(MIN).r('d', { t: 90 })).toEqual(['firing:warning:firing(flapping)']);
    expect(g.e.nextDeadline()).toBe(g.now + 5 * MIN);
    expect(g.at(4 * MIN).tick()).toEqual([]);
    expect(g.at(MIN).tick()).toEqual(['firing:warning:stable!']); // firing now; last notified: an earlier episode's firing
    expect(g.at(MIN).r('d', { t: 70 })).toEqual(['resolved:warning:resolve!']);
  });

  test('changes spread wider than the window are not flapping; stable with nothing to catch up', () => {
    // (The second rig: firing!, resolve!, then a firing that starts flapping.)
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, flap: { changes: 3, window: '10m' } }]);
    for (let i = 0; i < 6; i++) expect(g.at(6 * MIN).r('d', { t: i % 2 === 0 ? 90 : 70 })).toEqual([i % 2 === 0 ? 'firing:warning:firing!' : 'resolved:warning:resolve!']);
    const h = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, flap: { changes: 3, window: '10m' } }]);
    h.r('d', { t: 90 });
    h.at(S).r('d', { t: 70 });
    expect(h.at(S).r('d', { t: 90 })).toEqual(['firing:warning:firing(flapping)', 'firing:warning:flapping!']);
    expect(h.at(S).r('d', { t: 70 })).toEqual(['resolved:warning:resolve']); // its firing was never notified
    expect(h.at(S).r('d', { t: 70 })).toEqual([]);
    expect(h.at(10 * MIN).tick()).toEqual(['ok:warning:stable']); // last notified: the resolution; nothing to catch up
    expect(h.e.stats()).toMatchObject({ firing: 0, keys: 1 });
    expect(h.e.nextDeadline()).toBe(Infinity);
  });
});

describe('dedupe, bounds, input', () => {
  test('many interleaved updates for few keys: exactly one alert per key and episode', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, samples: 2 }]);
    const rnd = mulberry32(7);
    const devices = ['a', 'b', 'c'];
    const batch: unknown[] = [];
    for (let i = 0; i < 3000; i++) batch.push({ device: devices[Math.floor(rnd() * 3)], ts: g.now, metrics: { t: 81 + rnd() } });
    const out = g.e.ingest(batch, g.now);
    // Many copies of the same condition: one pending and one firing per key, one id per key.
    expect(out.events.map((e) => `${e.device}:${e.state}`).sort()).toEqual(['a:firing', 'a:pending', 'b:firing', 'b:pending', 'c:firing', 'c:pending']);
    const ids = new Map<string, Set<string>>();
    for (const e of out.events) (ids.get(e.key) ?? ids.set(e.key, new Set()).get(e.key)!).add(e.id!);
    expect([...ids.values()].map((s) => s.size)).toEqual([1, 1, 1]);
    expect(g.e.stats()).toMatchObject({ keys: 3, firing: 3 });
    // Interleaved single messages with timestamps jumbled: still one alert per key.
    const all: AlertEvent[] = [];
    for (let i = 0; i < 5000; i++) all.push(...g.e.ingest({ device: devices[i % 3], ts: g.now + Math.floor(rnd() * 100), metrics: { t: 85 } }, g.now).events);
    expect(all).toEqual([]);
    expect(g.e.active(g.now)).toHaveLength(3);
  });

  test('bounded keys: the least recently used quiet keys go; active keys stay; overflow counted', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 } }], { maxKeys: 64 });
    g.read('hot-1', { t: 90 });
    for (let i = 0; i < 200; i++) g.read(`d${i}`, { t: 1 });
    const st = g.e.stats();
    expect(st.keys).toBeLessThanOrEqual(64);
    expect(st.evicted).toBe(200 + 1 - st.keys);
    expect(g.e.active(g.now).map((a) => a.device)).toEqual(['hot-1']);
    const full = new Rig([{ id: 'hot', metric: 't', when: { above: 80 } }], { maxKeys: 2 });
    full.read('a', { t: 90 });
    full.read('b', { t: 90 });
    expect(full.read('c', { t: 90 }).events).toEqual([]);
    expect(full.e.stats()).toMatchObject({ keys: 2, overflow: 1 });
  });

  test('bad input is rejected, never thrown', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 } }]);
    const cases: Array<[unknown, string]> = [
      [null, 'not_a_reading'],
      [42, 'not_a_reading'],
      [{ device: 'bad id', ts: 1, metrics: {} }, 'invalid_device'],
      [{ device: 'd', ts: 'x', metrics: { t: 1 } }, 'invalid_ts'],
      [{ device: 'd', ts: 1, metrics: [1] }, 'not_a_reading'],
      [{ device: 'd', ts: 1, metrics: { t: NaN } }, 'invalid_value'],
      [{ device: 'd', metric: '_x', ts: 1, score: 0.5 }, 'invalid_metric'],
      [{ device: 'd', metric: 't', ts: 1, score: 7 }, 'invalid_value'],
      [{ device: 'd', state: 'offline', since: 'x' }, 'invalid_ts'],
      [{ device: 'd', something: 1 }, 'not_a_reading'],
      [JSON.parse('{"device":"d","ts":1,"metrics":{"__proto__":{"t":99},"constructor":1}}'), ''],
    ];
    for (const [input, code] of cases) {
      const out = g.e.ingest(input, g.now);
      expect([out.rejects.map((r) => r.code).join(), out.events]).toEqual([code, []]);
    }
    const batch = g.e.ingest([{ device: 'd', ts: 1, metrics: { t: 90 } }, 'junk'], g.now);
    expect([brief(batch.events), batch.rejects]).toEqual([['firing:warning:firing!'], [{ code: 'not_a_reading', message: expect.stringContaining('expected'), index: 1 }]]);
    expect(g.e.ingest(new Array(MAX_BATCH + 1).fill(null), g.now).rejects.map((r) => r.code)).toEqual(['payload_too_large']);
    expect(g.e.ingest({ device: 'd', ts: 1, metrics: { t: 1 } }, NaN).rejects.map((r) => r.code)).toEqual(['invalid_ts']);
    expect(g.e.tick(NaN)).toEqual([]);
  });

  test('bad rules throw one error listing every problem; bad options throw', () => {
    let err: unknown;
    try {
      new AlertEngine({ rules: [{ id: 'a' }, { id: 'b', metric: 'm', when: { above: 'x' } }] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AlertRulesError);
    expect((err as AlertRulesError).problems.map((p) => p.path)).toEqual(['rules[0]', 'rules[1].when.above']);
    expect(() => new AlertEngine({ rules: [], maxKeys: 0 })).toThrow(RangeError);
  });

  test('forget(device) resolves and drops its keys', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 } }, { id: 'off', when: { offline: true }, for: '1m' }]);
    g.read('d', { t: 90 });
    g.live('d', 'offline');
    g.read('e', { t: 90 });
    expect(brief(g.e.forget('d', g.now))).toEqual(['resolved:warning:forgotten!', 'ok:warning:forgotten']);
    expect(g.e.stats()).toMatchObject({ keys: 1, firing: 1, pending: 0 });
  });
});

describe('snapshot / restore', () => {
  const rules = [
    { id: 'hot', metric: 't*', levels: [{ severity: 'warning', when: { above: 70, hysteresis: 3 }, samples: 2 }, { severity: 'critical', when: { above: 90 }, for: '1m' }], renotify: '3m', flap: { changes: 4, window: '5m' } },
    { id: 'rise', metric: 'p', when: { rate: true, per: 'min', over: '2m', above: 5 } },
    { id: 'off', when: { any: [{ offline: true }, { anomaly: 'p', above: 0.9 }] }, for: '30s', severity: 'major' },
  ];

  /** A seeded stream of readings, liveness, scores, ticks, acks and silences; returns a log of every output. */
  function drive(e: AlertEngine, seed: number, steps: number, t0: number): { log: unknown[]; now: number } {
    const r = mulberry32(seed);
    const log: unknown[] = [];
    let now = t0;
    for (let i = 0; i < steps; i++) {
      now += Math.floor(r() * 20 * S);
      const d = `d${Math.floor(r() * 4)}`;
      const x = r();
      if (x < 0.6) log.push(e.ingest({ device: d, ts: now - Math.floor(r() * 5 * S), metrics: { t1: 60 + r() * 40, t2: 50 + r() * 45, p: i * 0.1 + (r() < 0.05 ? 20 : 0) } }, now));
      else if (x < 0.7) log.push(e.ingest({ device: d, state: r() < 0.5 ? 'offline' : 'online', since: now, lastSeen: null, reason: 'timeout' }, now));
      else if (x < 0.8) log.push(e.ingest({ device: d, metric: 'p', ts: now, value: 1, score: r(), anomalous: false, expected: 1, lower: 0, upper: 2, signal: 'level', learning: false }, now));
      else if (x < 0.9) log.push(e.tick(now));
      else if (x < 0.95) {
        const a = e.active(now);
        if (a.length > 0) log.push(r() < 0.7 ? e.ack(a[Math.floor(r() * a.length)].id!, { by: 'op' }, now) : e.unack(a[Math.floor(r() * a.length)].key, now));
      } else log.push(e.silence({ device: d, until: now + Math.floor(r() * 5 * MIN) + 1 }, now));
      log.push(e.nextDeadline());
    }
    log.push(e.active(now), e.stats());
    return { log, now };
  }

  test('a restored engine continues exactly as one that never stopped', () => {
    for (const seed of [1, 2, 3]) {
      const a = new AlertEngine({ rules, maxKeys: 20 });
      const first = drive(a, seed, 400, T0);
      const snap = JSON.parse(JSON.stringify(a.snapshot()));
      const b = new AlertEngine({ rules: JSON.stringify(rules), maxKeys: 20 });
      expect(b.restore(snap, first.now)).toEqual([]);
      expect(b.snapshot()).toEqual(a.snapshot());
      const ra = drive(a, seed + 100, 400, first.now);
      const rb = drive(b, seed + 100, 400, first.now);
      expect(rb.log).toEqual(ra.log);
      expect(JSON.stringify(ra.log)).toContain('"reason":"escalate"');
      expect(JSON.stringify(ra.log)).toContain('"reason":"renotify"');
    }
  });

  test('snapshotText: the text of snapshot() in pieces of whole key rows', () => {
    for (const seed of [4, 5]) {
      const a = new AlertEngine({ rules, maxKeys: 20 });
      drive(a, seed, 300, T0);
      const whole = JSON.stringify(a.snapshot());
      expect(a.snapshot().keys.length).toBeGreaterThan(8);
      expect(a.snapshot().live.length).toBeGreaterThan(1);
      for (const per of [1, 3, 1000]) {
        const pieces = [...a.snapshotText(per)];
        expect(pieces.join('')).toBe(whole);
        expect(pieces.length).toBe(2 + Math.ceil(a.snapshot().keys.length / per));
      }
    }
    const empty = new AlertEngine({ rules });
    expect([...empty.snapshotText()].join('')).toBe(JSON.stringify(empty.snapshot()));
  });

  test('snapshotText while the engine goes on between pieces: restorable, each key once, live marks as their rows', () => {
    const liveWorthy = (nums: number[], flapping: boolean): boolean => nums[0] === 1 || nums[0] === 2 || flapping || (nums[6] === 1 && nums[0] !== 2);
    let changedMidway = 0;
    for (const seed of [6, 7, 8, 9]) {
      const a = new AlertEngine({ rules, maxKeys: 20 });
      let { now } = drive(a, seed, 300, T0);
      const parts: string[] = [];
      let i = 0;
      for (const piece of a.snapshotText(2)) {
        parts.push(piece);
        // Readings, ticks, acks, silences and evictions (maxKeys 20) between the pieces (the last one ends the text).
        if (!piece.startsWith('],"live":')) now = drive(a, seed * 1000 + i++, 5, now).now;
      }
      const snap = JSON.parse(parts.join('')) as { keys: unknown[][]; live: number[]; seq: number };
      if (JSON.stringify(snap) !== JSON.stringify(a.snapshot())) changedMidway++;
      const names = snap.keys.map((r) => `${r[0]}|${r[1]}|${r[2]}`);
      expect(new Set(names).size).toBe(names.length);
      const live = new Set(snap.live);
      expect(live.size).toBe(snap.live.length);
      snap.keys.forEach((r, j) => expect([j, live.has(j)]).toEqual([j, liveWorthy(r[9] as number[], r[13] as boolean)]));
      expect(snap.seq).toBe(a.snapshot().seq);
      const b = new AlertEngine({ rules, maxKeys: 20 });
      expect(b.restore(snap, now)).toEqual([]);
      expect(b.stats()).toMatchObject({ keys: snap.keys.length });
      expect(b.active(now).length).toBe(snap.keys.filter((r) => (r[9] as number[])[0] === 1 || (r[9] as number[])[0] === 2).length);
    }
    expect(changedMidway).toBe(4);
  });

  test('snapshotText: a key dropped and made anew between pieces is written once', () => {
    const a = new AlertEngine({ rules: [{ id: 'hot', metric: 't', when: { above: 80 } }], maxKeys: 10 });
    for (let d = 0; d < 10; d++) a.ingest({ device: `d${d}`, ts: T0 + d, metrics: { t: 20 } }, T0 + d);
    const it = a.snapshotText(1);
    const parts = [it.next().value as string, it.next().value as string];
    expect(parts[1]).toContain('"d0"');
    // d10 takes the least recently used key's place (d0's), then d0 comes back (in d1's): d0 is a new key now, at the
    // end of the key maps, which the text has not passed yet.
    a.ingest({ device: 'd10', ts: T0 + 10, metrics: { t: 20 } }, T0 + 10);
    a.ingest({ device: 'd0', ts: T0 + 11, metrics: { t: 95 } }, T0 + 11);
    expect(a.snapshot().keys.map((r) => r[4])).toEqual(['d2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9', 'd10', 'd0']);
    for (let r = it.next(); !r.done; r = it.next()) parts.push(r.value);
    const snap = JSON.parse(parts.join('')) as { keys: unknown[][]; live: number[] };
    expect(snap.keys.map((r) => r[4])).toEqual(['d0', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9', 'd10']);
    // The row written first (d0 quiet), and so not live; the firing d0 is in the next save.
    expect(snap.live).toEqual([]);
    const b = new AlertEngine({ rules: [{ id: 'hot', metric: 't', when: { above: 80 } }], maxKeys: 10 });
    expect(b.restore(snap, T0 + 12)).toEqual([]);
    expect(b.stats()).toMatchObject({ keys: 10, firing: 0 });
  });

  test('a rule that changed or went away: its active keys are resolved; malformed snapshots throw', () => {
    const a = new AlertEngine({ rules: [{ id: 'hot', metric: 't', when: { above: 80 }, severity: 'major' }, { id: 'cold', metric: 't', when: { below: 0 } }] });
    a.ingest({ device: 'd', ts: T0, metrics: { t: 90 } }, T0);
    a.ingest({ device: 'e', ts: T0, metrics: { t: -5 } }, T0);
    const snap = JSON.parse(JSON.stringify(a.snapshot()));
    const b = new AlertEngine({ rules: [{ id: 'hot', metric: 't', when: { above: 85 } }] });
    const ev = b.restore(snap, T0 + MIN);
    expect(ev.map((e) => [e.key, e.state, e.severity, e.reason, e.notify])).toEqual([
      ['d/t/hot', 'resolved', 'major', 'rule-changed', true],
      ['e/t/cold', 'resolved', 'warning', 'rule-changed', true],
    ]);
    expect(b.stats()).toMatchObject({ keys: 0, firing: 0 });
    for (const bad of [null, { v: 2 }, { ...snap, keys: [[1]] }, { ...snap, live: [99] }, { ...snap, counts: [1] }]) expect(() => b.restore(bad, T0)).toThrow(RangeError);
  });
});

describe('nextDeadline(now)', () => {
  test('leaves out the re-notification of a silenced alert; the silence end is the deadline', () => {
    const g = new Rig([{ id: 'hot', metric: 't', when: { above: 80 }, severity: 'major', renotify: '1m' }]);
    expect(g.r('d1', { t: 90 })).toEqual(['firing:major:firing!']);
    expect(g.e.silence({ device: 'd1', until: T0 + 10 * MIN }, g.now).ok).toBe(true);
    g.at(2 * MIN);
    expect(g.tick()).toEqual([]);
    // Without now: the renotify time, already past (tick() does nothing with it while silenced).
    expect(g.e.nextDeadline()).toBe(T0 + MIN);
    expect(g.e.nextDeadline(g.now)).toBe(T0 + 10 * MIN);
    g.now = T0 + 10 * MIN;
    expect(g.tick()).toEqual(['firing:major:unsilenced', 'firing:major:renotify!']);
    expect(g.e.nextDeadline(g.now)).toBe(T0 + 11 * MIN);
  });
});

describe('lastIngestDue(): the earliest deadline of the keys the last ingest() evaluated', () => {
  const HOLD = [{ id: 'hot', metric: 't', when: { above: 80, hysteresis: 2 }, for: '30s', severity: 'major' }];

  test('a key going pending is due at the end of its hold; others keep theirs; none is Infinity', () => {
    const g = new Rig(HOLD);
    expect(g.readDue('d1', { t: 90 })).toBe(T0 + 30 * S);
    g.at(5 * S);
    // d2's hold ends later than d1's: due says d2's, nextDeadline the earliest of all.
    expect(g.readDue('d2', { t: 90 })).toBe(T0 + 35 * S);
    expect(g.e.nextDeadline(g.now)).toBe(T0 + 30 * S);
    // A reading that keeps d1 pending: its deadline again (the hold runs from its start).
    expect(g.readDue('d1', { t: 91 })).toBe(T0 + 30 * S);
    // A reading below the threshold of an OK key, or of another metric: no deadline.
    expect(g.readDue('d3', { t: 10 })).toBe(Infinity);
    expect(g.readDue('d1', { other: 99 })).toBe(Infinity);
    // Cancelled: no deadline any more (the node's timer then fires once for nothing).
    expect(g.readDue('d1', { t: 10 })).toBe(Infinity);
    // A batch: the earliest of the keys it evaluated.
    g.at(S);
    g.e.ingest(
      [
        { device: 'd4', ts: g.now, metrics: { t: 90 } },
        { device: 'd2', ts: g.now, metrics: { t: 92 } },
      ],
      g.now,
    );
    expect(g.e.lastIngestDue(g.now)).toBe(T0 + 35 * S);
  });

  test('never later than what nextDeadline finds: a timer kept by due and reset by tick misses no deadline (random rules, readings, acks)', () => {
    const rules = [
      { id: 'hold', metric: 't', when: { above: 80, hysteresis: 2 }, for: '20s', severity: 'major', renotify: '2m' },
      { id: 'samples', metric: 'v', levels: [{ severity: 'critical', when: { above: 9 }, samples: 3, for: '5s' }, { severity: 'warning', when: { above: 6 }, for: '40s' }] },
      { id: 'flappy', metric: 'f', when: { above: 50 }, severity: 'minor', flap: { changes: 4, window: '1m', stable: '90s' }, renotify: '1m' },
    ];
    const g = new Rig(rules);
    const rnd = mulberry32(11);
    let timerAt = g.e.nextDeadline(g.now);
    let ticks = 0;
    for (let step = 0; step < 20_000; step++) {
      g.at(Math.floor(rnd() * 3 * S));
      if (g.now >= timerAt) {
        g.e.tick(g.now);
        ticks++;
        timerAt = g.e.nextDeadline(g.now);
      }
      const device = `d${Math.floor(rnd() * 40)}`;
      const r = rnd();
      if (r < 0.02) {
        const active = g.e.active(g.now);
        if (active.length > 0) g.e.ack(active[Math.floor(rnd() * active.length)].id!, { by: 'op' }, g.now);
        timerAt = g.e.nextDeadline(g.now); // an action: the node re-arms with the full scan
        continue;
      } else if (r < 0.4) g.read(device, { t: 60 + rnd() * 40 });
      else if (r < 0.7) g.read(device, { v: rnd() * 12 });
      else g.read(device, { f: rnd() * 100 });
      timerAt = Math.min(timerAt, g.e.lastIngestDue(g.now));
      // The invariant the node relies on: nothing is due before its timer.
      const next = g.e.nextDeadline(g.now);
      if (next < timerAt) throw new Error(`step ${step}: next deadline ${next - T0} before the timer ${timerAt - T0}`);
    }
    expect(ticks).toBeGreaterThan(100);
  });
});
