/**
 * The dashboard's Alerts and Registry pages in headless Chromium against the runtime (issue 8). Alerts: a device
 * running hot shows as a critical alert on every open Alerts page, an operator acknowledges it with a comment (the
 * alert node stores who and why: checked through the HTTP API), a reload shows the same list, and once it cools the
 * alert is listed as resolved. Registry: a device added on the page gets its token once (it works on the HTTP API,
 * and a reload does not show it again), a duplicate id is a 409 shown on the page, a stream added with a JSON Schema
 * enforces it, and a schema that is not JSON or does not compile is refused with its error shown.
 */
import mqtt from 'mqtt';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchChromium, screenshotPath } from '../support/browser';
import { startRuntime, type Runtime } from '../support/services';

jest.setTimeout(180_000);

const API_KEY = 'e2e-alerts-admin-key-0123456789';
const HOT = 'da-boiler-1';
const ALSO_HOT = 'da-boiler-2';

/**
 * Counts the socket.io events a page receives by name (msg-input:<widget id>), from a WebSocket listener added
 * before the dashboard's scripts run. A string: this project compiles without the DOM typings.
 */
const COUNT_EVENTS = `(() => {
  const n = (window.__twEvents = {});
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (ev) => {
        const d = ev.data;
        if (typeof d === 'string' && d.startsWith('42["')) { const k = d.slice(4, d.indexOf('"', 4)); n[k] = (n[k] || 0) + 1; }
      });
    }
  };
})()`;
const events = async (page: Page, name: string): Promise<number> => Number(await page.evaluate(`(window.__twEvents || {})[${JSON.stringify(name)}] || 0`));
const ALERTS_VIEW = 'msg-input:tw.da.template';

