/**
 * InfluxQL builder and /query answer parser (pure). Injection is checked structurally: a small scanner
 * that follows InfluxQL's own quoting rules (influxql.ScanString: escapes \n \\ \" \' only, a raw newline
 * ends the token with an error) must find the same query shape for a hostile value as for a plain one,
 * and must read each quoted value back exactly.
 */
import { ThingwireError } from '../../nodes/lib/errors';
import { buildRangeQuery, downsample, parseQueryResponse, quoteIdent, quoteString, DEFAULT_LIMIT } from '../../nodes/lib/store/influxql';
import { StoreError, type RangeQuery } from '../../nodes/lib/store/types';

const HOSTILE = [
  `"; DROP DATABASE x`,
  `'; DROP DATABASE x; --`,
  `') OR 1=1 OR ('`,
  `" OR "device" = "`,
  'back\\slash',
  'ends with backslash\\',
  '\\',
  '\\\'',
  '\\"',
  'new\nline',
  'carriage\rreturn\ttab',
  'comma,space equals=',
  'unicode ünïcødé 温度 Ω',
  'emoji 🌡️🔥',
  '/regex.*/',
  '$param',
  ' ',
  '',
];

interface Token {
  kind: 'ident' | 'string' | 'bare';
  text: string;
}

/** Tokenises InfluxQL the way its scanner does for quotes; throws where the real parser would fail. */
function scan(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i];
    if (c === '"' || c === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= q.length) throw new Error(`unterminated quote in ${q}`);
        const ch = q[i];
        if (ch === c) {
          i++;
          break;
        }
        if (ch === '\n') throw new Error('raw newline inside quotes');
        if (ch === '\u0000') throw new Error('NUL inside quotes');
        if (ch === '\\') {
          const e = q[i + 1];
          if (e === 'n') s += '\n';
          else if (e === '\\' || e === '"' || e === "'") s += e;
          else throw new Error(`bad escape \\${e}`);
          i += 2;
          continue;
        }
        s += ch;
        i++;
      }
      out.push({ kind: c === '"' ? 'ident' : 'string', text: s });
    } else if (c === ' ') {
      i++;
    } else {
      let j = i;
      while (j < q.length && q[j] !== ' ' && q[j] !== '"' && q[j] !== "'") j++;
      out.push({ kind: 'bare', text: q.slice(i, j) });
      i = j;
    }
  }
  return out;
}

/** The query's shape: bare tokens as they are, quoted ones as placeholders. */
const shape = (q: string): string =>
  scan(q)
    .map((t) => (t.kind === 'bare' ? t.text : t.kind === 'ident' ? '<I>' : '<S>'))
    .join(' ');

const base: RangeQuery = { measurement: 'telemetry', fields: ['temperature'], start: 1_700_000_000_000, end: 1_700_000_060_000 };

describe('quoting', () => {
  test.each(HOSTILE.filter((s) => s !== ''))('identifier %j round-trips through the InfluxQL scanner', (s) => {
    const q = quoteIdent(s);
    expect(scan(q)).toEqual([{ kind: 'ident', text: s }]);
  });

  test.each(HOSTILE)('string literal %j round-trips through the InfluxQL scanner', (s) => {
    const q = quoteString(s);
    expect(scan(q)).toEqual([{ kind: 'string', text: s }]);
  });

  test('escapes exactly backslash, the quote and newline', () => {
    expect(quoteIdent('a"b\\c\nd\'e')).toBe('"a\\"b\\\\c\\nd\'e"');
    expect(quoteString('a\'b\\c\nd"e')).toBe("'a\\'b\\\\c\\nd\"e'");
    expect(quoteString('温度 🌡️')).toBe("'温度 🌡️'");
  });

  test('refuses what InfluxQL cannot carry: NUL, lone surrogates, empty identifiers', () => {
    for (const bad of ['a\u0000b', 'x\uD800', '\uDC00y']) {
      expect(() => quoteString(bad)).toThrow(ThingwireError);
      expect(() => quoteIdent(bad)).toThrow(expect.objectContaining({ code: 'invalid_value' }));
    }
    expect(() => quoteIdent('')).toThrow(/empty/);
    expect(quoteString('ok 😀')).toBe("'ok 😀'"); // a proper surrogate pair is fine
  });
});

