/**
 * The embedded broker alone in a process, for tests that kill it (aedes is an ES module that Jest cannot load in
 * its own process). `node dist/test/support/broker-child.js <publish log dir> [port]`: prints `ready <port>`, then
 * the publish log's figures as `stats <json>` every 100 ms and the broker's log lines as `log <line>`; SIGTERM
 * closes it. The service account's password comes from TW_SERVICE_PASSWORD, the log's rotation from TW_ROTATE_MS,
 * the recreated sessions' expiry from TW_SESSION_EXPIRY_MS, the start-up hold from TW_HOLD_MS.
 */
import { startEmbeddedBroker } from '../../runtime/broker';

const [dir, port] = process.argv.slice(2);
if (dir === undefined) {
  process.stderr.write('usage: broker-child.js <publish log dir> [port]\n');
  process.exit(2);
}
startEmbeddedBroker(
  Number(port ?? 0),
  '127.0.0.1',
  (m) => process.stdout.write(`log ${m}\n`),
  { allowAnonymous: false, service: { username: '$thingwire', password: process.env.TW_SERVICE_PASSWORD ?? 'test-service-password-0123' } },
  {
    publishLogDir: dir,
    publishLog: { rotateMs: Number(process.env.TW_ROTATE_MS ?? 1000) },
    ...(process.env.TW_SESSION_EXPIRY_MS ? { sessionExpiryMs: Number(process.env.TW_SESSION_EXPIRY_MS) } : {}),
    ...(process.env.TW_HOLD_MS ? { holdUntilSubscribedMs: Number(process.env.TW_HOLD_MS) } : {}),
  },
).then(
  (b) => {
    process.stdout.write(`ready ${b.port}\n`);
    const t = setInterval(() => process.stdout.write(`stats ${JSON.stringify(b.publishLog())}\n`), 100);
    process.once('SIGTERM', () => {
      clearInterval(t);
      void b.close().then(() => process.exit(0));
    });
  },
  (e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
