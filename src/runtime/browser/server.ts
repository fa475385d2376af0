// The page's web server: 127.0.0.1 only, a port the system picks, GET only, and nothing but the
// folders it is given (the runtimes' files from node_modules, the model's folder). Cross-origin
// isolated (COOP/COEP), so that onnxruntime-web and TF.js may use threads where the browser allows.

import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.css': 'text/css',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
};

export interface StaticServer {
  readonly origin: string;
  /**
   * Serves `folder` under /`prefix`/: files below it only, after symlinks are resolved, and of those
   * only the ones `only` names (relative paths) when given — a model's folder may hold other files.
   */
  mount(prefix: string, folder: string, only?: readonly string[]): string;
  close(): Promise<void>;
}

/** `port`: 0 (the default) lets the system pick a free one. */
export async function startServer(page: string, port = 0): Promise<StaticServer> {
  const mounts = new Map<string, Mount>();
  const server: Server = createServer((req, res) => {
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cache-Control', 'no-store');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (url.pathname === '/') return void res.writeHead(200, { 'Content-Type': TYPES['.html'] }).end(page);
    const file = resolveMounted(mounts, decodeURIComponent(url.pathname));
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': TYPES[extname(file.path)] ?? 'application/octet-stream', 'Content-Length': file.size });
    createReadStream(file.path).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    origin,
    mount(prefix, folder, only) {
      mounts.set(prefix, { root: realpathSync(folder), only: only && new Set(only) });
      return `/${prefix}/`;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

interface Mount {
  readonly root: string;
  readonly only?: ReadonlySet<string>;
}

/** The regular file a URL path names inside a mounted folder (and its size), or undefined. */
function resolveMounted(mounts: ReadonlyMap<string, Mount>, path: string): { path: string; size: number } | undefined {
  const [, prefix, ...rest] = path.split('/');
  const mount = mounts.get(prefix);
  if (!mount || rest.some((p) => p === '..' || p === '' || p.includes('\0'))) return undefined;
  if (mount.only && !mount.only.has(rest.join('/'))) return undefined;
  const { root } = mount;
  try {
    const real = realpathSync(join(root, ...rest));
    if (!real.startsWith(root + sep)) return undefined;
    const st = statSync(real);
    return st.isFile() ? { path: real, size: st.size } : undefined;
  } catch {
    return undefined;
  }
}
