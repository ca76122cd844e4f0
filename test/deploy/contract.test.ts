// The deploy files agree with what the server does. The server's side is never restated here: ports,
// grace and host come from server/config.ts's own loadConfig() applied to the same flags and environment
// the image, the Deployment and compose give it; metric names come from the server's source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig, type ServerConfig } from '../../server/config.ts';
import { commandArgv, defaultTarget, envPairs, healthcheck, instructionsOf, readDockerfile, seconds, stage } from './dockerfile.ts';
import { readYamlDocuments, renderKustomization, type K8sObject } from './kustomize.ts';
import { KUBERNETES_DIR, REPO_ROOT } from './deploy-files.ts';

// ---- the image ----------------------------------------------------------------------------------------
const { stages } = readDockerfile(join(REPO_ROOT, 'Dockerfile'));
const finalStages = defaultTarget(stages);
const imageEnv: Record<string, string> = Object.assign({}, ...instructionsOf(finalStages, 'ENV').map((i) => envPairs(i.args)));
const imageCmd = commandArgv(instructionsOf(finalStages, 'CMD').at(-1)!.args);
const imageUser = instructionsOf(finalStages, 'USER').at(-1)?.args ?? 'root';

/** The server's validated config for a command line (`node bin/blockserve.js serve ...`) and environment. */
function serverConfig(argv: string[], env: Record<string, string>): ServerConfig {
  const serve = argv.indexOf('serve');
  assert.ok(argv[0] === 'node' && argv[1] === 'bin/blockserve.js' && serve === 2, `starts the server CLI: ${argv.join(' ')}`);
  const cfg = loadConfig(argv.slice(serve + 1), env);
  assert.notEqual(cfg, 'help');
  return cfg as ServerConfig;
}
const imageConfig = serverConfig(imageCmd, imageEnv);

test('Dockerfile: multi-stage, the runtime image is slim and built from the build stage', () => {
  const build = stage(stages, 'build');
  const server = stage(stages, 'server');
  assert.notEqual(build, server);
  assert.ok(finalStages.includes(server), 'the default target is the server stage');
  const copies = instructionsOf([server], 'COPY').map((i) => i.args);
  assert.ok(
    copies.some((c) => c.startsWith('--from=build ')),
    'the runtime copies its files from the build stage',
  );
  assert.ok(!copies.some((c) => /(^|\s)\.\s/.test(c)), 'the runtime stage does not copy the raw build context');
  const withModel = stage(stages, 'server-with-model');
  assert.equal(withModel.base, 'server');
  const modelEnv = Object.assign({}, ...instructionsOf([withModel], 'ENV').map((i) => envPairs(i.args))) as Record<string, string>;
  const modelCopy = instructionsOf([withModel], 'COPY').at(-1)!.args.split(' ');
  assert.equal(
    serverConfig(imageCmd, { ...imageEnv, ...modelEnv }).engine.model + '/',
    modelCopy.at(-1),
    'the baked model is where BLOCKSERVE_MODEL points',
  );
  assert.ok(
    existsSync(join(REPO_ROOT, envPairs(instructionsOf([withModel], 'ARG').find((a) => a.args.startsWith('MODEL_DIR='))!.args).MODEL_DIR!)),
    'the default MODEL_DIR exists',
  );
});

test('Dockerfile: non-root user, signals, port and health check match the server', () => {
  const [uid] = imageUser.split(':').map(Number);
  assert.ok(Number.isInteger(uid) && uid! > 0, `USER is a numeric non-root id (Kubernetes runAsNonRoot checks it): ${imageUser}`);
  assert.equal(instructionsOf(finalStages, 'STOPSIGNAL').at(-1)?.args, 'SIGTERM', 'the server drains on SIGTERM');
  assert.deepEqual(
    instructionsOf(finalStages, 'EXPOSE').map((i) => Number(i.args)),
    [imageConfig.port],
  );
  assert.equal(imageConfig.host, '0.0.0.0', 'listens on all interfaces, or nothing outside the container reaches it');
  const hc = healthcheck(instructionsOf(finalStages, 'HEALTHCHECK').at(-1)!.args);
  assert.deepEqual(hc.argv.slice(0, 1), ['node'], 'the slim image has no curl: the check runs with node');
  const script = readFileSync(join(REPO_ROOT, hc.argv[1]!), 'utf8');
  assert.match(script, /\/health\b/);
  assert.match(script, /BLOCKSERVE_PORT/, 'the check follows the port setting the server reads');
  assert.ok(hc.options.timeout! < hc.options.interval!);
  // `npm start` and the image start the same way.
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  assert.deepEqual(imageCmd, pkg.scripts.start.split(' '));
});

