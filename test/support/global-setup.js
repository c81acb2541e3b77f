// jest globalSetup: one directory for the temp dirs of this test run (test/support/services.ts tmpDir), so that
// globalTeardown can remove what the run's runtimes, brokers and stores left there. The workers inherit the variable.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

module.exports = async function globalSetup() {
  process.env.TW_TEST_TMPDIR = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-tests-'));
};
