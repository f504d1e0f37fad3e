import { type LevelWithSilent, type Logger, pino } from 'pino';

export type { Logger };

const levels: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function isLogLevel(value: string): value is LevelWithSilent {
  return (levels as readonly string[]).includes(value);
}

/** The agent's structured logger: JSON lines on stdout, one child per component. */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
