/**
 * End to end in a real browser: the runtime started as a user starts it, real
 * MQTT publishers, and headless Chromium watching the dashboard and the editor.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, screenshotPath } from '../support/browser';
import { ROOT, requireBinary, startRuntime, waitFor, type Runtime } from '../support/services';

jest.setTimeout(90_000);

describe('dashboard and editor in headless Chromium', () => {
  let rt: Runtime;
  let browser: Browser;
  let client: mqtt.MqttClient;

  beforeAll(async () => {
    rt = await startRuntime();
    browser = await launchChromium();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${rt.mqttPort}`, { clientId: `e2e-${process.pid}` });
  });
  afterAll(async () => {
    await client?.endAsync();
    await browser?.close();
    await rt?.stop();
  });

  async function openDashboard(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${rt.url}/dashboard/live`);
    await page.getByText('Latest values').first().waitFor({ timeout: 20_000 });
    return page;
  }

  test('a reading published over MQTT appears in the latest-values table and the chart', async () => {
    const page = await openDashboard();
    // mqtt.js, JSON telemetry with an explicit event time.
    const ts = Date.now();
    await client.publishAsync('devices/e2e-json/telemetry', JSON.stringify({ ts, temperature: 23.456, humidity: 41.5, vibration: 0.8 }), { qos: 1 });
    // mosquitto_pub, a bare number on a metric topic (the Pico W style).
    const pub = requireBinary('mosquitto_pub', 'mosquitto-clients');
    const r = spawnSync(pub, ['-h', '127.0.0.1', '-p', String(rt.mqttPort), '-q', '1', '-t', 'devices/e2e-bare/temperature', '-m', '19.875'], { encoding: 'utf8' });
    expect(r.status).toBe(0);

    const table = page.locator('table');
    await table.getByText('e2e-json').waitFor({ timeout: 15_000 });
    await table.getByText('e2e-bare').waitFor({ timeout: 15_000 });
    const jsonRow = table.locator('tr', { hasText: 'e2e-json' });
    expect(await jsonRow.innerText()).toContain('23.456');
    expect(await jsonRow.innerText()).toContain('41.5');
    expect(await jsonRow.innerText()).toContain(new Date(ts).toISOString());
    expect(await table.locator('tr', { hasText: 'e2e-bare' }).innerText()).toContain('19.875');

    // The chart has a series per device (its legend names them).
    await page.locator('canvas').first().waitFor({ timeout: 10_000 });

    // A reject shows up in the rejects panel, counted by reason.
    await client.publishAsync('devices/e2e-json/telemetry', '{"temperature": oops}', { qos: 1 });
    await page.getByText(/malformed_json: 1/).waitFor({ timeout: 10_000 });

    // More readings so the chart has lines to draw in the screenshot.
    for (let i = 1; i <= 20; i++) {
      await client.publishAsync('devices/e2e-json/telemetry', JSON.stringify({ ts: ts + i * 1000, temperature: 23 + Math.sin(i / 3) }));
      await client.publishAsync('devices/e2e-line/telemetry', JSON.stringify({ ts: ts + i * 1000, temperature: 20 + i / 10 }));
    }
    // Three hours of one-minute readings from a device that uploads its buffer: the window node rolls them
    // up on their event time, and the history's "24 hours" button reads the 1m rollups back.
    const hour0 = Math.floor(ts / 60_000) * 60_000 - 3 * 3_600_000;
    const buffered = Array.from({ length: 181 }, (_, i) => ({ ts: hour0 + i * 60_000 + 5_000, temperature: 18 + 3 * Math.sin(i / 20) }));
    await client.publishAsync('devices/e2e-hist/telemetry', JSON.stringify(buffered), { qos: 1 });
    // The rollups reach the store a moment later (the window closes them, the store writes in 1 s batches, slower on
    // a loaded machine): ask again until the answer has them.
    const rollups = page.getByText(/1m rollups \(mean per window\), 1[0-9]{2} points/);
    await waitFor(
      'the 1m rollups of the buffered upload in the history',
      async () => {
        // The button group sends only when its value changes: another range first, so "24 hours" asks again.
        await page.getByRole('button', { name: '1 hour' }).click();
        await page.getByRole('button', { name: '24 hours' }).click();
        return rollups.waitFor({ timeout: 2_500 }).then(
          () => true,
          () => undefined,
        );
      },
      30_000,
      100,
    );
    await page.waitForTimeout(1500);
    await page.screenshot({ path: screenshotPath('dashboard'), fullPage: true });
    await page.close();
  });

  test('the Anomalies group: the band of a chosen device, scores, and the event of a jump in the table', async () => {
    const page = await openDashboard();
    const t0 = Date.now() - 250 * 5_000;
    const calm = Array.from({ length: 240 }, (_, i) => ({ ts: t0 + i * 5_000, temperature: 21 + 0.8 * Math.sin(i / 12) + 0.1 * Math.cos(i * 1.3) }));
    await client.publishAsync('devices/e2e-band/telemetry', JSON.stringify(calm), { qos: 1 });
    await client.publishAsync('devices/e2e-band/telemetry', JSON.stringify({ ts: t0 + 240 * 5_000, temperature: 40 }), { qos: 1 });
    // The event reaches the events table (and a toast).
    // (The anomaly events table, not the Alerts table, which lists the alert the jump's score may open.)
    const events = page.locator('table', { hasText: 'severity' }).filter({ hasNotText: 'Acknowledged' });
    await events.getByText('e2e-band').first().waitFor({ timeout: 15_000 });
    expect(await events.locator('tr', { hasText: 'e2e-band' }).first().innerText()).toContain('firing');
    // Choose the device for the band chart in the dropdown (a combobox: type and pick).
    // (By its label: the tables' rows-per-page selectors are comboboxes too.)
    const pick = page.getByRole('combobox', { name: 'Device' });
    await pick.click();
    await page.getByRole('option', { name: 'e2e-band' }).click();
    // Readings after the choice draw value, expected and band.
    const more = Array.from({ length: 30 }, (_, i) => ({ ts: t0 + (241 + i) * 5_000, temperature: 21 + 0.8 * Math.sin((241 + i) / 12) }));
    await client.publishAsync('devices/e2e-band/telemetry', JSON.stringify(more), { qos: 1 });
    // (Chart titles and lines are drawn on canvases: the screenshot shows them.)
    expect(await page.locator('canvas').count()).toBeGreaterThanOrEqual(4);
    await page.waitForTimeout(2500);
    await page.screenshot({ path: screenshotPath('dashboard-anomalies'), fullPage: true });
    await page.close();
  });

  test('the Alerts group: a device running hot shows as a critical alert, which an operator acknowledges by clicking its row', async () => {
    const page = await openDashboard();
    const alerts = page.locator('table', { hasText: 'Acknowledged' });
    await alerts.waitFor({ timeout: 10_000 });
    // Above 60 °C for more than the rule's 10 s hold: a reading every 2 s until the alert fires.
    const hot = (): Promise<unknown> => client.publishAsync('devices/e2e-hot/telemetry', JSON.stringify({ ts: Date.now(), temperature: 64.5 }), { qos: 1 });
    await hot();
    const row = alerts.locator('tr', { hasText: 'e2e-hot' });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.innerText()).toContain('pending');
    const keepHot = setInterval(() => void hot(), 2000);
    try {
      await alerts.locator('tr', { hasText: 'e2e-hot' }).filter({ hasText: 'firing' }).waitFor({ timeout: 20_000 });
    } finally {
      clearInterval(keepHot);
    }
    const text = await row.innerText();
    expect(text).toContain('critical');
    expect(text).toContain('temperature-high');
    expect(text).toContain('64.5');
    expect(text).toMatch(/\bno\b/);
    // The operator clicks the row: acknowledged by the dashboard.
    await row.click();
    await alerts.locator('tr', { hasText: 'e2e-hot' }).filter({ hasText: 'by dashboard' }).waitFor({ timeout: 10_000 });
    expect(await row.innerText()).toContain('firing');
    await page.waitForTimeout(500);
    await page.screenshot({ path: screenshotPath('dashboard-alerts'), fullPage: true });
    // Cool again: resolved, the row goes.
    await client.publishAsync('devices/e2e-hot/telemetry', JSON.stringify({ ts: Date.now(), temperature: 22 }), { qos: 1 });
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    await page.close();
  });

  test('the dashboard shows the readings again after a reload', async () => {
    const page = await openDashboard();
    await page.locator('table').getByText('e2e-json').waitFor({ timeout: 15_000 });
    await page.close();
  });

  test('the editor shows the starter flow, and the validate node has its dialog and help', async () => {
    const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    await page.goto(`${rt.url}/`);
    await page.locator('#red-ui-workspace-chart').waitFor({ timeout: 30_000 });
    await page.locator('.red-ui-flow-node-group', { hasText: 'reading schema' }).first().waitFor({ timeout: 30_000 });
    // The palette has a Thingwire category with our nodes.
    await page.locator('.red-ui-palette-node[data-palette-type="thingwire-validate"]').waitFor({ state: 'attached', timeout: 10_000 });
    await page.screenshot({ path: screenshotPath('editor') });

    // Open the validate node's edit dialog as a user double-clicking it would.
    await page.locator('.red-ui-flow-node-group', { hasText: 'reading schema' }).first().dblclick();
    const dialog = page.locator('.red-ui-tray');
    await dialog.getByText('Schema from').waitFor({ timeout: 10_000 });
    expect(await dialog.innerText()).toContain('Report every error, not just the first');
    await page.waitForTimeout(500);
    await page.screenshot({ path: screenshotPath('editor-validate-dialog') });

    // Its help text in the sidebar.
    // (The function runs in the browser, where RED is a global of the editor.)
    const help = await page.evaluate('RED.nodes.getNodeHelp("thingwire-validate")');
    expect(help).toContain('Validates a message property against a JSON Schema');
    await page.locator('#node-dialog-cancel').click();
    await dialog.waitFor({ state: 'detached', timeout: 10_000 });

    // The window and anomaly nodes' dialogs render their fields with the flow's values, and their help is there.
    for (const [name, label, shot] of [
      ['rollups 1m / 1h / 1d', 'Allowed lateness', 'editor-window-dialog'],
      ['anomaly & maintenance', 'Warm-up', 'editor-anomaly-dialog'],
    ]) {
      await page.locator('.red-ui-flow-node-group', { hasText: name }).first().dblclick();
      const tray = page.locator('.red-ui-tray');
      await tray.getByText(label).first().waitFor({ timeout: 10_000 });
      await page.waitForTimeout(500);
      await page.screenshot({ path: screenshotPath(shot) });
      await page.locator('#node-dialog-cancel').click();
      await tray.waitFor({ state: 'detached', timeout: 10_000 });
    }
    expect(await page.locator('#node-input-levels').count()).toBe(0);

    // The input's dialog shows the starter's "Group" on.
    await page.locator('.red-ui-flow-node-group', { hasText: 'device telemetry' }).first().dblclick();
    const inTray = page.locator('.red-ui-tray');
    await inTray.getByText('messages that arrive together as one message').waitFor({ timeout: 10_000 });
    expect(await page.locator('#node-input-group').isChecked()).toBe(true);
    // Its first output's label says what it sends with Group on.
    expect(await page.evaluate("(function () { var n = RED.nodes.node('tw.starter.mqttin'); return n._def.outputLabels.call(n, 0); })()")).toMatch(/^groups of messages \(msg\.mqttGroup/);
    await page.waitForTimeout(500);
    await page.screenshot({ path: screenshotPath('editor-mqtt-in-dialog') });
    await page.locator('#node-dialog-cancel').click();
    await inTray.waitFor({ state: 'detached', timeout: 10_000 });

    // The score writer's dialog shows the starter's Band every (500 ms) with its unit. (Opened through the editor's API:
    // a wire crosses the node's middle, where a double-click lands.)
    await page.evaluate("RED.editor.edit(RED.nodes.node('tw.an.writescores'))");
    const writeTray = page.locator('.red-ui-tray');
    await writeTray.getByText('Band every').waitFor({ timeout: 10_000 });
    expect(await page.locator('#node-input-bandEvery').inputValue()).toBe('500');
    expect(await writeTray.innerText()).toContain('ms per device and metric (0: every score)');
    // Saved without a "Pass on" (the option came later): the dialog shows what it does, when queued.
    expect(await page.locator('#node-input-passOn').inputValue()).toBe('queued');
    await page.waitForTimeout(500);
    await page.screenshot({ path: screenshotPath('editor-write-dialog') });
    await page.locator('#node-dialog-cancel').click();
    await writeTray.waitFor({ state: 'detached', timeout: 10_000 });

    // The retention node (flows/retention.json) draws its policy as a timeline per rule.
    await page.evaluate('RED.workspaces.show("tw.ret.tab")');
    await page.locator('.red-ui-flow-node-group', { hasText: 'tier the store' }).first().dblclick();
    const retentionTray = page.locator('.red-ui-tray');
    await retentionTray.getByText('Timeline (ages from today').waitFor({ timeout: 10_000 });
    await page.waitForTimeout(800);
    await page.screenshot({ path: screenshotPath('editor-retention-dialog') });
    const timeline = await page.locator('#tw-retention-timeline').innerText();
    expect(timeline).toContain('raw');
    expect(timeline).toContain('warm 1 y 30 d');
    expect(timeline).toContain('cold ∞');
    await page.locator('#node-dialog-cancel').click();
    await retentionTray.waitFor({ state: 'detached', timeout: 10_000 });
    expect(await page.evaluate('RED.nodes.getNodeHelp("thingwire-retention")')).toContain('manifest');
    await page.evaluate('RED.workspaces.show("tw.starter.tab")');
    expect(await page.evaluate('RED.nodes.getNodeHelp("thingwire-window")')).toContain('event time');
    expect(await page.evaluate('RED.nodes.getNodeHelp("thingwire-anomaly")')).toContain('Scores every numeric metric');

    // The whole starter flow, zoomed out, for the README.
    for (let i = 0; i < 4; i++) await page.locator('#red-ui-view-zoom-out').click();
    await page.locator('#red-ui-workspace-chart').evaluate((el) => el.scrollTo(0, 0));
    await page.waitForTimeout(500);
    await page.screenshot({ path: screenshotPath('editor-flow') });
    await page.close();
  });

  test('every shipped flow opens in the editor (pictures for the README)', async () => {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(`${rt.url}/`);
    await page.locator('.red-ui-flow-node-group', { hasText: 'reading schema' }).first().waitFor({ timeout: 30_000 });
    const shoot = async (name: string, zoomOuts: number): Promise<void> => {
      await page.evaluate(`RED.actions.invoke('core:zoom-reset')`);
      for (let i = 0; i < zoomOuts; i++) await page.evaluate(`RED.actions.invoke('core:zoom-out')`);
      await page.evaluate(`document.querySelectorAll('.red-ui-notification').forEach((n) => n.remove())`);
      await page.locator('#red-ui-workspace-chart').evaluate((el) => el.scrollTo(0, 0));
      await page.waitForTimeout(600);
      await page.screenshot({ path: screenshotPath(`flow-${name}`) });
    };
    for (const [tab, name, text, zoomOuts] of [
      ['tw.http.tab', 'api', 'POST /api/v1/devices', 4],
      ['tw.nt.tab', 'notify', 'notifiable only', 2],
      ['tw.ret.tab', 'retention', 'tier the store', 0],
    ] as const) {
      await page.evaluate(`RED.workspaces.show(${JSON.stringify(tab)})`);
      await page.locator('.red-ui-flow-node-group', { hasText: text }).first().waitFor({ timeout: 10_000 });
      await shoot(name, zoomOuts);
    }
    // Every deployed node passes the editor's own checks (its defaults' validators): no red triangle on a shipped flow.
    const checked = (await page.evaluate(`(() => { const bad = []; let good = 0; const look = (n) => { if (n.valid === false) bad.push(n.type + ' ' + n.id); else if (n.valid === true && n.type.startsWith('thingwire-')) good++; }; RED.nodes.eachNode(look); RED.nodes.eachConfig(look); return { bad, good }; })()`)) as { bad: string[]; good: number };
    expect(checked.bad).toEqual([]);
    expect(checked.good).toBeGreaterThan(20); // the editor did check the Thingwire nodes
    // The batch node's limits are the runtime's: 1-100,000 readings (the contract's MAX_BATCH), 0-60,000 ms.
    const batchChecks = await page.evaluate(`(() => { const d = RED.nodes.getType('thingwire-batch').defaults; return [
      ['1', '100000', '20000', '0', '100001', '1.5', ''].map((v) => d.maxItems.validate.call({}, v)),
      ['0', '60000', '-1', '60001', 'x'].map((v) => d.maxWaitMs.validate.call({}, v)) ]; })()`);
    expect(batchChecks).toEqual([
      [true, true, true, false, false, false, false],
      [true, true, false, false, false],
    ]);
    // The write node's Band every and Score every: a whole number of ms, or empty.
    const writeChecks = await page.evaluate(`(() => { const d = RED.nodes.getType('thingwire-write').defaults; return ['bandEvery', 'scoreEvery'].map((k) =>
      ['', 0, '500', '-1', '2.5', 'often'].map((v) => d[k].validate.call({}, v))); })()`);
    expect(writeChecks).toEqual([
      [true, true, true, false, false, false],
      [true, true, true, false, false, false],
    ]);
    // The import-only example: imported into the editor (not deployed), as a user would from Import > Examples.
    const flow = fs.readFileSync(path.join(ROOT, 'flows', 'examples', 'one-sensor.json'), 'utf8');
    await page.evaluate(`RED.view.importNodes(${flow}, { generateIds: true, addFlow: false })`);
    await page.evaluate(`(() => { let id; RED.nodes.eachWorkspace((w) => { if (w.label === 'Thingwire: one sensor, one chart') id = w.id; }); RED.workspaces.show(id); })()`);
    await page.locator('.red-ui-flow-node-group', { hasText: 'temperature per device' }).first().waitFor({ timeout: 10_000 });
    await shoot('one-sensor', 0);
    await page.close();
  });
});