describe('the Alerts and Registry pages', () => {
  let rt: Runtime;
  let browser: Browser;
  let client: mqtt.MqttClient;

  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_API_KEY: API_KEY });
    browser = await launchChromium();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${rt.mqttPort}`, { clientId: `e2e-da-${process.pid}` });
  });
  afterAll(async () => {
    await client?.endAsync();
    await browser?.close();
    await rt?.stop();
  });

  const api = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${rt.url}${path}`, { ...init, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : JSON.parse(text) };
  };

  async function open(path: string, ready: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.addInitScript(COUNT_EVENTS);
    await page.goto(`${rt.url}/dashboard/${path}`);
    await page.locator(ready).waitFor({ timeout: 20_000 });
    return page;
  }

  const publish = (device: string, temperature: number): Promise<unknown> =>
    client.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ ts: Date.now(), temperature }), { qos: 1 });

  /** Above 60 °C for more than the starter rule's 10 s hold: a reading every 2 s until the page shows it firing. */
  async function fire(page: Page, device: string, temperature: number): Promise<Locator> {
    await publish(device, temperature);
    const keepHot = setInterval(() => void publish(device, temperature), 2000);
    try {
      const row = page.locator('.tw-al-active tbody tr', { hasText: device });
      await row.filter({ hasText: 'firing' }).waitFor({ timeout: 30_000 });
      return row;
    } finally {
      clearInterval(keepHot);
    }
  }

  test('Alerts: a hot device is a critical alert, acknowledged with a comment on the page, kept over a reload, then resolved', async () => {
    const page = await open('alerts', '.tw-al-active[data-loaded="true"]');
    const other = await open('alerts', '.tw-al-active[data-loaded="true"]');
    // A browser on another page gets none of the Alerts page's pushes, nor the Live page's alert table (its own
    // page's messages, yes).
    const bystander = await open('overview', '.tw-do');
    expect(await page.locator('.tw-al-active tbody tr', { hasText: HOT }).count()).toBe(0);

    const row = await fire(page, HOT, 66.5);
    const text = await row.innerText();
    expect(text).toContain('critical');
    expect(text).toContain('temperature-high');
    expect(text).toContain('66.5');
    // The severity is coloured: critical in red.
    const chip = row.locator('.tw-al-sev');
    expect(await chip.innerText()).toMatch(/critical/i);
    expect(await chip.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el).backgroundColor)).toBe('rgb(198, 40, 40)');
    // The device links to its Device page.
    const link = row.getByRole('link', { name: HOT });
    expect(await link.getAttribute('href')).toBe(`/dashboard/device?device=${HOT}`);
    // The other open page got the same list pushed.
    await other.locator('.tw-al-active tbody tr', { hasText: HOT }).filter({ hasText: 'firing' }).waitFor({ timeout: 10_000 });

    // Acknowledge with a comment, as "Ana".
    await page.getByLabel('acknowledge as').fill('Ana');
    await row.getByRole('textbox').fill('valve replaced, watching it');
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await row.filter({ hasText: 'by Ana' }).filter({ hasText: 'valve replaced, watching it' }).waitFor({ timeout: 10_000 });
    expect(await row.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    expect(await row.innerText()).toContain('firing');
    // Pushed to the other page too, and stored by the alert node: who and why.
    await other.locator('.tw-al-active tbody tr', { hasText: HOT }).filter({ hasText: 'valve replaced, watching it' }).waitFor({ timeout: 10_000 });
    const listed = await api('/api/v1/alerts');
    expect(listed.status).toBe(200);
    const alert = (listed.body as { alerts: Array<{ device: string; rule: string; severity: string; acknowledged: boolean; ack?: { by: string; comment?: string } }> }).alerts.find((a) => a.device === HOT);
    expect(alert).toMatchObject({ rule: 'temperature-high', severity: 'critical', acknowledged: true, ack: { by: 'Ana', comment: 'valve replaced, watching it' } });
    expect(await events(other, ALERTS_VIEW)).toBeGreaterThanOrEqual(2);
    await bystander.locator('.tw-do[data-ready="yes"]').waitFor({ timeout: 10_000 });
    expect(await events(bystander, 'msg-input:tw.do.template')).toBeGreaterThan(0);
    expect(await events(bystander, ALERTS_VIEW)).toBe(0);
    // Nor the Live page's alert table, which only goes out while a Live page is open.
    expect(await events(bystander, 'msg-input:tw.al.table')).toBe(0);
    await bystander.close();
    // The other browser goes to the Overview page in the same tab (same socket): its Alerts page says bye and gets
    // no more of the list.
    await other.evaluate(`document.querySelector('#app').__vue_app__.config.globalProperties.$router.push('/dashboard/overview')`);
    await other.locator('.tw-do').waitFor({ timeout: 10_000 });
    const left = await events(other, ALERTS_VIEW);

    // A reload asks for the list at once: the acknowledged alert is there without any new change.
    await page.reload();
    await page.locator('.tw-al-active[data-loaded="true"]').waitFor({ timeout: 20_000 });
    const again = page.locator('.tw-al-active tbody tr', { hasText: HOT });
    await again.waitFor({ timeout: 5_000 });
    expect(await again.innerText()).toContain('valve replaced, watching it');
    expect(await again.innerText()).toContain('critical');

    // Another device runs hot and stays unacknowledged; the first cools down: resolved, with its acknowledgement.
    const second = await fire(page, ALSO_HOT, 63.2);
    expect(await second.getByRole('button', { name: 'Acknowledge' }).count()).toBe(1);
    expect(await events(other, ALERTS_VIEW)).toBe(left);
    await other.close();
    await publish(HOT, 22);
    await again.waitFor({ state: 'detached', timeout: 15_000 });
    const resolved = page.locator('.tw-al-recent tbody tr', { hasText: HOT });
    await resolved.waitFor({ timeout: 10_000 });
    expect(await resolved.innerText()).toContain('by Ana');
    expect(await resolved.innerText()).toContain('valve replaced, watching it');
    expect(await resolved.innerText()).toContain('lasted');

    // A reload brings both lists back.
    await page.reload();
    await page.locator('.tw-al-active[data-loaded="true"]').waitFor({ timeout: 20_000 });
    await page.locator('.tw-al-recent tbody tr', { hasText: HOT }).waitFor({ timeout: 5_000 });
    await page.locator('.tw-al-active tbody tr', { hasText: ALSO_HOT }).waitFor({ timeout: 5_000 });
    expect(await page.locator('.tw-al-active tbody tr', { hasText: HOT }).count()).toBe(0);
    expect(await page.locator('.tw-al-summary').innerText()).toMatch(/1 critical/i);
    await page.screenshot({ path: screenshotPath('dashboard-alerts-page'), fullPage: true });
    await page.close();
  });

  test('Registry: a device added on the page gets a working token shown once; duplicates and bad schemas are refused', async () => {
    const page = await open('admin', '.tw-reg-devices');
    const form = page.getByRole('form', { name: 'add a device' });
    await form.getByLabel('device id').fill('reg-pump-7');
    await form.getByLabel('device name').fill('Pump 7, basement');
    await form.getByLabel('device type').fill('pico-w-dht22');
    await form.getByLabel('device tags').fill('site=madrid, line=2');
    await form.getByRole('button', { name: 'Add device' }).click();
    const token = await page.locator('[data-token]').innerText({ timeout: 10_000 });
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    expect(await page.locator('[data-token-box]').innerText()).toContain('will not be shown again');
    expect(await page.getByRole('button', { name: 'Copy' }).count()).toBe(1);
    const row = page.locator('.tw-reg-devices tbody tr', { hasText: 'reg-pump-7' });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.innerText()).toContain('Pump 7, basement');
    expect(await row.innerText()).toContain('site=madrid');
    expect(await row.innerText()).toContain('pico-w-dht22');

    // Reloaded: listed, but the token is not shown again.
    await page.reload();
    await page.locator('.tw-reg-devices tbody tr', { hasText: 'reg-pump-7' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-token]').count()).toBe(0);
    expect(await page.locator('body').innerText()).not.toContain(token);

    // The same id again: the registry's 409, shown on the page; no token.
    await form.getByLabel('device id').fill('reg-pump-7');
    await form.getByRole('button', { name: 'Add device' }).click();
    const dup = page.locator('[data-error="addDevice"]');
    await dup.waitFor({ timeout: 10_000 });
    expect(await dup.innerText()).toMatch(/^409 already exists: .*reg-pump-7/);
    expect(await page.locator('[data-token]').count()).toBe(0);

    // A stream for the device with a schema: temperature required, at most 150.
    const sform = page.getByRole('form', { name: 'add a stream' });
    await sform.getByLabel('stream id').fill('reg-pump-7-env');
    await sform.getByLabel('stream name').fill('Pump 7 environment');
    await sform.getByLabel('stream device').fill('reg-pump-7');
    await sform.getByLabel('stream schema').fill(JSON.stringify({ type: 'object', title: 'Pump environment', required: ['temperature'], properties: { temperature: { type: 'number', maximum: 150 } } }, null, 2));
    await sform.getByRole('button', { name: 'Add stream' }).click();
    const outcome = page.locator('.tw-reg-ok, [data-error="addStream"]');
    await outcome.waitFor({ timeout: 10_000 });
    expect(await outcome.innerText()).toBe('Stream reg-pump-7-env added.');
    const srow = page.locator('.tw-reg-streams tbody tr', { hasText: 'reg-pump-7-env' });
    await srow.waitFor({ timeout: 10_000 });
    expect(await srow.innerText()).toContain('requires temperature');

    // The token from the page works, and the stream's schema from the page is enforced.
    const post = (entries: unknown, auth = token): Promise<Response> =>
      fetch(`${rt.url}/api/v1/streams/reg-pump-7-env/entries`, { method: 'POST', headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(entries) });
    const ok = await post([{ temperature: 21.5 }, { temperature: 900 }]);
    expect(ok.status).toBe(201);
    const okBody = (await ok.json()) as { accepted: number; rejected: Array<{ index: number }> };
    expect(okBody.accepted).toBe(1);
    expect(okBody.rejected.map((r) => r.index)).toEqual([1]);
    expect((await post({ temperature: 20 }, 'not-the-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).status).toBe(401);

    // A schema that is not JSON: shown while typing, and refused without asking the registry.
    await sform.getByLabel('stream id').fill('reg-bad-json');
    await sform.getByLabel('stream schema').fill('{ "type": "object", ');
    expect(await sform.locator('.hint').innerText()).toMatch(/Not valid JSON/);
    await sform.getByRole('button', { name: 'Add stream' }).click();
    expect(await page.locator('[data-error="addStream"]').innerText()).toMatch(/Not valid JSON/);

    // JSON that does not compile as a schema: the registry's 400, shown on the page; the stream is not created.
    await page.getByRole('form', { name: 'add a device' }).getByLabel('device id').fill('reg-fan-2');
    await page.getByRole('form', { name: 'add a device' }).getByRole('button', { name: 'Add device' }).click();
    await page.locator('[data-token]').waitFor({ timeout: 10_000 });
    await sform.getByLabel('stream id').fill('reg-bad-schema');
    await sform.getByLabel('stream schema').fill('{ "type": "object", "properties": { "temperature": { "type": "decimal" } } }');
    await sform.getByRole('button', { name: 'Add stream' }).click();
    const bad = page.locator('[data-error="addStream"]');
    await bad.filter({ hasText: '400' }).waitFor({ timeout: 10_000 });
    expect(await bad.innerText()).toMatch(/^400 invalid: schema does not compile/);
    expect((await api('/api/v1/streams/reg-bad-schema')).status).toBe(404);
    expect((await api('/api/v1/streams/reg-pump-7-env')).status).toBe(200);
    await page.locator('.tw-reg-devices tbody tr', { hasText: 'reg-fan-2' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-devices-total]').innerText()).toBe(String((((await api('/api/v1/devices')).body) as { total: number }).total));
    await page.screenshot({ path: screenshotPath('dashboard-admin'), fullPage: true });
    await page.close();
  });
});
