// The commander program: one file per command registers itself; this file only assembles them and
// makes usage errors exit 2 like every other bad input.
import { tmpdir } from 'node:os';
import { Command, CommanderError } from 'commander';
import { TOOL_VERSION } from '../version.js';
import { convertCommand } from './convert.js';
import { inspectCommand } from './inspect.js';
import { quantizeCommand } from './quantize.js';
import { serveCommand } from './serve.js';
import { validateCommand } from './validate.js';
import { EXIT } from './report.js';

export function buildProgram(): Command {
  const program = new Command('convnext')
    .description('Turn ConvNeXt checkpoints into small, fast, verified ONNX models')
    .version(TOOL_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  convertCommand(program);
  quantizeCommand(program);
  validateCommand(program);
  inspectCommand(program);
  serveCommand(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // WebGPU's Vulkan loader complains on stderr when this is unset (as in containers and CI)
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      const ok = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help';
      process.exitCode = ok ? EXIT.ok : EXIT.badInput;
      return;
    }
    throw e;
  }
}
