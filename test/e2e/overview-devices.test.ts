/**
 * The dashboard's Overview and Devices pages in headless Chromium against the runtime (issue 8). Devices are
 * registered through the HTTP API; registered and unregistered devices publish over MQTT, one payload is malformed.
 * Overview: it is the page the dashboard opens on, and shows the registered and online counts, readings per second,
 * the reject, the firing critical alert and the store's health. Devices: every device with its status, last reading
 * and latest values, the search filters by id, name, type and tag, 100 rows a page with a note of how many there
 * are, and a click on a row opens the Device page of that device.
 */
import mqtt from 'mqtt';
import type { Browser, Locator } from 'playwright-core';
import { launchChromium, screenshotPath } from '../support/browser';
import { startRuntime, waitFor, type Runtime } from '../support/services';

jest.setTimeout(180_000);

const KEY = 'admin-key-overview-e2e-0123456789';
const H = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };

const REGISTERED = [
  { id: 'ov-pump-1', name: 'Cooling pump 1', type: 'pico-w-dht22', tags: { site: 'madrid', line: 'a' } },
  { id: 'ov-pump-2', name: 'Cooling pump 2', type: 'pico-w-dht22', tags: { site: 'lisbon' } },
  { id: 'ov-spare-3', name: 'Spare sensor', type: 'esp32-bme280', tags: { site: 'madrid' } },
  { id: 'ov-fan-4', name: 'Exhaust fan 4', type: 'pico-w-dht22', tags: { site: 'lisbon' }, livenessTimeout: 2000 },
];
const STRAY = 'ov-stray-9';
const BULK = 230;

async function register(rt: Runtime, device: object & { id: string }): Promise<void> {
  const res = await fetch(`${rt.url}/api/v1/devices`, { method: 'POST', headers: H, body: JSON.stringify(device) });
  if (res.status !== 201) throw new Error(`registering ${device.id}: ${res.status} ${await res.text()}`);
}

