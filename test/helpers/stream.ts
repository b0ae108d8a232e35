/** Reading an InvokeWithResponseStream answer's event stream (AWS SDK v3) in tests. */
import type {
  InvokeWithResponseStreamCommandOutput,
  InvokeWithResponseStreamResponseEvent,
} from "@aws-sdk/client-lambda";

type Events = AsyncIterable<InvokeWithResponseStreamResponseEvent>;
export type InvokeComplete = NonNullable<InvokeWithResponseStreamResponseEvent["InvokeComplete"]>;

export interface Drained {
  /** Every PayloadChunk, as UTF-8. */
  text: string;
  /** How many PayloadChunk events there were. */
  chunks: number;
  /** The InvokeComplete event, if one came. */
  complete?: InvokeComplete;
}

function eventsOf(out: Pick<InvokeWithResponseStreamCommandOutput, "EventStream">): Events {
  if (!out.EventStream) throw new Error("the answer has no EventStream");
  return out.EventStream;
}

async function drainEvents(events: Events): Promise<Drained> {
  let text = "";
  let chunks = 0;
  let complete: InvokeComplete | undefined;
  for await (const e of events) {
    if (e.PayloadChunk?.Payload) {
      chunks++;
      text += Buffer.from(e.PayloadChunk.Payload).toString("utf8");
    }
    if (e.InvokeComplete) complete = e.InvokeComplete;
  }
  return { text, chunks, ...(complete ? { complete } : {}) };
}

/** Reads the whole stream to its end. */
export function drainStream(
  out: Pick<InvokeWithResponseStreamCommandOutput, "EventStream">,
): Promise<Drained> {
  return drainEvents(eventsOf(out));
}

/**
 * Reads the first event's chunk, awaits `between` (e.g. the function still waiting at a gate, then
 * the gate opened), then the rest: shows the first chunk arrived before the function finished.
 */
export async function drainAfterFirst(
  out: Pick<InvokeWithResponseStreamCommandOutput, "EventStream">,
  between: () => Promise<void>,
): Promise<{ first: string; rest: Drained }> {
  const it = eventsOf(out)[Symbol.asyncIterator]();
  const head = await it.next();
  const first = Buffer.from(head.done ? [] : (head.value.PayloadChunk?.Payload ?? [])).toString("utf8");
  await between();
  return { first, rest: await drainEvents({ [Symbol.asyncIterator]: () => it }) };
}