describe('buildRangeQuery', () => {
  test('raw points: fields, time range in ms, one series per device, ascending, default limit', () => {
    expect(buildRangeQuery(base)).toBe(
      `SELECT "temperature" FROM "telemetry" WHERE time >= 1700000000000ms AND time < 1700000060000ms GROUP BY "device" ORDER BY time ASC LIMIT ${DEFAULT_LIMIT}`,
    );
  });

  test('devices, tag filters (sorted by key), retention policy, limit, fractional times truncated', () => {
    const q = buildRangeQuery(
      { ...base, fields: ['temperature', 'humidity', 'temperature'], devices: ['d1', 'd2', 'd1'], where: { metric: 'temp', level: '1h' }, start: 1000.9, end: 2000.2, limit: 50 },
      { rp: 'one_year' },
    );
    expect(q).toBe(
      `SELECT "temperature", "humidity" FROM "one_year"."telemetry" WHERE time >= 1000ms AND time < 2000ms AND ("device" = 'd1' OR "device" = 'd2') AND "level" = '1h' AND "metric" = 'temp' GROUP BY "device" ORDER BY time ASC LIMIT 50`,
    );
  });

  test('an empty device list means every device', () => {
    expect(buildRangeQuery({ ...base, devices: [] })).not.toContain('"device" =');
  });

  test.each([
    ['mean', 'MEAN'],
    ['min', 'MIN'],
    ['max', 'MAX'],
    ['sum', 'SUM'],
    ['count', 'COUNT'],
    ['last', 'LAST'],
  ] as const)('bucket aggregation %s -> %s, each field under its own name, fill(none)', (agg, fn) => {
    expect(buildRangeQuery({ ...base, fields: ['a', 'b'], bucketMs: 60_000, agg })).toBe(
      `SELECT ${fn}("a") AS "a", ${fn}("b") AS "b" FROM "telemetry" WHERE time >= 1700000000000ms AND time < 1700000060000ms GROUP BY time(60000ms), "device" fill(none) ORDER BY time ASC LIMIT ${DEFAULT_LIMIT}`,
    );
  });

  test('bucketMs alone means mean; agg alone aggregates the whole range', () => {
    expect(buildRangeQuery({ ...base, bucketMs: 1000 })).toContain('SELECT MEAN("temperature") AS "temperature"');
    const whole = buildRangeQuery({ ...base, agg: 'max' });
    expect(whole).toContain('SELECT MAX("temperature") AS "temperature"');
    expect(whole).toContain('GROUP BY "device" ORDER BY');
    expect(whole).not.toContain('time(');
  });

  test.each(HOSTILE)('hostile value %j in every slot keeps the query shape and reads back exactly', (h) => {
    const plain = { ...base, measurement: 'm', fields: ['f'], devices: ['d'], where: { k: 'v' } };
    const hostile = { ...base, measurement: h || 'm', fields: [h || 'f'], devices: [h], where: { [h || 'k']: h } };
    const q = buildRangeQuery(hostile, { rp: h || 'rp' });
    expect(shape(q)).toBe(shape(buildRangeQuery(plain, { rp: 'rp' })));
    const quoted = scan(q).filter((t) => t.kind !== 'bare');
    // "f", "rp"."m", "device" = 'h', "k" = 'h', "device"
    expect(quoted.map((t) => t.text)).toEqual([h || 'f', h || 'rp', h || 'm', 'device', h, h || 'k', h, 'device']);
  });

  test('several hostile devices stay separate alternatives', () => {
    const devices = HOSTILE.filter((h) => h !== '');
    const q = buildRangeQuery({ ...base, devices });
    const strings = scan(q).filter((t) => t.kind === 'string');
    expect(strings.map((t) => t.text)).toEqual(devices);
    expect(shape(q)).toContain(`( <I> = <S>${' OR <I> = <S>'.repeat(devices.length - 1)} )`);
  });

  test('refuses bad queries with invalid_value / invalid_ts', () => {
    const bad: Array<[Partial<RangeQuery>, RegExp]> = [
      [{ fields: [] }, /at least one field/],
      [{ fields: ['time'] }, /reserved/],
      [{ start: 5, end: 5 }, /empty time range/],
      [{ start: 10, end: 5 }, /empty time range/],
      [{ start: Number.NaN }, /start/],
      [{ end: Number.POSITIVE_INFINITY }, /end/],
      [{ agg: 'median' as never }, /unknown aggregate/],
      [{ bucketMs: 0 }, /bucketMs/],
      [{ limit: -1 }, /limit/],
      [{ measurement: '' }, /measurement is empty/],
      [{ devices: ['ok', 'bad\u0000'] }, /NUL/],
      [{ devices: 'd1' as never }, /array/],
      [{ where: { k: 1 as never } }, /must be a string/],
    ];
    for (const [patch, re] of bad) {
      let err: unknown;
      try {
        buildRangeQuery({ ...base, ...patch });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ThingwireError);
      expect((err as Error).message).toMatch(re);
    }
  });
});

