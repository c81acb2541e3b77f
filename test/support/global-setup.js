// jest globalSetup: one directory for the temp dirs of this test run (test/support/services.ts tmpDir), so that
// globalTeardown can remove what the run's runtimes, brokers and stores left there. The workers inherit the variable.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

module.exports = async function globalSetup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-tests-'));
  // mkdtemp makes it 0700; mosquitto, started as root, runs as its own user and must reach the persistence dir the
  // tests make for it (0777) inside this one.
  fs.chmodSync(dir, 0o755);
  process.env.TW_TEST_TMPDIR = dir;
};
