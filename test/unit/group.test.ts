/**
 * Group messages (nodes/lib/group.ts): what thingwire-mqtt-in sends with "Group messages" on, and the Grouper that
 * collects the messages of one moment.
 */
import { ACK_PROPERTY } from '../../nodes/lib/ack';
import { Grouper, groupMessage, isGroupMessage, type GroupItem, type GroupMessage } from '../../nodes/lib/group';

const item = (n: number, token?: string): GroupItem => ({ topic: `devices/d${n}/telemetry`, payload: Buffer.from(`{"v":${n}}`), qos: token ? 1 : 0, retain: false, ...(token ? { [ACK_PROPERTY]: token } : {}) });

describe('groupMessage', () => {
  test("carries the items, the first item's topic and every item's token in order", () => {
    const items = [item(1, 'w#1'), item(2), item(3, 'w#3')];
    const g = groupMessage(items);
    expect(g.payload).toBe(items);
    expect(g.topic).toBe('devices/d1/telemetry');
    expect(g.mqttGroup).toBe(true);
    expect(g[ACK_PROPERTY]).toEqual(['w#1', 'w#3']);
    expect(isGroupMessage(g)).toBe(true);
  });

  test('no token when no item has one (QoS 0)', () => {
    const g = groupMessage([item(1), item(2)]);
    expect(ACK_PROPERTY in g).toBe(false);
  });

  test('only a true mqttGroup with an array payload is a group', () => {
    expect(isGroupMessage({ payload: [], mqttGroup: true })).toBe(true);
    expect(isGroupMessage({ payload: [item(1)] })).toBe(false);
    expect(isGroupMessage({ payload: [item(1)], mqttGroup: 'true' })).toBe(false);
    expect(isGroupMessage({ payload: '[]', mqttGroup: true })).toBe(false);
  });
});

describe('Grouper', () => {
  const collect = (): { groups: GroupMessage[]; emit: (g: GroupMessage) => void } => {
    const groups: GroupMessage[] = [];
    return { groups, emit: (g) => groups.push(g) };
  };

  test('microtask: what is added in one task leaves as one group after it', async () => {
    const { groups, emit } = collect();
    const g = new Grouper(emit, 'microtask');
    for (let i = 0; i < 5; i++) g.add(item(i, `w#${i}`));
    expect(groups).toHaveLength(0);
    expect(g.size).toBe(5);
    await Promise.resolve();
    expect(groups).toHaveLength(1);
    expect(groups[0].payload.map((it) => it.topic)).toEqual([0, 1, 2, 3, 4].map((i) => `devices/d${i}/telemetry`));
    expect(groups[0][ACK_PROPERTY]).toEqual(['w#0', 'w#1', 'w#2', 'w#3', 'w#4']);
    // The next task's items make the next group.
    g.add(item(9));
    await Promise.resolve();
    expect(groups).toHaveLength(2);
    expect(groups[1].payload).toHaveLength(1);
  });

  test("immediate: the items of one event-loop turn, across its microtasks, leave together", async () => {
    const { groups, emit } = collect();
    const g = new Grouper(emit, 'immediate');
    g.add(item(1));
    await Promise.resolve();
    g.add(item(2));
    expect(groups).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(groups).toHaveLength(1);
    expect(groups[0].payload).toHaveLength(2);
  });

  test('a full group leaves at once and the rest start the next one', async () => {
    const { groups, emit } = collect();
    const g = new Grouper(emit, 'microtask', 3);
    for (let i = 0; i < 7; i++) g.add(item(i));
    expect(groups.map((x) => x.payload.length)).toEqual([3, 3]);
    await Promise.resolve();
    expect(groups.map((x) => x.payload.length)).toEqual([3, 3, 1]);
    expect(groups.flatMap((x) => x.payload.map((it) => it.topic))).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `devices/d${i}/telemetry`));
  });

  test('close drops what is held and emits nothing after (the broker delivers it again)', async () => {
    const { groups, emit } = collect();
    const g = new Grouper(emit, 'immediate');
    g.add(item(1));
    g.close();
    g.add(item(2));
    await new Promise((r) => setImmediate(r));
    expect(groups).toHaveLength(0);
    expect(g.size).toBe(0);
  });
});
