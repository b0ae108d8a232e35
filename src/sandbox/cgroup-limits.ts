/** The resource limits of one execution environment, as the kernel enforces them. */
export interface CgroupLimits {
  /** Hard memory limit of the whole tree (MemorySize). */
  memoryBytes: number;
  /** CPU share in cores (1769 MB = 1.0), enforced as a CFS quota per period. */
  cpus: number;
  /** Processes + threads of the whole tree. */
  pids: number;
  /** The lowest CPU weight (a stem cell until adopted: it takes only CPU nobody else wants). */
  background?: boolean;
}

/** CPU weight of a background cgroup and of a normal one: cgroup v1 `cpu.shares`, v2 `cpu.weight`. */
export const CPU_SHARES = { background: 2, normal: 1024 } as const;
export const CPU_WEIGHT = { background: 1, normal: 100 } as const;

/** CFS period used for CPU quotas (100 ms, as Lambda). */
export const CPU_PERIOD_US = 100_000;
/** Memory that buys one full vCPU on Lambda. */
export const MEMORY_MB_PER_VCPU = 1769;

export function cpuQuotaUs(cpus: number): number {
  return Math.max(1000, Math.round(cpus * CPU_PERIOD_US));
}
