/**
 * Reading a CloudFormation / SAM template: YAML (or JSON, which YAML reads too)
 * with CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`, `!If`, …) turned
 * into their long forms (`{"Ref": …}`, `{"Fn::Sub": …}`), with limits a hostile
 * file cannot get past: size, nesting depth, and the number of values anchors
 * and aliases may expand to (the "billion laughs" file).
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Node, parseDocument } from "yaml";

/** An error in the template or the deploy's input: printed as is, before anything changed. */
export class DeployError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeployError";
  }
}

/** CloudFormation's own limit on a template body read from S3. */
export const MAX_TEMPLATE_BYTES = 1024 * 1024;
/** Deepest nesting of maps and lists accepted. */
export const MAX_DEPTH = 64;
/** Most values the whole document may expand to (aliases count each time they are used). */
export const MAX_VALUES = 200_000;

/** Short tag → long form. `Condition` is the one that is not `Fn::`. */
const SHORT_TAGS: Record<string, string> = {
  "!Ref": "Ref",
  "!Condition": "Condition",
  "!Sub": "Fn::Sub",
  "!GetAtt": "Fn::GetAtt",
  "!If": "Fn::If",
  "!Join": "Fn::Join",
  "!Select": "Fn::Select",
  "!Split": "Fn::Split",
  "!Equals": "Fn::Equals",
  "!Not": "Fn::Not",
  "!And": "Fn::And",
  "!Or": "Fn::Or",
  "!FindInMap": "Fn::FindInMap",
  "!Base64": "Fn::Base64",
  "!GetAZs": "Fn::GetAZs",
  "!ImportValue": "Fn::ImportValue",
  "!Cidr": "Fn::Cidr",
  "!Transform": "Fn::Transform",
  "!Length": "Fn::Length",
  "!ToJsonString": "Fn::ToJsonString",
};

export type Template = Record<string, unknown>;

/** Parse a template's text. Throws DeployError with the line where YAML is wrong. */
export function parseTemplate(text: string, source = "template"): Template {
  if (Buffer.byteLength(text, "utf8") > MAX_TEMPLATE_BYTES) {
    throw new DeployError(`${source}: larger than ${MAX_TEMPLATE_BYTES} bytes (CloudFormation's limit)`);
  }
  // Unknown tags are kept on the nodes (and read below); they only warn.
  const doc = parseDocument(text, { uniqueKeys: true, merge: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new DeployError(`${source}: not valid YAML: ${doc.errors[0]?.message.split("\n")[0]}`);
  }
  let values = 0;
  const convert = (node: unknown, depth: number, path: string): unknown => {
    if (++values > MAX_VALUES) {
      throw new DeployError(
        `${source}: expands to more than ${MAX_VALUES} values (anchors and aliases are counted each time they are used)`,
      );
    }
    if (depth > MAX_DEPTH)
      throw new DeployError(`${source}: nested deeper than ${MAX_DEPTH} levels at ${path}`);
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (!target) throw new DeployError(`${source}: alias *${node.source} names no anchor`);
      return convert(target, depth + 1, path);
    }
    const tag = (node as Node).tag;
    const long = tag !== undefined ? SHORT_TAGS[tag] : undefined;
    if (tag !== undefined && long === undefined && tag.startsWith("!") && !tag.startsWith("!!")) {
      throw new DeployError(`${source}: unknown tag ${tag} at ${path}`);
    }
    let value: unknown;
    if (isScalar(node)) {
      value = long !== undefined && node.value !== null ? String(node.source ?? node.value) : node.value;
      if (typeof value === "string" && long === undefined && tag === undefined) value = node.value;
      if (long === "Fn::GetAtt" && typeof value === "string") {
        const dot = value.indexOf(".");
        if (dot < 1) throw new DeployError(`${source}: !GetAtt ${value} at ${path}: use Resource.Attribute`);
        value = [value.slice(0, dot), value.slice(dot + 1)];
      }
    } else if (isSeq(node)) {
      value = node.items.map((item, i) => convert(item, depth + 1, `${path}[${i}]`));
    } else if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = convert(pair.key, depth + 1, path);
        if (typeof key !== "string" && typeof key !== "number" && typeof key !== "boolean") {
          throw new DeployError(`${source}: a key at ${path} is not a plain value`);
        }
        const k = String(key);
        if (k === "__proto__") throw new DeployError(`${source}: key __proto__ at ${path} is not allowed`);
        out[k] = convert(pair.value, depth + 1, path === "" ? k : `${path}.${k}`);
      }
      value = out;
    } else {
      throw new DeployError(`${source}: unexpected YAML node at ${path}`);
    }
    return long === undefined ? value : { [long]: value };
  };
  const root = convert(doc.contents, 0, "");
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    throw new DeployError(`${source}: the template must be a map (with Resources)`);
  }
  return root as Template;
}
