// REST client: the bearer token from localStorage on every call, errors as ApiError.

const TOKEN_KEY = "allin.token";

export function getToken() {
  try { return window.localStorage.getItem(TOKEN_KEY); } catch { return null; }
}

export function setToken(token) {
  window.localStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  window.localStorage.removeItem(TOKEN_KEY);
}

/**
 * The login link is `/?token=…`: keep the token, then drop it from the address bar
 * (and so from history, bookmarks and screenshots) before anything else runs.
 */
export function captureTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return false;
  if (token.trim()) setToken(token.trim());
  url.searchParams.delete("token");
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  return Boolean(token.trim());
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The route itself is not on this server (as opposed to "that chat does not exist"). */
  get routeMissing() {
    return (this.status === 404 && /^not found$/i.test(this.message)) || this.status === 405;
  }
}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  let details;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error.details;
    } else if (body && body.detail) {
      message = typeof body.detail === "string" ? body.detail : message;
    }
  } catch { /* not JSON */ }
  return new ApiError(response.status, code, message, details);
}

/** Fire a request with the bearer; `json` is sent as a JSON body, `form` (FormData) as multipart. */
export async function request(path, { method = "GET", json, form, signal, raw = false } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;  // the browser sets the multipart boundary
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal, cache: "no-store" });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "The server could not be reached.");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (error.status === 401) window.dispatchEvent(new CustomEvent("allin:unauthorized"));
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const api = {
  get: (path, opts) => request(path, { ...opts, method: "GET" }),
  post: (path, json, opts) => request(path, { ...opts, method: "POST", json }),
  put: (path, json, opts) => request(path, { ...opts, method: "PUT", json }),
  patch: (path, json, opts) => request(path, { ...opts, method: "PATCH", json }),
  del: (path, opts) => request(path, { ...opts, method: "DELETE" }),
  upload: (path, form, opts) => request(path, { ...opts, method: "POST", form }),
  /** The response as a Blob plus its filename (from Content-Disposition when given). */
  async blob(path, opts) {
    const response = await request(path, { ...opts, raw: true });
    const disposition = response.headers.get("content-disposition") || "";
    const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    return { blob: await response.blob(), filename: match ? decodeURIComponent(match[1]) : null };
  },
};

/** Save a blob as a file (an <a download> click; the object URL is revoked afterwards). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
