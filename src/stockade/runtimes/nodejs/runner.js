// Stockade Node.js runner: serves the runtime protocol on a control socket (Node stdlib only).
//
// Runs inside the sandbox: `node runner.js <fd>` (default fd 3). Answers length-prefixed JSON
// frames (init, run, check) one at a time until the host closes the socket.
// See docs/design/runtime-protocol.md.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const Module = require('module');
const net = require('net');
const path = require('path');
const vm = require('vm');

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n';
// What a one-way frame (assign) returns: nothing is sent back.
const NO_REPLY = Symbol('no reply');
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
// A dotted JavaScript identifier path: what `exec.main` may name.
const MAIN_RE = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;
const WRAPPER_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];

const state = {
  initialized: false,
  assigned: false,
  started: false,
  codeDir: '',
  entryFile: '',
  mainName: 'main',
  fn: null,
  // 'exports' when main came from module.exports, 'scope' when it is a top-level binding.
  source: 'exports',
  moduleObj: null,
  scopeGetter: null,
  digestCache: { key: null, digest: null },
};

// ---- integrity facts ----------------------------------------------------------------------

const fnIds = new WeakMap();
const fnHashes = new WeakMap();
let nextFnId = 1;

function entryId(fn) {
  if (typeof fn !== 'function') return `none:${typeof fn}`;
  if (!fnIds.has(fn)) fnIds.set(fn, nextFnId++);
  if (!fnHashes.has(fn)) {
    fnHashes.set(fn, crypto.createHash('sha256').update(Function.prototype.toString.call(fn)).digest('hex').slice(0, 16));
  }
  return `${fnIds.get(fn)}:${fnHashes.get(fn)}:${state.entryFile}`;
}