test('.dockerignore keeps local installs and build outputs out of the context but keeps what the build needs', () => {
  const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  for (const p of ['node_modules', 'build', '.git']) assert.ok(ignored.includes(p), p);
  for (const p of ['package.json', 'package-lock.json', 'bin', 'server', 'engine', 'kernels', 'deploy', 'cli']) {
    assert.ok(!ignored.includes(p), `${p} is needed in the image`);
  }
});

// ---- Kubernetes ---------------------------------------------------------------------------------------
// The fields of the manifests that the checks below read.
type Probe = { httpGet: { path: string; port: number | string }; periodSeconds: number; failureThreshold: number };
type Container = {
  command?: string[];
  args?: string[];
  env?: { name: string; value: string }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  startupProbe: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds?: number } } };
  securityContext: { readOnlyRootFilesystem?: boolean };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  resources: Record<string, { cpu?: string; memory?: string }>;
};
type DeploymentSpec = {
  template: {
    metadata: { labels: Record<string, string>; annotations: Record<string, string> };
    spec: {
      containers: Container[];
      terminationGracePeriodSeconds: number;
      securityContext: { runAsNonRoot?: boolean; runAsUser?: number };
      volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[];
    };
  };
};
type ServiceSpec = { selector: Record<string, string>; ports: { targetPort: string | number }[] };
type PdbSpec = { selector: { matchLabels: Record<string, string> }; maxUnavailable: number };
type HpaSpec = {
  scaleTargetRef: { apiVersion: string; kind: string; name: string };
  minReplicas: number;
  metrics: { type: string; resource?: { name: string }; pods?: { metric: { name: string } } }[];
};
type PodMonitorSpec = { podMetricsEndpoints: { port: string; path: string }[] };

const base = renderKustomization(join(KUBERNETES_DIR, 'base'));
const one = <Spec = unknown>(kind: string) => {
  const found = base.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, kind);
  return found[0]! as K8sObject & { spec: Spec };
};
const deployment = one<DeploymentSpec>('Deployment');
const podSpec = deployment.spec.template.spec;
const container = podSpec.containers[0];
const containerEnv: Record<string, string> = Object.fromEntries(
  (container.env ?? []).map((e: { name: string; value: string }) => [e.name, e.value]),
);
const podConfig = serverConfig(container.command ?? container.args ?? imageCmd, { ...imageEnv, ...containerEnv });
const httpPort = container.ports.find((p: { name: string }) => p.name === 'http')!;

function probePort(probe: { httpGet: { port: number | string } }): number {
  const p = probe.httpGet.port;
  return typeof p === 'number' ? p : container.ports.find((cp: { name: string }) => cp.name === p)!.containerPort;
}

test("Deployment: probes hit the server's liveness and readiness paths on its port", () => {
  assert.equal(httpPort.containerPort, podConfig.port);
  assert.equal(podConfig.host, '0.0.0.0');
  assert.equal(container.readinessProbe.httpGet.path, '/ready', 'readiness: loaded and not draining');
  assert.equal(container.livenessProbe.httpGet.path, '/health', 'liveness: the engine is alive (stays 200 while loading)');
  assert.equal(container.startupProbe.httpGet.path, '/ready', 'startup ends when the weights are loaded');
  for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
    assert.equal(probePort(probe), podConfig.port);
  }
  const startupWindowS = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold;
  assert.ok(startupWindowS >= 300, `startup probe allows ${startupWindowS} s for weight loading; want at least 5 minutes`);
  // A restart during a long generation is costly: liveness tolerates a couple of slow answers.
  assert.ok(container.livenessProbe.failureThreshold * container.livenessProbe.periodSeconds >= 20);
});

