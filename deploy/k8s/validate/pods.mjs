// Runs the containers of rendered deploy/k8s manifests on this machine, as their pods
// would: every pod of the scheduler Deployment, of the ps StatefulSet (one per
// ordinal) and of the worker Indexed Job (one per index), init containers first, then
// the main container's command + args with --dry_run appended. Each volume becomes a
// local folder (ConfigMap and Secret contents written out, emptyDirs fresh, claims
// given with --claim), and every mount path in a command line or a ConfigMap file is
// rewritten to its folder; env comes from the container (values, the downward API
// fields deploy/k8s uses, the Job controller's JOB_COMPLETION_INDEX); $(VAR) is
// expanded as the kubelet does. `towerps` is found on PATH (--bin_dir).
// Checks: the workloads' pod templates share volumes, securityContext, tolerations
// and init containers; every container exits 0; every dry run prints {"dry_run":"ok"} with its
// role, the rank of its pod, and the job's num_servers/num_workers equal to the
// StatefulSet's replicas and the Job's completions (= parallelism; backoffLimit = 5
// restarts per rank).
// Usage: node pods.mjs --bin_dir DIR --work DIR --claim NAME=DIR... RENDERED.yaml
// Prints one line per container ("ok: POD/CONTAINER: ..." or "FAIL: ..."); exit 0/1.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

const claims = new Map();
let binDir = "", work = "", rendered = "";
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; ++i) {
  const a = argv[i];
  if (a === "--bin_dir") binDir = argv[++i];
  else if (a === "--work") work = argv[++i];
  else if (a === "--claim") {
    const [name, dir] = argv[++i].split("=");
    claims.set(name, dir);
  } else rendered = a;
}
if (!binDir || !work || !rendered) {
  console.error("usage: node pods.mjs --bin_dir DIR --work DIR --claim NAME=DIR... RENDERED.yaml");
  process.exit(2);
}

const objects = parseAllDocuments(readFileSync(rendered, "utf8")).map((d) => d.toJS()).filter(Boolean);
const byKind = (kind) => objects.filter((o) => o.kind === kind);
const configMaps = new Map(byKind("ConfigMap").map((o) => [o.metadata.name, o]));
const secrets = new Map(byKind("Secret").map((o) => [o.metadata.name, o]));
let failed = false;
const fail = (what) => { console.log(`FAIL: ${what}`); failed = true; };

// The pods the controllers would make: {name, template, role, rank, annotations}.
const pods = [];
for (const d of byKind("Deployment")) {
  for (let i = 0; i < (d.spec.replicas ?? 1); ++i) {
    pods.push({ name: `${d.metadata.name}-local${i}`, template: d.spec.template, annotations: {} });
  }
}
const statefulSets = byKind("StatefulSet");
for (const s of statefulSets) {
  for (let i = 0; i < (s.spec.replicas ?? 1); ++i) {
    pods.push({ name: `${s.metadata.name}-${i}`, template: s.spec.template, rank: i, annotations: {} });
  }
}
const jobs = byKind("Job");
for (const j of jobs) {
  if (j.spec.completionMode !== "Indexed") fail(`Job ${j.metadata.name} is not Indexed`);
  for (let i = 0; i < (j.spec.completions ?? 1); ++i) {
    pods.push({
      name: `${j.metadata.name}-${i}-local`, template: j.spec.template, rank: i, index: i,
      annotations: { "batch.kubernetes.io/job-completion-index": String(i) },
    });
  }
}
const servers = statefulSets.reduce((n, s) => n + (s.spec.replicas ?? 1), 0);
const workers = jobs.reduce((n, j) => n + (j.spec.completions ?? 1), 0);
for (const j of jobs) {
  if (j.spec.parallelism !== j.spec.completions) fail(`Job ${j.metadata.name}: parallelism != completions`);
  if (j.spec.backoffLimit !== 5 * j.spec.completions) {
    fail(`Job ${j.metadata.name}: backoffLimit ${j.spec.backoffLimit}, not 5 restarts per rank`);
  }
}

// The pod settings every workload repeats (YAML anchors do not cross files, and
// kustomize v2 cannot patch several objects at once) must not drift apart.
const shared = ["volumes", "securityContext", "tolerations", "initContainers"];
for (const key of shared) {
  const seen = new Set(pods.map((p) => JSON.stringify(p.template.spec[key] ?? null)));
  if (seen.size > 1) fail(`the pod templates differ in spec.${key}`);
}

// Whole cores, rounded up, as a resourceFieldRef with divisor 1 gives them.
function cores(q) {
  const s = String(q);
  return String(Math.ceil(s.endsWith("m") ? Number(s.slice(0, -1)) / 1000 : Number(s)));
}

function fieldRef(pod, path) {
  if (path === "metadata.name") return pod.name;
  if (path === "metadata.namespace") return "default";
  if (path === "status.podIP") return "127.0.0.1";
  const m = /^metadata\.annotations\['(.+)'\]$/.exec(path);
  if (m && m[1] in pod.annotations) return pod.annotations[m[1]];
  throw new Error(`no local value for fieldRef ${path}`);
}

