import { fileURLToPath } from 'node:url';

const hooksUrl = new URL('./ts-hooks.mjs', import.meta.url).href;

/**
 * argv that runs a TypeScript file of this repository in a fresh `node` process, e.g. inside a
 * network namespace with `ip netns exec`.
 */
export function nodeTsArgv(tsFile: string, args: readonly string[] = []): string[] {
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hooksUrl)});`;
  const importHooks = `data:text/javascript,${encodeURIComponent(register)}`;
  return [process.execPath, '--import', importHooks, tsFile, ...args];
}

export function repoFile(relativeToThisDir: string): string {
  return fileURLToPath(new URL(relativeToThisDir, import.meta.url));
}
