import type { ServerResponse } from 'node:http';
import type { z } from 'zod';

/** RFC 9457 problem details as RunPod v2 sends them: `{title,status,detail,errors?}`. */
export class ProblemError extends Error {
  readonly status: number;
  readonly errors: string[] | undefined;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    detail: string,
    options: { errors?: string[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.status = status;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function sendProblem(
  res: ServerResponse,
  problem: ProblemError,
  headers: Record<string, string> = {},
): void {
  const body: Record<string, unknown> = {
    title: TITLES[problem.status] ?? 'Error',
    status: problem.status,
    detail: problem.message,
  };
  if (problem.errors !== undefined) body.errors = problem.errors;
  const text = JSON.stringify(body);
  res.writeHead(problem.status, {
    ...headers,
    ...problem.headers,
    'content-type': 'application/problem+json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

/** A 422 for a body the schema rejects, listing each violation as RunPod does (`$.path: why`). */
export function validationProblem(error: z.ZodError): ProblemError {
  const errors = error.issues.map((i) => {
    const path = ['$', ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join('');
    return i.code === 'unrecognized_keys'
      ? `${path}: additional properties ${i.keys.map((k) => `'${k}'`).join(', ')} not allowed`
      : `${path}: ${i.message}`;
  });
  return new ProblemError(422, 'Request validation failed.', { errors });
}
