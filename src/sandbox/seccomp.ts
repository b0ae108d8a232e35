/**
 * The seccomp filter every bwrap sandbox runs under (`bwrap --seccomp FD`), as a classic BPF
 * program built here: no compiler or libseccomp at install, and nothing to build at start
 * (a few hundred bytes, computed once per server).
 *
 * It answers EPERM to what Docker's default profile refuses a process without capabilities, and to
 * what this platform's findings showed matters: new namespaces (`unshare`, `setns`, `clone` with any
 * CLONE_NEW* flag — so no user namespace with its uid 0, mounts and raw sockets), `io_uring_*`,
 * `keyctl`/`add_key`/`request_key`, kernel modules, `kexec_*`, `bpf`, `perf_event_open`, `ptrace`,
 * `process_vm_*`, the mount family (old and new API), `pivot_root`, `chroot`, `swapon`/`swapoff`,
 * `reboot`, `userfaultfd`, handles (`open_by_handle_at`), `acct`, clock setting, `syslog`, …
 * `clone3` answers ENOSYS (its flags sit in memory a filter cannot read), so libc falls back to
 * `clone`, whose flags it can. Syscalls of another ABI (i386 `int 0x80`, x32) are refused whole.
 */

/** Linux's AUDIT_ARCH_X86_64. */
const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x32 syscalls carry this bit in their number. */
const X32_SYSCALL_BIT = 0x40000000;

const SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (not NEWTIME: clone's low byte is the exit signal). */
const CLONE_NAMESPACES = 0x7e020000;

/** x86_64 syscall numbers refused with EPERM. */
export const BLOCKED_SYSCALLS_X86_64: Readonly<Record<string, number>> = {
  ptrace: 101,
  syslog: 103,
  uselib: 134,
  ustat: 136,
  sysfs: 139,
  vhangup: 153,
  pivot_root: 155,
  _sysctl: 156,
  chroot: 161,
  acct: 163,
  settimeofday: 164,
  mount: 165,
  umount2: 166,
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  iopl: 172,
  ioperm: 173,
  create_module: 174,
  init_module: 175,
  delete_module: 176,
  get_kernel_syms: 177,
  query_module: 178,
  quotactl: 179,
  nfsservctl: 180,
  lookup_dcookie: 212,
  clock_settime: 227,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  fanotify_init: 300,
  name_to_handle_at: 303,
  open_by_handle_at: 304,
  clock_adjtime: 305,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  kcmp: 312,
  finit_module: 313,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  pidfd_getfd: 438,
  mount_setattr: 442,
  quotactl_fd: 443,
};

const SYS_CLONE = 56;
const SYS_CLONE3 = 435;

// Classic BPF opcodes.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;

// struct seccomp_data offsets: nr, arch, instruction_pointer, args[6] (little endian).
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARG0_LOW = 16;

type Instruction = [code: number, jt: number, jf: number, k: number];

/** The filter as `struct sock_filter[]` bytes (what `bwrap --seccomp FD` reads), for this machine's ABI. */
export function seccompFilter(arch: string = process.arch): Buffer | undefined {
  if (arch !== "x64") return undefined;
  const deny = SECCOMP_RET_ERRNO | EPERM;
  const program: Instruction[] = [
    [LD_W_ABS, 0, 0, OFFSET_ARCH],
    [JEQ_K, 1, 0, AUDIT_ARCH_X86_64],
    [RET_K, 0, 0, deny],
    [LD_W_ABS, 0, 0, OFFSET_NR],
    [JGE_K, 0, 1, X32_SYSCALL_BIT],
    [RET_K, 0, 0, deny],
  ];
  for (const nr of Object.values(BLOCKED_SYSCALLS_X86_64)) {
    program.push([JEQ_K, 0, 1, nr], [RET_K, 0, 0, deny]);
  }
  program.push(
    [JEQ_K, 0, 1, SYS_CLONE3],
    [RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS],
    // clone: refused when its flags ask for a new namespace.
    [JEQ_K, 0, 3, SYS_CLONE],
    [LD_W_ABS, 0, 0, OFFSET_ARG0_LOW],
    [JSET_K, 0, 1, CLONE_NAMESPACES],
    [RET_K, 0, 0, deny],
    [RET_K, 0, 0, SECCOMP_RET_ALLOW],
  );
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach(([code, jt, jf, k], i) => {
    bytes.writeUInt16LE(code, i * 8);
    bytes.writeUInt8(jt, i * 8 + 2);
    bytes.writeUInt8(jf, i * 8 + 3);
    bytes.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return bytes;
}
