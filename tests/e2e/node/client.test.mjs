// The unmodified npm `openwhisk` client against a running Stockade.
// Needs STOCKADE_APIHOST (http://127.0.0.1:PORT) and STOCKADE_AUTH (uuid:key).
import { test } from "node:test";
import assert from "node:assert/strict";
import openwhisk from "openwhisk";

const ow = openwhisk({ apihost: process.env.STOCKADE_APIHOST, api_key: process.env.STOCKADE_AUTH });
const suffix = Date.now().toString(36);
const pyName = `py-${suffix}`;
const jsName = `js-${suffix}`;

const PY = "def main(args):\n    print('python says hi')\n    return {'greeting': 'hello ' + args.get('name', 'world')}\n";
const JS = "function main(params) {\n  console.log('node says hi');\n  return Promise.resolve({ greeting: `hello ${params.name || 'world'}` });\n}\n";

async function waitForActivation(activationId) {
  for (let i = 0; i < 200; i++) {
    try {
      return await ow.activations.get({ activationId });
    } catch (err) {
      if (err.statusCode !== 404) throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`activation ${activationId} never appeared`);
}

test("python and node actions: create, get, list, invoke, activations, delete", async () => {
  const created = await ow.actions.create({ name: pyName, action: PY, kind: "python:3" });
  assert.equal(created.exec.kind, "python:3");
  await ow.actions.create({ name: jsName, action: JS }); // kind defaults to nodejs:default
  const js = await ow.actions.get({ name: jsName });
  assert.equal(js.exec.kind, "nodejs:20");

  const names = (await ow.actions.list()).map((a) => a.name);
  assert.ok(names.includes(pyName) && names.includes(jsName));

  for (const [name, who] of [[pyName, "py"], [jsName, "js"]]) {
    const result = await ow.actions.invoke({ name, params: { name: who }, blocking: true, result: true });
    assert.deepEqual(result, { greeting: `hello ${who}` });

    const full = await ow.actions.invoke({ name, blocking: true });
    assert.equal(full.response.status, "success");

    const started = await ow.actions.invoke({ name, params: { name: "later" } });
    assert.match(started.activationId, /^[0-9a-f]{32}$/);
    const record = await waitForActivation(started.activationId);
    assert.deepEqual(record.response.result, { greeting: "hello later" });
    const logs = await ow.activations.logs({ activationId: started.activationId });
    assert.ok(logs.logs.some((line) => line.includes("says hi")), JSON.stringify(logs));
    const res = await ow.activations.result({ activationId: started.activationId });
    assert.equal(res.success, true);
  }

  const listed = await ow.activations.list({ name: pyName, limit: 5 });
  assert.ok(listed.length >= 1);

  // The client sends kind nodejs:default unless told otherwise, as it does against OpenWhisk.
  await ow.actions.update({ name: pyName, action: PY.replace("hello", "hi"), kind: "python:3" });
  const updated = await ow.actions.invoke({ name: pyName, blocking: true, result: true });
  assert.equal(updated.greeting, "hi world");

  await ow.actions.delete({ name: pyName });
  await ow.actions.delete({ name: jsName });
  await assert.rejects(ow.actions.get({ name: pyName }), (err) => err.statusCode === 404);
});

test("packages: create, get, list, packaged action with inherited parameters", async () => {
  const pkg = `pkg-${suffix}`;
  await ow.packages.create({ name: pkg, package: { parameters: [{ key: "name", value: "from package" }] } });
  await ow.actions.create({ name: `${pkg}/hello`, action: PY, kind: "python:3" });
  const got = await ow.packages.get({ name: pkg });
  assert.deepEqual(got.actions.map((a) => a.name), ["hello"]);
  assert.ok((await ow.packages.list()).some((p) => p.name === pkg));
  const result = await ow.actions.invoke({ name: `${pkg}/hello`, blocking: true, result: true });
  assert.equal(result.greeting, "hello from package");
  await ow.actions.delete({ name: `${pkg}/hello` });
  await ow.packages.delete({ name: pkg });
});

test("triggers and rules: fire runs the rule's action; disable and enable", async () => {
  const trigger = `t-${suffix}`;
  const rule = `r-${suffix}`;
  const action = `echo-${suffix}`;
  await ow.actions.create({ name: action, action: "def main(args):\n    return {'got': args.get('v')}\n", kind: "python:3" });
  await ow.triggers.create({ name: trigger });
  const created = await ow.rules.create({ name: rule, action, trigger });
  assert.equal(created.status, "active");

  const fired = await ow.triggers.invoke({ name: trigger, params: { v: 42 } });
  const triggerRecord = await waitForActivation(fired.activationId);
  const entry = JSON.parse(triggerRecord.logs[0]);
  assert.equal(entry.success, true);
  const actionRecord = await waitForActivation(entry.activationId);
  assert.deepEqual(actionRecord.response.result, { got: 42 });

  await ow.rules.disable({ name: rule });
  assert.equal((await ow.rules.get({ name: rule })).status, "inactive");
  await ow.rules.enable({ name: rule });
  assert.equal((await ow.rules.get({ name: rule })).status, "active");

  await ow.rules.delete({ name: rule });
  await ow.triggers.delete({ name: trigger });
  await ow.actions.delete({ name: action });
});

test("errors come back as OpenWhisk errors", async () => {
  await assert.rejects(ow.actions.get({ name: "does-not-exist" }), (err) => {
    assert.equal(err.statusCode, 404);
    assert.match(err.message, /The requested resource does not exist/);
    return true;
  });
  await assert.rejects(
    ow.actions.create({ name: `bad-${suffix}`, action: "x", kind: "cobol:1" }),
    (err) => err.statusCode === 400,
  );
});