function containerEnv(pod, c) {
  const env = { PATH: `${binDir}:/usr/bin:/bin`, HOSTNAME: pod.name };
  if (pod.index !== undefined) env.JOB_COMPLETION_INDEX = String(pod.index);
  for (const e of c.env ?? []) {
    const from = e.valueFrom;
    if (!from) env[e.name] = expand(e.value ?? "", env);
    else if (from.fieldRef) env[e.name] = fieldRef(pod, from.fieldRef.fieldPath);
    else if (from.resourceFieldRef) {
      const [kind, resource] = from.resourceFieldRef.resource.split(".");
      const q = c.resources?.[kind]?.[resource];
      if (q === undefined || resource !== "cpu" || String(from.resourceFieldRef.divisor ?? "1") !== "1") {
        throw new Error(`no local value for resourceFieldRef ${from.resourceFieldRef.resource}`);
      }
      env[e.name] = cores(q);
    } else throw new Error(`env ${e.name}: unsupported valueFrom`);
  }
  return env;
}

// The kubelet's $(VAR) expansion: defined variables are replaced, $$ is a literal $,
// anything else is left as written.
function expand(s, env) {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name) =>
    all === "$$" ? "$" : name in env ? env[name] : all);
}

function runPod(pod) {
  const root = join(work, pod.name);
  const spec = pod.template.spec;
  const volumes = new Map();
  for (const v of spec.volumes ?? []) {
    const dir = join(root, "volumes", v.name);
    if (v.persistentVolumeClaim) {
      const claimed = claims.get(v.persistentVolumeClaim.claimName);
      if (!claimed) throw new Error(`no --claim for ${v.persistentVolumeClaim.claimName}`);
      volumes.set(v.name, { dir: claimed });
      continue;
    }
    mkdirSync(dir, { recursive: true });
    if (v.configMap) {
      const cm = configMaps.get(v.configMap.name);
      if (!cm) throw new Error(`ConfigMap ${v.configMap.name} is not rendered`);
      volumes.set(v.name, { dir, files: cm.data ?? {}, mode: v.configMap.defaultMode ?? 0o644 });
    } else if (v.secret) {
      const secret = secrets.get(v.secret.secretName);
      if (!secret) throw new Error(`Secret ${v.secret.secretName} is not rendered`);
      const files = Object.fromEntries(Object.entries(secret.data ?? {}).map(
        ([k, b64]) => [k, Buffer.from(b64, "base64")]));
      volumes.set(v.name, { dir, files, mode: v.secret.defaultMode ?? 0o644 });
    } else if (v.emptyDir) {
      volumes.set(v.name, { dir });
    } else throw new Error(`volume ${v.name}: unsupported kind`);
  }
  // Mount path -> local folder, over all the pod's containers; one rewrite pass.
  const mounts = new Map();
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    for (const m of c.volumeMounts ?? []) {
      const local = volumes.get(m.name);
      if (!local) throw new Error(`${c.name}: mount of unknown volume ${m.name}`);
      if (mounts.has(m.mountPath) && mounts.get(m.mountPath) !== local.dir) {
        throw new Error(`${m.mountPath} is mounted from two volumes`);
      }
      mounts.set(m.mountPath, local.dir);
    }
  }
  const paths = [...mounts.keys()].sort((a, b) => b.length - a.length);
  const escaped = paths.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})(?=/|$|[^A-Za-z0-9_.-])`, "g");
  const rewrite = (s) => paths.length ? s.replace(pattern, (p) => mounts.get(p)) : s;
  for (const { dir, files, mode } of volumes.values()) {
    for (const [name, content] of Object.entries(files ?? {})) {
      const file = join(dir, name);
      writeFileSync(file, typeof content === "string" ? rewrite(content) : content);
      chmodSync(file, mode);
    }
  }
  for (const c of spec.initContainers ?? []) runContainer(pod, c, rewrite, false);
  for (const c of spec.containers) runContainer(pod, c, rewrite, true);
}

function runContainer(pod, c, rewrite, dryRun) {
  const where = `${pod.name}/${c.name}`;
  const env = containerEnv(pod, c);
  const argv = [...(c.command ?? []), ...(c.args ?? [])].map((s) => rewrite(expand(String(s), env)));
  if (argv.length === 0) return fail(`${where}: no command (the image's entrypoint is not run here)`);
  if (dryRun) argv.push("--dry_run");
  const r = spawnSync(argv[0], argv.slice(1), { env, encoding: "utf8", timeout: 30000 });
  if (r.error || r.status !== 0) {
    const err = (r.stderr ?? "").trim().split("\n").slice(-2).join(" | ");
    return fail(`${where}: exit ${r.status ?? r.error?.message}: ${err}`);
  }
  if (!dryRun) return console.log(`ok: ${where} (init)`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  let report;
  try {
    report = JSON.parse(line);
  } catch {
    return fail(`${where}: not a JSON line: ${line}`);
  }
  const expect = { dry_run: "ok", role: c.name, num_servers: servers, num_workers: workers };
  if (c.name === "ps") expect.rank = pod.rank;
  if (c.name === "worker") expect.worker_rank = pod.rank;
  for (const [k, v] of Object.entries(expect)) {
    if (report[k] !== v) return fail(`${where}: "${k}" is ${JSON.stringify(report[k])}, want ${JSON.stringify(v)}: ${line}`);
  }
  console.log(`ok: ${where}: ${line}`);
}

for (const pod of pods) {
  try {
    runPod(pod);
  } catch (e) {
    fail(`${pod.name}: ${e.message}`);
  }
}
if (pods.length === 0) fail("no pods rendered");
process.exit(failed ? 1 : 0);
