/**
 * The lifecycle of an execution environment as an explicit state machine
 * (Lambda's Init → Invoke → Shutdown; modelled on the Runtime Interface
 * Emulator's `core/states.go`, where a transition not allowed from the current
 * state is an error):
 *
 *   initializing ──► ready ──► busy ──► finishing ──► ready …
 *                      │        ▲           └──────► busy (next event before the last one settled)
 *                      ▼        │
 *                    frozen ────┘ (thawed on the way)
 *
 *   every state but dead ──► dead (a frozen environment is thawed for its SHUTDOWN)
 *
 * - initializing: Init runs (extensions, runtime, the function's static code).
 * - ready: idle, waiting for an event, not yet frozen.
 * - frozen: idle and frozen by the driver (after a short grace, where the driver can freeze);
 *   the next event or the shutdown thaws it first.
 * - busy: one event is running (Invoke).
 * - finishing: the response is out; extensions and telemetry of that event are still working.
 * - dead: Shutdown began (SHUTDOWN to extensions, then the kill); never leaves.
 */
export type EnvironmentState = "initializing" | "ready" | "frozen" | "busy" | "finishing" | "dead";

/** Allowed transitions: from → the states it may go to. */
export const ENVIRONMENT_TRANSITIONS: Readonly<Record<EnvironmentState, readonly EnvironmentState[]>> = {
  initializing: ["ready", "dead"],
  ready: ["frozen", "busy", "dead"],
  frozen: ["busy", "dead"],
  busy: ["finishing", "dead"],
  finishing: ["ready", "busy", "dead"],
  dead: [],
};

/** Idle: waiting for an event, frozen or not (what the pool hands out and the idle reaper stops). */
export function isIdle(state: EnvironmentState): state is "ready" | "frozen" {
  return state === "ready" || state === "frozen";
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: EnvironmentState,
    readonly to: EnvironmentState,
  ) {
    super(`execution environment: illegal state transition ${from} → ${to}`);
    this.name = "IllegalTransitionError";
  }
}

/** The next state, or an IllegalTransitionError when the table does not allow it. */
export function transition(from: EnvironmentState, to: EnvironmentState): EnvironmentState {
  if (!ENVIRONMENT_TRANSITIONS[from].includes(to)) throw new IllegalTransitionError(from, to);
  return to;
}
