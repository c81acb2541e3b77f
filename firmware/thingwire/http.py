"""HTTP transport, for networks where MQTT is blocked: the same readings, POSTed to the runtime's HTTP API.

HttpSession has the MQTT Session's interface (ensure, publish, keepalive, lost, close, connects,
losses), so the App's loop, ring buffer and batching are the same for both transports. publish()
gets the telemetry topic and the JSON payload the App built (one reading or an array) and sends it
to one of two endpoints:

- "native": POST <HTTP_URL>/api/v1/streams/<STREAM_ID>/entries with "Authorization: Bearer <token>"
  and the readings as they are ({"ts": ms, "<metric>": value, ...}); each entry is checked against
  the stream's schema. Answer 201 {"accepted": n, "rejected": [...]}.
- "thingspeak": POST <HTTP_URL>/channels/<STREAM_ID>/bulk_update.json with
  {"write_api_key": "<id>.<token>", "updates": [{"created_at": ISO 8601, "field1": ...}]}, metrics
  mapped to field1..field8 by THINGSPEAK_FIELDS (metrics not listed there are not sent). Answer 202.

What an answer means for the queued readings (publish returns True = take them off the queue):
- 2xx: delivered. Entries the server rejected one by one (schema) are counted in `rejected`.
- 400, 413, 422: the server will never take this payload: dropped and counted in `rejected`
  (retrying it forever would block every reading behind it).
- 401, 403, 404: a setup problem (wrong token, disabled device, no such stream) that someone can
  fix: kept, retried with backoff, and logged.
- 429, 5xx, network errors and timeouts: kept, retried with backoff (429's Retry-After honoured).
Retries are safe: the store keys a reading by series and event time, so a payload delivered twice
(the answer lost on the way back) is stored once.

`post` is the HTTP function, requests.post of MicroPython's `requests` (urequests) module on the
board and a small adapter over urllib in the host tests.
"""
import json

from .backoff import Backoff

DROP_STATUSES = (400, 413, 422)


def iso8601(ts_ms):
    """UTC ISO 8601 with milliseconds for epoch ms, without time.gmtime (whose epoch differs by port)."""
    ts_ms = int(ts_ms)
    days, ms = divmod(ts_ms, 86400000)
    # Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted).
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    s, milli = divmod(ms, 1000)
    hh, s = divmod(s, 3600)
    mm, ss = divmod(s, 60)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (y, m, d, hh, mm, ss, milli)


def thingspeak_updates(readings, fields):
    """ThingSpeak bulk updates for readings; metrics outside `fields` (at most 8) are left out."""
    updates = []
    for r in readings:
        u = {"created_at": iso8601(r["ts"])}
        for i, name in enumerate(fields[:8]):
            if name in r:
                u["field%d" % (i + 1)] = r[name]
        updates.append(u)
    return updates


class HttpError(Exception):
    pass


