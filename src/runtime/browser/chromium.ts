// A headless Chromium the user already has, driven by playwright-core (which downloads nothing),
// with one page on our own 127.0.0.1 server. WebGPU and WebGL come from the machine's GPU or, on a
// machine without one, from SwiftShader. Console errors and warnings are kept for the report.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { InputError } from '../../errors.js';
import { probeEnvironment, type PageEnvironment } from './in-page.js';
import { startServer, type StaticServer } from './server.js';

type Page = import('playwright-core').Page;

/** Where Chromium and Chrome are found when no --browser is given, in this order. */
const KNOWN_BROWSERS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable', '/opt/google/chrome/chrome', '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'];

export function findBrowser(explicit?: string): string {
  const chosen = explicit ?? process.env.CHROME_PATH;
  if (chosen !== undefined) {
    if (!existsSync(chosen)) throw new InputError('no browser there: give the path of a Chromium or Chrome executable', chosen);
    return chosen;
  }
  const found = KNOWN_BROWSERS.find((p) => existsSync(p));
  if (!found) throw new InputError(`--runtime browser needs Chromium or Chrome: install it (Debian/Ubuntu: apt-get install chromium) or give --browser PATH (looked in ${KNOWN_BROWSERS.slice(0, 3).join(', ')}, …)`);
  return found;
}

// Without the networking flags Chromium keeps trying to reach Google's services, which a closed
// machine refuses many times a second; the WebGPU flags let headless Chromium offer an adapter
// (SwiftShader's where there is no GPU).
const FLAGS = [
  '--no-first-run', '--no-default-browser-check', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--disable-extensions', '--metrics-recording-only',
  '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader',
  '--use-angle=swiftshader', '--ignore-gpu-blocklist',
];

export interface ConsoleLine {
  readonly type: string;
  readonly text: string;
}

export interface BrowserSession {
  readonly page: Page;
  readonly server: StaticServer;
  readonly browser: string;
  readonly version: string;
  readonly environment: PageEnvironment;
  /** The page's console errors and warnings, and uncaught errors, in order. */
  readonly console: ConsoleLine[];
  /**
   * A folder of node_modules package `name`, served under its own prefix (once); `within`: the copy
   * package `within` depends on (@huggingface/transformers pins its own onnxruntime-web).
   */
  serve(name: string, subfolder: string, within?: string): string;
  close(): Promise<void>;
}

export async function openBrowser(options: { browser?: string }): Promise<BrowserSession> {
  const executablePath = findBrowser(options.browser);
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new InputError(`--runtime browser needs the npm package playwright-core installed (${(e as Error).message})`);
  }
  const server = await startServer('<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>convnext validate</title></head><body></body></html>');
  const profile = mkdtempSync(join(tmpdir(), 'convnext-chromium-'));
  const cleanup = async () => {
    await server.close();
    rmSync(profile, { recursive: true, force: true });
  };
  let context: import('playwright-core').BrowserContext;
  try {
    // a sandbox needs user namespaces, which containers and root lack; the page only loads our own files
    const sandbox = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: [...FLAGS, ...sandbox], timeout: 60_000 });
  } catch (e) {
    await cleanup();
    throw new InputError(`the browser did not start (${(e as Error).message.split('\n')[0]})`, executablePath);
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const lines: ConsoleLine[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') lines.push({ type: m.type(), text: cleanConsole(m.text()) });
  });
  page.on('pageerror', (e) => lines.push({ type: 'pageerror', text: e.message }));
  await page.goto(`${server.origin}/`);
  const environment = await page.evaluate(probeEnvironment);
  const served = new Map<string, string>();
  return {
    page,
    server,
    browser: executablePath,
    version: context.browser()?.version() ?? /Chrome\/([\d.]+)/.exec(environment.userAgent)?.[1] ?? '',
    environment,
    console: lines,
    serve(name, subfolder, within) {
      const key = `${within ?? ''}>${name}/${subfolder}`;
      if (!served.has(key)) {
        const root = packageRoot(name, within);
        served.set(key, server.mount(`pkg${served.size}`, join(root, subfolder)));
      }
      return served.get(key)!;
    },
    async close() {
      await context.close().catch(() => undefined);
      await cleanup();
    },
  };
}

/** What the browser offered and said, for the report. */
export interface BrowserReport {
  readonly browser: string;
  readonly version: string;
  readonly crossOriginIsolated: boolean;
  readonly hardwareConcurrency: number;
  readonly webgpu: PageEnvironment['webgpu'];
  readonly webgl?: string;
  readonly consoleErrors: number;
  readonly consoleWarnings: number;
  /** The first console lines (errors and warnings), for the user to read. */
  readonly console: readonly string[];
}

export function browserReport(s: BrowserSession): BrowserReport {
  const e = s.environment;
  return {
    browser: s.browser,
    version: s.version,
    crossOriginIsolated: e.crossOriginIsolated,
    hardwareConcurrency: e.hardwareConcurrency,
    webgpu: e.webgpu,
    webgl: e.webgl,
    consoleErrors: s.console.filter((l) => l.type !== 'warning').length,
    consoleWarnings: s.console.filter((l) => l.type === 'warning').length,
    console: s.console.slice(0, 20).map((l) => `${l.type}: ${l.text}`),
  };
}

// onnxruntime's wasm log lines carry ANSI colours and a timestamp
const cleanConsole = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '').replace(/^\d{4}-\d\d-\d\d [\d:.]+ /, '').slice(0, 500);

/** The installed folder of npm package `name` (some, like onnxruntime-web, export no package.json). */
function packageRoot(name: string, within?: string): string {
  const from = within === undefined ? undefined : createRequire(join(packageRoot(within), 'package.json'));
  let dir = dirname(from ? from.resolve(name) : fileURLToPath(import.meta.resolve(name)));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    const up = dirname(dir);
    if (up === dir) throw new InputError(`cannot find the folder of the npm package ${name}`);
    dir = up;
  }
}
