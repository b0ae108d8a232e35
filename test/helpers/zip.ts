/** Build deployment packages for tests: from a fixture folder or from inline files. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import yazl from "yazl";

export const FIXTURES = fileURLToPath(new URL("../fixtures/functions", import.meta.url));

export interface ZipEntry {
  name: string;
  content: string | Buffer;
  mode?: number;
}

export function zipEntries(entries: ZipEntry[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    zip.addBuffer(Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content), e.name, {
      mode: e.mode ?? 0o100644,
    });
  }
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on("data", (c: Buffer) => chunks.push(c));
    zip.outputStream.on("error", reject);
    zip.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

function walk(dir: string, root: string, out: ZipEntry[]): void {
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const st = statSync(full);
    if (st.isDirectory()) walk(full, root, out);
    else
      out.push({
        name: relative(root, full),
        content: readFileSync(full),
        mode: 0o100000 | (st.mode & 0o777),
      });
  }
}

/** Zip the contents of test/fixtures/functions/<name>. */
export function zipFixture(name: string): Promise<Buffer> {
  const root = join(FIXTURES, name);
  const entries: ZipEntry[] = [];
  walk(root, root, entries);
  return zipEntries(entries);
}
