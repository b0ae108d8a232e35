/**
 * Counting for a cluster: each limit (a function's reservation, the account's
 * unreserved pool) is shared among the frontends through leased shares in
 * PostgreSQL (`cluster/concurrency-leases.ts`), so together they never admit
 * more than it, and a warm invoke makes no store round trip.
 *
 * - **Warm path**: an invoke takes a slot of this node's share of its pool
 *   when one is free and the share's lease is still good by this node's clock
 *   (counted from when the renewal was *sent*, so it runs out here before it
 *   does in the database). Synchronous, like the single-process counter.
 * - **Share exhausted**: one claim per pool at a time asks the database for
 *   what is in flight here plus the invokes waiting (plus a quarter of that
 *   for headroom); what the other shares leave is granted. An invoke that
 *   still finds no slot is throttled with Lambda's 429 and its Reason, and the
 *   other nodes are asked (NOTIFY) to give back what they hold unused.
 * - **Renewal**, every `HEARTBEAT_MS`: each share is renewed and cut to the
 *   most it had in flight since the previous renewal (slots that went unused
 *   for a second go back); the cut applies here before it is sent, so this
 *   node never counts on slots the database no longer gives it.
 * - **A dead node's shares** run out `LEASE_MS` after its last renewal and
 *   the next claim deletes them. **Database unreachable**: shares keep
 *   admitting until their lease runs out here; after that, invokes answer
 *   `ServiceException` rather than risk exceeding a limit.
 */
import {
  ACCOUNT_POOL,
  CONCURRENCY_CHANNEL,
  type ConcurrencyLeases,
  functionPool,
} from "../cluster/concurrency-leases.js";
import { HEARTBEAT_MS, LEASE_MS } from "../cluster/registry.js";
import { type LambdaError, ServiceError } from "../errors.js";
import { type Listener, listenPostgres } from "../store/notify.js";
import { accountThrottle, type Counter, type Release, reservedThrottle } from "./counter.js";

interface Waiter {
  resolve: (release: Release) => void;
  reject: (err: Error) => void;
  throttle: () => LambdaError;
}

interface Share {
  pool: string;
  /** Slots this node holds in the database (never fewer than it counts on here). */
  held: number;
  inFlight: number;
  /** The most in flight since the last renewal. */
  peak: number;
  /** performance.now() after which the share admits nothing until renewed. */
  validUntil: number;
  waiting: Waiter[];
  /** A claim or renewal of this share in flight: the next one waits for it. */
  busy: Promise<void> | null;
}

export class FleetCounter implements Counter {
  private reserved = new Map<string, number>();
  private readonly shares = new Map<string, Share>();
  private listener: Listener | null = null;
  private timer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;
  total = 0;

  constructor(
    private readonly leases: ConcurrencyLeases,
    private readonly databaseUrl: string,
    private readonly log: (message: string) => void = () => {},
  ) {}

  async start(): Promise<void> {
    this.listener = await listenPostgres(this.databaseUrl, {
      channel: CONCURRENCY_CHANNEL,
      onMessage: (payload) => {
        const [holder, pool] = payload.split(" ");
        if (holder === this.leases.holder || pool === undefined) return;
        const s = this.shares.get(pool);
        if (s && s.held > s.inFlight) void this.renew([s], true);
      },
      onError: (err) => this.log(`concurrency notifications: ${String(err)}`),
    });
    this.timer = setInterval(() => {
      this.renewing ??= this.renew([...this.shares.values()], false).finally(() => {
        this.renewing = null;
      });
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  setReservations(reserved: Map<string, number>): void {
    this.reserved = reserved;
  }

  acquire(name: string): Release | Promise<Release> {
    const reserved = this.reserved.get(name);
    const throttle = reserved === undefined ? accountThrottle : reservedThrottle;
    if (reserved === 0) throw throttle();
    const pool = reserved === undefined ? ACCOUNT_POOL : functionPool(name);
    let s = this.shares.get(pool);
    if (!s) {
      s = { pool, held: 0, inFlight: 0, peak: 0, validUntil: 0, waiting: [], busy: null };
      this.shares.set(pool, s);
    }
    if (s.waiting.length === 0 && s.inFlight < s.held && performance.now() < s.validUntil)
      return this.take(s);
    const share = s;
    return new Promise<Release>((resolve, reject) => {
      share.waiting.push({ resolve, reject, throttle });
      if (share.waiting.length === 1) void this.claim(share);
    });
  }

  private take(s: Share): Release {
    s.inFlight++;
    if (s.inFlight > s.peak) s.peak = s.inFlight;
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      s.inFlight--;
      this.total--;
    };
  }

  /** Wait for the share's claim or renewal in flight, then hold it for `run`. */
  private async exclusive(s: Share, run: () => Promise<void>): Promise<void> {
    while (s.busy) await s.busy;
    const p = run().finally(() => {
      if (s.busy === p) s.busy = null;
    });
    s.busy = p;
    await p;
  }

  /** Ask the database for the slots the waiting invokes need; admit or throttle each. */
  private claim(s: Share): Promise<void> {
    return this.exclusive(s, async () => {
      while (s.waiting.length > 0) {
        const batch = s.waiting.splice(0);
        const need = s.inFlight + batch.length;
        const sentAt = performance.now();
        let granted: number;
        try {
          granted = await this.leases.claim(s.pool, need + Math.floor(need / 4));
        } catch (err) {
          this.log(`concurrency claim for ${s.pool}: ${String(err)}`);
          for (const w of batch) {
            w.reject(ServiceError("Lambent could not reach the cluster's database to count concurrency."));
          }
          continue;
        }
        s.held = granted;
        s.validUntil = sentAt + LEASE_MS;
        let short = false;
        for (const w of batch) {
          if (s.inFlight < s.held) w.resolve(this.take(s));
          else {
            short = true;
            w.reject(w.throttle());
          }
        }
        if (short) {
          this.leases.askBack(s.pool).catch((err: unknown) => this.log(`concurrency: ${String(err)}`));
        }
      }
    });
  }

  /**
   * Renew shares, cut to what they used since the last renewal (or, when
   * `giveBack`, to what is in flight now). The cut applies here first.
   */
  private async renew(list: Share[], giveBack: boolean): Promise<void> {
    const targets = new Map<string, number>();
    const taken: Share[] = [];
    let done!: () => void;
    const gate = new Promise<void>((r) => {
      done = r;
    });
    for (const s of list) {
      // A claim in flight renews its share itself.
      if (s.busy) continue;
      const target = giveBack ? s.inFlight : Math.max(s.inFlight, s.peak);
      s.peak = s.inFlight;
      s.held = Math.min(s.held, target);
      targets.set(s.pool, s.held);
      s.busy = gate;
      taken.push(s);
    }
    if (taken.length === 0) return;
    const sentAt = performance.now();
    try {
      const missing = await this.leases.renew(targets);
      for (const s of taken) {
        if (missing.has(s.pool)) s.held = 0;
        else s.validUntil = sentAt + LEASE_MS;
        if (s.held === 0 && s.inFlight === 0 && s.waiting.length === 0) this.shares.delete(s.pool);
      }
    } catch (err) {
      this.log(`concurrency lease renewal: ${String(err)}`);
    } finally {
      for (const s of taken) if (s.busy === gate) s.busy = null;
      done();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.listener?.close();
    await this.renewing;
    await this.leases.releaseAll().catch(() => {});
  }
}
