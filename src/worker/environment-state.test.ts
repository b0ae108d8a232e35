/** The execution environment's transition table: every allowed step, and every other one refused. */
import { describe, expect, it } from "vitest";
import {
  ENVIRONMENT_TRANSITIONS,
  type EnvironmentState,
  IllegalTransitionError,
  isIdle,
  transition,
} from "./environment-state.js";

const STATES = Object.keys(ENVIRONMENT_TRANSITIONS) as EnvironmentState[];

describe("execution environment state machine", () => {
  it("follows Lambda's lifecycle: Init, then invokes, then Shutdown", () => {
    let s: EnvironmentState = "initializing";
    for (const next of [
      "ready",
      "busy",
      "finishing",
      "ready",
      "frozen",
      "busy",
      "finishing",
      "busy",
      "finishing",
      "ready",
      "frozen",
      "dead",
    ] as const) {
      s = transition(s, next);
    }
    expect(s).toBe("dead");
  });

  it("allows exactly the table's transitions and throws on every other pair", () => {
    for (const from of STATES) {
      for (const to of STATES) {
        if (ENVIRONMENT_TRANSITIONS[from].includes(to)) expect(transition(from, to)).toBe(to);
        else expect(() => transition(from, to)).toThrow(IllegalTransitionError);
      }
    }
  });

  it("every state but dead can shut down; dead is final", () => {
    for (const from of STATES) {
      if (from !== "dead") expect(ENVIRONMENT_TRANSITIONS[from]).toContain("dead");
    }
    expect(ENVIRONMENT_TRANSITIONS.dead).toEqual([]);
  });

  it("refuses the illegal steps that matter: an invoke during Init, a second invoke at once, back to Init", () => {
    expect(() => transition("initializing", "busy")).toThrow(/initializing → busy/);
    expect(() => transition("busy", "busy")).toThrow(IllegalTransitionError);
    expect(() => transition("ready", "initializing")).toThrow(IllegalTransitionError);
    expect(() => transition("dead", "ready")).toThrow(IllegalTransitionError);
  });

  it("freezes only an idle environment, and leaves frozen only to run an event or to shut down", () => {
    expect(STATES.filter((s) => ENVIRONMENT_TRANSITIONS[s].includes("frozen"))).toEqual(["ready"]);
    expect(ENVIRONMENT_TRANSITIONS.frozen).toEqual(["busy", "dead"]);
    // Thawing is part of the step to busy or dead: there is no unfreezing back to a plain idle state.
    expect(() => transition("frozen", "ready")).toThrow(IllegalTransitionError);
    expect(() => transition("frozen", "frozen")).toThrow(IllegalTransitionError);
    expect(() => transition("busy", "frozen")).toThrow(IllegalTransitionError);
    expect(() => transition("finishing", "frozen")).toThrow(IllegalTransitionError);
    expect(() => transition("initializing", "frozen")).toThrow(IllegalTransitionError);
  });

  it("counts ready and frozen as idle, nothing else", () => {
    expect(STATES.filter(isIdle)).toEqual(["ready", "frozen"]);
  });
});
