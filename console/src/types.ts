/** The parts of the APIs' answers the console reads (AWS's own shapes; every field may be absent). */
import type { AsyncFunctionStatus } from "../../src/async/status.js";

export interface FunctionConfiguration {
  FunctionName: string;
  FunctionArn?: string;
  Runtime?: string;
  Handler?: string;
  MemorySize?: number;
  Timeout?: number;
  State?: string;
  StateReason?: string;
  LastUpdateStatus?: string;
  LastModified?: string;
  Version?: string;
  Description?: string;
  CodeSize?: number;
  CodeSha256?: string;
  PackageType?: string;
  Architectures?: string[];
  Role?: string;
  EphemeralStorage?: { Size?: number };
  Environment?: { Variables?: Record<string, string> };
  Layers?: Array<{ Arn?: string }>;
  LoggingConfig?: {
    LogFormat?: string;
    LogGroup?: string;
    ApplicationLogLevel?: string;
    SystemLogLevel?: string;
  };
  DeadLetterConfig?: { TargetArn?: string };
}

export interface AliasConfiguration {
  Name: string;
  FunctionVersion?: string;
  Description?: string;
  RoutingConfig?: { AdditionalVersionWeights?: Record<string, number> };
}

export interface EventInvokeConfig {
  FunctionArn?: string;
  MaximumRetryAttempts?: number;
  MaximumEventAgeInSeconds?: number;
  DestinationConfig?: { OnSuccess?: { Destination?: string }; OnFailure?: { Destination?: string } };
}

export interface EventSourceMapping {
  UUID: string;
  EventSourceArn?: string;
  FunctionArn?: string;
  State?: string;
  BatchSize?: number;
  LastProcessingResult?: string;
  SelfManagedEventSource?: { Endpoints?: Record<string, string[]> };
  Queues?: string[];
  Topics?: string[];
}

/** One mapping of `GET /_lambent/event-source-mappings/stats`. */
export type { MappingStatus } from "../../src/sources/status.js";

/** One function of `GET /_lambent/queue`. */
export type QueueRow = AsyncFunctionStatus;

export interface FunctionUrlConfig {
  FunctionUrl?: string;
  AuthType?: string;
  InvokeMode?: string;
}

export interface LogEvent {
  eventId?: string;
  logStreamName?: string;
  timestamp?: number;
  message?: string;
}
