/** The store's tables, as Kysely sees them. Times are epoch milliseconds. */
import type { ColumnType, Generated } from "kysely";

export interface FunctionsTable {
  name: string;
  created_at: number;
  /** JSON object of tags. */
  tags: string;
  /** Highest published version number (0 = none). */
  last_version: number;
  reserved_concurrency: number | null;
}

export interface FunctionVersionsTable {
  function_name: string;
  /** "$LATEST" or a published number as text. */
  version: string;
  /** JSON of the stored FunctionConfig (see control/function-config.ts). */
  config: string;
  code_sha256: string;
  code_size: number;
  revision_id: string;
  last_modified: number;
  state: string;
  state_reason: string | null;
  state_reason_code: string | null;
  last_update_status: string;
  last_update_status_reason: string | null;
  last_update_status_reason_code: string | null;
}

export interface CodeBlobsTable {
  /** Hex sha256 of the zip. */
  sha256: string;
  size: number;
  data: Buffer;
  created_at: number;
}

export interface LogStreamsTable {
  group_name: string;
  stream_name: string;
  created_at: number;
  last_event_at: number;
  /** null: no event yet (a stream made by CreateLogStream). */
  first_event_at: number | null;
  last_ingestion_at: number | null;
}

export interface LogGroupsTable {
  group_name: string;
  /** Retention in days; null = the server's --log-retention-days. */
  retention_days: number | null;
  created_at: number;
  /** JSON object of tags (CreateLogGroup, TagResource); null: none. */
  tags: string | null;
}

export interface LogEventsTable {
  id: Generated<number>;
  group_name: string;
  stream_name: string;
  timestamp: number;
  message: string;
  ingestion_time: ColumnType<number, number, never>;
}

/** The async invoke queue: events waiting or running, and destination deliveries (an outbox). */
export interface AsyncEventsTable {
  id: string;
  /** "invoke" (run the function) or "destination" (deliver a record to `target`). */
  kind: string;
  request_id: string;
  function_name: string;
  /** The qualifier the caller named; null = unqualified ($LATEST). */
  qualifier: string | null;
  region: string;
  payload: Buffer;
  /** Function attempts made (invoke) or delivery attempts (destination). */
  attempts: number;
  /** Throttle / platform-error backoffs so far (not counted as attempts). */
  backoffs: number;
  next_run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  enqueued_at: number;
  /** "queued" or "running" (leased). */
  state: string;
  /** Destination rows: the target ARN or URL. */
  target: string | null;
  /** JSON: the last attempt's response (invoke) or delivery headers (destination). */
  meta: string | null;
}

/** Outcome counters per function, shared by every server on the store. */
export interface AsyncStatsTable {
  function_name: string;
  succeeded: number;
  failed: number;
  expired: number;
  dropped: number;
  retries: number;
  throttles: number;
  delivered: number;
  delivery_failures: number;
}

export interface EventInvokeConfigsTable {
  function_name: string;
  /** "$LATEST" for the unqualified function, else a version or alias. */
  qualifier: string;
  maximum_retry_attempts: number | null;
  maximum_event_age_seconds: number | null;
  on_success: string | null;
  on_failure: string | null;
  last_modified: number;
}

export interface AliasesTable {
  function_name: string;
  name: string;
  function_version: string;
  description: string;
  /** JSON of RoutingConfig.AdditionalVersionWeights. */
  weights: string;
  revision_id: string;
  last_modified: number;
}

export interface ProvisionedConcurrencyTable {
  function_name: string;
  qualifier: string;
  requested: number;
  allocated: number;
  available: number;
  status: string;
  status_reason: string | null;
  last_modified: number;
}

export interface EventSourceMappingsTable {
  uuid: string;
  function_name: string;
  /** The qualifier named in FunctionName; null = unqualified. */
  qualifier: string | null;
  region: string;
  /** The broker URI as given (with credentials; the API redacts them). */
  event_source: string;
  /** "rabbitmq" | "nats" | "redis". */
  kind: string;
  /** JSON of the mapping's settings. */
  settings: string;
  state: string;
  state_transition_reason: string;
  last_processing_result: string;
  created_at: number;
  last_modified: number;
}

export interface LayerVersionsTable {
  layer_name: string;
  version: number;
  description: string;
  license_info: string | null;
  /** JSON array of runtime identifiers. */
  compatible_runtimes: string;
  /** JSON array of architectures. */
  compatible_architectures: string;
  /** Hex sha256 of the zip (the content address of its extraction). */
  code_sha256: string;
  code_size: number;
  unzipped_size: number;
  data: Buffer;
  created_at: number;
  /** 1 once DeleteLayerVersion ran: hidden, but functions that reference it keep working. */
  deleted: number;
}

export interface CodeSigningConfigsTable {
  /** csc-<17 hex>. */
  id: string;
  description: string;
  /** JSON array of signing profile version ARNs. */
  allowed_publishers: string;
  /** "Warn" | "Enforce". */
  untrusted_artifact_on_deployment: string;
  created_at: number;
  last_modified: number;
}

export interface FunctionSettingsTable {
  function_name: string;
  /** "" = the whole function; else a version or alias. */
  qualifier: string;
  /** code-signing | recursion | runtime-management | scaling */
  kind: string;
  /** code-signing: the config id; otherwise JSON. */
  value: string;
}

/** Long-term access keys; `secret` is sealed with the server key (auth/keys.ts). */
export interface AccessKeysTable {
  access_key_id: string;
  user_name: string;
  secret: string;
  /** JSON identity policy; null = none. */
  policy: string | null;
  created_at: number;
}

/** Identity policies of execution roles, by role name. */
export interface RolePoliciesTable {
  role_name: string;
  policy: string;
  updated_at: number;
}

