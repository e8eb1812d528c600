// Stockade's JavaScript analyser: ESLint's Linter over code held in memory. The code is parsed,
// never run, and no configuration is read from disk: the rules come in each request, built by
// stockade.security.scanner.js_analysis from rules/javascript.json.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout.
//   request:  {"id": n, "config": {"eslint": [...], "calls": [...], "selectors": [...]},
//              "files": [{"path": "index.js", "code": "..."}]}
//   response: {"id": n, "results": [{"path": ..., "messages": [{"ruleId", "message", "line"}],
//              "fatal": null | "parse error text"}]} or {"id": n, "error": "..."}
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { Linter } from "eslint";
import security from "eslint-plugin-security";

const require = createRequire(import.meta.url);
const { getImportAccessPath } = require("eslint-plugin-security/utils/import-utils.js");
const { isStaticExpression } = require("eslint-plugin-security/utils/is-static-expression.js");

// Calls to dangerous functions of named modules, resolved through require/import bindings.
const dangerousCall = {
  meta: { type: "problem", schema: false },
  create(context) {
    const calls = context.options[0] || [];
    const sourceCode = context.sourceCode;
    function check(node) {
      if (!node.arguments.length) return;
      const scope = sourceCode.getScope(node);
      calls.forEach((call, index) => {
        const info = getImportAccessPath({ node: node.callee, scope, packageNames: call.modules });
        if (!info || info.path.length !== 1 || !call.functions.includes(info.path[0])) return;
        // With shell: true the arguments array is joined into the shell command too.
        const inputs = call.shell_option
          ? node.arguments.slice(0, 2).filter((arg) => arg.type !== "ObjectExpression")
          : [node.arguments[0]];
        if (inputs.every((arg) => isStaticExpression({ node: arg, scope }))) return;
        if (call.shell_option) {
          const shell = node.arguments.some(
            (arg) =>
              arg.type === "ObjectExpression" &&
              arg.properties.some(
                (p) =>
                  p.type === "Property" &&
                  ((p.key.type === "Identifier" && p.key.name === "shell") || p.key.value === "shell") &&
                  !(p.value.type === "Literal" && !p.value.value),
              ),
          );
          if (!shell) return;
        }
        context.report({ node, message: `call:${index}:${sourceCode.getText(node.callee).slice(0, 80)}` });
      });
    }
    return { CallExpression: check, NewExpression: check };
  },
};

const stockade = { rules: { "dangerous-call": dangerousCall } };
const cache = new Map();

function buildConfig(config, sourceType) {
  const rules = {};
  for (const entry of config.eslint) rules[entry.eslint_rule] = "error";
  rules["stockade/dangerous-call"] = ["error", config.calls];
  rules["no-restricted-syntax"] = [
    "error",
    ...config.selectors.map((entry, index) => ({ selector: entry.selector, message: `selector:${index}` })),
  ];
  return [
    {
      files: ["**/*"],
      languageOptions: { ecmaVersion: "latest", sourceType, parserOptions: { ecmaFeatures: { jsx: false } } },
      plugins: { security, stockade },
      linterOptions: { noInlineConfig: true, reportUnusedDisableDirectives: "off" },
      rules,
    },
  ];
}

function configFor(config, sourceType) {
  const key = JSON.stringify(config) + sourceType;
  if (!cache.has(key)) {
    if (cache.size > 8) cache.clear();
    cache.set(key, buildConfig(config, sourceType));
  }
  return cache.get(key);
}

const linter = new Linter({ configType: "flat" });

function lint(config, file) {
  const first = file.path.endsWith(".mjs") ? "module" : "commonjs";
  const order = file.path.endsWith(".cjs") || file.path.endsWith(".mjs") ? [first] : [first, "module"];
  let fatal = null;
  for (const sourceType of order) {
    // noInlineConfig: /* eslint-disable */ in scanned code cannot silence the gate.
    const messages = linter.verify(file.code, configFor(config, sourceType), { filename: "action.js" });
    const parseError = messages.find((m) => m.fatal);
    if (!parseError) {
      return {
        path: file.path,
        fatal: null,
        messages: messages.map((m) => ({ ruleId: m.ruleId, message: m.message, line: m.line })),
      };
    }
    fatal = `${parseError.message} (line ${parseError.line})`;
  }
  return { path: file.path, fatal, messages: [] };
}

const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of input) {
  if (!line.trim()) continue;
  let id = null;
  try {
    const request = JSON.parse(line);
    id = request.id;
    const results = request.files.map((file) => lint(request.config, file));
    process.stdout.write(JSON.stringify({ id, results }) + "\n");
  } catch (error) {
    process.stdout.write(JSON.stringify({ id, error: String(error && error.message ? error.message : error) }) + "\n");
  }
}
