/**
 * nodes/lib/red.ts afterFlowsStart: the alert, device and window nodes send what is due at their start only once
 * the runtime's flows run. A real EventEmitter stands in for RED.events (what Node-RED's runtime emits on).
 */
import { EventEmitter } from 'node:events';
import { afterFlowsStart } from '../../nodes/lib/red';
import { sleep } from '../support/services';

test("runs once on the runtime's flows:started, and its listener and timer are gone after", async () => {
  const events = new EventEmitter();
  let runs = 0;
  afterFlowsStart({ events }, () => runs++, 50);
  expect(runs).toBe(0);
  expect(events.listenerCount('flows:started')).toBe(1);
  events.emit('flows:started');
  events.emit('flows:started'); // a later deploy
  expect(runs).toBe(1);
  expect(events.listenerCount('flows:started')).toBe(0);
  await sleep(80); // the grace timer does not run it again
  expect(runs).toBe(1);
});

test('a runtime that never says so: it runs after the grace period', async () => {
  let runs = 0;
  afterFlowsStart({}, () => runs++, 30);
  afterFlowsStart(undefined, () => runs++, 30);
  await sleep(10);
  expect(runs).toBe(0);
  await sleep(60);
  expect(runs).toBe(2);
});

test('run() runs it at once (a first input means the flows run); cancel() forgets it', async () => {
  const events = new EventEmitter();
  let runs = 0;
  const gate = afterFlowsStart({ events }, () => runs++, 30);
  gate.run();
  gate.run();
  events.emit('flows:started');
  expect(runs).toBe(1);
  expect(events.listenerCount('flows:started')).toBe(0);
  const closed = afterFlowsStart({ events }, () => runs++, 30);
  closed.cancel();
  events.emit('flows:started');
  closed.run();
  await sleep(60);
  expect(runs).toBe(1);
  expect(events.listenerCount('flows:started')).toBe(0);
});