function walk(root, rel, out) {
  const dir = rel.length ? Buffer.concat([root, Buffer.from('/'), rel]) : root;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
    const name = Buffer.isBuffer(ent.name) ? ent.name : Buffer.from(ent.name);
    const childRel = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
    const full = Buffer.concat([root, Buffer.from('/'), childRel]);
    const st = fs.lstatSync(full, { bigint: true });
    let kind = 'o';
    if (st.isSymbolicLink()) kind = 'l';
    else if (st.isDirectory()) kind = 'd';
    else if (st.isFile()) kind = 'f';
    out.push({ rel: childRel, full, kind, key: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` });
    if (kind === 'd') walk(root, childRel, out);
  }
}

// SHA-256 over every entry under root in sorted relative-path order; same bytes as the Python
// runner and stockade.invoker.code.tree_digest. Contents are re-read only when a stat changed.
function treeDigest(rootDir) {
  const root = Buffer.from(rootDir);
  const entries = [];
  walk(root, Buffer.alloc(0), entries);
  entries.sort((a, b) => Buffer.compare(a.rel, b.rel));
  const key = entries.map((e) => `${e.kind}${e.rel.toString('hex')}:${e.key}`).join('\n');
  if (state.digestCache.key === key) return state.digestCache.digest;
  const hash = crypto.createHash('sha256');
  for (const e of entries) {
    hash.update(Buffer.concat([Buffer.from(e.kind), e.rel, Buffer.from([0])]));
    let data = null;
    if (e.kind === 'f') data = fs.readFileSync(e.full);
    else if (e.kind === 'l') data = fs.readlinkSync(e.full, { encoding: 'buffer' });
    if (data !== null) {
      const len = Buffer.alloc(8);
      len.writeBigUInt64BE(BigInt(data.length));
      hash.update(len);
      hash.update(data);
    }
  }
  const digest = hash.digest('hex');
  state.digestCache = { key, digest };
  return digest;
}

// ---- loading --------------------------------------------------------------------------------

function resolveEntry(codeDir) {
  let entry = path.join(codeDir, 'index.js');
  const pkgPath = path.join(codeDir, 'package.json');
  if (fs.existsSync(pkgPath)) {
    const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
    if (pkg && typeof pkg.main === 'string' && pkg.main) entry = path.resolve(codeDir, pkg.main);
  }
  const candidates = [entry, `${entry}.js`, path.join(entry, 'index.js')];
  for (const c of candidates) {
    if (fs.existsSync(c) && fs.statSync(c).isFile()) {
      if (c !== codeDir && !c.startsWith(codeDir + path.sep)) throw new Error('package.json main points outside the code');
      return c;
    }
  }
  throw new Error('the code has neither package.json with a valid main nor index.js at its root');
}

// Compile the entry as a CommonJS module body with a trailer returning a getter for `main`,
// so plain scripts that only declare `function main` work as well as `exports.main`.
function loadEntry(entry, mainName) {
  let source = fs.readFileSync(entry, 'utf8');
  if (source.startsWith('#!')) source = `//${source}`;
  const trailer = `\n;return function () { try { return (${mainName}); } catch (e) { return undefined; } };`;
  const moduleObj = new Module(entry, null);
  moduleObj.filename = entry;
  moduleObj.paths = Module._nodeModulePaths(path.dirname(entry));
  const req = Module.createRequire(entry);
  const wrapper = vm.compileFunction(source + trailer, WRAPPER_PARAMS, { filename: entry });
  const getter = wrapper.call(moduleObj.exports, moduleObj.exports, req, moduleObj, entry, path.dirname(entry));
  moduleObj.loaded = true;
  return { moduleObj, getter: typeof getter === 'function' ? getter : null };
}

function currentMain() {
  if (state.source === 'exports') {
    const exp = state.moduleObj.exports;
    return exp !== null && exp !== undefined ? exp[state.mainName] : undefined;
  }
  return state.scopeGetter ? state.scopeGetter() : undefined;
}

function init(msg) {
  if (state.initialized) return { ok: false, error: 'Internal error: runner already initialized' };
  const env = msg.env || {};
  for (const k of Object.keys(env)) process.env[k] = String(env[k]);
  const mainName = typeof msg.main === 'string' && msg.main ? msg.main : 'main';
  if (!MAIN_RE.test(mainName)) {
    return { ok: false, error: `Initialization has failed due to: '${mainName}' is not a valid function name` };
  }
  const codeDir = path.resolve(String(msg.code_dir || '.'));
  try {
    const entry = resolveEntry(codeDir);
    const { moduleObj, getter } = loadEntry(entry, mainName);
    state.codeDir = codeDir;
    state.entryFile = entry;
    state.mainName = mainName;
    state.moduleObj = moduleObj;
    state.scopeGetter = getter;
    const exp = moduleObj.exports;
    if (!mainName.includes('.') && exp !== null && exp !== undefined && typeof exp[mainName] === 'function') {
      state.source = 'exports';
    } else {
      state.source = 'scope';
    }
    const fn = currentMain();
    if (typeof fn !== 'function') {
      return { ok: false, error: `Initialization has failed due to: function '${mainName}' not found` };
    }
    state.fn = fn;
    entryId(fn);
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    return { ok: false, error: `Initialization has failed due to: ${e}` };
  }
  state.initialized = true;
  return { ok: true };
}

// ---- running --------------------------------------------------------------------------------

// A plain JSON copy of a rejection reason: Errors keep name, message, stack and own props.
function serializeError(value, seen = new WeakSet()) {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' ? `[Function: ${value.name || 'anonymous'}]` : value;
  }
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  const out = Array.isArray(value) ? [] : {};
  if (value instanceof Error) {
    out.name = value.name;
    out.message = value.message;
    out.stack = value.stack;
  }
  for (const k of Object.keys(value)) {
    const v = value[k];
    if (typeof v === 'function') continue;
    out[k] = serializeError(v, seen);
  }
  return out;
}

function describe(value) {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text;
  } catch (e) {
    return String(value);
  }
}

function invalid(value) {
  return { ok: false, error: `The action did not produce a valid JSON or JSON Array response: ${describe(value)}` };
}

