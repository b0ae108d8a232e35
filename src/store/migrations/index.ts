/**
 * Schema migrations, one per file, applied in name order on both engines.
 * A migration receives the engine so it can pick column types that differ
 * (binary data, auto-increment keys).
 */
import type { Kysely, Migration } from "kysely";
import type { Engine } from "../engine.js";
import { m0001Initial } from "./0001-initial.js";
import { m0002Async } from "./0002-async.js";
import { m0004AliasesConcurrency } from "./0004-aliases-concurrency.js";
import { m0005EventSources } from "./0005-event-sources.js";
import { m0006Layers } from "./0006-layers.js";
import { m0007FunctionSettings } from "./0007-function-settings.js";
import { m0008Auth } from "./0008-auth.js";
import { m0009LogRetention } from "./0009-log-retention.js";
import { m0010FunctionUrls } from "./0010-function-urls.js";
import { m0011LogGroupsApi } from "./0011-log-groups-api.js";
import { m0012Schedules } from "./0012-schedules.js";
import { m0013ClusterWorkers } from "./0013-cluster-workers.js";
import { m0014ConcurrencyLeases } from "./0014-concurrency-leases.js";
import { m0015Stacks } from "./0015-stacks.js";
import { m0016ScheduleClientTokens } from "./0016-schedule-client-tokens.js";
import { m0017Metrics } from "./0017-metrics.js";
import { m0018CapacityProviders } from "./0018-capacity-providers.js";
import { m0019AsyncFair } from "./0019-async-fair.js";

export type EngineMigration = (engine: Engine) => Migration;

export const migrations: Record<string, EngineMigration> = {
  "0001-initial": m0001Initial,
  "0002-async": m0002Async,
  "0004-aliases-concurrency": m0004AliasesConcurrency,
  "0005-event-sources": m0005EventSources,
  "0006-layers": m0006Layers,
  "0007-function-settings": m0007FunctionSettings,
  "0008-auth": m0008Auth,
  "0009-log-retention": m0009LogRetention,
  "0010-function-urls": m0010FunctionUrls,
  "0011-log-groups-api": m0011LogGroupsApi,
  "0012-schedules": m0012Schedules,
  "0013-cluster-workers": m0013ClusterWorkers,
  "0014-concurrency-leases": m0014ConcurrencyLeases,
  "0015-stacks": m0015Stacks,
  "0016-schedule-client-tokens": m0016ScheduleClientTokens,
  "0017-metrics": m0017Metrics,
  "0018-capacity-providers": m0018CapacityProviders,
  "0019-async-fair": m0019AsyncFair,
};

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
export type MigrationDb = Kysely<any>;
