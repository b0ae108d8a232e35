// Lambent's built-in Node.js runtime.
//
// A plain program that speaks only Lambda's public Runtime API (2018-06-01), so it behaves like the
// `nodejs*.x` managed runtimes: run as `node bootstrap.cjs [--runtime-api-socket=/path.sock] [--node-path-view]` with cwd =
// LAMBDA_TASK_ROOT and Lambda's environment (AWS_LAMBDA_RUNTIME_API, _HANDLER, AWS_LAMBDA_FUNCTION_*, ...).
// With --runtime-api-socket it talks HTTP over that Unix socket, else TCP to AWS_LAMBDA_RUNTIME_API.
//
// Behaviour follows AWS's runtime interface client (aws-lambda-nodejs-runtime-interface-client 3.x, the
// one behind nodejs18.x/20.x): handler resolution, callback / promise handlers,
// callbackWaitsForEmptyEventLoop through a `beforeExit` hook, error shapes ({errorType, errorMessage,
// trace}), Runtime.* error types and the text log format. Only node: builtins, no build step.
//
// Multi-concurrency (Lambda Managed Instances): with AWS_LAMBDA_MAX_CONCURRENCY=N > 1 the runtime runs up
// to N `next` loops in this one process (started as events arrive), so up to N handlers run at once as
// async functions (on the main thread; AWS_LAMBDA_NODEJS_WORKER_COUNT is not read). Log lines carry the request id of the
// handler that wrote them (AsyncLocalStorage); a callback handler's result is sent when it calls back.

"use strict";

// CommonJS, not an ES module: an ES module entry costs Node's ES module loader at every start (and
// an ES module import of a builtin builds a facade of all its exports, which runs lazy getters,
// node:fs's streams, …, the runtime never uses). node:http, node:stream and node:async_hooks are
// loaded only on the paths that need them.
const Module = require("node:module");
const { createRequire } = Module;
const builtin = require;
const { existsSync, readFileSync } = builtin("node:fs");
const { connect, createServer } = builtin("node:net");
const { basename, dirname, resolve } = builtin("node:path");
const { pathToFileURL } = builtin("node:url");
const { format } = builtin("node:util");

const env = process.env;
const BASE = "/2018-06-01/runtime";
const NEXT = `${BASE}/invocation/next`;

// ---------------------------------------------------------------- transport

let socketPath;
let host;
let port;
/** `PORT:SOCKET` of each `--tcp-relay` (see startRelays). */
const relays = new Set();
let relaysListening;

/** Where the Runtime API is: read from argv and the environment when the runtime starts. */
function configureTransport() {
  for (let i = 2; i < process.argv.length; i++) {
    const arg = process.argv[i];
    if (arg.startsWith("--runtime-api-socket=")) socketPath = arg.slice(21);
    else if (arg === "--runtime-api-socket") socketPath = process.argv[++i];
    else if (arg.startsWith("--tcp-relay=")) relays.add(arg.slice(12));
  }
  if (!socketPath) {
    const api = env.AWS_LAMBDA_RUNTIME_API || "127.0.0.1:9001";
    const colon = api.lastIndexOf(":");
    host = api.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    port = Number(api.slice(colon + 1));
  }
  hostHeader = socketPath ? "localhost" : `${host.includes(":") ? `[${host}]` : host}:${port}`;
}
// The Runtime API client. Its calls (`next`, the answer, init errors) use a small HTTP/1.1 client of
// its own over keep-alive connections: one per call in flight (one, unless multi-concurrency). At 16
// clients each environment sees only a few hundred events before a bench ends, and node:http's
// client (agent, streams, IncomingMessage) is several times more code per event to run and to
// JIT-warm. A connection is unref'd while idle, so it does not hold the event loop open (beforeExit
// still fires); one the server closes while idle is dropped. Streamed responses (chunked, with
// trailers) still go through node:http, on a connection of their own (`agent`).
let agent;
/** Streaming responses' node:http agent, made (and node:http loaded) at the first one. */
const streamingAgent = () => {
  agent ??= new (builtin("node:http").Agent)({ keepAlive: true, maxSockets: loops });
  return agent;
};
/** Events this runtime runs at once (AWS_LAMBDA_MAX_CONCURRENCY; read at Init). */
let loops = 1;
/** Multi-concurrency: the request id of the handler that is running, for its log lines. */
let invokeContext = null;

function fatal(err) {
  process.stderr.write(`lambent runtime: Runtime API request failed: ${err?.stack ?? err}\n`);
  process.exit(1);
}

/** Idle keep-alive connections to the Runtime API. */
const idle = [];
let hostHeader;

/**
 * A header value HTTP can carry (as node:http checks). An error type that is not (an `err.name` with a
 * newline) is left out of the header: the server reads it from the body's `errorType` instead.
 */
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const INVALID_HEADER_VALUES = /[^\t\x20-\x7e\x80-\xff]/g;

