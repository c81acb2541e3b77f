// jest globalTeardown: removes this run's temp dirs (see global-setup.js). Every test file has stopped its
// processes by now; a run that is killed leaves its directory for the next clean-up of /tmp.
const fs = require('node:fs');

module.exports = async function globalTeardown() {
  const dir = process.env.TW_TEST_TMPDIR;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
};
