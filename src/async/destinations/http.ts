/**
 * An http:// or https:// URL as a destination (a Lambent extension): the
 * message is POSTed as JSON; any 2xx answer is a delivery. Attributes travel
 * as headers.
 */
import { request } from "undici";
import { DeliveryError, type DestinationAdapter, type DestinationTarget } from "./target.js";

const TIMEOUT_MS = 10_000;

export class HttpDestinations implements DestinationAdapter {
  readonly kind = "http";

  accepts(target: string): boolean {
    return /^https?:\/\//i.test(target);
  }

  open(target: string): DestinationTarget {
    return {
      async deliver(message) {
        const res = await request(target, {
          method: "POST",
          body: message.body,
          headers: { "content-type": "application/json", ...message.attributes },
          headersTimeout: TIMEOUT_MS,
          bodyTimeout: TIMEOUT_MS,
        });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode >= 300) {
          throw new DeliveryError(`POST ${target} answered ${res.statusCode}`, false);
        }
      },
    };
  }
}