class HttpSession:
    def __init__(self, post, cfg, ticks_ms, ticks_diff, backoff_min_ms=1000, backoff_max_ms=60000, log=None):
        self.post = post
        self.device_id = cfg.DEVICE_ID
        self.token = cfg.TOKEN
        self.api = getattr(cfg, "HTTP_API", "native")
        if self.api not in ("native", "thingspeak"):
            raise ValueError('config.HTTP_API must be "native" or "thingspeak", not %r' % (self.api,))
        base = cfg.HTTP_URL.rstrip("/")
        stream = cfg.STREAM_ID
        if not stream:
            raise ValueError("config.STREAM_ID must name the stream (ThingSpeak: channel) the entries go to")
        if self.api == "native":
            self.url = "%s/api/v1/streams/%s/entries" % (base, stream)
        else:
            self.url = "%s/channels/%s/bulk_update.json" % (base, stream)
        self.fields = tuple(getattr(cfg, "THINGSPEAK_FIELDS", ()))
        self.timeout_s = getattr(cfg, "HTTP_TIMEOUT_S", 10)
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.backoff = Backoff(ticks_diff, backoff_min_ms, backoff_max_ms)
        self.log = log
        self.connects = 0  # successful requests after a failure (or the first): the HTTP "sessions"
        self.losses = 0  # failed requests (kept for a retry)
        self.rejected = 0  # readings the server refused for good (schema, malformed): not retried
        self.last_status = None
        self.last_error = None
        self._up = False
        self._timeout_kw = True

    @property
    def connected(self):
        return self._up

    def ensure(self):
        """HTTP has no session: ready unless backing off after a failure."""
        return self.backoff.ready(self.ticks_ms())

    def _body(self, payload):
        if self.api == "native":
            return payload, {"Content-Type": "application/json", "Authorization": "Bearer " + self.token}
        readings = json.loads(payload)
        if not isinstance(readings, list):
            readings = [readings]
        body = {"write_api_key": "%s.%s" % (self.device_id, self.token),
                "updates": thingspeak_updates(readings, self.fields)}
        return json.dumps(body).encode(), {"Content-Type": "application/json"}

    def publish(self, topic, payload):
        """POSTs one payload; True when the queue may drop it (delivered, or refused for good)."""
        if not self.ensure():
            return False
        body, headers = self._body(payload)
        try:
            if self._timeout_kw:
                try:
                    r = self.post(self.url, data=body, headers=headers, timeout=self.timeout_s)
                except TypeError:
                    self._timeout_kw = False  # urequests before 2023 has no timeout argument
                    r = self.post(self.url, data=body, headers=headers)
            else:
                r = self.post(self.url, data=body, headers=headers)
        except Exception as e:  # noqa: BLE001 - DNS, refused, reset, timeout
            return self._failed(e, None)
        try:
            status = r.status_code
            text = r.text if status >= 300 else None
            answer = r.json() if 200 <= status < 300 and self.api == "native" else None
        except Exception:  # noqa: BLE001 - a 2xx with an unreadable body still means it was taken
            answer = None
            text = None
        finally:
            try:
                r.close()
            except Exception:  # noqa: BLE001
                pass
        self.last_status = status
        if 200 <= status < 300:
            if isinstance(answer, dict) and isinstance(answer.get("rejected"), list) and answer["rejected"]:
                self.rejected += len(answer["rejected"])
                if self.log:
                    self.log("http: %d entries rejected: %s" % (len(answer["rejected"]), _first_reason(answer["rejected"])))
            if not self._up:
                self.connects += 1
            self._up = True
            self.backoff.ok()
            return True
        if status in DROP_STATUSES:
            n = _count(payload)
            self.rejected += n
            if self.log:
                self.log("http %d: %d readings refused and dropped: %s" % (status, n, _snippet(text)))
            return True
        retry_ms = None
        if status == 429:
            retry_ms = _retry_after_ms(r)
        return self._failed(HttpError("HTTP %d %s" % (status, _snippet(text))), retry_ms)

    def _failed(self, err, retry_ms):
        self.last_error = err
        self._up = False
        self.losses += 1
        wait = self.backoff.fail(self.ticks_ms())
        if retry_ms is not None and retry_ms > wait:
            wait = self.backoff.hold(self.ticks_ms(), retry_ms)
        if self.log:
            self.log("http post failed (%s); retry in %d ms" % (err, wait))
        return False

    def keepalive(self):
        pass

    def lost(self, err=None):
        if self._up:
            self._up = False
            self.last_error = err

    def close(self):
        self._up = False


def _count(payload):
    try:
        v = json.loads(payload)
    except ValueError:
        return 1
    return len(v) if isinstance(v, list) else 1


def _snippet(text, n=120):
    if not text:
        return ""
    return text if len(text) <= n else text[:n] + "..."


def _first_reason(rejected):
    r = rejected[0]
    if isinstance(r, dict):
        return "%s %s" % (r.get("code", ""), r.get("message", ""))
    return str(r)


def _retry_after_ms(r):
    try:
        v = r.headers.get("Retry-After") or r.headers.get("retry-after")
        return int(float(v) * 1000) if v is not None else None
    except Exception:  # noqa: BLE001
        return None