/** Resource-based policies: functions (qualifier "" = unqualified) and layer versions (qualifier = version). */
export interface ResourcePoliciesTable {
  kind: string;
  name: string;
  qualifier: string;
  policy: string;
  revision_id: string;
  /** created_at of the function / layer version the policy belongs to. */
  owner_created_at: number;
  updated_at: number;
}

export interface FunctionUrlsTable {
  function_name: string;
  /** "$LATEST" or an alias name (never a numbered version). */
  qualifier: string;
  /** The URL's id: its host's first label, and the path form's segment. */
  url_id: string;
  auth_type: string;
  /** JSON of the Cors structure, or null. */
  cors: string | null;
  invoke_mode: string;
  created_at: number;
  last_modified: number;
}

/** EventBridge Scheduler schedule groups (`default` is made by the migration). */
export interface ScheduleGroupsTable {
  name: string;
  created_at: number;
  last_modified: number;
  /** JSON object of tags. */
  tags: string;
}

/** EventBridge Scheduler schedules and where their firing stands. */
export interface SchedulesTable {
  group_name: string;
  name: string;
  region: string;
  expression: string;
  timezone: string;
  description: string | null;
  /** "ENABLED" | "DISABLED". */
  state: string;
  start_date: number | null;
  end_date: number | null;
  /** JSON of FlexibleTimeWindow. */
  flexible_time_window: string;
  /** "NONE" | "DELETE". */
  action_after_completion: string;
  /** JSON of Target (Arn, RoleArn, Input, RetryPolicy, DeadLetterConfig). */
  target: string;
  kms_key_arn: string | null;
  created_at: number;
  last_modified: number;
  /** The next nominal tick (schedule time); null: no tick left (or disabled). */
  next_tick_at: number | null;
  /** When that tick fires: the tick plus its flexible-window offset. */
  next_fire_at: number | null;
  /** Ticks enqueued as async invokes. */
  fired: number;
  /** Ticks not fired: missed for longer than MaximumEventAgeInSeconds, or their target was missing. */
  dropped: number;
  /** ClientToken of the last create or update (null: none given), and that request's hash. */
  client_token: string | null;
  request_hash: string | null;
}

export interface ClusterWorkersTable {
  worker_id: string;
  zone: string;
  address: string;
  memory_mb: number;
  max_environments: number;
  used_memory_mb: number;
  environments: number;
  draining: number;
  /** timestamptz on PostgreSQL, renewed with now(). */
  lease_until: string | Date;
  started_at: number;
}

/** A frontend's share of a concurrency pool (`account` or `function:<name>`), under a lease. */
export interface ConcurrencyLeasesTable {
  pool: string;
  holder: string;
  slots: number;
  /** timestamptz on PostgreSQL, renewed with now(). */
  lease_until: string | Date;
}

/** Stacks `lambent deploy` made (control/stacks.ts). */
export interface StacksTable {
  name: string;
  stack_id: string;
  /** CloudFormation's status words: CREATE_COMPLETE, UPDATE_IN_PROGRESS, UPDATE_ROLLBACK_COMPLETE, … */
  status: string;
  status_reason: string | null;
  /** Bumped by every write; a write names the revision it read (two deploys cannot interleave). */
  revision: number;
  /** JSON of { Parameters, Resources, Outputs }. */
  document: string;
  created_at: number;
  last_modified: number;
}

/** One series' minute (migration 0017): namespace, metric, dimensions (canonical JSON) and minute. */
export interface MetricDataTable {
  namespace: string;
  metric_name: string;
  /** JSON `[[name, value], …]`, names sorted. */
  dimensions: string;
  /** Start of the minute, epoch ms. */
  minute: number;
  unit: string;
  sample_count: number;
  sum: number;
  min: number;
  max: number;
}

/** How many of a series' values in one minute fell in each log-scale bucket (metrics/histogram.ts). */
export interface MetricBucketsTable {
  namespace: string;
  metric_name: string;
  dimensions: string;
  minute: number;
  bucket: number;
  count: number;
}

/** Lambda Managed Instances capacity providers (control/capacity-providers.ts). */
export interface CapacityProvidersTable {
  name: string;
  /** JSON: the provider's settings as given (VpcConfig, PermissionsConfig, InstanceRequirements, …). */
  config: string;
  /** JSON: its tags. */
  tags: string;
  last_modified: number;
}

export interface Database {
  stacks: StacksTable;
  schedule_groups: ScheduleGroupsTable;
  schedules: SchedulesTable;
  functions: FunctionsTable;
  function_versions: FunctionVersionsTable;
  code_blobs: CodeBlobsTable;
  log_streams: LogStreamsTable;
  log_events: LogEventsTable;
  log_groups: LogGroupsTable;
  aliases: AliasesTable;
  provisioned_concurrency: ProvisionedConcurrencyTable;
  async_events: AsyncEventsTable;
  async_stats: AsyncStatsTable;
  event_invoke_configs: EventInvokeConfigsTable;
  event_source_mappings: EventSourceMappingsTable;
  layer_versions: LayerVersionsTable;
  code_signing_configs: CodeSigningConfigsTable;
  function_settings: FunctionSettingsTable;
  access_keys: AccessKeysTable;
  role_policies: RolePoliciesTable;
  resource_policies: ResourcePoliciesTable;
  function_urls: FunctionUrlsTable;
  cluster_workers: ClusterWorkersTable;
  concurrency_leases: ConcurrencyLeasesTable;
  metric_data: MetricDataTable;
  metric_buckets: MetricBucketsTable;
  capacity_providers: CapacityProvidersTable;
}
