// Errors as the API answers them: `{ error, message }`, a stable code and a
// sentence naming what is wrong and where; never a stack trace.
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const errorBody = (error: string, message: string) => ({ error, message });
