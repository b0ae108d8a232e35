/** The worker's start gate: a few environment starts at once, the rest in order, none held forever. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { StartGate, type StartTurn } from "./start-gate.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("start gate", () => {
  it("grants up to its limit at once, then one per released turn, first come first served", () => {
    const gate = new StartGate(2);
    const a = gate.tryAcquire() as StartTurn;
    const b = gate.tryAcquire() as StartTurn;
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(gate.tryAcquire()).toBeUndefined();
    const order: string[] = [];
    const turns: StartTurn[] = [];
    for (const name of ["c", "d"]) {
      gate.enqueue((turn) => {
        order.push(name);
        turns.push(turn);
      });
    }
    expect(gate.waiting).toBe(2);
    a.release();
    // Released twice: still one turn handed on.
    a.release();
    expect(order).toEqual(["c"]);
    // Someone is queued: a newcomer does not jump the queue.
    b.release();
    expect(order).toEqual(["c", "d"]);
    expect(gate.tryAcquire()).toBeUndefined();
    for (const t of turns) t.release();
    expect(gate.tryAcquire()).toBeDefined();
  });

  it("lets a waiter withdraw (an environment of its function freed up first)", () => {
    const gate = new StartGate(1);
    const held = gate.tryAcquire() as StartTurn;
    const granted = vi.fn();
    const withdraw = gate.enqueue(granted);
    expect(withdraw()).toBe(true);
    expect(withdraw()).toBe(false);
    held.release();
    expect(granted).not.toHaveBeenCalled();
    expect(gate.tryAcquire()).toBeDefined();
  });

  it("hands a turn on when an Init holds it past the hold time", () => {
    vi.useFakeTimers();
    const gate = new StartGate(1);
    const slow = gate.tryAcquire() as StartTurn;
    const granted = vi.fn();
    gate.enqueue(granted);
    vi.advanceTimersByTime(2999);
    expect(granted).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(granted).toHaveBeenCalledTimes(1);
    // The slow Init's own release later changes nothing.
    slow.release();
    expect(gate.tryAcquire()).toBeUndefined();
  });

  it("goes round the functions waiting: a burst of one does not hold another's start behind all of it", () => {
    const gate = new StartGate(1);
    const held = gate.tryAcquire() as StartTurn;
    const order: string[] = [];
    const grant = (name: string) => (turn: StartTurn) => {
      order.push(name);
      turn.release();
    };
    gate.enqueue(grant("stem"));
    for (let i = 0; i < 5; i++) gate.enqueue(grant(`burst${i}`), "burst");
    gate.enqueue(grant("single"), "single");
    gate.enqueue(grant("other"), "other");
    expect(gate.waiting).toBe(8);
    held.release();
    expect(order).toEqual(["burst0", "single", "other", "burst1", "burst2", "burst3", "burst4", "stem"]);
    expect(gate.waiting).toBe(0);
  });

  it("forgets a function whose waiters all withdrew", () => {
    const gate = new StartGate(1);
    const held = gate.tryAcquire() as StartTurn;
    const withdraw = gate.enqueue(vi.fn(), "gone");
    const granted = vi.fn();
    gate.enqueue(granted, "kept");
    expect(withdraw()).toBe(true);
    expect(gate.waiting).toBe(1);
    held.release();
    expect(granted).toHaveBeenCalledTimes(1);
  });

  it("never makes a stem cell's adoption wait, and holds full starts and refills until adoptions are done", () => {
    const gate = new StartGate(2);
    const a = gate.tryAcquire() as StartTurn;
    const b = gate.tryAcquire() as StartTurn;
    // Every turn is taken: an adoption still starts at once, and takes no turn.
    const adoption = gate.beginAdoption();
    const second = gate.beginAdoption();
    expect(gate.adopting).toBe(2);
    const order: string[] = [];
    gate.enqueue(() => order.push("refill"));
    gate.enqueue(() => order.push("cold"), "fn");
    a.release();
    b.release();
    // Turns are free, but adoptions are in progress: nobody gets one yet, not even a newcomer.
    expect(order).toEqual([]);
    expect(gate.tryAcquire()).toBeUndefined();
    adoption.release();
    adoption.release();
    expect(order).toEqual([]);
    second.release();
    // Both free turns are handed on at once, the function's start first.
    expect(order).toEqual(["cold", "refill"]);
    expect(gate.adopting).toBe(0);
  });

  it("stops counting an adoption after the hold time", () => {
    vi.useFakeTimers();
    const gate = new StartGate(1);
    const slow = gate.beginAdoption();
    const granted = vi.fn();
    gate.enqueue(granted, "fn");
    vi.advanceTimersByTime(2999);
    expect(granted).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(granted).toHaveBeenCalledTimes(1);
    expect(gate.adopting).toBe(0);
    slow.release();
    expect(gate.adopting).toBe(0);
  });
});
