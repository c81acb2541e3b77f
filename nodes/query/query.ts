/**
 * thingwire-query: reads a time range from a thingwire-store: devices, fields,
 * optional time buckets, and server-side downsampling to maxPoints per series.
 * The query comes from msg.payload (anything missing from the node's defaults);
 * the result replaces msg.payload. Bad queries and store errors leave on output 2.
 */
import { StoreError, type Aggregate } from '../lib/store/types';
import type { Reject } from '../lib/contract';
import { ThingwireError } from '../lib/errors';
import { configBool, configInt, configList, onInput, rejectError, RejectedError, type Node, type NodeAPI } from '../lib/red';
import type { StoreNode } from '../store/config';
import type { QueryConfig } from './config';
import { planQuery, type QueryDefaults, type QueryPlan } from './spec';
import type { QueryResult, Series } from '../lib/store/types';
import { installFastClone } from '../lib/clone';

const TYPE = 'thingwire-query';

/**
 * Runs a plan's queries one after another (a rollup plan has one per metric) and merges their
 * series; a rollup series is named by its metric, with the level and the stat read in its tags.
 */
async function run(plan: QueryPlan, query: (q: QueryPlan['queries'][number]['query']) => Promise<QueryResult>): Promise<QueryResult> {
  if (plan.queries.length === 1 && plan.queries[0].metric === undefined) return query(plan.queries[0].query);
  const series: Series[] = [];
  for (const p of plan.queries) {
    const r = await query(p.query);
    for (const s of r.series) {
      const tags = { ...s.tags, level: plan.level, stat: plan.stat ?? s.field };
      delete (tags as Record<string, string>).metric;
      series.push({ ...s, field: p.metric ?? s.field, tags });
    }
  }
  return { series };
}

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function QueryNode(this: Node, config: QueryConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const defaults: QueryDefaults = {
      measurement: config.measurement || 'telemetry',
      fields: configList(config.fields),
      start: config.start || '-1h',
      bucket: config.bucket ?? '',
      agg: (config.agg || 'mean') as Aggregate,
      maxPoints: configInt(config.maxPoints, 0, 0),
      level: config.level || 'raw',
      levels: configList(config.levels),
    };
    const catchRejects = configBool(config.catchRejects, false);
    const storeNode = config.store ? (RED.nodes.getNode(config.store) as StoreNode | null) : null;
    if (!storeNode?.service) {
      node.error(RED._(`${TYPE}.errors.no-store`));
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.no-store` });
    } else {
      node.status({});
    }
    let inFlight = 0;

    onInput(node, async (msg, send) => {
      const service = storeNode?.service;
      if (!service) throw new Error(RED._(`${TYPE}.errors.no-store`));
      /** The query's own fault (a bad query, an answer too large): output 2, a yellow status, Catch with catchRejects. */
      const reject = (r: Reject): void => {
        msg.error = rejectError(TYPE, r);
        send([null, msg]);
        node.status({ fill: 'yellow', shape: 'ring', text: r.code });
        if (catchRejects) throw new RejectedError(TYPE, r);
      };
      let plan: QueryPlan;
      try {
        plan = planQuery(msg.payload, defaults, Date.now());
      } catch (e) {
        if (!(e instanceof ThingwireError)) throw e;
        return reject(e.toReject());
      }
      inFlight++;
      node.status({ fill: 'blue', shape: 'dot', text: RED._(`${TYPE}.status.querying`, { n: inFlight }) });
      const t0 = Date.now();
      try {
        const result = await run(plan, (q) => service.query(q));
        msg.query = plan.queries.length === 1 ? plan.queries[0].query : plan.queries.map((p) => p.query);
        msg.level = plan.level;
        msg.payload = result;
        const points = result.series.reduce((n, s) => n + s.points.length, 0);
        node.status({ fill: 'green', shape: 'dot', text: RED._(`${TYPE}.status.done`, { series: result.series.length, points, ms: Date.now() - t0 }) });
        send([msg, null]);
      } catch (e) {
        // An answer past the store's budget: the query's fault, rejected as a bad query is.
        if (e instanceof StoreError && e.status === 413) return reject({ code: 'query_too_large', message: e.message });
        // A store failure is not a reject of the message: it goes to Catch, and to output 2 for flows that answer HTTP.
        msg.error = { code: 'store_error', message: (e as Error).message, source: TYPE };
        node.status({ fill: 'red', shape: 'ring', text: RED._(`${TYPE}.status.failed`) });
        send([null, msg]);
        throw e;
      } finally {
        inFlight--;
      }
    });

    node.on('close', (_removed, done) => done());
  }
  RED.nodes.registerType(TYPE, QueryNode);
};
