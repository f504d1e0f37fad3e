/**
 * The lab's pod image: busybox-static in an otherwise empty rootfs, imported with `podman import`
 * into an image store that every node's podman reads (`additionalimagestores`), so it is
 * imported once per lab and no registry is involved.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/exec.js';
import { Podman, type PodmanPaths, writePodmanConfig } from './podman.js';

export const LAB_IMAGE = 'localhost/weft-lab-busybox:latest';
const BUSYBOX = '/bin/busybox';
const APPLETS = [
  'sh',
  'ls',
  'cat',
  'echo',
  'ip',
  'ping',
  'wget',
  'httpd',
  'sleep',
  'ps',
  'hostname',
  'timeout',
  'sha256sum',
  'head',
  'nc',
  'ifconfig',
  'route',
  'grep',
  'mkdir',
  'true',
  'false',
];

const PT_INTERP = 3;

/** Does this 64-bit ELF executable name a program interpreter (i.e. is it dynamically linked)? */
function hasInterpreter(elf: Buffer): boolean {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return true;
  return false;
}

/** A dynamically linked busybox cannot run in an empty rootfs. */
function requireStaticBusybox(): void {
  if (hasInterpreter(readFileSync(BUSYBOX))) {
    throw new Error(
      `${BUSYBOX} is dynamically linked: install busybox-static (apt-get install busybox-static)`,
    );
  }
}

/** Writes the rootfs tarball; returns its path (inside `workDir`). */
async function buildRootfsTar(workDir: string): Promise<string> {
  requireStaticBusybox();
  const rootfs = mkdtempSync(join(tmpdir(), 'weft-lab-rootfs-'));
  try {
    for (const dir of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'www']) mkdirSync(join(rootfs, dir));
    cpSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
    for (const applet of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', applet));
    writeFileSync(join(rootfs, 'www', 'index.html'), 'hello from weft lab\n');
    const tar = join(workDir, 'busybox-rootfs.tar');
    await run(['tar', '-C', rootfs, '-cf', tar, '.']);
    return tar;
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}

/** Builds the shared image store under `dir` and imports the image; returns the store's graphroot. */
export async function importLabImage(dir: string): Promise<string> {
  const paths: PodmanPaths = { dir, cniBinDir: join(dir, 'cni-bin'), cniConfDir: join(dir, 'cni-conf') };
  writePodmanConfig(paths);
  const tar = await buildRootfsTar(dir);
  const podman = new Podman(paths);
  await podman.run(['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin', tar, LAB_IMAGE]);
  rmSync(tar, { force: true });
  return join(dir, 'storage');
}