/** The text of one request to the Runtime API. */
function requestText(method, path, body, errorType) {
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\n`;
  if (body === undefined) return `${head}\r\n`;
  head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  if (errorType && !INVALID_HEADER_VALUE.test(errorType)) {
    head += `Lambda-Runtime-Function-Error-Type: ${errorType}\r\n`;
  }
  return `${head}\r\n${body}`;
}

/** An idle connection, or a new one; `send` writes its requests (their answers come in order). */
const takeConnection = () => idle.pop() ?? connection();

function send(conn, text) {
  conn.socket.ref();
  conn.socket.write(text);
}

/**
 * One HTTP call to the Runtime API; `done(res, bodyText)` runs once the whole answer is read, `res`
 * being `{statusCode, headers (lower-case names), path}`.
 */
function call(method, path, body, errorType, done) {
  const conn = takeConnection();
  conn.calls.push({ path, done });
  send(conn, requestText(method, path, body, errorType));
}

/** A new keep-alive connection and its response parser. */
function connection() {
  const socket = socketPath ? connect({ path: socketPath }) : connect({ host, port, noDelay: true });
  /** The calls sent on it and not answered yet, oldest first. */
  const conn = { socket, calls: [] };
  /** Bytes of the answer not parsed yet, and what is known of it. */
  let buffered = null;
  let res = null;
  let length = -1; // the body's Content-Length; -1 chunked
  let parts = [];
  let got = 0;
  /** Chunked: bytes of the current chunk still to come; -1 its size line next, -2 the CRLF after it. */
  let chunkLeft = -1;
  const finish = (text) => {
    const call = conn.calls.shift();
    res.path = call.path;
    const answered = res;
    res = null;
    parts = [];
    got = 0;
    chunkLeft = -1;
    if (conn.calls.length === 0) {
      socket.unref();
      idle.push(conn);
    }
    call.done(answered, text);
  };
  socket.on("data", (chunk) => {
    let data = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
    buffered = null;
    while (data.length > 0) {
      if (conn.calls.length === 0) return fatal(new Error("Runtime API sent data nobody asked for"));
      if (res === null) {
        const end = data.indexOf("\r\n\r\n");
        if (end === -1) {
          buffered = data;
          return;
        }
        res = parseHead(data.latin1Slice(0, end));
        if (res === null) return fatal(new Error("Runtime API sent a malformed answer"));
        const te = res.headers["transfer-encoding"];
        length =
          te !== undefined && te.toLowerCase() !== "identity"
            ? -1
            : Number(res.headers["content-length"] ?? 0);
        data = data.subarray(end + 4);
        if (length === 0) {
          finish("");
          continue;
        }
      }
      if (length >= 0) {
        const take = Math.min(length - got, data.length);
        parts.push(take === data.length ? data : data.subarray(0, take));
        got += take;
        data = data.subarray(take);
        if (got === length)
          finish(parts.length === 1 ? parts[0].toString() : Buffer.concat(parts).toString());
        continue;
      }
      // Chunked: `<hex size>\r\n<bytes>\r\n` …, ended by a zero size, (trailers) and an empty line.
      // A chunk's bytes are taken as they come; only size lines and the end are waited for whole.
      if (chunkLeft > 0) {
        const take = Math.min(chunkLeft, data.length);
        parts.push(take === data.length ? data : data.subarray(0, take));
        chunkLeft -= take;
        data = data.subarray(take);
        if (chunkLeft === 0) chunkLeft = -2;
        continue;
      }
      if (chunkLeft === -2) {
        if (data.length < 2) {
          buffered = data;
          return;
        }
        data = data.subarray(2);
        chunkLeft = -1;
        continue;
      }
      const eol = data.indexOf("\r\n");
      if (eol === -1) {
        buffered = data;
        return;
      }
      const size = Number.parseInt(data.latin1Slice(0, eol), 16);
      if (Number.isNaN(size)) return fatal(new Error("Runtime API sent a malformed chunk"));
      if (size === 0) {
        const end = data.indexOf("\r\n\r\n");
        if (end === -1) {
          buffered = data;
          return;
        }
        data = data.subarray(end + 4);
        finish(Buffer.concat(parts).toString());
        continue;
      }
      data = data.subarray(eol + 2);
      chunkLeft = size;
    }
  });
  socket.on("error", (err) => {
    if (conn.calls.length > 0) fatal(err);
  });
  socket.on("close", () => {
    const i = idle.indexOf(conn);
    if (i !== -1) idle.splice(i, 1);
    if (conn.calls.length > 0) fatal(new Error("socket hang up"));
  });
  return conn;
}

/** `HTTP/1.1 200 OK` and its header lines → {statusCode, headers}, or null if it is not HTTP. */
function parseHead(text) {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { statusCode: Number(m[1]), headers };
}

function checkAccepted(res, body) {
  if (res.statusCode >= 300) {
    process.stderr.write(`lambent runtime: ${res.path} answered ${res.statusCode}: ${body}\n`);
  }
}

// ---------------------------------------------------------------- errors

/** An Error named `Runtime.<type>` (name not enumerable, as on AWS's error classes). */
function runtimeError(type, message) {
  const err = new Error(message);
  Object.defineProperty(err, "name", { value: `Runtime.${type}`, writable: true, configurable: true });
  Error.captureStackTrace(err, runtimeError);
  return err;
}

const NODE_JS_EXIT_MESSAGE =
  "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a " +
  "Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes";

function isErrorLike(e) {
  return (
    e instanceof Error ||
    (e != null &&
      typeof e.name === "string" &&
      typeof e.message === "string" &&
      typeof e.stack === "string" &&
      e.name !== "" &&
      e.message !== "")
  );
}

/** The body Lambda's Node.js runtime posts for an error: {errorType, errorMessage, trace}. */
function toRapidError(e) {
  try {
    if (isErrorLike(e)) {
      return {
        errorType: e.name,
        errorMessage: e.message,
        trace: typeof e.stack === "string" ? e.stack.split("\n") : [],
      };
    }
    return { errorType: typeof e, errorMessage: String(e), trace: [] };
  } catch {
    return {
      errorType: "handled",
      errorMessage:
        "callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack",
    };
  }
}

function withEnumerableProperties(_key, value) {
  if (value instanceof Error) {
    const out = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === "string") out.stack = value.stack.split("\n");
    return out;
  }
  return value;
}

/** "\t" + the error as JSON with its name, message, code and stack lines, as AWS logs it. */
function formatted(e) {
  const err = e instanceof Error ? e : new Error(e);
  try {
    return `\t${JSON.stringify(err, withEnumerableProperties)}`;
  } catch {
    return `\t${JSON.stringify(toRapidError(err))}`;
  }
}

// ---------------------------------------------------------------- logging

let requestId; // logged as "undefined" outside an invoke, as Lambda does
/** The request id a log line belongs to: the handler's own when several run at once. */
const currentRequestId = () => (invokeContext ? (invokeContext.getStore() ?? requestId) : requestId);
let stdout;
let jsonLogs = false;

function jsonReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value.constructor?.name ?? "UnknownError",
        errorMessage: value.message,
        stackTrace: typeof value.stack === "string" ? value.stack.split("\n") : value.stack,
      },
      value,
    );
  }
  return value;
}

function jsonLine(level, args) {
  const entry = {
    timestamp: new Date().toISOString(),
    level,
    requestId: currentRequestId(),
    message: undefined,
  };
  if (args.length === 1) {
    entry.message = args[0];
    try {
      return JSON.stringify(entry, jsonReplacer);
    } catch {
      entry.message = format(args[0]);
      return JSON.stringify(entry);
    }
  }
  entry.message = format(...args);
  for (const arg of args) {
    if (arg instanceof Error) {
      entry.errorType = arg.constructor?.name ?? "UnknownError";
      entry.errorMessage = arg.message;
      entry.stackTrace = typeof arg.stack === "string" ? arg.stack.split("\n") : [];
      break;
    }
  }
  return JSON.stringify(entry);
}

function logger(level) {
  return (...args) => {
    let line = jsonLogs
      ? jsonLine(level, args)
      : `${new Date().toISOString()}\t${currentRequestId()}\t${level}\t${format(...args)}`;
    // A multi-line message stays one log record: newlines become carriage returns.
    if (line.includes("\n")) line = line.replace(/\n/g, "\r");
    if (stdout === undefined) stdout = process.stdout;
    stdout.write(`${line}\n`);
  };
}

/** How the runtime logs an error it reports: text `label \t{json}`, or the error itself in JSON format. */
function logError(label, err) {
  if (jsonLogs) console.error(err instanceof Error ? err : new Error(err));
  else console.error(label, formatted(err));
}

function patchConsole() {
  const levels = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
  const min = Math.max(0, levels.indexOf(env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase() ?? "TRACE"));
  const nop = () => {};
  const at = (level) => (levels.indexOf(level) >= min ? logger(level) : nop);
  console.trace = at("TRACE");
  console.debug = at("DEBUG");
  console.info = at("INFO");
  console.log = console.info;
  console.warn = at("WARN");
  console.error = at("ERROR");
  console.fatal = logger("FATAL");
}

// ---------------------------------------------------------------- module resolution

/**
 * ES module imports resolve as CommonJS requires do on Lambda: from the function first, then each
 * NODE_PATH folder (/opt/nodejs/nodeXX/node_modules, /opt/nodejs/node_modules, the runtime's AWS SDK,
 * /var/runtime, /var/task). Node's ESM resolver ignores NODE_PATH, so a resolve hook retries a bare
 * specifier Node could not find from each of those folders.
 *
 * Node 22.15+ runs the hook in this thread (Module.registerHooks). Node 20 has only Module.register,
 * whose hooks run in a thread of their own: starting it blocks this one for a worker thread's start
 * (more CPU than the rest of the runtime's start, and ~12 MB of RSS). A stem cell starts that thread
 * before it knows its function (startEsmHooks) and hands it the folders once it does, over a
 * MessagePort. Otherwise the thread starts only when an ES module import may come: before an ES
 * module handler is imported, and before any CommonJS module whose source has the word `import`
 * (`import()`, `import.meta`; `import("node:…")` aside) or that `require` loads as an ES module
 * runs. A module without that word resolves no package specifier (code built from strings at run
 * time, `eval`, `new Function`, `vm`, is not looked at: such an `import()` of a NODE_PATH package
 * finds it only if an earlier module started the thread). Node 20 does not ask the hook about the static imports of an ES module
 * loaded by `require` (require(esm)): those never found NODE_PATH's packages on this driver.
 *
 * With --node-path-view (the bwrap driver) there is no hook at all: the sandbox's /node_modules,
 * where every ES module's resolution ends, links NODE_PATH's packages in NODE_PATH's order.
 */
function installEsmFallback() {
  if (nodePathView()) return;
  const dirs = (env.NODE_PATH ?? "").split(":").filter((d) => d.startsWith("/"));
  if (dirs.length === 0) return;
  // A specifier resolved "from" a file beside a folder's node_modules finds the folder's packages.
  const parents = dirs.map(
    (d) => pathToFileURL(`${d.endsWith("/node_modules") ? d.slice(0, -13) : d}/[lambent]`).href,
  );
  if (typeof Module.registerHooks === "function") {
    Module.registerHooks({
      resolve: (specifier, context, next) => resolveWithFallback(parents, specifier, context, next),
    });
  } else if (esmHooksPort) {
    esmHooksPort.postMessage(parents);
  } else if (typeof Module.register === "function") {
    esmHooksParents = parents;
    if (preloaded()) return esmHooksNeeded();
    const compile = Module.prototype._compile;
    // Not restored once the thread runs: instrumentation may have wrapped this wrapper meanwhile.
    Module.prototype._compile = function (content, filename, format) {
      if (esmHooksParents !== null && (format === "module" || mayImportPackages(content))) esmHooksNeeded();
      return compile.call(this, content, filename, format);
    };
  }
}

/**
 * Whether a CommonJS module's source may import a package: it has the word `import` (import(),
 * import.meta, an ES module's import) other than in `import("node:…")`, which only loads a builtin
 * (the AWS SDK's clients import node:async_hooks so, and nothing else).
 */
function mayImportPackages(content) {
  IMPORT_WORD.lastIndex = 0;
  for (let m = IMPORT_WORD.exec(content); m !== null; m = IMPORT_WORD.exec(content)) {
    if (!BUILTIN_IMPORT.test(content.slice(m.index + 6, m.index + 40))) return true;
  }
  return false;
}
const IMPORT_WORD = /\bimport\b/g;
const BUILTIN_IMPORT = /^\s*\(\s*["']node:/;

/**
 * Code that ran before the runtime (NODE_OPTIONS `--require`, `--import`, a loader) is not seen by
 * the _compile check and may import at any time: the hook thread starts at once, as it always did.
 */
function preloaded() {
  if (Object.keys(require.cache).some((file) => file !== __filename)) return true;
  return /(^|\s)(--import|--loader|--experimental-loader)\b/.test(env.NODE_OPTIONS ?? "");
}

/** Node 20, no stem cell: the NODE_PATH parents, kept until the hook thread is needed. */
let esmHooksParents = null;

/** Node 20: an ES module import may come: start the hook thread now (once) and hand it the parents. */
function esmHooksNeeded() {
  const parents = esmHooksParents;
  if (parents === null) return;
  esmHooksParents = null;
  if (startEsmHooks()) esmHooksPort.postMessage(parents);
}

/** The hook thread's side of Node 20's resolve hook: the NODE_PATH parents arrive on `data.port`. */
const esmHooksModule = () => `
import { receiveMessageOnPort } from "node:worker_threads";
const bare = ${BARE.toString()};
const fallback = ${resolveWithFallbackAsync.toString()};
let parents = [];
let port;
export function initialize(data) { port = data.port; }
export function resolve(specifier, context, next) {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) parents = m.message;
  return fallback(parents, specifier, context, next, bare);
}`;

/** Whether the sandbox shows NODE_PATH's packages to ES modules itself (see installEsmFallback). */
function nodePathView() {
  return process.argv.includes("--node-path-view", 2);
}

/** Where installEsmFallback sends Node 20's hook thread its NODE_PATH parents. */
let esmHooksPort;

/** Node 20: start the resolve hook's thread (once); false where Node has no off-thread hooks. */
function startEsmHooks() {
  if (esmHooksPort) return true;
  if (typeof Module.registerHooks === "function" || typeof Module.register !== "function") return false;
  const { port1, port2 } = new MessageChannel();
  port1.unref();
  Module.register(`data:text/javascript,${encodeURIComponent(esmHooksModule())}`, {
    data: { port: port2 },
    transferList: [port2],
  });
  esmHooksPort = port1;
  return true;
}

const BARE = (s) => !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(s);

function resolveWithFallback(parents, specifier, context, next) {
  try {
    return next(specifier, context);
  } catch (err) {
    if (err?.code !== "ERR_MODULE_NOT_FOUND" || !BARE(specifier)) throw err;
    for (const parentURL of parents) {
      try {
        return next(specifier, { ...context, parentURL });
      } catch {}
    }
    throw err;
  }
}

async function resolveWithFallbackAsync(parents, specifier, context, next, bare) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (err?.code !== "ERR_MODULE_NOT_FOUND" || !bare(specifier)) throw err;
    for (const parentURL of parents) {
      try {
        return await next(specifier, { ...context, parentURL });
      } catch {}
    }
    throw err;
  }
}

// ---------------------------------------------------------------- loading the handler

function hasTypeModule(folder) {
  for (;;) {
    if (folder.endsWith("/node_modules")) return false;
    const pj = `${folder}/package.json`;
    if (existsSync(pj)) {
      try {
        return JSON.parse(readFileSync(pj, "utf8"))?.type === "module";
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    const parent = dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

async function loadModule(taskRoot, moduleRoot, name) {
  const require = createRequire(__filename);
  const file = resolve(taskRoot, moduleRoot, name);
  const tryRequire = (path) => (existsSync(path) ? require(path) : undefined);
  const tryImport = async (path) => {
    if (!existsSync(path)) return undefined;
    esmHooksNeeded();
    return await import(pathToFileURL(path).href);
  };

  const extensionless = tryRequire(file);
  if (extensionless) return extensionless;
  const isModule = hasTypeModule(dirname(file));
  if (!isModule) {
    const cjs = tryRequire(`${file}.js`);
    if (cjs) return cjs;
  }
  const loaded =
    (isModule && (await tryImport(`${file}.js`))) ||
    (await tryImport(`${file}.mjs`)) ||
    tryRequire(`${file}.cjs`);
  if (loaded) return loaded;
  // Last, Node's own resolution from the task root (a package name, a folder with index.js, ...).
  return require(require.resolve(name, { paths: [taskRoot, moduleRoot] }));
}

async function loadHandler(taskRoot, fullHandler) {
  if (fullHandler.includes("..")) {
    throw runtimeError(
      "MalformedHandlerName",
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = basename(fullHandler);
  const moduleRoot = fullHandler.slice(0, fullHandler.length - handlerString.length);
  const match = /^([^.]*)\.(.*)$/.exec(handlerString);
  if (!match) throw runtimeError("MalformedHandlerName", "Bad handler");
  const [, name, handlerPath] = match;

  let app;
  try {
    app = await loadModule(taskRoot, moduleRoot, name);
  } catch (e) {
    if (e instanceof SyntaxError) {
      const err = runtimeError("UserCodeSyntaxError", String(e));
      err.stack = e.stack;
      throw err;
    }
    if (e?.code === "MODULE_NOT_FOUND" || e?.code === "ERR_MODULE_NOT_FOUND") {
      throw runtimeError("ImportModuleError", String(e));
    }
    throw e;
  }
  let fn = app;
  for (const key of handlerPath.split(".")) fn = fn?.[key];
  if (!fn) throw runtimeError("HandlerNotFound", `${fullHandler} is undefined or not exported`);
  if (typeof fn !== "function") throw runtimeError("HandlerNotFound", `${fullHandler} is not a function`);
  return fn;
}

// ---------------------------------------------------------------- response streaming

// `awslambda.streamifyResponse(handler)` marks a handler as streaming, as Lambda's runtime does (the same
// symbols, so a handler wrapped by a library that sets them itself is recognised too). Its response goes
// to the Runtime API as it is written: `Lambda-Runtime-Function-Response-Mode: streaming`, chunked, and a
// failure part-way is reported in the trailers.
const HANDLER_STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const HANDLER_HIGHWATERMARK = Symbol.for("aws.lambda.runtime.handler.streaming.highWaterMark");
const STREAM_RESPONSE = "response";
const HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response";

function streamifyResponse(fn, options) {
  fn[HANDLER_STREAMING] = STREAM_RESPONSE;
  if (Number.isInteger(options?.highWaterMark)) fn[HANDLER_HIGHWATERMARK] = options.highWaterMark;
  return fn;
}

/**
 * `awslambda.HttpResponseStream.from(stream, metadata)`: the response of a Function URL (or any HTTP
 * integration) as a JSON prelude (statusCode, headers, cookies), 8 NUL bytes, then the body.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: Lambda's runtime exposes it as a class (awslambda.HttpResponseStream.from)
class HttpResponseStream {
  static from(stream, prelude) {
    stream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
    const metadata = JSON.stringify(prelude ?? {});
    stream._onBeforeFirstWrite = (write) => {
      write(Buffer.from(metadata));
      write(Buffer.alloc(8));
    };
    return stream;
  }
}

function installAwslambdaGlobal() {
  globalThis.awslambda = { streamifyResponse, HttpResponseStream };
}

/**
 * The response stream a streaming handler writes to: a Writable over one chunked POST to
 * `/invocation/<id>/response`. `fail(err)` reports an error in the trailers and ends the request.
 */
function responseStream(id, highWaterMark, onDone) {
  let contentType = "application/octet-stream";
  let req;
  let finished = false;
  const open = () => {
    if (req) return req;
    req = builtin("node:http").request(
      {
        agent: streamingAgent(),
        socketPath,
        host,
        port,
        method: "POST",
        path: `${BASE}/invocation/${encodeURIComponent(id)}/response`,
        headers: {
          "Content-Type": contentType,
          "Lambda-Runtime-Function-Response-Mode": "streaming",
          "Transfer-Encoding": "chunked",
          Trailer: "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c) => {
          text += c;
        });
        res.on("end", () => onDone(res, text));
      },
    );
    req.on("socket", (socket) => socket.setNoDelay?.(true));
    req.on("error", fatal);
    return req;
  };
  const stream = new (builtin("node:stream").Writable)({
    ...(highWaterMark !== undefined ? { highWaterMark } : {}),
    write(chunk, _encoding, cb) {
      const r = open();
      if (stream._onBeforeFirstWrite) {
        const before = stream._onBeforeFirstWrite;
        stream._onBeforeFirstWrite = undefined;
        before((bytes) => r.write(bytes));
      }
      r.write(chunk, () => cb());
    },
    final(cb) {
      const r = open();
      if (stream._onBeforeFirstWrite) {
        const before = stream._onBeforeFirstWrite;
        stream._onBeforeFirstWrite = undefined;
        before((bytes) => r.write(bytes));
      }
      finished = true;
      r.end(cb);
    },
  });
  stream.setContentType = (type) => {
    if (req?.headersSent) throw new Error("Tried to set the content type after the stream started");
    contentType = type;
  };
  stream.fail = (err) => {
    if (finished) return false;
    finished = true;
    const rapid = toRapidError(err);
    const r = open();
    r.addTrailers({
      // A trailer is the only place the type goes here: one HTTP cannot carry loses those characters.
      "Lambda-Runtime-Function-Error-Type": rapid.errorType.replace(INVALID_HEADER_VALUES, " "),
      "Lambda-Runtime-Function-Error-Body": Buffer.from(JSON.stringify(rapid)).toString("base64"),
    });
    r.end();
    return true;
  };
  return stream;
}

/** Run a streaming handler: its stream ends when its promise settles (an error goes in the trailers). */
function invokeStreaming(id, event, context) {
  let settled = false;
  const stream = responseStream(id, handler[HANDLER_HIGHWATERMARK], (res, text) => {
    running.delete(id);
    checkAccepted(res, text);
    next();
  });
  const failed = (err) => {
    if (settled) return;
    settled = true;
    onBeforeExit = null;
    logError("Invoke Error", err);
    if (!stream.fail(err)) return;
  };
  stream.on("error", failed);
  onBeforeExit = () => failed(runtimeError("NodeJsExit", NODE_JS_EXIT_MESSAGE));
  let result;
  try {
    result = handler(event, stream, context);
  } catch (e) {
    failed(e);
    return;
  }
  Promise.resolve(result).then(() => {
    if (settled) return;
    settled = true;
    onBeforeExit = null;
    if (!stream.writableEnded) stream.end();
  }, failed);
}

// ---------------------------------------------------------------- the invoke loop

let handler;
let handlerIsAsync = false;
let phase = "init"; // "init" | "idle" | "invoke" | "crashed"
/** The events running now (several with multi-concurrency): a crash fails each of them. */
const running = new Set();
let onBeforeExit = null;

/** `next` calls waiting now (one, or with multi-concurrency as many loops as have been started). */
let waiting = 0;

function next() {
  if (phase === "crashed") return;
  const conn = takeConnection();
  send(conn, nextRequest(conn));
}

/** The `next` call's text, its answer expected on `conn` (and the loop counted as waiting). */
function nextRequest(conn) {
  phase = running.size > 0 ? "invoke" : "idle";
  waiting++;
  conn.calls.push({ path: NEXT, done: nextEvent });
  return requestText("GET", NEXT);
}

function nextEvent(res, body) {
  waiting--;
  // Multi-concurrency: loops start as events need them, so one always waits while fewer than
  // AWS_LAMBDA_MAX_CONCURRENCY run (a large maximum costs nothing until events come).
  if (waiting === 0 && running.size + 1 < loops) next();
  invoke(res, body);
}

/**
 * An event's answer, and this loop's next `next` call right behind it on the same connection, in
 * the same write (HTTP/1.1 pipelining): the runtime need not wake for the 202 before it asks for
 * more, and the server reads both at once. Answers come in order, so `next`'s is the event after.
 */
function answer(path, body, errorType) {
  const conn = takeConnection();
  conn.calls.push({ path, done: checkAccepted });
  const text = requestText("POST", path, body, errorType);
  send(conn, phase === "crashed" ? text : text + nextRequest(conn));
}

function postResult(id, result) {
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch {
    postError(id, new Error("Unable to stringify response body"));
    return;
  }
  answer(`${BASE}/invocation/${encodeURIComponent(id)}/response`, body ?? "null");
}

function postError(id, err) {
  logError("Invoke Error", err);
  const rapid = toRapidError(err);
  answer(`${BASE}/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(rapid), rapid.errorType);
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (e) {
    throw new Error(`Cannot parse ${name} as json: ${e}`);
  }
}

