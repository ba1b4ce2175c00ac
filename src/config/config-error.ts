/** Stops start-up with a message naming the option at fault. */
export class ConfigError extends Error {
  constructor(
    readonly option: string,
    detail: string,
  ) {
    super(`Configuration option ${option} ${detail}`);
    this.name = 'ConfigError';
  }
}
