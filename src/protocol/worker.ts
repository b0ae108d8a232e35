/**
 * What a frontend asks of a worker. The single-process server hands these
 * calls to its in-process `Worker` directly (it implements this interface, so
 * the split costs nothing there); a cluster frontend sends the same messages
 * to a worker node.
 */
import type { Assignment } from "./assignment.js";
import type { InvokeInput, InvokeOutcome, ProvisionedProgress } from "./invoke.js";

export interface WorkerStats {
  /** Execution environments alive (initialising, idle or busy). */
  environments: number;
  /** Of those, idle ones waiting for an event. */
  idle: number;
  /** Function versions with environments here. */
  pools: number;
  /** Memory the environments here may take (the sum of their functions' MemorySize, MB). */
  memoryMb: number;
}

/** One function version's environments on a worker, as the worker announces them to frontends. */
export interface EnvironmentCount {
  /** The version's `assignmentKey`. */
  key: string;
  environments: number;
  /** Of those, idle ones an invoke would be given now. */
  idle: number;
}

/** A worker's environments per version, and word when they change (start, busy, idle, gone). */
export interface EnvironmentView {
  environmentCounts(): EnvironmentCount[];
  /** Call `listener` after every change; returns the unsubscribe. */
  onEnvironmentsChanged(listener: () => void): () => void;
}

/** One function version's environments on a worker. */
export interface FunctionEnvironmentStats {
  functionName: string;
  version: string;
  /** Alive: initialising, idle or busy. */
  environments: number;
  /** Of those, idle ones waiting for an event. */
  idle: number;
}

export interface WorkerClient {
  /**
   * Run one event in an environment of this assignment (an idle one, or a new
   * `on-demand` one). Rejects with a `LambdaError` (`TooManyRequestsException`)
   * when the function is over its scaling rate.
   */
  invoke(assignment: Assignment, input: InvokeInput): Promise<InvokeOutcome>;
  /** Keep `count` `provisioned-concurrency` environments for one config (`source`); 0 releases them. */
  provision(
    assignment: Assignment,
    source: string,
    count: number,
    report: (progress: ProvisionedProgress) => void,
  ): void;
  /**
   * Retire the environments of a function (every version, or one) whose code or configuration changed;
   * those of `keepRevision` (the version's current revision) stay.
   */
  retire(name: string, version?: string, keepRevision?: string): void;
  /**
   * Start one environment of this assignment before an invoke asks (a dev-mounted function whose
   * folder changed), when it has none; workers that cannot (other nodes) leave it out.
   */
  prewarm?(assignment: Assignment): void;
  /**
   * Set when retire messages may arrive late (other nodes): the frontend then names the revision to
   * keep, so a late retire never stops environments of the current code.
   */
  readonly retiresLate?: boolean;
}
