/** What went wrong while preparing, starting or tearing down a sandbox. */
export type SandboxErrorCode =
  /** The spec or endpoint does not fit the driver (e.g. a `unix` endpoint given to the process driver). */
  | "InvalidSandboxSpec"
  /** A cgroup could not be created, limited, joined, frozen or removed. */
  | "CgroupFailure"
  /** bwrap or one of its helpers (slirp4netns, iptables, socat) failed to start. */
  | "SandboxStartFailure";

export class SandboxError extends Error {
  override readonly name = "SandboxError";
  constructor(
    readonly code: SandboxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
