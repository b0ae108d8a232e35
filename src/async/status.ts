/**
 * What `GET /_lambent/queue` answers (`AsyncService.status`): plain data with no imports, so the CLI
 * and the web console (`console/src/types.ts`, a browser bundle) take the shape from here as a type.
 */

/** One function's queue and outcome counters. */
export interface AsyncFunctionStatus {
  functionName: string;
  waiting: number;
  running: number;
  deliveriesWaiting: number;
  succeeded: number;
  failed: number;
  expired: number;
  dropped: number;
  retries: number;
  throttles: number;
  delivered: number;
  deliveryFailures: number;
}

export interface AsyncStatus {
  functions: AsyncFunctionStatus[];
}