async function run(msg) {
  if (!state.initialized) return { ok: false, error: 'Internal error: runner not initialized' };
  const env = msg.env || {};
  const keys = Object.keys(env);
  for (const k of keys) process.env[k] = String(env[k]);
  try {
    let result;
    try {
      result = state.fn(msg.value === undefined || msg.value === null ? {} : msg.value);
    } catch (e) {
      console.error(e && e.stack ? e.stack : String(e));
      return { ok: false, error: `An error has occurred: ${e}` };
    }
    try {
      result = await result;
      if (result === undefined) result = {};
    } catch (reason) {
      // A rejected Promise is an application error carrying the serialised reason.
      result = { error: reason ? serializeError(reason) : {} };
    }
    if (result === null || typeof result !== 'object') return invalid(result);
    let body;
    try {
      body = JSON.stringify(result);
    } catch (e) {
      return invalid(String(e));
    }
    // Integrity facts ride on the reply: one round trip per run instead of two.
    const facts = msg.check ? `"check":${JSON.stringify(check())},` : '';
    return { raw: `{${facts}"ok":true,"result":${body}}` };
  } finally {
    for (const k of keys) delete process.env[k];
  }
}

function check() {
  if (!state.initialized) return { ok: false, error: 'Internal error: runner not initialized' };
  try {
    return { ok: true, digest: treeDigest(state.codeDir), entry: entryId(currentMain()) };
  } catch (e) {
    return { ok: false, error: `Internal error: cannot read code: ${e}` };
  }
}

function writeSentinels() {
  // Resolves once both sentinels are handed to the kernel: every earlier write on each stream
  // is then in its pipe, ahead of the sentinel, before the reply frame is sent.
  return Promise.all(
    [process.stdout, process.stderr].map(
      (stream) =>
        new Promise((resolve) => {
          try {
            stream.write(SENTINEL, () => resolve());
          } catch (e) {
            resolve();
          }
        }),
    ),
  );
}

// A stem cell (started before its action was known) learns its action's environment here, once,
// before any other frame; its code was just mounted on /fn, so enter /fn again. No reply (the
// host does not wait for one); a runner that cannot take it ends the sandbox.
function assign(msg) {
  if (state.assigned || state.started) {
    process.stderr.write('stockade runner: assign must be the first and only assign frame\n');
    process.exit(70);
  }
  state.assigned = true;
  try {
    const env = msg.env || {};
    for (const k of Object.keys(env)) process.env[k] = String(env[k]);
    process.chdir(String(msg.code_dir || '/fn'));
  } catch (e) {
    process.stderr.write(`stockade runner: assign failed: ${e}\n`);
    process.exit(70);
  }
  return NO_REPLY;
}

// A stem cell, before assign: load and run the runtime's warm-up action once, then forget it, so
// init and run of the real action find their code already compiled. One-way (no reply).
async function warm(msg) {
  if (state.assigned || state.started) return NO_REPLY;
  const pristine = { ...state, digestCache: { key: null, digest: null } };
  try {
    // Only a warm-up that is there: a failed init would print to stderr, the action's first logs.
    const present = typeof msg.code_dir === 'string' && fs.existsSync(path.join(msg.code_dir, 'index.js'));
    if (present && init({ code_dir: msg.code_dir, main: 'main', env: {} }).ok) {
      await run({ value: { warm: true }, check: true });
    }
  } catch (e) {
    // A warm-up that fails only leaves the paths cold.
  } finally {
    Object.assign(state, pristine);
  }
  return NO_REPLY;
}

async function handle(msg) {
  if (msg.op === 'assign') return assign(msg);
  if (msg.op === 'warm') return warm(msg);
  state.started = true;
  if (msg.op === 'check') return check();
  if (msg.op === 'run') {
    const reply = await run(msg);
    await writeSentinels();
    return reply;
  }
  if (msg.op === 'init') {
    const reply = init(msg);
    await writeSentinels();
    return reply;
  }
  return { ok: false, error: `Internal error: unknown op ${JSON.stringify(msg.op)}` };
}

// ---- egress -----------------------------------------------------------------------------------
//
// Only actions with egress grants have the host proxy's socket (docs/design/egress.md). The runner
// serves it on 127.0.0.1:3128, sets HTTP(S)_PROXY, and, because Node 20 itself ignores those
// variables, routes the http/https global agents and the built-in fetch through CONNECT tunnels.

