import { readFileSync } from 'node:fs';

/**
 * Mount points at or below `dir` in this mount namespace, deepest first (so that each can be
 * unmounted before what holds it). podman and containerd leave such mounts (shm, rootfs, netns)
 * when they die mid-way.
 */
export function mountsBelow(dir: string): string[] {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    // mountinfo escapes spaces and the like as octal; our directories have none.
    .map((p) => p.replace(/\\040/g, ' '));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
