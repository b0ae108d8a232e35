/** What CreateFunction / UpdateFunctionConfiguration accept as Runtime on this server. */
import { InvalidParameterValue } from "../errors.js";
import { CATALOG, isDeprecated, type Runtime } from "./catalog.js";
import type { RuntimeStore } from "./store.js";

export interface RuntimePolicy {
  store: RuntimeStore;
  /** Refuse deprecated identifiers as Lambda does once it blocks creates/updates (default: warn only). */
  blockDeprecated: boolean;
  /** Where the deprecation warning goes (the server's log). */
  warn: (message: string) => void;
}

/** Lambda answers nothing but the function; the warning is logged and sent as an HTTP `Warning` header. */
export function deprecationWarning(runtime: Runtime, now = new Date()): string | undefined {
  if (!isDeprecated(runtime, now)) return undefined;
  return `The runtime ${runtime} was deprecated by AWS Lambda on ${CATALOG[runtime].deprecation}; it still runs here, but consider a supported runtime`;
}

export function checkRuntime(policy: RuntimePolicy, runtime: Runtime): void {
  const info = CATALOG[runtime];
  if (info.source.kind === "unavailable") {
    throw InvalidParameterValue(
      `The runtime parameter of ${runtime} is not available on this server: ${info.source.why}.`,
    );
  }
  const warning = deprecationWarning(runtime);
  if (warning && policy.blockDeprecated) {
    throw InvalidParameterValue(
      `The runtime parameter of ${runtime} is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions.`,
    );
  }
  if (!policy.store.available(runtime)) {
    throw InvalidParameterValue(
      `The runtime parameter of ${runtime} is not installed on this server. Install it with: lambent runtimes install ${runtime}`,
    );
  }
  if (warning) policy.warn(warning);
}
