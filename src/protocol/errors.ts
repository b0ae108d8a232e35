/**
 * Lambda's data-plane error types: what an invoke answers (in the payload's
 * `errorType` and as `X-Amz-Function-Error: Unhandled`), what INIT_REPORT and
 * REPORT lines and telemetry events name, and what the Runtime, Extensions and
 * Telemetry APIs answer a runtime or extension that misbehaves. Named as Lambda
 * names them; the error a function or its runtime reports itself (`TypeError`,
 * `Runtime.ImportModuleError` from a bootstrap…) passes through as given.
 *
 * Every `{errorMessage, errorType}` body is rendered by `errorBody` below.
 */
import type { ServerResponse } from "node:http";

/** Failures of the runtime process or of what it reported. */
export const RuntimeError = {
  /** The runtime process exited (non-zero status, or a signal) before it answered. */
  ExitError: "Runtime.ExitError",
  /** The memory limit's OOM killer ended the runtime. */
  OutOfMemory: "Runtime.OutOfMemory",
  /** Init failed: the runtime could not be started, or it reported an Init error without a type. */
  InitError: "Runtime.InitError",
  /** A runtime reported an error without naming its type. */
  Unknown: "Runtime.Unknown",
  /** Reported by the runtimes' bootstraps: the handler's module cannot be loaded. */
  ImportModuleError: "Runtime.ImportModuleError",
  /** Reported by the runtimes' bootstraps: the handler's module does not parse. */
  UserCodeSyntaxError: "Runtime.UserCodeSyntaxError",
  /** Reported by the runtimes' bootstraps: the module has no such export. */
  HandlerNotFound: "Runtime.HandlerNotFound",
  /** Reported by the runtimes' bootstraps: the handler setting names no module/function. */
  MalformedHandlerName: "Runtime.MalformedHandlerName",
  /** A custom runtime's bootstrap is missing or not executable. */
  InvalidEntrypoint: "Runtime.InvalidEntrypoint",
  /** Reported by the Node.js bootstrap: a promise rejection nobody handled. */
  UnhandledPromiseRejection: "Runtime.UnhandledPromiseRejection",
} as const;

/** The platform ended what the function was doing. */
export const SandboxError = {
  /** The invoke ran past the function's Timeout, or Init past its limit. */
  Timedout: "Sandbox.Timedout",
} as const;

/** Extensions API failures (Init and later) and its answers to a misbehaving extension. */
export const ExtensionError = {
  /** An extension process exited. */
  Crash: "Extension.Crash",
  /** An extension reported an Init error without naming its type. */
  InitError: "Extension.InitError",
  /** An extension reported an exit error without naming its type. */
  ExitError: "Extension.ExitError",
  /** An extension reported an error without naming its type (Lambda's default for `/init/error`, `/exit/error`). */
  Unknown: "Extension.Unknown",
  TooManyExtensions: "Extension.TooManyExtensions",
  MissingExtensionIdentifier: "Extension.MissingExtensionIdentifier",
  UnknownExtensionIdentifier: "Extension.UnknownExtensionIdentifier",
  InvalidExtensionState: "Extension.InvalidExtensionState",
  InvalidExtensionName: "Extension.InvalidExtensionName",
  InvalidEventType: "Extension.InvalidEventType",
  RegistrationClosed: "Extension.RegistrationClosed",
} as const;

/** What the function answered does not fit. */
export const FunctionError = {
  /** The response exceeds the payload limit. */
  ResponseSizeTooLarge: "Function.ResponseSizeTooLarge",
} as const;

/** The Runtime and Extensions APIs' own answers to a malformed request (not data-plane failures of a function). */
export const ApiError = {
  UnknownPath: "UnknownPath",
  MethodNotAllowed: "MethodNotAllowed",
  InvalidStateTransition: "InvalidStateTransition",
  InvalidRequestID: "InvalidRequestID",
  InvalidRequestFormat: "InvalidRequestFormat",
  RequestEntityTooLarge: "RequestEntityTooLarge",
  /** The Telemetry API's answer to a subscription it cannot take. */
  ValidationError: "ValidationError",
} as const;

type ValueOf<T> = T[keyof T];

/** Every error type the platform itself produces (a function may report any string of its own). */
export type DataPlaneErrorType =
  | ValueOf<typeof RuntimeError>
  | ValueOf<typeof SandboxError>
  | ValueOf<typeof ExtensionError>
  | ValueOf<typeof FunctionError>;

export type ApiErrorType = ValueOf<typeof ApiError> | ValueOf<typeof ExtensionError>;

/** Every platform error type, by family (for tests and documentation). */
export const ERROR_FAMILIES = {
  Runtime: RuntimeError,
  Sandbox: SandboxError,
  Extension: ExtensionError,
  Function: FunctionError,
} as const;

/** An error answer of the Runtime, Extensions or Telemetry API, with the body `errorBody` renders. */
export function sendErrorResponse(
  res: ServerResponse,
  status: number,
  errorType: string,
  errorMessage: string,
): void {
  const body = errorBody(errorType, errorMessage);
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}

/** The one rendering of an error body: `{"errorMessage": …, "errorType": …}`, Lambda's member order. */
export function errorBody(errorType: string, errorMessage: string): Buffer {
  return Buffer.from(JSON.stringify({ errorMessage, errorType }), "utf8");
}

/** How a run's failure is named in REPORT lines and telemetry: a timeout, or any other error. */
export function failureStatus(errorType: string | undefined): "timeout" | "error" {
  return errorType === SandboxError.Timedout ? "timeout" : "error";
}
