/**
 * What `GET /_lambent/event-source-mappings/stats` answers (`EventSourceSupervisor.status`): plain
 * data with no imports, so the web console (`console/src/types.ts`, a browser bundle) takes the shape
 * from here as a type.
 */

/** Counters one poller keeps (this server only). */
export interface MappingStats {
  recordsReceived: number;
  recordsProcessed: number;
  recordsFiltered: number;
  recordsFailed: number;
  batches: number;
  functionErrors: number;
  retries: number;
  throttles: number;
  /** Records not run because they would loop back to the function a 17th time (RecursiveInvocationsDropped). */
  recursiveLoopsStopped: number;
  reconnects: number;
  inFlightRecords: number;
  connected: boolean;
  lastError: string | null;
}

/** One mapping of the stats route: its identity, state and this server's counters. */
export interface MappingStatus extends MappingStats {
  UUID: string;
  FunctionName: string;
  EventSource: string;
  Source: string;
  Target: string;
  State: string;
  LastProcessingResult: string;
  /** Records waiting in the broker that the mapping has not finished (null = unknown / not connected). */
  lag: number | null;
  /** Records finished (processed, filtered or failed) per second over the last minute. */
  recordsPerSecond: number;
}
