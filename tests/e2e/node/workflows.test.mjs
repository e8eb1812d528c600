// Ordinary workflows with the unmodified npm `openwhisk` client (issue 14): the system catalog,
// another namespace's published package, copies, updates of objects that have parameters.
// Needs STOCKADE_APIHOST, STOCKADE_AUTH (guest) and STOCKADE_OTHER_AUTH / STOCKADE_OTHER_NS.
import { test } from "node:test";
import assert from "node:assert/strict";
import openwhisk from "openwhisk";

const apihost = process.env.STOCKADE_APIHOST;
const ow = openwhisk({ apihost, api_key: process.env.STOCKADE_AUTH });
const other = openwhisk({ apihost, api_key: process.env.STOCKADE_OTHER_AUTH });
const otherNs = process.env.STOCKADE_OTHER_NS;
const suffix = Date.now().toString(36);
const ECHO = "def main(args):\n    return args\n";

async function waitForActivation(activationId) {
  for (let i = 0; i < 400; i++) {
    try {
      return await ow.activations.get({ activationId });
    } catch (err) {
      if (err.statusCode !== 404) throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`activation ${activationId} never appeared`);
}

test("a catalog action invoked by its fully qualified name", async () => {
  const out = await ow.actions.invoke({ name: "/whisk.system/utils/echo", params: { hi: "there" }, blocking: true, result: true });
  assert.deepEqual(out, { hi: "there" });
  const ns = await ow.actions.invoke({ name: "/whisk.system/utils/namespace", blocking: true, result: true });
  assert.deepEqual(ns, { namespace: "guest" });
  const pkgs = await ow.packages.list({ namespace: "whisk.system" });
  assert.deepEqual(pkgs.map((p) => p.name).sort(), ["samples", "utils"]);
  const greeting = await ow.actions.invoke({ name: "/whisk.system/samples/greeting", params: { name: "Cat", place: "Narrowsburg" }, blocking: true, result: true });
  assert.deepEqual(greeting, { payload: "Hello, Cat from Narrowsburg!" });
});

test("a sequence over /whisk.system/utils/sort", async () => {
  const name = `sorted-${suffix}`;
  await ow.actions.create({
    name,
    action: { exec: { kind: "sequence", components: ["/whisk.system/utils/split", "/whisk.system/utils/sort"] } },
  });
  const out = await ow.actions.invoke({ name, params: { payload: "pear,apple,fig", separator: "," }, blocking: true, result: true });
  assert.deepEqual(out, { lines: ["apple", "fig", "pear"], length: 3 });
  const seq = await ow.actions.get({ name });
  assert.deepEqual(seq.exec.components, ["/whisk.system/utils/split", "/whisk.system/utils/sort"]);
  await ow.actions.delete({ name });
});

test("a rule firing utils/echo", async () => {
  const trigger = `tick-${suffix}`;
  const rule = `echo-tick-${suffix}`;
  await ow.triggers.create({ name: trigger });
  await ow.rules.create({ name: rule, trigger, action: "/whisk.system/utils/echo" });
  const fired = await ow.triggers.invoke({ name: trigger, params: { marker: suffix } });
  const record = await waitForActivation(fired.activationId);
  const entry = JSON.parse(record.logs[0]);
  assert.equal(entry.success, true, JSON.stringify(entry));
  const echoed = await waitForActivation(entry.activationId);
  assert.equal(echoed.name, "echo");
  assert.equal(echoed.response.result.marker, suffix);
  await ow.rules.delete({ name: rule });
  await ow.triggers.delete({ name: trigger });
});

test("binding another namespace's published package", async () => {
  const shared = `shared-${suffix}`;
  await other.packages.create({ name: shared, package: { publish: true, parameters: [{ key: "owner", value: otherNs }] } });
  await other.actions.create({ name: `${shared}/echo`, action: ECHO, kind: "python:3" });
  const privatePkg = `private-${suffix}`;
  await other.packages.create({ name: privatePkg });

  const listed = await ow.packages.list({ namespace: otherNs });
  assert.ok(listed.some((p) => p.name === shared));
  assert.ok(!listed.some((p) => p.name === privatePkg));
  const read = await ow.packages.get({ name: shared, namespace: otherNs });
  assert.ok(read.parameters[0].value.startsWith("hmac-sha256:"), "values are never shown to another namespace");

  const binding = `mine-${suffix}`;
  await ow.packages.create({ name: binding, package: { binding: { namespace: otherNs, name: shared }, parameters: [{ key: "via", value: "binding" }] } });
  const out = await ow.actions.invoke({ name: `${binding}/echo`, params: { x: 1 }, blocking: true, result: true });
  assert.deepEqual(out, { owner: otherNs, via: "binding", x: 1 });
  await assert.rejects(
    ow.packages.create({ name: `nope-${suffix}`, package: { binding: { namespace: otherNs, name: privatePkg } } }),
    (err) => err.statusCode === 403,
  );
  await assert.rejects(
    ow.actions.update({ name: `/${otherNs}/${shared}/echo`, action: "def main(a):\n    return {}\n", kind: "python:3" }),
    (err) => err.statusCode === 403,
  );
  await assert.rejects(
    ow.actions.update({ name: "/whisk.system/utils/echo", action: "def main(a):\n    return {}\n", kind: "python:3" }),
    (err) => err.statusCode === 403,
  );
  await ow.packages.delete({ name: binding });
});

test("a copy made from what get returns keeps parameter values", async () => {
  const original = `orig-${suffix}`;
  const copy = `copy-${suffix}`;
  await ow.actions.create({ name: original, action: ECHO, kind: "python:3", params: { apikey: "abc123" } });
  const got = await ow.actions.get({ name: original });
  assert.equal(got.parameters[0].encryption, "AES-256-GCM");
  assert.notEqual(got.parameters[0].value, "abc123");
  await ow.actions.create({ name: copy, action: { exec: got.exec, parameters: got.parameters, limits: got.limits, annotations: got.annotations } });
  assert.deepEqual(await ow.actions.invoke({ name: copy, blocking: true, result: true }), { apikey: "abc123" });
  // Updating with what get returned (a read-modify-write client) keeps the value too.
  await ow.actions.update({ name: original, action: { ...got, limits: { ...got.limits, timeout: 5000 } } });
  assert.deepEqual(await ow.actions.invoke({ name: original, blocking: true, result: true }), { apikey: "abc123" });
  await assert.rejects(
    ow.actions.create({ name: `forged-${suffix}`, action: { exec: got.exec, parameters: [{ key: "apikey", value: "hmac-sha256:" + "0".repeat(32), encryption: "AES-256-GCM" }] } }),
    (err) => err.statusCode === 400 && /apikey/.test(err.message),
  );
  await ow.actions.delete({ name: copy });
  await ow.actions.delete({ name: original });
});

test("updates of objects with parameters, and the options a client leaves unset", async () => {
  const pkg = `upd-${suffix}`;
  await ow.packages.create({ name: pkg, package: { parameters: [{ key: "p", value: 1 }] } });
  await ow.packages.update({ name: pkg, package: { publish: true } });
  await ow.actions.create({ name: `${pkg}/a`, action: ECHO, kind: "python:3", params: { k: "v" } });
  await ow.actions.update({ name: `${pkg}/a`, annotations: { "web-export": true } });
  await ow.actions.update({ name: `${pkg}/a`, limits: { timeout: 4000 } });
  const trigger = `updt-${suffix}`;
  await ow.triggers.create({ name: trigger, trigger: { parameters: [{ key: "t", value: 1 }] } });
  await ow.triggers.update({ name: trigger, trigger: { annotations: [{ key: "a", value: 1 }] } });
  assert.deepEqual(await ow.actions.invoke({ name: `${pkg}/a`, blocking: true, result: true }), { p: 1, k: "v" });
  // The client's own encoding of a packaged action's namespace: /namespaces/guest%2Fpkg/actions/a.
  assert.deepEqual(await ow.actions.invoke({ name: "a", namespace: `guest/${pkg}`, blocking: true, result: true }), { p: 1, k: "v" });
  assert.ok((await ow.actions.list({ skip: undefined, limit: undefined })).length > 0);
  assert.ok(Array.isArray((await ow.routes.list({ basepath: undefined, relpath: undefined })).apis));
  await ow.triggers.delete({ name: trigger });
  await ow.actions.delete({ name: `${pkg}/a` });
  await ow.packages.delete({ name: pkg });
});