function invoke(res, body) {
  if (res.statusCode !== 200) {
    process.stderr.write(`lambent runtime: ${NEXT} answered ${res.statusCode}: ${body}\n`);
    process.exit(1);
  }
  const h = res.headers;
  const id = h["lambda-runtime-aws-request-id"];
  const deadline = Number(h["lambda-runtime-deadline-ms"]);
  const traceId = h["lambda-runtime-trace-id"];
  if (traceId) env._X_AMZN_TRACE_ID = traceId;
  else if (env._X_AMZN_TRACE_ID !== undefined) delete env._X_AMZN_TRACE_ID;
  requestId = id;
  phase = "invoke";
  running.add(id);

  let finished = false;
  // With several loops the event loop never empties (the other loops wait in `next`): a callback's
  // result goes out when it is called.
  let waitsForEmptyEventLoop = loops === 1;
  const complete = (err, result) => {
    if (loops === 1) onBeforeExit = null;
    running.delete(id);
    if (phase === "crashed") return;
    if (err !== undefined && err !== null) postError(id, err);
    else postResult(id, result);
  };
  const done = (err, result) => {
    if (finished) return;
    finished = true;
    complete(err, result);
  };
  const callback = (err, result) => {
    if (finished) return;
    finished = true;
    if ((err !== undefined && err !== null) || !waitsForEmptyEventLoop || loops > 1) complete(err, result);
    // Lambda sends a callback's result only once the event loop is empty.
    else onBeforeExit = () => setImmediate(complete, null, result);
  };
  const succeed = (result) => done(null, result);
  const fail = (err) => done(err === undefined || err === null ? "handled" : err, null);

  // If the loop empties before the handler finished: an async handler's promise never settled
  // (Runtime.NodeJsExit); a sync handler that never called back succeeds with null.
  if (loops === 1)
    onBeforeExit = () => {
      if (finished) return;
      finished = true;
      complete(handlerIsAsync ? runtimeError("NodeJsExit", NODE_JS_EXIT_MESSAGE) : null, null);
    };

  let event;
  let context;
  try {
    event = JSON.parse(body);
    context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitsForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitsForEmptyEventLoop = value;
      },
      succeed,
      fail,
      done,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: parseJsonHeader(h["lambda-runtime-client-context"], "ClientContext"),
      identity: parseJsonHeader(h["lambda-runtime-cognito-identity"], "CognitoIdentity"),
      invokedFunctionArn: h["lambda-runtime-invoked-function-arn"],
      awsRequestId: id,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
  } catch (e) {
    done(e);
    return;
  }

  const run = () => {
    if (handler[HANDLER_STREAMING] === STREAM_RESPONSE) {
      invokeStreaming(id, event, context);
      return;
    }
    try {
      const result = handler(event, context, callback);
      if (result && typeof result.then === "function") result.then(succeed, fail);
    } catch (e) {
      callback(e);
    }
  };
  if (invokeContext) invokeContext.run(id, run);
  else run();
}

