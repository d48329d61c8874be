// Helpers shared by the demos.
export const params = new URLSearchParams(location.search);

/** The room named by ?room=, or the default. */
export const roomFromURL = (def) => params.get('room') || def;

/** A token passed as ?token= (dev mode needs none). */
export const token = params.get('token') || undefined;

const PALETTE = ['#e5484d', '#f76b15', '#d6a100', '#30a46c', '#12a594', '#0090ff', '#3e63dd', '#8e4ec6', '#d6409f', '#6f6e77'];

/** A stable, pleasant color for a string. */
export function colorFor(s) {
  let h = 0x811c9dc5; // FNV-1a
  for (const ch of String(s)) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return PALETTE[h % PALETTE.length];
}

// Values other members send (names, colors, texts, coordinates) are shown
// only through DOM APIs (textContent, setAttribute, style properties), never
// parsed as markup, and the page's Content-Security-Policy allows no inline
// script and no request elsewhere. Colors also pass safeColor: a CSS value
// such as url(...) could otherwise make the page fetch another site.

/** A member-supplied color if it is a hex color (#rgb, #rgba, #rrggbb, #rrggbbaa), else fallback. */
export function safeColor(c, fallback) {
  return typeof c === 'string' && /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(c) ? c : fallback;
}

/** A member-supplied name as text: a non-empty string or a number, else fallback. */
export function textOf(v, fallback) {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return fallback;
}

/** The visitor's display name, kept in localStorage. */
export function myName() {
  let n = localStorage.getItem('roomd.name');
  if (!n) {
    n = 'guest-' + Math.floor(1000 + Math.random() * 9000);
    localStorage.setItem('roomd.name', n);
  }
  return n;
}

export function setMyName(n) {
  localStorage.setItem('roomd.name', n);
}

/** Shows a status in a .pill element. */
export function showStatus(el, status) {
  el.className = 'pill ' + status;
  el.textContent = status;
}

/** Creates an element with attributes and children (strings become text). */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k != null) el.append(k);
  return el;
}

/** Shows the dev-mode banner when the server runs without authentication. */
export async function devBanner(el) {
  try {
    const r = await fetch('/v1/info');
    const info = await r.json();
    if (info.dev) el.classList.add('on');
    return info;
  } catch {
    return undefined;
  }
}
