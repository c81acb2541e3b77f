// The OpenAPI 3.1 document of flows/api.json (served by the flow at GET /api/v1/openapi.json).
// Schemas are JSON Schema 2020-12; test/integration/openapi.test.ts validates real answers against them.
const ref = (name) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema, description) => ({ description, content: { 'application/json': { schema } } });
const err = (name) => ({ $ref: `#/components/responses/${name}` });
const ADMIN = [{ adminBearer: [] }, { adminApiKey: [] }];
const ADMIN_OR_QUERY = [{ adminBearer: [] }, { adminApiKey: [] }, { adminQueryKey: [] }];
const DEVICE = [{ deviceBearer: [] }, { deviceToken: [] }, { deviceQueryToken: [] }];
const THINGSPEAK_WRITE = [{ thingspeakApiKey: [] }, { thingspeakHeader: [] }];
const ms = { type: 'integer', minimum: 0, description: 'milliseconds since 1970-01-01T00:00:00Z' };
const idParam = (what) => ({ name: 'id', in: 'path', required: true, description: `${what} id: 1 to 128 letters, digits and ._:-, starting with a letter or digit`, schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' } });
const q = (name, description, schema = { type: 'string' }) => ({ name, in: 'query', required: false, description, schema });
const metricValue = { type: ['number', 'string', 'boolean'] };
const tsString = (description) => ({ type: 'string', description });

const ADMIN_ERRORS = { 400: err('BadRequest'), 401: err('Unauthorized'), 503: err('NotConfigured') };
/** Changes also answer 403 to the read-only key (THINGWIRE_API_READ_KEY). */
const WRITE_ERRORS = { ...ADMIN_ERRORS, 403: err('Forbidden') };

const schemas = {
  Error: {
    type: 'object',
    description: 'Every error answer (except ThingSpeak /update, which answers "0").',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        additionalProperties: false,
        properties: {
          code: { type: 'string', description: 'machine-readable: invalid, invalid_entry, validation_failed, malformed_json, unauthorized, forbidden, not_found, conflict, payload_too_large, rate_limited, not_configured, store_error, internal...' },
          message: { type: 'string', description: 'what went wrong and how to fix it' },
          details: { description: 'e.g. { rejected: [RejectedEntry] } for entries, or the offending field' },
        },
      },
    },
  },
  Location: {
    type: 'object',
    additionalProperties: false,
    properties: { name: { type: 'string' }, lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } },
  },
  Device: {
    type: 'object',
    description: 'A registered device. Its token is never returned, only whether it has one.',
    required: ['id', 'name', 'type', 'tags', 'metadata', 'enabled', 'livenessTimeout', 'createdAt', 'updatedAt', 'lastSeen', 'hasToken', 'tokenRotatedAt'],
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      type: { type: 'string', description: 'device type ("" when not set)' },
      location: ref('Location'),
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      metadata: { type: 'object' },
      enabled: { type: 'boolean' },
      livenessTimeout: { type: 'integer', minimum: 0, description: 'ms without data before the device counts as offline; 0: the registry default' },
      createdAt: ms,
      updatedAt: ms,
      lastSeen: { type: ['integer', 'null'], description: 'time of its newest data (ms), null when it never sent any' },
      hasToken: { type: 'boolean' },
      tokenRotatedAt: { type: ['integer', 'null'] },
    },
  },
  DeviceInput: {
    type: 'object',
    required: ['id'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      type: { type: 'string' },
      location: ref('Location'),
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      metadata: { type: 'object' },
      enabled: { type: 'boolean' },
      livenessTimeout: { type: 'integer', minimum: 0 },
    },
  },
  DevicePatch: {
    type: 'object',
    description: 'Any subset of the writable fields; the id cannot change.',
    properties: {
      name: { type: 'string' },
      type: { type: 'string' },
      location: ref('Location'),
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      metadata: { type: 'object' },
      enabled: { type: 'boolean' },
      livenessTimeout: { type: 'integer', minimum: 0 },
    },
  },
  DeviceWithToken: {
    type: 'object',
    description: 'A device and its new token: the only time the token is shown.',
    required: ['device', 'token'],
    additionalProperties: false,
    properties: { device: ref('Device'), token: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } },
  },
  DevicePage: {
    type: 'object',
    required: ['items', 'total', 'offset', 'limit'],
    additionalProperties: false,
    properties: { items: { type: 'array', items: ref('Device') }, total: { type: 'integer', minimum: 0 }, offset: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1 } },
  },
  Stream: {
    type: 'object',
    description: 'A stream of entries, owned by one device or open to the devices of one type.',
    required: ['id', 'name', 'description', 'schema', 'device', 'deviceType', 'createdAt', 'updatedAt'],
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      description: { type: 'string' },
      schema: { type: ['object', 'null'], description: 'JSON Schema (2020-12) every entry must satisfy; null: any object of metrics' },
      device: { type: ['string', 'null'] },
      deviceType: { type: ['string', 'null'] },
      createdAt: ms,
      updatedAt: ms,
    },
  },
  StreamInput: {
    type: 'object',
    required: ['id'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      description: { type: 'string' },
      schema: { type: ['object', 'null'] },
      device: { type: ['string', 'null'] },
      deviceType: { type: ['string', 'null'] },
    },
  },
  StreamReplace: {
    type: 'object',
    description: 'The whole stream but its id (PUT replaces; omitted fields become empty or null).',
    properties: {
      name: { type: 'string' },
      description: { type: 'string' },
      schema: { type: ['object', 'null'] },
      device: { type: ['string', 'null'] },
      deviceType: { type: ['string', 'null'] },
    },
  },
  StreamPage: {
    type: 'object',
    required: ['items', 'total', 'offset', 'limit'],
    additionalProperties: false,
    properties: { items: { type: 'array', items: ref('Stream') }, total: { type: 'integer', minimum: 0 }, offset: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1 } },
  },
  EntryInput: {
    type: 'object',
    description: 'A flat entry { ts?, ...metrics } or a reading { device, ts, metrics, tags? }. ts: ms since epoch or ISO 8601 with a zone (default: now). Metrics: numbers, booleans or strings.',
    properties: {
      ts: { type: ['integer', 'string'] },
      device: { type: 'string' },
      metrics: { type: 'object', additionalProperties: metricValue },
      tags: { type: 'object', additionalProperties: { type: 'string' } },
    },
    additionalProperties: metricValue,
  },
  Entry: {
    type: 'object',
    required: ['ts', 'device', 'metrics'],
    additionalProperties: false,
    properties: { ts: ms, device: { type: 'string' }, metrics: { type: 'object', additionalProperties: { type: ['number', 'string', 'boolean'] } } },
  },
  EntriesPage: {
    type: 'object',
    description: 'The newest `limit` entries of the range, in time order.',
    required: ['stream', 'entries', 'count', 'truncated'],
    additionalProperties: false,
    properties: { stream: { type: 'string' }, entries: { type: 'array', items: ref('Entry') }, count: { type: 'integer', minimum: 0 }, truncated: { type: 'boolean' } },
  },
  RejectedEntry: {
    type: 'object',
    required: ['index', 'code', 'message'],
    additionalProperties: false,
    properties: {
      index: { type: 'integer', minimum: 0 },
      code: { type: 'string', description: 'not_an_entry, invalid_ts, ts_out_of_range, invalid_name, invalid_value, no_metrics, validation_failed' },
      message: { type: 'string' },
      errors: { type: 'array', items: { type: 'object', required: ['path', 'keyword', 'message'], properties: { path: { type: 'string' }, keyword: { type: 'string' }, message: { type: 'string' }, params: { type: 'object' } } } },
    },
  },
  EntriesResult: {
    type: 'object',
    required: ['accepted', 'rejected'],
    additionalProperties: false,
    properties: { accepted: { type: 'integer', minimum: 1 }, rejected: { type: 'array', items: ref('RejectedEntry') } },
  },
  ThingSpeakChannel: {
    type: 'object',
    required: ['id', 'name', 'description', 'created_at', 'updated_at', 'last_entry_id', 'field1', 'field2', 'field3', 'field4', 'field5', 'field6', 'field7', 'field8'],
    additionalProperties: false,
    properties: {
      id: { type: 'string', description: 'the stream id' },
      name: { type: 'string' },
      description: { type: 'string' },
      created_at: { type: 'string', format: 'date-time' },
      updated_at: { type: 'string', format: 'date-time' },
      last_entry_id: { type: ['integer', 'null'] },
      field1: { type: 'string' },
      field2: { type: 'string' },
      field3: { type: 'string' },
      field4: { type: 'string' },
      field5: { type: 'string' },
      field6: { type: 'string' },
      field7: { type: 'string' },
      field8: { type: 'string' },
    },
  },
  ThingSpeakFeed: {
    type: 'object',
    description: 'One entry; field values as strings, null when the entry has none.',
    required: ['created_at', 'entry_id'],
    additionalProperties: false,
    properties: {
      created_at: { type: 'string', format: 'date-time' },
      entry_id: { type: ['integer', 'null'] },
      field1: { type: ['string', 'null'] },
      field2: { type: ['string', 'null'] },
      field3: { type: ['string', 'null'] },
      field4: { type: ['string', 'null'] },
      field5: { type: ['string', 'null'] },
      field6: { type: ['string', 'null'] },
      field7: { type: ['string', 'null'] },
      field8: { type: ['string', 'null'] },
    },
  },
  ThingSpeakFeeds: {
    type: 'object',
    required: ['channel', 'feeds'],
    additionalProperties: false,
    properties: { channel: ref('ThingSpeakChannel'), feeds: { type: 'array', items: ref('ThingSpeakFeed') } },
  },
  ThingSpeakUpdate: {
    type: 'object',
    description: 'GET query, form or JSON body. api_key: "<device id>.<device token>".',
    properties: {
      api_key: { type: 'string' },
      field1: metricValue,
      field2: metricValue,
      field3: metricValue,
      field4: metricValue,
      field5: metricValue,
      field6: metricValue,
      field7: metricValue,
      field8: metricValue,
      lat: { type: ['number', 'string'] },
      long: { type: ['number', 'string'] },
      elevation: { type: ['number', 'string'] },
      status: { type: 'string' },
      created_at: tsString('ISO 8601 or "YYYY-MM-DD HH:MM:SS" (UTC); default now'),
    },
  },
  ThingSpeakBulkUpdate: {
    type: 'object',
    required: ['write_api_key', 'updates'],
    properties: {
      write_api_key: { type: 'string', description: '"<device id>.<device token>"' },
      updates: {
        type: 'array',
        minItems: 1,
        maxItems: 10000,
        items: {
          type: 'object',
          description: 'created_at (ISO 8601, "YYYY-MM-DD HH:MM:SS" UTC, or epoch seconds) or delta_t (seconds after the previous update; when no update has created_at, the last one is the time of the request; a delta_t before the first created_at is rejected).',
          properties: {
            created_at: { type: ['string', 'integer'] },
            delta_t: { type: ['number', 'string'] },
            field1: metricValue,
            field2: metricValue,
            field3: metricValue,
            field4: metricValue,
            field5: metricValue,
            field6: metricValue,
            field7: metricValue,
            field8: metricValue,
            latitude: { type: ['number', 'string'] },
            longitude: { type: ['number', 'string'] },
            elevation: { type: ['number', 'string'] },
            status: { type: 'string' },
          },
        },
      },
    },
  },
  ThingSpeakBulkResult: {
    type: 'object',
    required: ['success'],
    additionalProperties: false,
    properties: {
      success: { const: true },
      accepted: { type: 'integer', minimum: 1, description: 'Thingwire extension: how many updates were stored' },
      rejected: { type: 'array', items: ref('RejectedEntry'), description: 'Thingwire extension: the updates refused, by index' },
    },
  },
  Health: {
    type: 'object',
    required: ['status', 'uptimeSeconds', 'components'],
    additionalProperties: false,
    properties: {
      status: { enum: ['ok', 'degraded'] },
      uptimeSeconds: { type: 'integer', minimum: 0 },
      components: {
        type: 'object',
        required: ['broker', 'flows', 'store'],
        additionalProperties: false,
        properties: { broker: ref('ComponentHealth'), flows: ref('ComponentHealth'), store: ref('ComponentHealth') },
      },
    },
  },
  ComponentHealth: {
    type: 'object',
    required: ['state', 'detail'],
    properties: { state: { enum: ['up', 'down', 'starting', 'absent'] }, detail: { type: 'string' } },
  },
};

