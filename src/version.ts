// Kept in step with package.json by a test; read at build time rather than from disk at run time.
export const TOOL_NAME = 'convnext-toolchain';
export const TOOL_VERSION = '0.1.0';
