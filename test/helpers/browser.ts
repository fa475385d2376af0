// Whether the browser tests can run here: they need the system's Chromium or Chrome.
import { findBrowser } from '../../src/runtime/browser/chromium.js';

/** false when a browser is found; else the skip message the test runner prints, naming `what` did not run. */
export function browserSkip(what: string): false | string {
  try {
    findBrowser();
    return false;
  } catch {
    return `no Chromium or Chrome on this machine (apt-get install chromium): ${what} did not run`;
  }
}