const errorResponse = (description, headers) => ({ ...json(ref('Error'), description), ...(headers ? { headers } : {}) });
const retryAfter = { 'Retry-After': { required: true, description: 'seconds until the device may write again', schema: { type: 'integer', minimum: 1 } } };
const responses = {
  BadRequest: errorResponse('Invalid request: a malformed id, body or query, or entries that fail their checks (details lists them).'),
  Unauthorized: errorResponse('Missing or wrong credentials.', { 'WWW-Authenticate': { description: 'Bearer realm="thingwire" (not sent by every endpoint)', schema: { type: 'string' } } }),
  Forbidden: errorResponse('The device is disabled or may not write to this stream; or the read-only API key was used to change something.'),
  NotFound: errorResponse('No such device, stream or channel.'),
  Conflict: errorResponse('The id is taken.'),
  TooLarge: errorResponse('The body is too large: over 1 MiB or 10,000 entries for entries and bulk updates, over 5 MB (Node-RED httpNodeMaxBodySize) for anything else.'),
  RateLimited: errorResponse('The device wrote more entries than THINGWIRE_API_RATE per second allows (burst: twice that).', retryAfter),
  NotConfigured: errorResponse('The management API is off until THINGWIRE_API_KEY is set.'),
  StoreUnavailable: errorResponse('The store could not keep the entries (its disk spool is full): nothing of the request was stored; send it again later.', { 'Retry-After': { required: true, description: 'seconds to wait before sending again', schema: { type: 'integer', minimum: 1 } } }),
};

