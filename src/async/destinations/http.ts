/**
 * An http:// or https:// URL as a destination (a Lambent extension): the
 * message is POSTed as JSON; any 2xx answer is a delivery. Attributes travel
 * as headers. Every connection goes to an address the egress policy checked
 * (the name is resolved once, every address checked, the checked one dialled;
 * Host and TLS SNI stay the name); redirects are not followed (a 3xx is a
 * failed delivery).
 */
import type { Agent } from "undici";
import type { EgressPolicy } from "../../control/egress.js";
import { DeliveryError, type DestinationAdapter, type DestinationTarget } from "./target.js";

const TIMEOUT_MS = 10_000;

export class HttpDestinations implements DestinationAdapter {
  readonly kind = "http";
  private agent: Promise<Agent> | null = null;

  constructor(private readonly egress: EgressPolicy) {}

  /** The pinning agent, made (and the HTTP client library loaded) by the first HTTP destination. */
  private dispatcher(): Promise<Agent> {
    this.agent ??= import("undici").then(({ Agent, buildConnector }) => {
      const dial = buildConnector({ timeout: TIMEOUT_MS });
      return new Agent({
        connect: (opts, callback) => {
          const port = Number(opts.port) || (opts.protocol === "https:" ? 443 : 80);
          this.egress.pin(opts.hostname, port).then(
            (pinned) =>
              dial(
                {
                  ...opts,
                  hostname: pinned.address,
                  ...(pinned.name && opts.protocol === "https:" ? { servername: pinned.name } : {}),
                },
                callback,
              ),
            (err: Error) => callback(err, null),
          );
        },
      });
    });
    return this.agent;
  }

  accepts(target: string): boolean {
    return /^https?:\/\//i.test(target);
  }

  open(target: string): DestinationTarget {
    return {
      deliver: async (message) => {
        const [agent, { request }] = await Promise.all([this.dispatcher(), import("undici")]);
        // A refused address rejects with EgressRefused (a permanent failure, see async/service.ts).
        const res = await request(target, {
          method: "POST",
          body: message.body,
          headers: { "content-type": "application/json", ...message.attributes },
          headersTimeout: TIMEOUT_MS,
          bodyTimeout: TIMEOUT_MS,
          dispatcher: agent,
        });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode >= 300) {
          throw new DeliveryError(`POST ${target} answered ${res.statusCode}`, false);
        }
      },
    };
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = null;
    await (await agent)?.close();
  }
}