describe('the Overview and Devices pages', () => {
  let rt: Runtime;
  let browser: Browser;
  let client: mqtt.MqttClient;
  let ticker: NodeJS.Timeout | undefined;

  const publish = (device: string, reading: Record<string, number>): Promise<unknown> =>
    client.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ ts: Date.now(), ...reading }), { qos: 1 });

  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_API_KEY: KEY });
    browser = await launchChromium();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${rt.mqttPort}`, { clientId: `e2e-ov-${process.pid}` });
    for (const d of REGISTERED) await register(rt, d);
    // Two registered devices and an unregistered one send every 250 ms (pump 2 too hot: the critical temperature
    // alert fires after 10 s); the fan sends once and is offline 2 s later (its timeout); the spare never sends;
    // one malformed payload is rejected.
    await publish('ov-fan-4', { temperature: 24, vibration: 1.2 });
    await publish('ov-pump-1', { temperature: 21.5, humidity: 40 });
    await publish('ov-pump-2', { temperature: 75, humidity: 35 });
    await publish(STRAY, { temperature: 30.25 });
    await client.publishAsync('devices/ov-pump-1/telemetry', '{"temperature": oops}', { qos: 1 });
    ticker = setInterval(() => {
      void publish('ov-pump-1', { temperature: 21.5, humidity: 40 }).catch(() => undefined);
      void publish('ov-pump-2', { temperature: 75, humidity: 35 }).catch(() => undefined);
      void publish(STRAY, { temperature: 30.25 }).catch(() => undefined);
    }, 250);
  });
  afterAll(async () => {
    if (ticker) clearInterval(ticker);
    await client?.endAsync();
    await browser?.close();
    await rt?.stop();
  });

  const attr = async (el: Locator, name: string): Promise<number> => Number(await el.getAttribute(name));

  test('Overview is the first page: device counts, readings and rejects per second, the firing alert, the store', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${rt.url}/dashboard`);
    await page.waitForURL(/\/dashboard\/overview$/, { timeout: 20_000 });
    await page.locator('.tw-do[data-ready="yes"]').waitFor({ timeout: 20_000 });

    const devices = page.locator('.tw-do .card.devices');
    await waitFor('4 registered: 2 online, 1 offline, 1 never seen; 1 unregistered', async () =>
      (await attr(devices, 'data-registered')) === 4 && (await attr(devices, 'data-online')) === 2 && (await attr(devices, 'data-offline')) === 1 &&
      (await attr(devices, 'data-never')) === 1 && (await attr(devices, 'data-unregistered')) === 1,
    15_000, 200);
    expect(await devices.locator('.online-count').innerText()).toBe('2');
    expect(await devices.innerText()).toContain('of 4 registered');
    expect(await devices.innerText()).toMatch(/1\s+unregistered sending/);

    // Three devices every 250 ms: about 12 readings a second (sampled over 2 s).
    const rate = page.locator('.tw-do .card.rate').first();
    await waitFor('readings per second', async () => (await attr(rate, 'data-rate')) > 4, 15_000, 200);
    expect(Number(await rate.locator('.in-rate').innerText())).toBeGreaterThan(4);

    const rejects = page.locator('.tw-do .card.rejects');
    await waitFor('the reject counted', async () => (await attr(rejects, 'data-total')) >= 1, 10_000, 200);
    expect(await attr(rejects, 'data-total')).toBe(1);
    expect(await rejects.innerText()).toContain('1 rejected since start');

    const store = page.locator('.tw-do .card.store');
    await waitFor('the store ok', async () => (await store.getAttribute('data-store')) === 'ok', 15_000, 200);
    expect(await store.innerText()).toContain('OK: writing');
    expect(await store.innerText()).toMatch(/Spool backlog\s+0 batches/);

    const alerts = page.locator('.tw-do .card.alerts');
    await waitFor('the critical alert firing', async () => (await attr(alerts, 'data-critical')) === 1, 30_000, 250);
    expect(await alerts.locator('.sevchip.critical').innerText()).toBe('1 critical');
    const top = page.locator('.tw-do .card.list tr', { hasText: 'ov-pump-2' });
    expect(await top.innerText()).toContain('temperature-high');

    await waitFor('a few rate samples for the sparklines', async () => (await attr(page.locator('.tw-do'), 'data-samples')) >= 4, 15_000, 200);
    await page.screenshot({ path: screenshotPath('dashboard-overview'), fullPage: true });

    // A device count opens the Devices page filtered by that status.
    await devices.getByText('never seen').click();
    await page.waitForURL(/\/dashboard\/devices\?status=never$/, { timeout: 10_000 });
    await page.locator('.tw-dl tr.row').first().waitFor({ timeout: 10_000 });
    expect(await page.locator('.tw-dl tr.row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-device')))).toEqual(['ov-spare-3']);
    await page.close();
  });

  test('Devices lists every device with status and latest values, searches, pages, and opens a device', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${rt.url}/dashboard/devices`);
    const rows = page.locator('.tw-dl tr.row');
    const ids = (): Promise<Array<string | null>> => rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-device')));
    await waitFor('the five devices', async () => (await ids()).length === 5, 20_000, 200);
    expect(await ids()).toEqual(['ov-fan-4', 'ov-pump-1', 'ov-pump-2', 'ov-spare-3', STRAY]);

    const row = (id: string): Locator => page.locator(`.tw-dl tr.row[data-device="${id}"]`);
    await waitFor('latest values in the rows', async () => (await row('ov-pump-1').innerText()).includes('21.50'), 10_000, 200);
    const pump1 = await row('ov-pump-1').innerText();
    for (const text of ['online', 'Cooling pump 1', 'pico-w-dht22', 'site=madrid', 'humidity', '40']) expect(pump1).toContain(text);
    expect(pump1).toMatch(/just now|\d+ s ago/);
    expect(await row('ov-pump-1').getAttribute('data-status')).toBe('online');
    expect(await row('ov-fan-4').getAttribute('data-status')).toBe('offline');
    expect(await row('ov-fan-4').innerText()).toContain('vibration');
    expect(await row('ov-spare-3').getAttribute('data-status')).toBe('never');
    expect(await row('ov-spare-3').innerText()).toContain('never seen');
    expect(await row('ov-spare-3').innerText()).toContain('no readings yet');
    expect(await row(STRAY).getAttribute('data-status')).toBe('online');
    expect(await row(STRAY).innerText()).toContain('unregistered');
    expect(await row(STRAY).innerText()).toContain('30.25');
    expect(await page.locator('.tw-dl-foot .showing').innerText()).toBe('Showing 1–5 of 5 devices');
    await page.screenshot({ path: screenshotPath('dashboard-devices'), fullPage: true });

    // Search: by tag, by name, by type; several words must all match.
    const search = page.getByRole('searchbox', { name: 'search devices' });
    const searchFor = async (text: string, expected: string[]): Promise<void> => {
      await search.fill(text);
      await waitFor(`the rows for "${text}"`, async () => JSON.stringify(await ids()) === JSON.stringify(expected), 10_000, 100);
    };
    await searchFor('lisbon', ['ov-fan-4', 'ov-pump-2']);
    expect(page.url()).toContain('q=lisbon'); // kept in the URL
    await searchFor('cooling', ['ov-pump-1', 'ov-pump-2']);
    await searchFor('esp32', ['ov-spare-3']);
    await searchFor('site=madrid pump', ['ov-pump-1']);
    await search.fill('no-such-device');
    await page.getByText('No devices match “no-such-device”.').waitFor({ timeout: 10_000 });
    await searchFor('stray', [STRAY]);
    await search.fill('');
    await waitFor('all five again', async () => (await ids()).length === 5, 10_000, 100);

    // Many devices: 100 rows a page, with how many there are.
    for (let i = 0; i < BULK; i++) await publish(`ov-bulk-${String(i).padStart(3, '0')}`, { temperature: 20 + (i % 10) });
    const total = REGISTERED.length + 1 + BULK;
    await waitFor('the bulk devices', async () => (await page.locator('.tw-dl-foot .showing').innerText()) === `Showing 1–100 of ${total} devices`, 20_000, 200);
    expect((await ids()).length).toBe(100);
    await page.getByRole('button', { name: 'next page' }).click();
    await waitFor('page 2', async () => (await page.locator('.tw-dl-foot .showing').innerText()) === `Showing 101–200 of ${total} devices`, 10_000, 100);
    // The footer follows the click at once; the rows come with the server's answer (under load, a moment later).
    await waitFor('page 2 rows', async () => (await ids())[0] === 'ov-bulk-100', 10_000, 100); // by id: bulk before ov-fan-*, ov-pump-*
    expect((await ids()).length).toBe(100);
    await search.fill('ov-bulk-12');
    await waitFor('the search across all pages', async () => (await ids()).length === 10, 10_000, 100);
    expect(await page.locator('.tw-dl-foot .showing').innerText()).toBe(`Showing 1–10 of 10 matching (${total} devices)`);
    await search.fill('');
    await waitFor('page 1 again', async () => (await ids()).length === 100, 10_000, 100);

    // A row opens the Device page of that device.
    await search.fill('ov-pump-1');
    await waitFor('ov-pump-1 alone', async () => JSON.stringify(await ids()) === '["ov-pump-1"]', 10_000, 100);
    await row('ov-pump-1').click();
    await page.waitForURL(/\/dashboard\/device\?device=ov-pump-1/, { timeout: 10_000 });
    await page.locator('.tw-dev-chart').waitFor({ timeout: 20_000 });
    await waitFor('the device on its page', async () => (await page.locator('.tw-dev-pick').inputValue()) === 'ov-pump-1', 10_000, 100);
    await page.locator('.tw-dev-metric', { hasText: 'temperature' }).getByText('21.50').waitFor({ timeout: 10_000 });
    await page.close();
  });
});
