// Do two renderings of a kustomization hold the same objects? (kubectl 1.20's
// kustomize v2 and a current kubectl's v5 differ only in the hash suffix of generated
// names, in how YAML is laid out and in empty label/annotation maps; anything else
// is a difference.)
// Usage: node same.mjs A.yaml B.yaml   Prints "same: N objects" (exit 0) or the first
// difference (exit 1).
import { isDeepStrictEqual } from "node:util";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

function load(file) {
  const text = readFileSync(file, "utf8").replace(/\b(towerps-(?:job|keys))-[a-z0-9]{10}\b/g, "$1");
  const objects = parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);
  for (const o of objects) {
    // base64 laid out in lines (v5) or not (v2); empty maps a v5 merge leaves
    if (o.kind === "Secret") for (const k in o.data ?? {}) o.data[k] = o.data[k].replace(/\s/g, "");
    for (const k of ["labels", "annotations"]) {
      if (o.metadata?.[k] && Object.keys(o.metadata[k]).length === 0) delete o.metadata[k];
    }
  }
  return new Map(objects.map((o) => [`${o.kind}/${o.metadata?.name}`, o]));
}
const [a, b] = process.argv.slice(2).map(load);
for (const key of new Set([...a.keys(), ...b.keys()])) {
  if (!isDeepStrictEqual(a.get(key), b.get(key))) {
    console.log(`differ: ${key}\n${JSON.stringify(a.get(key))}\n${JSON.stringify(b.get(key))}`);
    process.exit(1);
  }
}
console.log(`same: ${a.size} objects`);