const EGRESS_SOCKET = '/run/stockade/egress.sock';
const PROXY_PORT = 3128;
const MAX_PROXY_HEAD = 16 * 1024;
// The forwarder's port (PROXY_PORT in a sandbox; tests on the host pass another).
let proxyPort = PROXY_PORT;

function startForwarder(socketPath, port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      const upstream = net.connect({ path: socketPath, allowHalfOpen: true });
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop);
      upstream.on('error', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    server.maxConnections = 64;
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.unref();
      resolve(server);
    });
  });
}

// A raw socket to host:port through the proxy (HTTP CONNECT); callback(err, socket).
function tunnel(host, port, callback) {
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  const sock = net.connect({ host: '127.0.0.1', port: proxyPort });
  let head = Buffer.alloc(0);
  let done = false;
  const onError = (e) => finish(e);
  const onClose = () => finish(new Error(`egress proxy closed the tunnel to ${authority}`));
  const finish = (err) => {
    if (done) return;
    done = true;
    // From here on the socket belongs to the caller, with its own listeners.
    sock.removeListener('data', onData);
    sock.removeListener('error', onError);
    sock.removeListener('close', onClose);
    if (err) {
      sock.destroy();
      callback(err);
    } else {
      callback(null, sock);
    }
  };
  function onData(chunk) {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_PROXY_HEAD) finish(new Error('egress proxy: answer too long'));
      return;
    }
    const status = head.subarray(0, end).toString('latin1').split('\r\n')[0];
    if (!/^HTTP\/1\.[01] 200 /.test(status)) {
      const err = new Error(`egress proxy refused ${authority}: ${status}`);
      err.code = 'EEGRESSDENIED';
      finish(err);
      return;
    }
    sock.pause();
    const rest = head.subarray(end + 4);
    if (rest.length) sock.unshift(rest);
    finish(null);
  }
  sock.on('data', onData);
  sock.on('error', onError);
  sock.on('close', onClose);
  sock.once('connect', () => sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
}

function isProxy(host, port) {
  return (host === '127.0.0.1' || host === 'localhost') && Number(port) === proxyPort;
}

function servername(host) {
  return net.isIP(host) ? undefined : host;
}

// http.Agent and https.Agent whose connections are CONNECT tunnels through the proxy. Built only
// for sandboxes with egress, so the others never load http, https and tls.
function tunnelAgents(http, https, tls) {
  class TunnelAgent extends http.Agent {
    createConnection(options, callback) {
      const host = options.host || options.hostname || 'localhost';
      if (isProxy(host, options.port)) return net.createConnection(options);
      tunnel(host, options.port || 80, (err, sock) => {
        if (err) return callback(err);
        callback(null, sock);
        // The tunnel is paused until the request has attached its readers (on a later tick).
        setImmediate(() => sock.resume());
        return undefined;
      });
      return undefined;
    }
  }

  class TunnelHttpsAgent extends https.Agent {
    createConnection(options, callback) {
      const host = options.host || options.hostname || 'localhost';
      tunnel(host, options.port || 443, (err, sock) => {
        if (err) return callback(err);
        callback(null, tls.connect({ ...options, socket: sock, servername: options.servername || servername(host) }));
      });
      return undefined;
    }
  }
  return { TunnelAgent, TunnelHttpsAgent };
}

// Node 20's fetch is undici's, which takes its dispatcher from this well-known global; a custom
// `connect` makes every fetch connection a tunnel. Returns false when that global is not found.
async function proxyFetch(originalFetch, tls) {
  const key = Symbol.for('undici.globalDispatcher.1');
  try {
    await originalFetch('data:,');
  } catch (e) {
    // Only needed to make undici create its global dispatcher.
  }
  const current = globalThis[key];
  if (!current || typeof current.constructor !== 'function') return false;
  const Dispatcher = current.constructor;
  globalThis[key] = new Dispatcher({
    connect(opts, callback) {
      const https_ = opts.protocol === 'https:';
      const port = Number(opts.port) || (https_ ? 443 : 80);
      let called = false;
      const once = (err, sock) => {
        if (called) return;
        called = true;
        callback(err, sock);
      };
      tunnel(opts.hostname, port, (err, sock) => {
        if (err) return once(err);
        if (!https_) return once(null, sock);
        const secure = tls.connect({
          socket: sock,
          servername: opts.servername || servername(opts.hostname),
          ALPNProtocols: ['http/1.1'],
        });
        secure.once('secureConnect', () => once(null, secure));
        secure.once('error', (e) => once(e));
        return undefined;
      });
    },
  });
  return true;
}

