// Whiteboard demo: strokes are room state keys (a late joiner gets them all in
// the join snapshot); cursors are ephemeral messages, coalesced per frame.
import { Client } from '/sdk/roomd.min.js';
import { colorFor, devBanner, h, myName, roomFromURL, safeColor, showStatus, textOf, token } from '/common.js';

const W = 1600; // the board's own coordinates, whatever the window size
const H = 1000;
const COLORS = ['#1d2330', '#e5484d', '#f59e0b', '#16a34a', '#2563eb', '#8b5cf6'];
const WIDTHS = [3, 6, 12];

const $ = (id) => document.getElementById(id);
const roomName = roomFromURL('board:main');
devBanner($('dev'));
$('roomname').textContent = roomName;
$('dashlink').href = '/dashboard/?room=' + encodeURIComponent(roomName);
document.title = roomName + ' · roomd whiteboard';

const name = myName();
const me = colorFor(name);
let pen = { color: COLORS[4], width: WIDTHS[1] };

// ---- toolbar ----
for (const c of COLORS) {
  const b = h('button', { class: 'swatch', title: c, style: { background: c }, onclick: () => pick({ color: c }) });
  b.dataset.color = c;
  $('swatches').append(b);
}
for (const w of WIDTHS) {
  const b = h('button', { class: 'width', title: w + ' px', onclick: () => pick({ width: w }) }, h('span', { style: { width: w + 2 + 'px', height: w + 2 + 'px' } }));
  b.dataset.width = w;
  $('widths').append(b);
}
function pick(p) {
  pen = { ...pen, ...p };
  for (const b of $('swatches').children) b.classList.toggle('on', b.dataset.color === pen.color);
  for (const b of $('widths').children) b.classList.toggle('on', +b.dataset.width === pen.width);
}
pick({});

// ---- layout: keep the paper at W:H inside the stage ----
const canvas = $('canvas');
const ctx = canvas.getContext('2d');
let scale = 1;
function layout() {
  const s = $('stage').getBoundingClientRect();
  scale = Math.min(s.width / W, s.height / H);
  const pw = W * scale;
  const ph = H * scale;
  Object.assign($('paper').style, { width: pw + 'px', height: ph + 'px', left: (s.width - pw) / 2 + 'px', top: (s.height - ph) / 2 + 'px' });
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(pw * dpr);
  canvas.height = Math.round(ph * dpr);
  ctx.setTransform(scale * dpr, 0, 0, scale * dpr, 0, 0);
  redraw();
}
new ResizeObserver(layout).observe($('stage')); // window resizes, the dev banner appearing

// ---- drawing ----
const client = new Client(location.origin, { token });
const room = client.room(roomName, { presence: { name, color: me } });
window.demo = { client, room };
const local = new Map(); // strokes sent but not yet confirmed by the room
let current = null;
const prefix = 's:' + Math.random().toString(36).slice(2, 10) + ':';
let n = 0;

function drawStroke(s) {
  const p = s?.p;
  if (!Array.isArray(p) || p.length < 2) return;
  ctx.strokeStyle = safeColor(s.c, '#1d2330');
  ctx.fillStyle = ctx.strokeStyle;
  ctx.lineWidth = Number.isFinite(s.w) ? s.w : WIDTHS[1];
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  if (p.length === 2) {
    ctx.beginPath();
    ctx.arc(p[0], p[1], s.w / 2, 0, Math.PI * 2);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(p[0], p[1]);
  for (let i = 2; i < p.length; i += 2) ctx.lineTo(p[i], p[i + 1]);
  ctx.stroke();
}

let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    ctx.clearRect(0, 0, W, H);
    const strokes = [...room.state.entries()].filter(([k]) => k.startsWith('s:'));
    for (const [, s] of strokes) drawStroke(s);
    for (const s of local.values()) drawStroke(s);
    if (current) drawStroke(current);
    $('strokes').textContent = strokes.length;
    document.body.dataset.strokes = strokes.length;
  });
}

const pos = (e) => {
  const r = canvas.getBoundingClientRect();
  return [Math.round((e.clientX - r.left) / scale), Math.round((e.clientY - r.top) / scale)];
};

