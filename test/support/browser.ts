/**
 * Debian's headless Chromium driven by playwright-core (never a downloaded browser).
 * playwright gives every launch a fresh, empty user-data-dir of its own.
 */
import * as fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { OUTPUT_DIR, requireBinary } from './services';

export async function launchChromium(): Promise<Browser> {
  const executablePath = requireBinary('chromium', 'chromium');
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** Where screenshots go (test-output/, kept out of git). */
export function screenshotPath(name: string): string {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  return `${OUTPUT_DIR}/${name}.png`;
}
