// Checks every object of rendered Kubernetes manifests against the API's schemas,
// offline, in two passes (both generated from the Kubernetes OpenAPI spec):
//   1. kubernetes-models (ajv): types, integer formats, required fields.
//   2. kubernetes-types through the TypeScript compiler: each object becomes a typed
//      object literal, so an unknown field anywhere (TypeScript's excess property
//      check), a wrong type, a missing required field or a wrong apiVersion/kind
//      literal is an error. (kubernetes-models alone accepts unknown fields.)
// An object whose apiVersion/kind neither knows is an error too.
// Usage: node validate.mjs FILE.yaml...   (run from the folder holding node_modules)
// Prints "ok: N objects" and exits 0, or one line per problem
// ("FILE: Kind/name: what") and exits 1.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const problems = [];
const objects = [];  // {file, obj, label}

for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length > 0) {
      problems.push(`${file}: YAML: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;  // an empty document
    const label = `${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
      problems.push(`${file}: ${label}: no apiVersion or kind`);
      continue;
    }
    // kustomize v5 wraps a Secret's base64 data in lines; the API server's decoder
    // (Go's encoding/base64) ignores newlines, the "byte" format does not.
    if (obj.kind === "Secret" && obj.data && typeof obj.data === "object") {
      for (const k of Object.keys(obj.data)) {
        if (typeof obj.data[k] === "string") obj.data[k] = obj.data[k].replace(/[\r\n]/g, "");
      }
    }
    objects.push({ file, obj, label });
  }
}

// "apps/v1" -> ["apps", "v1"], "v1" -> ["", "v1"], "networking.k8s.io/v1" -> ["networking.k8s.io", "v1"]
function groupVersion(apiVersion) {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? ["", apiVersion] : [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)];
}
const safe = /^[A-Za-z0-9.]+$/;

// Pass 1: kubernetes-models.
for (const { file, obj, label } of objects) {
  const [group, version] = groupVersion(obj.apiVersion);
  if (!safe.test(group || "v") || !safe.test(version) || !safe.test(obj.kind)) {
    problems.push(`${file}: ${label}: bad apiVersion or kind`);
    continue;
  }
  const path = group ? `${group}/${version}/${obj.kind}` : `${version}/${obj.kind}`;
  let model;
  try {
    model = await import(`kubernetes-models/${path}`);
  } catch {
    problems.push(`${file}: ${label}: no schema for ${obj.apiVersion} ${obj.kind}`);
    continue;
  }
  const Model = model[obj.kind] ?? model.default;
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`${file}: ${label}: ${String(e.message).split("\n").join("; ")}`);
  }
}

// Pass 2: kubernetes-types, one typed constant per object; a diagnostic's line tells
// the object.
const lines = [];
const owner = [];  // line index -> object index
objects.forEach(({ obj }, i) => {
  const [group, version] = groupVersion(obj.apiVersion);
  const module = `kubernetes-types/${group ? group.split(".")[0] : "core"}/${version}`;
  const body = [`import type { ${obj.kind} as T${i} } from ${JSON.stringify(module)};`,
                `export const o${i}: T${i} = ${JSON.stringify(obj, null, 1)};`].join("\n");
  for (const line of body.split("\n")) {
    lines.push(line);
    owner.push(i);
  }
});
if (objects.length > 0) {
  const dir = mkdtempSync(join(here, ".check-"));
  try {
    const source = join(dir, "objects.ts");
    writeFileSync(source, lines.join("\n") + "\n");
    const program = ts.createProgram([source], {
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      types: [],
      target: ts.ScriptTarget.ES2020,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      typeRoots: [],
    });
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const text = ts.flattenDiagnosticMessageText(d.messageText, "; ");
      if (!d.file) {
        problems.push(`typescript: ${text}`);
        continue;
      }
      const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
      const { file, label } = objects[owner[line] ?? 0];
      const where = (lines[line] ?? "").trim().slice(0, 80);
      problems.push(`${file}: ${label}: ${text} (at: ${where})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (problems.length > 0) {
  for (const p of problems) console.log(p);
  process.exit(1);
}
console.log(`ok: ${objects.length} objects`);
