/**
 * A pod sandbox ("pause") image without a registry: one layer holding the static busybox from
 * Debian's busybox-static, written as a docker-archive that `ctr images import` accepts.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../src/util/exec.js';

export const PAUSE_IMAGE = 'localhost/weft-test-pause:1';
const STATIC_BUSYBOX = '/bin/busybox';
const PT_INTERP = 3;

/** True when an x86-64/arm64 ELF file has no program interpreter (statically linked). */
function isStaticElf(file: string): boolean {
  const elf = readFileSync(file);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false;
  }
  return true;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** A reproducible tar of a directory's contents (sorted, owner root, mtime 0). */
async function tarDirectory(dir: string, out: string): Promise<void> {
  const flags = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0'];
  await run(['tar', ...flags, '-C', dir, '-cf', out, '.']);
}

/** Writes the pause image as a docker-archive under `workDir` and returns its path. */
export async function buildPauseImage(workDir: string): Promise<string> {
  if (!isStaticElf(STATIC_BUSYBOX)) {
    throw new Error(`${STATIC_BUSYBOX} is not statically linked: install Debian's busybox-static`);
  }
  const rootfs = join(workDir, 'pause-rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync(STATIC_BUSYBOX, join(rootfs, 'bin', 'busybox'));
  symlinkSync('busybox', join(rootfs, 'bin', 'sleep'));
  const archive = join(workDir, 'pause-archive');
  mkdirSync(archive);
  await tarDirectory(rootfs, join(archive, 'layer.tar'));
  const config = {
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    // The sandbox is only a holder of namespaces; containerd kills it with SIGKILL on stop.
    config: { Cmd: ['/bin/sleep', '2147483647'], Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(join(archive, 'layer.tar'))}`] },
  };
  const configText = JSON.stringify(config);
  const configName = `${createHash('sha256').update(configText).digest('hex')}.json`;
  writeFileSync(join(archive, configName), configText);
  const manifest = [{ Config: configName, RepoTags: [PAUSE_IMAGE], Layers: ['layer.tar'] }];
  writeFileSync(join(archive, 'manifest.json'), JSON.stringify(manifest));
  const tarball = join(workDir, 'pause.docker.tar');
  await tarDirectory(archive, tarball);
  return tarball;
}