// An error that escapes the handler, or a rejection nobody handles, fails the invoke in flight (or the
// init) and ends the process, as Lambda's runtime does: the environment is then replaced.
function crash(err, exitCode) {
  if (phase === "invoke" || running.size > 0) {
    phase = "crashed";
    const rapid = toRapidError(err);
    let left = running.size;
    for (const id of running) {
      call(
        "POST",
        `${BASE}/invocation/${encodeURIComponent(id)}/error`,
        JSON.stringify(rapid),
        rapid.errorType,
        () => {
          if (--left === 0) process.exit(exitCode);
        },
      );
    }
    if (left === 0) process.exit(exitCode);
  } else if (phase === "init") {
    phase = "crashed";
    postInitError(err, () => process.exit(exitCode));
  } else {
    process.exit(exitCode);
  }
}

function postInitError(err, then) {
  const rapid = toRapidError(err);
  call("POST", `${BASE}/init/error`, JSON.stringify(rapid), rapid.errorType, then);
}

function installProcessHooks() {
  process.on("uncaughtException", (err) => {
    logError("Uncaught Exception", err);
    crash(err, 129);
  });
  process.on("unhandledRejection", (reason, promise) => {
    let message;
    try {
      message = String(reason);
    } catch {
      message = Object.prototype.toString.call(reason);
    }
    const err = runtimeError("UnhandledPromiseRejection", message);
    err.reason = reason;
    err.promise = promise;
    logError("Unhandled Promise Rejection", err);
    crash(err, 128);
  });
  process.on("beforeExit", () => {
    const hook = onBeforeExit;
    if (hook) {
      onBeforeExit = null;
      hook();
    }
  });
}

