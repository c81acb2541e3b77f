/**
 * Reading the NAB layout: data/<category>/<file>.csv (timestamp,value),
 * combined_windows.json, and result files <detector>/<category>/<detector>_<file>.csv[.gz]
 * (timestamp,anomaly_score[,...]).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { parseNabTimestamp, prepareFile, type PreparedFile } from './scorer';

export interface DataFile {
  /** "category/file.csv", the key in combined_windows.json. */
  name: string;
  category: string;
  file: string;
  /** Timestamps as written in the CSV. */
  rawTimestamps: string[];
  timestamps: Float64Array;
  values: Float64Array;
}

export type Windows = Record<string, Array<[string, string]>>;

function readText(p: string): string {
  const buf = fs.readFileSync(p);
  return p.endsWith('.gz') ? zlib.gunzipSync(buf).toString('utf8') : buf.toString('utf8');
}

/** Splits a CSV with a header into rows of cells (no quoting in NAB files). */
function csvRows(text: string): string[][] {
  const lines = text.split(/\r?\n/);
  const out: string[][] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].length === 0) continue;
    out.push(lines[i].split(','));
  }
  return out;
}

export function readDataFile(dataDir: string, name: string): DataFile {
  const rows = csvRows(readText(path.join(dataDir, name)));
  const n = rows.length;
  const timestamps = new Float64Array(n);
  const values = new Float64Array(n);
  const rawTimestamps: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    rawTimestamps[i] = rows[i][0];
    timestamps[i] = parseNabTimestamp(rows[i][0]);
    if (Number.isNaN(timestamps[i])) throw new Error(`${name}: row ${i + 1}: bad timestamp ${JSON.stringify(rows[i][0])}`);
    values[i] = Number(rows[i][1]);
  }
  const [category, file] = name.split('/');
  return { name, category, file, rawTimestamps, timestamps, values };
}

/** Every "category/file.csv" under dataDir, sorted. */
export function listDataFiles(dataDir: string): string[] {
  const out: string[] = [];
  for (const cat of fs.readdirSync(dataDir, { withFileTypes: true })) {
    if (!cat.isDirectory()) continue;
    for (const f of fs.readdirSync(path.join(dataDir, cat.name))) if (f.endsWith('.csv')) out.push(`${cat.name}/${f}`);
  }
  return out.sort();
}

export function readWindows(file: string): Windows {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Windows;
}

export function windowsMs(windows: Windows, name: string): Array<[number, number]> {
  const w = windows[name];
  if (w === undefined) throw new Error(`no windows for ${name}`);
  return w.map(([a, b]) => [parseNabTimestamp(a), parseNabTimestamp(b)]);
}

/** Path of a detector's result file for a data file; tries .csv then .csv.gz. */
export function resultPath(resultsDir: string, detector: string, name: string): string {
  const [category, file] = name.split('/');
  const base = path.join(resultsDir, detector, category, `${detector}_${file}`);
  if (fs.existsSync(base)) return base;
  if (fs.existsSync(`${base}.gz`)) return `${base}.gz`;
  throw new Error(`no results for ${detector} on ${name} (${base})`);
}

/** The anomaly_score column of a results file, checked row by row against the data's timestamps. */
export function readResultScores(p: string, data: DataFile): Float64Array {
  const text = readText(p);
  const header = text.slice(0, text.indexOf('\n')).trim().split(',');
  const col = header.indexOf('anomaly_score');
  if (col < 0) throw new Error(`${p}: no anomaly_score column`);
  const rows = csvRows(text);
  if (rows.length !== data.timestamps.length) throw new Error(`${p}: ${rows.length} rows, data has ${data.timestamps.length}`);
  const out = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    if (parseNabTimestamp(rows[i][0]) !== data.timestamps[i]) throw new Error(`${p}: row ${i + 1} timestamp ${rows[i][0]} differs from the data`);
    out[i] = Number(rows[i][col]);
  }
  return out;
}

/** Prepares a detector's results over the corpus for scoring. */
export function prepareResults(
  dataDir: string,
  windows: Windows,
  resultsDir: string,
  detector: string,
  names: readonly string[] = listDataFiles(dataDir),
): PreparedFile[] {
  return names.map((name) => {
    const data = readDataFile(dataDir, name);
    const scores = readResultScores(resultPath(resultsDir, detector, name), data);
    return prepareFile({ name, timestamps: data.timestamps, scores, windows: windowsMs(windows, name) });
  });
}
