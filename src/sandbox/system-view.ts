import { lstatSync, readlinkSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { sandboxGroup, sandboxPasswd } from "./sandbox-user.js";

/** Top-level system directories mapped read-only into every environment (symlinks kept as such). */
const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/** Host /etc pieces the runtimes need (TLS roots, dynamic linker cache, time zone, name service config). */
const HOST_ETC = [
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/pki",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/localtime",
  "/etc/nsswitch.conf",
  "/etc/host.conf",
  "/etc/alternatives",
  "/etc/mime.types",
];

/** The bwrap arguments that build the read-only system part of the root, computed once per driver. */
export function systemViewArgs(etcDir: string, network: "isolated" | "host"): string[] {
  // Privileged bwrap creates missing parents of mount points as 0700: make them readable first.
  const args = ["/etc", "/var", "/run", "/run/lambent"].flatMap((dir) => ["--perms", "0755", "--dir", dir]);
  for (const dir of SYSTEM_DIRS) {
    const stat = lstatSafe(dir);
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(dir), dir);
    else if (stat?.isDirectory()) args.push("--ro-bind", dir, dir);
  }
  for (const path of HOST_ETC) args.push("--ro-bind-try", path, path);
  args.push("--ro-bind", `${etcDir}/passwd`, "/etc/passwd", "--ro-bind", `${etcDir}/group`, "/etc/group");
  args.push("--ro-bind", `${etcDir}/hosts`, "/etc/hosts");
  // Isolated: slirp4netns's DNS forwarder; host network: the host's own resolver configuration.
  args.push(
    "--ro-bind",
    network === "isolated" ? `${etcDir}/resolv.conf` : "/etc/resolv.conf",
    "/etc/resolv.conf",
  );
  return args;
}

/** Writes the generated /etc files into the driver's run dir. */
export async function writeSandboxEtc(
  etcDir: string,
  network: "isolated" | "host" = "isolated",
): Promise<void> {
  // As on Lambda, extensions listen on sandbox.localdomain. In an isolated namespace it is the
  // namespace's own address (10.0.2.100, slirp4netns' tap), where the worker's telemetry relay
  // reaches it.
  const sandboxAddress = network === "isolated" ? "10.0.2.100" : "127.0.0.1";
  await mkdir(etcDir, { recursive: true });
  await Promise.all([
    writeFile(`${etcDir}/passwd`, sandboxPasswd()),
    writeFile(`${etcDir}/group`, sandboxGroup()),
    writeFile(
      `${etcDir}/hosts`,
      `127.0.0.1\tlocalhost\n${sandboxAddress}\tsandbox.localdomain sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    ),
    writeFile(`${etcDir}/resolv.conf`, "nameserver 10.0.2.3\n"),
  ]);
}

function lstatSafe(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
