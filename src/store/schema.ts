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
}

export interface LogEventsTable {
  id: Generated<number>;
  group_name: string;
  stream_name: string;
  timestamp: number;
  message: string;
  ingestion_time: ColumnType<number, number, never>;
}

export interface Database {
  functions: FunctionsTable;
  function_versions: FunctionVersionsTable;
  code_blobs: CodeBlobsTable;
  log_streams: LogStreamsTable;
  log_events: LogEventsTable;
}