test("Deployment: termination grace covers preStop plus the server's drain grace", () => {
  const preStopS = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
  const tgps = podSpec.terminationGracePeriodSeconds;
  assert.ok(
    tgps > preStopS + podConfig.graceS + 5,
    `terminationGracePeriodSeconds ${tgps} must exceed preStop ${preStopS} s + grace ${podConfig.graceS} s + 5 s to exit`,
  );
  // Kubernetes sends SIGTERM (not configurable per pod); the image must not expect another signal.
  assert.equal(instructionsOf(finalStages, 'STOPSIGNAL').at(-1)?.args, 'SIGTERM');
});

test('Deployment: non-root, read-only root filesystem with a writable /tmp, model from a read-only volume', () => {
  const [uid] = imageUser.split(':').map(Number);
  assert.equal(podSpec.securityContext.runAsNonRoot, true);
  assert.equal(podSpec.securityContext.runAsUser, uid, 'the same uid as the image USER');
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  const mounts: { name: string; mountPath: string; readOnly?: boolean }[] = container.volumeMounts;
  assert.ok(
    mounts.some((m) => m.mountPath === '/tmp'),
    'a writable /tmp on a read-only root filesystem',
  );
  const model = podConfig.engine.model;
  assert.ok(model, 'the Deployment serves a real model (BLOCKSERVE_MODEL)');
  const modelMount = mounts.find((m) => model!.startsWith(m.mountPath + '/'));
  assert.ok(modelMount?.readOnly, `${model} lies on a read-only volume mount`);
  const volume = podSpec.volumes.find((v: { name: string }) => v.name === modelMount!.name);
  const claim = one('PersistentVolumeClaim');
  assert.equal(volume?.persistentVolumeClaim?.claimName, claim.metadata.name);
  for (const kind of ['requests', 'limits']) {
    assert.ok(container.resources[kind].cpu && container.resources[kind].memory, `resources.${kind} set`);
  }
});

test('Service, PodDisruptionBudget and HPA select and target the Deployment', () => {
  const podLabels = deployment.spec.template.metadata.labels;
  const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
  const service = one<ServiceSpec>('Service');
  assert.ok(selects(service.spec.selector));
  assert.ok(service.spec.ports.some((p: { targetPort: string | number }) => p.targetPort === 'http' || p.targetPort === podConfig.port));
  const pdb = one<PdbSpec>('PodDisruptionBudget');
  assert.ok(selects(pdb.spec.selector.matchLabels));
  const hpa = one<HpaSpec>('HorizontalPodAutoscaler');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
  assert.ok(hpa.spec.minReplicas >= 2 && pdb.spec.maxUnavailable < hpa.spec.minReplicas, 'a disruption leaves a replica serving');
  assert.ok(
    hpa.spec.metrics.some((m: { type: string; resource?: { name: string } }) => m.type === 'Resource' && m.resource?.name === 'cpu'),
    'CPU fallback',
  );
  const annotations = deployment.spec.template.metadata.annotations;
  assert.equal(Number(annotations['prometheus.io/port']), podConfig.port);
  assert.equal(annotations['prometheus.io/path'], '/metrics');
});

// ---- metrics: HPA -> adapter rules -> the server's metric names ---------------------------------------
type AdapterRule = {
  seriesQuery: string;
  name: { matches: string; as: string };
  metricsQuery: string;
  resources: { overrides: Record<string, { resource: string }> };
};
const adapterRules = (
  parse(readFileSync(join(KUBERNETES_DIR, 'prometheus-adapter/values.yaml'), 'utf8')) as { rules: { custom: AdapterRule[] } }
).rules.custom;
const seriesName = (rule: AdapterRule) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rule.seriesQuery)![0];

test('HPA custom metrics are served by prometheus-adapter rules that map pods and namespaces', () => {
  const hpa = one<HpaSpec>('HorizontalPodAutoscaler');
  const podMetrics = hpa.spec.metrics.filter((m: { type: string }) => m.type === 'Pods').map((m) => m.pods!.metric.name);
  assert.ok(podMetrics.length >= 1, 'the HPA scales on a per-pod custom metric');
  for (const name of podMetrics) {
    const rule = adapterRules.find((r) => r.name.as === name);
    assert.ok(rule, `an adapter rule exposes ${name}`);
    assert.match(seriesName(rule), new RegExp(rule.name.matches));
    assert.deepEqual(rule.resources.overrides, { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } });
    assert.match(rule.metricsQuery, /<<\.Series>>\{<<\.LabelMatchers>>\}/);
    assert.match(rule.metricsQuery, /by \(<<\.GroupBy>>\)/);
  }
  const podMonitor = readYamlDocuments(join(KUBERNETES_DIR, 'monitoring/podmonitor.yaml'))[0] as K8sObject & { spec: PodMonitorSpec };
  assert.deepEqual(
    podMonitor.spec.podMetricsEndpoints.map((e: { port: string; path: string }) => [e.port, e.path]),
    [[httpPort.name, '/metrics']],
  );
});

