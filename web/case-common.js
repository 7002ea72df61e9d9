// Shared by the case pages: DOM building without innerHTML (names and texts come from users),
// a JSON API client, and labels.
import { t } from '/i18n.js';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export class ApiError extends Error {
  constructor(status, body) { super((body && body.message) || `HTTP ${status}`); this.status = status; this.body = body || {}; }
}

export async function api(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/// A canvas to sign on with a finger or a mouse; `.png()` gives the data URL, `.empty` says
/// whether anything was drawn.
export function signaturePad() {
  const canvas = h('canvas', { width: 600, height: 200, class: 'signature', 'data-testid': 'signature-pad' });
  const ctx = canvas.getContext('2d');
  ctx.lineWidth = 3; ctx.lineCap = 'round'; ctx.strokeStyle = '#111';
  let drawing = false; let strokes = 0;
  const at = ev => { const r = canvas.getBoundingClientRect(); return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener('pointerdown', ev => { drawing = true; strokes++; canvas.setPointerCapture(ev.pointerId); ctx.beginPath(); ctx.moveTo(...at(ev)); });
  canvas.addEventListener('pointermove', ev => { if (drawing) { ctx.lineTo(...at(ev)); ctx.stroke(); } });
  canvas.addEventListener('pointerup', () => { drawing = false; });
  return {
    element: canvas,
    get empty() { return strokes === 0; },
    clear() { ctx.clearRect(0, 0, canvas.width, canvas.height); strokes = 0; },
    png() { return canvas.toDataURL('image/png'); },
  };
}

/// Fetches a file with the bearer token and hands it to the browser as a download.
export async function download(path, token, filename) {
  const res = await fetch(path, { headers: { Authorization: 'Bearer ' + token } });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: filename });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export const fmtTime = s => (s ? new Date(s).toLocaleString() : '');
export const statusLabel = s => t('status_' + s);
export const eventLabel = k => { const v = t('ev_' + k); return v === 'ev_' + k ? k : v; };
