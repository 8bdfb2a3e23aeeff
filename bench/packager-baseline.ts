/**
 * `bench:packager --against <git ref>`: builds onair as it was at that commit, beside this
 * checkout (bench/.cache/against-<sha>, from `git archive`, sharing this node_modules), so
 * the same run measures both packagers on the same audio. Built once per commit, then reused.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { runProcess } from './packager-runs.js';

export interface Baseline {
  /** The commit, abbreviated, for the report. */
  commit: string;
  workerPath: string;
}

export async function prepareBaseline(repositoryRoot: string, cacheDirectory: string, ref: string, progress: (line: string) => void): Promise<Baseline> {
  const { stdout } = await runProcess('git', ['rev-parse', '--verify', `${ref}^{commit}`], repositoryRoot);
  const commit = stdout.trim();
  const directory = join(cacheDirectory, `against-${commit}`);
  const workerPath = join(directory, 'dist/bench/packager-worker.js');
  if (existsSync(workerPath)) return { commit: commit.slice(0, 10), workerPath };
  progress(`bench:packager: building ${ref} (${commit.slice(0, 10)}) in ${directory}`);
  await rm(directory, { recursive: true, force: true });
  await mkdir(directory, { recursive: true });
  await runProcess('sh', ['-c', `git archive ${commit} | tar -x -C '${directory}'`], repositoryRoot);
  await symlink(join(repositoryRoot, 'node_modules'), join(directory, 'node_modules'));
  await runProcess(process.execPath, [join(repositoryRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], directory);
  return { commit: commit.slice(0, 10), workerPath };
}