function serverSources(dir = join(REPO_ROOT, 'server')): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? serverSources(join(dir, e.name))
      : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')
        ? [readFileSync(join(dir, e.name), 'utf8')]
        : [],
  );
}
const serverSource = serverSources().join('\n');
const metricsWritten = /prom-client/.test(serverSource);

test('the adapter rules read metrics the server defines', {
  skip: !metricsWritten && 'waiting on the server: no prom-client metrics in server/ yet',
}, () => {
  for (const rule of adapterRules) {
    const name = seriesName(rule);
    assert.ok(
      serverSource.includes(`'${name}'`) || serverSource.includes(`"${name}"`) || serverSource.includes(`\`${name}\``),
      `server/ defines the metric ${name} (the live check is in recipe.test.ts)`,
    );
  }
});

test('the probe and scrape paths are routes the server defines, open to unauthenticated probes', () => {
  const paths = new Set<string>([
    container.readinessProbe.httpGet.path,
    container.livenessProbe.httpGet.path,
    container.startupProbe.httpGet.path,
    deployment.spec.template.metadata.annotations['prometheus.io/path'],
  ]);
  for (const path of paths) {
    // Whitespace-tolerant: the formatter may put the path on its own line.
    assert.match(serverSource, new RegExp(`app\\.get\\(\\s*'${path}'`), `server/ routes GET ${path}`);
  }
  // Kubelet probes and the Prometheus scrape carry no API key.
  assert.equal(podConfig.protectMetrics, false, 'BLOCKSERVE_PROTECT_METRICS would make the scrape fail');
  assert.equal(imageConfig.protectMetrics, false);
});

// ---- compose ------------------------------------------------------------------------------------------
test('compose: the server on its port with a stop grace above the drain grace, Prometheus scraping it', () => {
  const compose = parse(readFileSync(join(REPO_ROOT, 'compose.yaml'), 'utf8')) as {
    services: {
      blockserve: { command?: string[]; environment?: string[]; ports: string[]; stop_signal?: string; stop_grace_period: string };
      prometheus: { volumes: string[]; depends_on: Record<string, { condition: string }> };
    };
  };
  const server = compose.services.blockserve;
  const env: Record<string, string> = { ...imageEnv };
  for (const e of server.environment ?? []) if (e.includes('=')) env[e.slice(0, e.indexOf('='))] = e.slice(e.indexOf('=') + 1);
  const cfg = serverConfig(server.command ?? imageCmd, env);
  assert.ok(
    server.ports.some((p: string) => p.endsWith(`:${cfg.port}`)),
    `publishes container port ${cfg.port}`,
  );
  assert.equal(server.stop_signal ?? 'SIGTERM', 'SIGTERM');
  assert.ok(
    seconds(server.stop_grace_period) > cfg.graceS + 5,
    `stop_grace_period ${server.stop_grace_period} above grace ${cfg.graceS} s`,
  );
  const prometheus = compose.services.prometheus;
  const mount = prometheus.volumes.find((v: string) => v.includes(':/etc/prometheus/prometheus.yml'))!;
  const promConfig = parse(readFileSync(join(REPO_ROOT, mount.split(':')[0]), 'utf8')) as {
    scrape_configs: { metrics_path?: string; static_configs: { targets: string[] }[] }[];
  };
  const job = promConfig.scrape_configs[0]!;
  assert.equal(job.metrics_path ?? '/metrics', '/metrics');
  assert.deepEqual(job.static_configs[0]!.targets, [`blockserve:${cfg.port}`]);
  assert.equal(prometheus.depends_on.blockserve.condition, 'service_healthy', 'Prometheus starts after the image HEALTHCHECK passes');
});