const page = (extra) => [q('offset', 'skip this many (default 0)', { type: 'string', pattern: '^\\d+$' }), q('limit', 'page size, 1 to 1000 (default 100)', { type: 'string', pattern: '^\\d+$' }), ...extra];
const body = (schema, description) => ({ required: true, description, content: { 'application/json': { schema } } });
const tsReadParams = [
  q('results', 'the newest N entries, 1 to 10000 (default 100)', { type: 'string', pattern: '^\\d+$' }),
  q('start', 'from (ISO 8601, "YYYY-MM-DD HH:MM:SS" UTC, ms, or relative like -7d; default -30d)'),
  q('end', 'until (default now)'),
  q('api_key', 'the admin API key (instead of a header)'),
];
const channelParam = { ...idParam('Channel (stream)') };

const paths = {
  '/api/v1/devices': {
    get: {
      operationId: 'listDevices', tags: ['devices'], summary: 'List devices (paged, filtered)', security: ADMIN,
      parameters: page([q('type', 'devices of this type'), q('tag', 'devices with this tag, key=value'), q('enabled', 'true or false', { enum: ['true', 'false'] }), q('q', 'case-insensitive substring of id or name')]),
      responses: { 200: json(ref('DevicePage'), 'A page of devices'), ...ADMIN_ERRORS },
    },
    post: {
      operationId: 'createDevice', tags: ['devices'], summary: 'Register a device; its token is in the answer, once', security: ADMIN,
      requestBody: body(ref('DeviceInput')),
      responses: { 201: json(ref('DeviceWithToken'), 'The device and its token'), ...WRITE_ERRORS, 409: err('Conflict'), 413: err('TooLarge') },
    },
  },
  '/api/v1/devices/{id}': {
    parameters: [idParam('Device')],
    get: { operationId: 'getDevice', tags: ['devices'], summary: 'A device', security: ADMIN, responses: { 200: json(ref('Device'), 'The device'), ...ADMIN_ERRORS, 404: err('NotFound') } },
    patch: {
      operationId: 'updateDevice', tags: ['devices'], summary: 'Change some fields of a device', security: ADMIN,
      requestBody: body(ref('DevicePatch')),
      responses: { 200: json(ref('Device'), 'The updated device'), ...WRITE_ERRORS, 404: err('NotFound'), 413: err('TooLarge') },
    },
    delete: { operationId: 'deleteDevice', tags: ['devices'], summary: 'Delete a device', security: ADMIN, responses: { 204: { description: 'Deleted' }, ...WRITE_ERRORS, 404: err('NotFound') } },
  },
  '/api/v1/devices/{id}/token': {
    parameters: [idParam('Device')],
    post: { operationId: 'rotateDeviceToken', tags: ['devices'], summary: 'A new token; the old one stops working at once', security: ADMIN, responses: { 200: json(ref('DeviceWithToken'), 'The device and its new token'), ...WRITE_ERRORS, 404: err('NotFound') } },
  },
  '/api/v1/streams': {
    get: {
      operationId: 'listStreams', tags: ['streams'], summary: 'List streams (paged, filtered)', security: ADMIN,
      parameters: page([q('device', 'streams owned by this device'), q('deviceType', 'streams for this device type')]),
      responses: { 200: json(ref('StreamPage'), 'A page of streams'), ...ADMIN_ERRORS },
    },
    post: {
      operationId: 'createStream', tags: ['streams'], summary: 'Create a stream, with an optional JSON Schema for its entries', security: ADMIN,
      requestBody: body(ref('StreamInput')),
      responses: { 201: json(ref('Stream'), 'The stream'), ...WRITE_ERRORS, 409: err('Conflict'), 413: err('TooLarge') },
    },
  },
  '/api/v1/streams/{id}': {
    parameters: [idParam('Stream')],
    get: { operationId: 'getStream', tags: ['streams'], summary: 'A stream', security: ADMIN, responses: { 200: json(ref('Stream'), 'The stream'), ...ADMIN_ERRORS, 404: err('NotFound') } },
    put: {
      operationId: 'replaceStream', tags: ['streams'], summary: 'Replace a stream', security: ADMIN,
      requestBody: body(ref('StreamReplace')),
      responses: { 200: json(ref('Stream'), 'The new stream'), ...WRITE_ERRORS, 404: err('NotFound'), 413: err('TooLarge') },
    },
    delete: { operationId: 'deleteStream', tags: ['streams'], summary: 'Delete a stream (its stored entries stay in the store)', security: ADMIN, responses: { 204: { description: 'Deleted' }, ...WRITE_ERRORS, 404: err('NotFound') } },
  },
  '/api/v1/streams/{id}/entries': {
    parameters: [idParam('Stream')],
    get: {
      operationId: 'readEntries', tags: ['entries'], summary: "A stream's entries from the store", security: ADMIN,
      parameters: [
        q('start', 'from: ms, ISO 8601 or relative like -1h (default -24h)'),
        q('end', 'until (default now)'),
        q('limit', 'the newest N entries, 1 to 10000 (default 1000)', { type: 'string', pattern: '^\\d+$' }),
        q('fields', "metrics to read, comma separated (default: the properties of the stream's schema)"),
        q('bucket', 'aggregate into buckets of this size, e.g. 1m, 1h'),
        q('agg', 'with bucket: mean (default), min, max, sum, count, first, last...'),
      ],
      responses: { 200: json(ref('EntriesPage'), 'The entries'), ...ADMIN_ERRORS, 404: err('NotFound') },
    },
    post: {
      operationId: 'writeEntries', tags: ['entries'], summary: "Write one entry or many, each checked against the stream's schema", security: DEVICE,
      description: "The device is the stream's owner, else X-Device-Id, ?device= or the entries' device. Valid entries are stored even when others are rejected (201 lists those). Rate limited per device (THINGWIRE_API_RATE entries per second, burst twice that).",
      parameters: [{ name: 'X-Device-Id', in: 'header', required: false, description: 'the writing device, for streams without an owner', schema: { type: 'string' } }, q('device', 'the writing device (instead of X-Device-Id)')],
      requestBody: body({ oneOf: [ref('EntryInput'), { type: 'array', minItems: 1, maxItems: 10000, items: ref('EntryInput') }] }),
      responses: {
        201: json(ref('EntriesResult'), 'Stored (written, or in the store\'s disk spool); rejected lists the entries refused'),
        400: err('BadRequest'),
        401: err('Unauthorized'),
        403: err('Forbidden'),
        404: err('NotFound'),
        413: err('TooLarge'),
        429: err('RateLimited'),
        503: err('StoreUnavailable'),
      },
    },
  },
  '/api/v1/openapi.json': {
    get: { operationId: 'openapi', tags: ['meta'], summary: 'This document', security: [], responses: { 200: json({ type: 'object', required: ['openapi', 'info', 'paths'], properties: { openapi: { const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } } }, 'OpenAPI 3.1') } },
  },
  '/api/v1/docs': {
    get: { operationId: 'docs', tags: ['meta'], summary: 'A browsable page of this document (self-contained, no external resources)', security: [], responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } },
  },
  '/api/v1/health': {
    'x-thingwire-served-by': 'runtime',
    get: {
      operationId: 'health', tags: ['meta'], summary: 'Health of the broker, the flows and the store (served by the bundled runtime, not by the flow)', security: [],
      responses: { 200: json(ref('Health'), 'Everything is up'), 503: json(ref('Health'), 'Something is down') },
    },
  },
  '/update': {
    get: {
      operationId: 'thingspeakUpdateGet', tags: ['thingspeak'], summary: 'ThingSpeak write: one entry to the first stream the device owns', security: THINGSPEAK_WRITE,
      parameters: ['field1', 'field2', 'field3', 'field4', 'field5', 'field6', 'field7', 'field8', 'lat', 'long', 'elevation', 'status', 'created_at'].map((k) => q(k, k === 'created_at' ? 'ISO 8601 or "YYYY-MM-DD HH:MM:SS" (UTC)' : 'value')),
      responses: {
        200: { description: 'The entry id (1, 2, 3... per channel), or "0" when the update failed (as ThingSpeak does)', content: { 'text/plain': { schema: { type: 'string', pattern: '^\\d+$' } } } },
        429: { description: 'Rate limited: "0", with Retry-After', headers: retryAfter, content: { 'text/plain': { schema: { const: '0' } } } },
      },
    },
    post: {
      operationId: 'thingspeakUpdatePost', tags: ['thingspeak'], summary: 'ThingSpeak write (form or JSON body)', security: THINGSPEAK_WRITE,
      requestBody: { required: false, content: { 'application/x-www-form-urlencoded': { schema: ref('ThingSpeakUpdate') }, 'application/json': { schema: ref('ThingSpeakUpdate') } } },
      responses: {
        200: { description: 'The entry id, or "0" when the update failed', content: { 'text/plain': { schema: { type: 'string', pattern: '^\\d+$' } } } },
        400: errorResponse('The body is not valid JSON (refused before the flow).'),
        413: err('TooLarge'),
        429: { description: 'Rate limited: "0", with Retry-After', headers: retryAfter, content: { 'text/plain': { schema: { const: '0' } } } },
      },
    },
  },
  '/channels/{id}/feeds.json': {
    parameters: [channelParam],
    get: { operationId: 'thingspeakFeeds', tags: ['thingspeak'], summary: "ThingSpeak read: a channel's entries", security: ADMIN_OR_QUERY, parameters: tsReadParams, responses: { 200: json(ref('ThingSpeakFeeds'), 'The channel and its entries'), ...ADMIN_ERRORS, 404: err('NotFound') } },
  },
  '/channels/{id}/fields/{n}.json': {
    parameters: [channelParam, { name: 'n', in: 'path', required: true, description: 'field number, 1 to 8', schema: { type: 'string', pattern: '^[1-8]$' } }],
    get: { operationId: 'thingspeakField', tags: ['thingspeak'], summary: "ThingSpeak read: one field of a channel's entries", security: ADMIN_OR_QUERY, parameters: tsReadParams, responses: { 200: json(ref('ThingSpeakFeeds'), 'The channel and the entries that have the field'), ...ADMIN_ERRORS, 404: err('NotFound') } },
  },
  '/channels/{id}/feeds/last.json': {
    parameters: [channelParam],
    get: {
      operationId: 'thingspeakLast', tags: ['thingspeak'], summary: "ThingSpeak read: a channel's newest entry (in the last 30 days, or since ?start)", security: ADMIN_OR_QUERY,
      parameters: [q('start', 'look back to (default -30d)'), q('api_key', 'the admin API key (instead of a header)')],
      responses: { 200: json({ oneOf: [ref('ThingSpeakFeed'), { const: -1, description: 'no entry' }] }, 'The newest entry, or -1 when there is none (as ThingSpeak does)'), ...ADMIN_ERRORS, 404: err('NotFound') },
    },
  },
  '/channels/{id}/bulk_update.json': {
    parameters: [channelParam],
    post: {
      operationId: 'thingspeakBulkUpdate', tags: ['thingspeak'], summary: 'ThingSpeak bulk write (JSON): many entries at once', security: [],
      description: "write_api_key in the body is \"<device id>.<device token>\"; the device must own the channel (or be of the channel's device type). Counts against the device's rate limit as one entry per update.",
      requestBody: body(ref('ThingSpeakBulkUpdate')),
      responses: {
        202: json(ref('ThingSpeakBulkResult'), 'Stored (the updates refused are listed)'),
        400: err('BadRequest'),
        401: err('Unauthorized'),
        403: err('Forbidden'),
        404: err('NotFound'),
        413: err('TooLarge'),
        429: err('RateLimited'),
      },
    },
  },
};

