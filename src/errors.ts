// Every error ym-orders throws on purpose is a YmOrdersError: a stable `code` that callers
// switch on, a message a person can act on, and structured fields for the details.
// Messages and fields never carry the API key (see src/market/redact.ts).

export class YmOrdersError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, ...this.details };
  }
}

export function isYmOrdersError(value: unknown): value is YmOrdersError {
  return value instanceof YmOrdersError;
}
