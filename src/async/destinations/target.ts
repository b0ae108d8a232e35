/**
 * Where invocation records (destinations) and failed events (dead-letter
 * targets) go. One adapter per kind of target; a broker adapter (RabbitMQ,
 * NATS, Redis) implements the same two methods and joins the list in
 * `async/service.ts`.
 */
export interface DestinationMessage {
  /** The JSON document to deliver (an invocation record, or the original event for a DLQ). */
  body: Buffer;
  /** Metadata for targets that carry it (HTTP headers, message attributes). */
  attributes: Record<string, string>;
}

export interface DestinationTarget {
  /** Deliver once; throw DeliveryError (or anything) on failure. */
  deliver(message: DestinationMessage): Promise<void>;
}

export interface DestinationAdapter {
  readonly kind: string;
  /** Does this adapter handle the target (an ARN or URL)? */
  accepts(target: string): boolean;
  open(target: string): DestinationTarget;
}

/** A failed delivery; `permanent` ones are not retried. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export class Destinations {
  constructor(private readonly adapters: DestinationAdapter[]) {}

  open(target: string): DestinationTarget {
    const adapter = this.adapters.find((a) => a.accepts(target));
    if (!adapter) throw new DeliveryError(`no destination adapter accepts ${target}`, true);
    return adapter.open(target);
  }
}