/**
 * `--tcp-relay=PORT:SOCKET`: this process serves 127.0.0.1:PORT of the sandbox's own network (the
 * Runtime API at 9001 for custom clients and code; the runtime itself uses the socket), each
 * connection carried to the Unix socket SOCKET, so the sandbox needs no relay process for it. Nothing of it
 * holds the event loop open (callbackWaitsForEmptyEventLoop, beforeExit). A port that cannot be
 * served is reported; the runtime itself talks to its Unix socket and goes on.
 */
function startRelays() {
  relaysListening ??= Promise.all(
    [...relays].map((spec) => {
      const colon = spec.indexOf(":");
      const relayPort = Number(spec.slice(0, colon));
      const target = spec.slice(colon + 1);
      // Half-closed connections carry on, as with socat: each direction ends on its own.
      const server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
        const upstream = connect({ path: target, allowHalfOpen: true });
        for (const [from, to] of [
          [client, upstream],
          [upstream, client],
        ]) {
          from.unref();
          from.on("error", () => to.destroy());
          from.pipe(to);
        }
      });
      server.unref();
      return new Promise((resolve) => {
        server.once("error", (err) => {
          process.stderr.write(`lambent runtime: cannot serve 127.0.0.1:${relayPort}: ${err.message}\n`);
          resolve();
        });
        server.listen(relayPort, "127.0.0.1", resolve);
      });
    }),
  );
  return relaysListening;
}

