/**
 * Summarises a V8 CPU profile (.cpuprofile) by where its self time went: per package
 * (node_modules/<pkg>), per project directory, node internals, GC and idle; plus the top
 * functions. Used for the "where the time goes" section of BENCHMARKS.md:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/run.ts --only contention --runs 1
 *   npx tsx bench/profile-summary.ts /tmp/prof/*.cpuprofile
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Which bucket a script URL belongs to. */
export function bucketOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return '(garbage collector)';
    if (functionName === '(program)') return '(program: native, not JS)';
    return `(native: ${functionName || 'anonymous'})`;
  }
  if (url.startsWith('node:')) return 'node internals';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const project = /\/(lambdas\/[^/]+|lib\/[^/]+|bench|test)\//.exec(url);
  return project ? `project: ${project[1]}` : url;
}

export function summarize(profile: CpuProfile, top = 20): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...selfUs.values()].reduce((s, v) => s + v, 0) || 1;
  const buckets = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const bucket = bucketOf(frame.url, frame.functionName);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + us);
    const where = frame.url
      ? `${frame.url.replace(/^.*\/(node_modules|work\/main)\//, '')}:${frame.lineNumber + 1}`
      : '';
    const name = `${frame.functionName || '(anonymous)'} ${where}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  const busy = total - (buckets.get('(idle)') ?? 0);
  const pct = (us: number, of: number) => `${((us / of) * 100).toFixed(1)}%`;
  const lines = [
    `profile: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (not idle)`,
    '',
    '| where (self time) | s | % of busy |',
    '| --- | ---: | ---: |',
    ...[...buckets]
      .filter(([b]) => b !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([b, us]) => `| ${b} | ${(us / 1e6).toFixed(2)} | ${pct(us, busy)} |`),
    '',
    '| function (self time) | s | % of busy |',
    '| --- | ---: | ---: |',
    ...[...functions]
      .filter(([f]) => !f.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([f, us]) => `| \`${f}\` | ${(us / 1e6).toFixed(2)} | ${pct(us, busy)} |`),
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: tsx bench/profile-summary.ts <file.cpuprofile>...');
    process.exit(2);
  }
  for (const file of files) {
    console.log(`## ${file}\n`);
    console.log(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile));
    console.log();
  }
}