module.exports = {
  openapi: '3.1.0',
  jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
  info: {
    title: 'Thingwire HTTP API',
    version: '1.0.0',
    description:
      'Devices, streams and entries under /api/v1, and ThingSpeak-compatible endpoints. Management and reads need the admin API key (THINGWIRE_API_KEY) as "Authorization: Bearer <key>" or "X-API-Key"; entries are written with a device token. Errors are { error: { code, message, details? } }.',
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  },
  servers: [{ url: '/', description: 'this Thingwire' }],
  tags: [
    { name: 'devices', description: 'The device registry' },
    { name: 'streams', description: 'Streams and their JSON Schemas' },
    { name: 'entries', description: 'Writing and reading entries' },
    { name: 'thingspeak', description: 'ThingSpeak-compatible endpoints (channel = stream, write API key = "<device id>.<device token>")' },
    { name: 'meta', description: 'This document, its page, health' },
  ],
  paths,
  components: {
    schemas,
    responses,
    securitySchemes: {
      adminBearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <THINGWIRE_API_KEY> (the admin key), or on GET routes the read-only key THINGWIRE_API_READ_KEY' },
      adminApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'the admin API key (THINGWIRE_API_KEY)' },
      adminQueryKey: { type: 'apiKey', in: 'query', name: 'api_key', description: 'the admin API key, ThingSpeak read endpoints only' },
      deviceBearer: { type: 'http', scheme: 'bearer', description: "Authorization: Bearer <device token>" },
      deviceToken: { type: 'apiKey', in: 'header', name: 'X-Device-Token', description: 'the device token' },
      deviceQueryToken: { type: 'apiKey', in: 'query', name: 'api_key', description: 'the device token as ?api_key=' },
      thingspeakApiKey: { type: 'apiKey', in: 'query', name: 'api_key', description: '"<device id>.<device token>" (also accepted in the form or JSON body)' },
      thingspeakHeader: { type: 'apiKey', in: 'header', name: 'X-THINGSPEAKAPIKEY', description: '"<device id>.<device token>"' },
    },
  },
};