describe('parseQueryResponse', () => {
  const answer = {
    results: [
      {
        statement_id: 0,
        series: [
          {
            name: 'telemetry',
            tags: { device: 'a b' },
            columns: ['time', 'temperature', 'status'],
            values: [
              [1000, 21.5, 'ok'],
              [2000, null, 'warn'],
              [3000, 22, null],
            ],
          },
          { name: 'telemetry', tags: { device: 'd"2' }, columns: ['time', 'temperature', 'status'], values: [[1000, -1, true]] },
        ],
      },
    ],
  };

  test('an answer past the point budget is a StoreError 413 (the null values are not counted)', () => {
    // Six values that are not null in all.
    expect(parseQueryResponse(answer, { ...base, fields: ['temperature', 'status'] }, 6).series).toHaveLength(4);
    let err: unknown;
    try {
      parseQueryResponse(answer, { ...base, fields: ['temperature', 'status'] }, 5);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).status).toBe(413);
    expect((err as StoreError).retryable).toBe(false);
    expect((err as StoreError).message).toBe('influxdb query: the answer has more than 5 points; narrow the range, the devices or the fields, or ask for maxPoints or buckets');
  });

  test('one series per device and field, nulls left out, values typed as sent', () => {
    expect(parseQueryResponse(answer, { ...base, fields: ['temperature', 'status'] })).toEqual({
      series: [
        { device: 'a b', field: 'temperature', points: [[1000, 21.5], [3000, 22]] },
        { device: 'a b', field: 'status', points: [[1000, 'ok'], [2000, 'warn']] },
        { device: 'd"2', field: 'temperature', points: [[1000, -1]] },
        { device: 'd"2', field: 'status', points: [[1000, true]] },
      ],
    });
  });

  test('no series, no results, an empty object: no series', () => {
    expect(parseQueryResponse({ results: [{ statement_id: 0 }] }, base)).toEqual({ series: [] });
    expect(parseQueryResponse({ results: [] }, base)).toEqual({ series: [] });
    expect(parseQueryResponse({}, base)).toEqual({ series: [] });
  });

  test('extra tags are kept per series; a series split in parts is joined; no device tag is device ""', () => {
    const r = parseQueryResponse(
      {
        results: [
          {
            series: [
              { name: 'telemetry', tags: { device: 'x', level: '1h' }, columns: ['time', 'v'], values: [[1, 1]] },
              { name: 'telemetry', tags: { device: 'x', level: '1h' }, columns: ['time', 'v'], values: [[2, 2]] },
              { name: 'telemetry', columns: ['time', 'v'], values: [[3, 3]] },
            ],
          },
        ],
      },
      { ...base, fields: ['v'] },
    );
    expect(r.series).toEqual([
      { device: 'x', field: 'v', tags: { level: '1h' }, points: [[1, 1], [2, 2]] },
      { device: '', field: 'v', points: [[3, 3]] },
    ]);
  });

  test('RFC3339 times (a server that ignored epoch=ms) are read as ms', () => {
    const r = parseQueryResponse({ results: [{ series: [{ name: 'telemetry', tags: { device: 'd' }, columns: ['time', 'v'], values: [['2023-11-14T22:13:20.5Z', 1]] }] }] }, base);
    expect(r.series[0].points).toEqual([[1_700_000_000_500, 1]]);
  });

  test('errors in the answer: "not found" is retryable (config), others are not', () => {
    const missing = (): unknown => parseQueryResponse({ results: [{ statement_id: 0, error: 'database not found: nope' }] }, base);
    expect(missing).toThrow(StoreError);
    expect(missing).toThrow(expect.objectContaining({ retryable: true, serverMessage: 'database not found: nope' }));
    const other = (): unknown => parseQueryResponse({ error: 'error parsing query: found X' }, base);
    expect(other).toThrow(expect.objectContaining({ retryable: false, serverMessage: 'error parsing query: found X' }));
    expect(() => parseQueryResponse('nope', base)).toThrow(/not a JSON object/);
  });

  test("a server that does not run InfluxQL (VictoriaMetrics answers its database list) is an error, not an empty result", () => {
    const vm = { results: [{ statement_id: 0, series: [{ name: 'databases', columns: ['name'], values: [['_internal']] }] }] };
    expect(() => parseQueryResponse(vm, base)).toThrow(/does not seem to run InfluxQL/);
  });

  test('maxPoints: numeric series go through LTTB (first and last kept, a subset), others keep their last points', () => {
    const n = 1000;
    const values = Array.from({ length: n }, (_, i) => [i * 1000, Math.sin(i / 20) * 10 + (i === 500 ? 100 : 0), `s${i}`]);
    const r = parseQueryResponse({ results: [{ series: [{ name: 'telemetry', tags: { device: 'd' }, columns: ['time', 'v', 's'], values }] }] }, { ...base, fields: ['v', 's'], maxPoints: 50 });
    const [num, str] = r.series;
    expect(num.points).toHaveLength(50);
    expect(num.points[0]).toEqual([0, values[0][1]]);
    expect(num.points[49]).toEqual([(n - 1) * 1000, values[n - 1][1]]);
    const all = new Map(values.map((v) => [v[0] as number, v[1] as number]));
    for (const [t, v] of num.points) expect(all.get(t)).toBe(v);
    for (let i = 1; i < num.points.length; i++) expect(num.points[i][0]).toBeGreaterThan(num.points[i - 1][0]);
    expect(num.points).toContainEqual([500_000, values[500][1]]); // the spike survives
    expect(str.points).toEqual(values.slice(n - 50).map((v) => [v[0], v[2]]));
  });

  test('downsample: short series untouched; 1 point is the first, 2 the ends (as lttb does); booleans keep the last', () => {
    const pts: Array<[number, number]> = [
      [1, 1],
      [2, 5],
      [3, 2],
    ];
    expect(downsample(pts, 3)).toBe(pts);
    expect(downsample(pts, 1)).toEqual([[1, 1]]);
    expect(downsample(pts, 2)).toEqual([
      [1, 1],
      [3, 2],
    ]);
    expect(
      downsample(
        [
          [1, true],
          [2, false],
          [3, true],
        ],
        2,
      ),
    ).toEqual([
      [2, false],
      [3, true],
    ]);
    expect(() => parseQueryResponse({ results: [] }, { ...base, maxPoints: 0 })).toThrow(/maxPoints/);
  });
});
