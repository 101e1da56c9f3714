// A refused request: an HTTP status and a stable code the client can branch on, with a message
// that names what was wrong. Every 4xx/5xx body is {"error": {"code", "message"}}.
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}