// fetch() itself, wrapped so the tunnelling dispatcher is set up on the first call: loading undici
// costs about 50 ms, which only actions that use fetch should pay.
function lazyProxyFetch(tls) {
  const originalFetch = globalThis.fetch;
  if (typeof originalFetch !== 'function') return;
  let ready = null;
  globalThis.fetch = async function fetch(...args) {
    if (ready === null) {
      ready = proxyFetch(originalFetch, tls).then((ok) => {
        if (!ok) process.stderr.write('stockade runner: fetch() cannot use the egress proxy here\n');
      });
    }
    await ready;
    return originalFetch(...args);
  };
}

async function enableEgress(socketPath = EGRESS_SOCKET, port = PROXY_PORT) {
  if (!fs.existsSync(socketPath)) return false;
  const http = require('http');
  const https = require('https');
  const tls = require('tls');
  await startForwarder(socketPath, port);
  proxyPort = port;
  const proxy = `http://127.0.0.1:${port}`;
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) process.env[name] = proxy;
  // Everything goes through the proxy, loopback included: the allowlist decides.
  process.env.NO_PROXY = '';
  process.env.no_proxy = '';
  const { TunnelAgent, TunnelHttpsAgent } = tunnelAgents(http, https, tls);
  http.globalAgent = new TunnelAgent({ keepAlive: true });
  https.globalAgent = new TunnelHttpsAgent({ keepAlive: true });
  lazyProxyFetch(tls);
  return true;
}

// ---- framing --------------------------------------------------------------------------------

function serve(fd) {
  const sock = new net.Socket({ fd, readable: true, writable: true });
  let buffer = Buffer.alloc(0);
  // Frames wait until egress is set up (or known to be absent), so the action never sees it half-done.
  let chain = enableEgress().catch((e) => {
    process.stderr.write(`stockade runner: egress forwarder unavailable: ${e}\n`);
  });

  function send(reply) {
    if (reply === NO_REPLY) return;
    let text;
    if (reply.raw !== undefined) {
      text = reply.raw;
    } else {
      try {
        text = JSON.stringify(reply);
      } catch (e) {
        text = JSON.stringify({ ok: false, error: `Internal error: cannot encode reply: ${e}` });
      }
    }
    const body = Buffer.from(text, 'utf8');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    sock.write(Buffer.concat([header, body]));
  }

  function fail(reason) {
    process.stderr.write(`stockade runner: protocol error: ${reason}\n`);
    process.exit(1);
  }

  sock.on('data', (chunk) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    while (buffer.length >= 4) {
      const n = buffer.readUInt32BE(0);
      if (n > MAX_FRAME_BYTES) return fail(`frame of ${n} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (buffer.length < 4 + n) break;
      let msg;
      try {
        msg = JSON.parse(buffer.subarray(4, 4 + n).toString('utf8'));
      } catch (e) {
        return fail(`invalid JSON: ${e}`);
      }
      buffer = buffer.subarray(4 + n);
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return fail('frame is not a JSON object');
      chain = chain.then(() => handle(msg)).then(send, (e) => send({ ok: false, error: `Internal error: ${e}` }));
    }
  });
  sock.on('end', () => process.exit(0));
  sock.on('error', () => process.exit(0));
}

if (require.main === module) {
  serve(process.argv.length > 2 ? Number.parseInt(process.argv[2], 10) : 3);
}

module.exports = { serve, treeDigest, enableEgress, tunnel, SENTINEL, MAX_FRAME_BYTES, EGRESS_SOCKET, PROXY_PORT };
