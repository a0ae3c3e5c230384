/**
 * Makes sure the second peer exists: Apache Kafka 3.9 as jars from Maven Central
 * (`org.apache.kafka:kafka_2.13` — the broker, KRaft included — and `kafka-tools` — the perf
 * tools — with their runtime dependencies, plus an slf4j binding so the broker logs), fetched
 * once with `mvn dependency:copy-dependencies` into ~/.cache/hadron-bench/kafka-<version>/libs
 * and run with `java -cp`. Maven comes from apt-get (`maven`) when missing and we are root, as
 * nats-server does; Java 17 must be installed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const KAFKA_VERSION = '3.9.2';

/** The cache directory (BENCH_CACHE_DIR overrides ~/.cache/hadron-bench). */
export function kafkaHome(): string {
  const base = process.env.BENCH_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'hadron-bench');
  return path.join(base, `kafka-${KAFKA_VERSION}`);
}

/** `java -cp` value: every jar of the cache (undefined until installed). */
export function kafkaClasspath(): string | undefined {
  const libs = path.join(kafkaHome(), 'libs');
  return fs.existsSync(path.join(kafkaHome(), '.complete')) ? `${libs}/*` : undefined;
}

export function javaVersion(): string | undefined {
  const r = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return /version "([^"]+)"/.exec(r.stderr)?.[1];
}

const POM = `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>hadron.bench</groupId>
  <artifactId>kafka-peer</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
`;

/** Installs what is missing; returns a description of the peer or why it cannot run. */
export function ensureKafka(install: boolean, log: (s: string) => void): string | { missing: string } {
  const java = javaVersion();
  if (!java) return { missing: 'java not installed (Kafka needs Java 17: apt-get install -y openjdk-17-jre-headless)' };
  const describe = `Kafka ${KAFKA_VERSION} (KRaft, Java ${java})`;
  if (kafkaClasspath()) return describe;
  if (!install) return { missing: `Kafka ${KAFKA_VERSION} jars not in ${kafkaHome()} (drop --no-install to fetch them from Maven Central)` };
  if (spawnSync('mvn', ['-v'], { stdio: 'ignore' }).status !== 0) {
    if (process.getuid?.() !== 0) return { missing: 'mvn not installed and not root: install it with apt-get install -y maven' };
    log('mvn missing: apt-get install -y maven');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['update', '-qq'], ['install', '-y', '-qq', 'maven']]) {
      const r = spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
      if (r.status !== 0) return { missing: `apt-get ${args.join(' ')} failed (exit ${r.status})` };
    }
  }
  const home = kafkaHome();
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, 'pom.xml'), POM);
  log(`fetching Kafka ${KAFKA_VERSION} and its dependencies from Maven Central into ${home}`);
  const r = spawnSync(
    'mvn',
    ['-B', '-q', '-Dstyle.color=never', `-Dmaven.repo.local=${path.join(path.dirname(home), 'm2')}`, 'dependency:copy-dependencies', '-DoutputDirectory=libs', '-DincludeScope=runtime'],
    { cwd: home, stdio: ['ignore', 'ignore', 'inherit'], timeout: 15 * 60_000 },
  );
  if (r.status !== 0) return { missing: `mvn dependency:copy-dependencies failed (exit ${r.status ?? r.signal})` };
  fs.writeFileSync(path.join(home, '.complete'), `${new Date().toISOString()}\n`);
  return describe;
}