const paper = $('paper');
paper.addEventListener('pointerdown', (e) => {
  paper.setPointerCapture(e.pointerId);
  current = { c: pen.color, w: pen.width, p: pos(e) };
  redraw();
});
paper.addEventListener('pointermove', (e) => {
  const [x, y] = pos(e);
  room.broadcast({ x, y, name, color: me }, 'cursor');
  if (!current) return;
  const p = current.p;
  if (Math.hypot(x - p[p.length - 2], y - p[p.length - 1]) < 2) return;
  p.push(x, y);
  if (p.length >= 2000) {
    // keep each state value small: continue in a new stroke
    const cont = { ...current, p: [x, y] };
    finish();
    current = cont;
  }
  redraw();
});
paper.addEventListener('pointerleave', () => room.broadcast({ gone: true }, 'cursor'));
const finish = () => {
  if (!current) return;
  const s = current;
  current = null;
  const key = prefix + n++;
  local.set(key, s);
  // the local copy goes when the room's state event for it arrives
  room.set(key, s).catch((e) => {
    console.warn('stroke not saved:', e.message);
    local.delete(key);
    redraw();
  });
  redraw();
};
paper.addEventListener('pointerup', finish);
paper.addEventListener('pointercancel', finish);

$('clear').addEventListener('click', async () => {
  const keys = [...room.state.keys()].filter((k) => k.startsWith('s:'));
  for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => room.delete(k)));
});

room.on('state', (ch) => {
  if (ch.key) local.delete(ch.key);
  redraw();
});

// ---- cursors and avatars ----
const cursors = new Map(); // conn -> { el, timer }
const SVG = 'http://www.w3.org/2000/svg';
/** The cursor's arrow, filled with c (already a safe color). */
function arrow(c) {
  const svg = document.createElementNS(SVG, 'svg');
  const path = document.createElementNS(SVG, 'path');
  for (const [k, v] of Object.entries({ width: 18, height: 22, viewBox: '0 0 18 22' })) svg.setAttribute(k, v);
  const d = 'M1 1 L1 17 L5.5 13 L8.5 20.5 L11.5 19.2 L8.6 12 L14.5 12 Z';
  for (const [k, v] of Object.entries({ d, fill: c, stroke: '#fff', 'stroke-width': 1.5, 'stroke-linejoin': 'round' })) path.setAttribute(k, v);
  svg.append(path);
  return svg;
}

function dropCursor(conn) {
  const c = cursors.get(conn);
  if (!c) return;
  clearTimeout(c.timer);
  c.el.remove();
  cursors.delete(conn);
}

room.on('ephemeral', (e) => {
  if (e.conn === client.conn || !e.conn || !e.data) return;
  if (e.data.gone) return dropCursor(e.conn);
  let c = cursors.get(e.conn);
  if (!c) {
    const color = safeColor(e.data.color, '#333');
    const el = h('div', { class: 'cursor', 'data-conn': e.conn }, arrow(color));
    el.append(h('span', { class: 'label', style: { background: color } }, textOf(e.data.name, textOf(e.user, 'someone'))));
    $('cursors').append(el);
    c = { el };
    cursors.set(e.conn, c);
  }
  const x = Number(e.data.x) || 0;
  const y = Number(e.data.y) || 0;
  c.el.style.transform = `translate(${x * scale}px, ${y * scale}px)`;
  clearTimeout(c.timer);
  c.timer = setTimeout(() => dropCursor(e.conn), 10000);
});

room.on('presence', (p) => {
  for (const m of p.leave) dropCursor(m.conn);
  const av = $('avatars');
  av.textContent = '';
  for (const m of room.presence.values()) {
    const nm = textOf(m.data?.name, textOf(m.user, '?'));
    av.append(h('span', { title: nm, style: { background: safeColor(m.data?.color, colorFor(nm)) } }, nm.slice(0, 1).toUpperCase()));
  }
});

client.on('status', (s) => showStatus($('status'), s));
client.on('error', (e) => console.warn('roomd:', e.message));
room.on('error', (e) => console.warn('roomd room:', e.message));

layout();
room.join().then(
  () => (document.body.dataset.joined = '1'),
  (e) => alert('Could not join ' + roomName + ': ' + e.message),
);