// ---------------------------------------------------------------- init

/**
 * For a stem cell: wait for the function this runtime will run (its environment and working
 * directory), asked over the same keep-alive connection the runtime then uses for its events.
 */
async function awaitAssignment() {
  configureTransport();
  await startRelays();
  return new Promise((resolve, reject) => {
    call("GET", "/lambent/stem-cell/assignment", undefined, undefined, (res, body) => {
      if (res.statusCode === 200) resolve(JSON.parse(body));
      else reject(new Error(`assignment answered ${res.statusCode}`));
    });
  });
}

/**
 * Start the runtime: Init (load the handler), then the invoke loop. Run at once when this file is
 * the program; a stem cell (stem.mjs) imports it ahead of time and calls this once it has its function.
 */
async function main() {
  configureTransport();
  await startRelays();
  jsonLogs = env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === "JSON";
  installProcessHooks();
  patchConsole();
  installEsmFallback();
  installAwslambdaGlobal();
  const taskRoot = env.LAMBDA_TASK_ROOT || process.cwd();
  try {
    handler = await loadHandler(taskRoot, env._HANDLER ?? "");
    handlerIsAsync = handler.constructor?.name === "AsyncFunction";
  } catch (err) {
    logError("Uncaught Exception", err);
    phase = "crashed";
    postInitError(err, () => process.exit(1));
  }
  if (!handler) return;
  loops = Math.max(1, Number.parseInt(env.AWS_LAMBDA_MAX_CONCURRENCY ?? "", 10) || 1);
  if (loops > 1) {
    if (agent) agent.maxSockets = loops;
    invokeContext = new (builtin("node:async_hooks").AsyncLocalStorage)();
  }
  next();
}

// What a stem cell (stem.mjs) calls.
module.exports = { awaitAssignment, main, nodePathView, startEsmHooks };

if (!globalThis.__lambentStemCell) main();
