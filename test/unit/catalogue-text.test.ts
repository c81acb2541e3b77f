/**
 * nodes/lib/red.ts catalogueText: a catalogue message asked of RED._ once with markers, then filled in by the node;
 * the same text as RED._ gives, and RED._ asked on every call when the catalogue text does not show each marker once.
 */
import { catalogueText } from '../../nodes/lib/red';

/** RED._ as Node-RED sets i18next up: __name__ placeholders, values as they are (no escaping). */
function catalogue(texts: Record<string, string>): { translate: (key: string, subs?: Record<string, unknown>) => string; calls: string[] } {
  const calls: string[] = [];
  const translate = (key: string, subs: Record<string, unknown> = {}): string => {
    calls.push(key);
    return texts[key].replace(/__(\w+)__/g, (whole, name: string) => (name in subs ? String(subs[name]) : whole));
  };
  return { translate, calls };
}

test('the text RED._ gives, asking it on the first call only (with markers, and with the values to check the fill)', () => {
  const c = catalogue({ fire: '__metric__ __value__ is anomalous (score __score__, __signal__)', back: '__n__ normal in a row; __metric__ back' });
  const fire = catalogueText(c.translate, 'fire', ['metric', 'value', 'score', 'signal']);
  const back = catalogueText(c.translate, 'back', ['metric', 'n']);
  const values = [
    { metric: 'temperature', value: '21.8', score: '0.93', signal: 'range' },
    { metric: 'x', value: '__score__', score: '$1 \uE000 1', signal: '' }, // values that look like markers or patterns stay as they are
  ];
  for (const v of values) expect(fire(v)).toBe(c.translate('fire', v));
  expect(back({ metric: 'humidity', n: '5' })).toBe('5 normal in a row; humidity back');
  expect(c.calls.filter((k) => k === 'fire')).toHaveLength(2 + values.length); // the first call's two, then the checks above
  expect(c.calls.filter((k) => k === 'back')).toHaveLength(2);
  for (let i = 0; i < 5; i++) fire(values[0]);
  expect(c.calls.filter((k) => k === 'fire')).toHaveLength(2 + values.length);
});

test('a value shown twice, left out or changed by the catalogue: RED._ on every call', () => {
  const c = catalogue({ twice: '__a__ and __a__', none: 'no values', upper: 'A: __a__' });
  const upper = (key: string, subs?: Record<string, unknown>): string => (key === 'upper' ? c.translate(key, subs).toUpperCase() : c.translate(key, subs));
  const twice = catalogueText(c.translate, 'twice', ['a']);
  const none = catalogueText(c.translate, 'none', ['a']);
  const up = catalogueText(upper, 'upper', ['a']);
  for (let i = 0; i < 3; i++) {
    expect(twice({ a: `x${i}` })).toBe(`x${i} and x${i}`);
    expect(none({ a: 'y' })).toBe('no values');
    expect(up({ a: 'z' })).toBe('A: Z');
  }
  // The first call's two (markers, values), then one a call.
  expect(c.calls.filter((k) => k === 'twice')).toHaveLength(4);
  expect(c.calls.filter((k) => k === 'none')).toHaveLength(4);
  expect(c.calls.filter((k) => k === 'upper')).toHaveLength(4);
});
