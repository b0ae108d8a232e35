/** A Lambent function as a destination: the message becomes a new async event for it. */

import type { FunctionRef } from "../../control/arn.js";
import { parseFunctionArn } from "../../control/arn.js";
import { LambdaError } from "../../errors.js";
import { TRACE_HEADER } from "../lineage.js";
import { DeliveryError, type DestinationAdapter, type DestinationTarget } from "./target.js";

const FUNCTION_ARN_RE = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):\d{12}:function:/;

/**
 * Enqueue an event for a function (admission checks included); `traceHeader` is the message's
 * X-Amzn-Trace-Id, whose Lineage the new event carries on (recursive-loop detection).
 */
export type EnqueueInvoke = (
  ref: FunctionRef,
  region: string,
  payload: Buffer,
  traceHeader: string | undefined,
) => Promise<unknown>;

export class FunctionDestinations implements DestinationAdapter {
  readonly kind = "function";

  constructor(private readonly enqueue: EnqueueInvoke) {}

  accepts(target: string): boolean {
    return FUNCTION_ARN_RE.test(target);
  }

  open(target: string): DestinationTarget {
    const ref = parseFunctionArn(target);
    const region = FUNCTION_ARN_RE.exec(target)?.[1] as string;
    return {
      deliver: async (message) => {
        try {
          await this.enqueue(ref, region, message.body, message.attributes[TRACE_HEADER]);
        } catch (err) {
          if (err instanceof LambdaError) {
            const retryable = err.statusCode === 429 || err.statusCode === 409 || err.statusCode >= 500;
            throw new DeliveryError(`${err.type}: ${err.message}`, !retryable);
          }
          throw err;
        }
      },
    };
  }
}
