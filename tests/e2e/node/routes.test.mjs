// The unmodified npm `openwhisk` client's routes API (API gateway) against a running Stockade.
// Needs STOCKADE_APIHOST (http://127.0.0.1:PORT) and STOCKADE_AUTH (uuid:key).
import { test } from "node:test";
import assert from "node:assert/strict";
import openwhisk from "openwhisk";

const ow = openwhisk({ apihost: process.env.STOCKADE_APIHOST, api_key: process.env.STOCKADE_AUTH });
const suffix = Date.now().toString(36);
const action = `route-${suffix}`;
const basepath = `/shop-${suffix}`;
const CODE = "def main(args):\n    return {'item': args.get('id'), 'color': args.get('color', 'none')}\n";

test("routes: create, get, list, call through the gateway, delete", async () => {
  await ow.actions.create({ name: action, action: CODE, kind: "python:3" });

  const created = await ow.routes.create({ basepath, relpath: "/items/{id}", operation: "GET", action, responsetype: "json" });
  assert.equal(created.gwApiActivated, true);
  assert.ok(created.gwApiUrl.endsWith(`/api/gw/${created.namespace}${basepath}`), created.gwApiUrl);
  const op = created.apidoc.paths["/items/{id}"].get;
  assert.equal(op["x-openwhisk"].action, action);
  assert.ok(!JSON.stringify(created).includes(process.env.STOCKADE_AUTH.split(":")[1]), "the client's key is echoed");

  await ow.routes.create({ basepath, relpath: "/items", operation: "POST", action });

  const one = await ow.routes.get({ basepath });
  assert.equal(one.apis.length, 1);
  assert.deepEqual(Object.keys(one.apis[0].value.apidoc.paths).sort(), ["/items", "/items/{id}"]);
  const all = await ow.routes.list();
  assert.ok(all.apis.some((api) => api.value.apidoc.basePath === basepath));

  const served = await fetch(`${created.gwApiUrl}/items/42?color=red`);
  assert.equal(served.status, 200);
  assert.deepEqual(await served.json(), { item: "42", color: "red" });
  assert.equal(served.headers.get("x-content-type-options"), "nosniff");

  const traversal = await fetch(`${created.gwApiUrl}/items/%2e%2e%2f..`);
  assert.equal(traversal.status, 400);

  await ow.routes.delete({ basepath, relpath: "/items", operation: "POST" });
  assert.deepEqual(Object.keys((await ow.routes.get({ basepath })).apis[0].value.apidoc.paths), ["/items/{id}"]);
  await ow.routes.delete({ basepath });
  assert.deepEqual((await ow.routes.get({ basepath })).apis, []);
  await assert.rejects(ow.routes.delete({ basepath }), /does not exist/);
  assert.equal((await fetch(`${created.gwApiUrl}/items/42`)).status, 404);

  await ow.actions.delete({ name: action });
});
