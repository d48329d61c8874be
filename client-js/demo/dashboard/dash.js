// Spectator dashboard: reads a room through SSE only (no WebSocket): its
// members, live message rate and recent events.
import { observe } from '/sdk/roomd.min.js';
import { colorFor, devBanner, h, params, roomFromURL, safeColor, showStatus, textOf, token } from '/common.js';

const $ = (id) => document.getElementById(id);
const roomName = roomFromURL('chat:lobby');
const withEph = params.get('ephemeral') === '1';
devBanner($('dev'));
$('room').value = roomName;
$('eph').checked = withEph;
if (roomName.startsWith('chat:')) $('chatlink').href = '/chat/?room=' + encodeURIComponent(roomName);
document.title = roomName + ' · roomd dashboard';
$('roomform').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = new URLSearchParams({ room: $('room').value.trim() || 'chat:lobby' });
  if ($('eph').checked) q.set('ephemeral', '1');
  if (token) q.set('token', token);
  location.search = q.toString();
});

const members = new Map();
const times = []; // arrival times (ms) of durable events, for rates
const BUCKETS = 60;
const buckets = new Array(BUCKETS).fill(0); // events per second, last 60 s
let bucketAt = Math.floor(Date.now() / 1000);
let total = 0;
let ephCount = 0;

const label = (m) => textOf(m.data?.name, textOf(m.user, String(m.conn)));
const brief = (d) => {
  if (d && typeof d === 'object') {
    if (typeof d.text === 'string') return (textOf(d.name, '') ? textOf(d.name, '') + ': ' : '') + d.text;
    if (Array.isArray(d.p)) return `stroke, ${d.p.length / 2} points, ${safeColor(d.c, '')}`;
  }
  const s = JSON.stringify(d);
  return s === undefined ? '' : s.length > 140 ? s.slice(0, 140) + '…' : s;
};

let largeCount = 0; // the room's count in large-room mode (the list is then a sample)

function renderMembers() {
  const ul = $('memberlist');
  ul.textContent = '';
  for (const m of members.values()) {
    ul.append(
      h('li', { 'data-conn': m.conn },
        h('span', { class: 'dot', style: { background: safeColor(m.data?.color, colorFor(label(m))) } }),
        h('span', { class: 'who' }, label(m)),
        m.user && m.data?.name ? h('span', { class: 'small muted' }, String(m.user)) : null,
        h('span', { class: 'conn mono' }, m.conn)));
  }
  if (!members.size) ul.append(h('li', { class: 'muted small' }, 'Nobody is in this room.'));
  $('members').textContent = largeCount || members.size;
}

function addEvent(kind, seq, text) {
  $('noevents')?.remove();
  const ul = $('events');
  ul.prepend(
    h('li', { class: 'fresh', 'data-kind': kind },
      h('time', { class: 'mono small muted' }, new Date().toLocaleTimeString([], { hour12: false })),
      h('span', { class: 'seq mono' }, seq ? '#' + seq : ''),
      h('span', { class: 'badge ' + kind }, kind),
      h('span', { class: 'what', title: text }, text)));
  while (ul.children.length > 100) ul.lastChild.remove();
}

function tickBuckets() {
  const now = Math.floor(Date.now() / 1000);
  while (bucketAt < now) {
    buckets.shift();
    buckets.push(0);
    bucketAt++;
  }
}

function count(n = 1) {
  tickBuckets();
  buckets[BUCKETS - 1] += n;
  for (let i = 0; i < n; i++) times.push(Date.now());
  total += n;
  $('total').textContent = total;
}

function seen(seq, epoch) {
  if (seq) $('seq').textContent = seq;
  if (epoch) $('epoch').textContent = 'epoch ' + epoch;
}

observe(location.origin, roomName, {
  token,
  h: 20,
  ephemeral: withEph,
  onStatus: (s) => showStatus($('status'), s),
  onEvent(e) {
    switch (e.type) {
      case 'snapshot':
        members.clear();
        for (const m of e.presence) members.set(m.conn, m);
        largeCount = e.count ?? 0;
        renderMembers();
        seen(e.seq, e.epoch);
        for (const ev of e.log) addEvent(ev.type, ev.seq, ev.type === 'state' ? `${ev.key} ${ev.deleted ? 'deleted' : '= ' + brief(ev.data)}` : brief(ev.data));
        addEvent('presence', 0, `snapshot: ${e.presence.length} members, ${Object.keys(e.state).length} state keys`);
        break;
      case 'message':
        count();
        seen(e.seq);
        addEvent('message', e.seq, brief(e.data));
        break;
      case 'state':
        count();
        seen(e.seq);
        addEvent('state', e.seq, `${e.key} ${e.deleted ? 'deleted' : '= ' + brief(e.data)}`);
        break;
      case 'presence': {
        const names = [];
        if (e.all) {
          members.clear();
          for (const m of e.all) members.set(m.conn, m);
          largeCount = 0;
        }
        if (e.count) largeCount = e.count;
        for (const m of e.join) {
          members.set(m.conn, m);
          names.push('+' + label(m));
        }
        for (const m of e.update) members.set(m.conn, m);
        for (const c of e.leave) {
          const m = members.get(c);
          members.delete(c);
          names.push('−' + (m ? label(m) : c));
        }
        renderMembers();
        if (names.length) addEvent('presence', 0, names.join(' '));
        break;
      }
      case 'ephemeral':
        ephCount++;
        $('ephcount').textContent = ephCount;
        break;
      case 'bye':
        addEvent('presence', 0, `server said bye: ${e.code} ${e.msg}`);
        break;
    }
  },
});

// rate and sparkline, refreshed 4 times a second
const spark = $('spark');
const sctx = spark.getContext('2d');
function paint() {
  tickBuckets();
  const now = Date.now();
  while (times.length && times[0] < now - 10000) times.shift();
  $('rate').textContent = (times.length / 10).toFixed(1);
  const dpr = window.devicePixelRatio || 1;
  const w = spark.clientWidth;
  const hgt = spark.clientHeight;
  spark.width = w * dpr;
  spark.height = hgt * dpr;
  sctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  sctx.clearRect(0, 0, w, hgt);
  const max = Math.max(5, ...buckets);
  const bw = w / BUCKETS;
  sctx.fillStyle = '#f1f2f5';
  sctx.fillRect(0, hgt - 1, w, 1);
  for (let i = 0; i < BUCKETS; i++) {
    const bh = (buckets[i] / max) * (hgt - 14);
    sctx.fillStyle = i === BUCKETS - 1 ? '#4f46e5' : '#a5a0f5';
    sctx.fillRect(i * bw + 1, hgt - 1 - bh, Math.max(1, bw - 2), bh);
  }
  sctx.fillStyle = '#6b7385';
  sctx.font = '11px system-ui, sans-serif';
  sctx.fillText(`peak ${Math.max(...buckets)}/s`, 4, 11);
}
setInterval(paint, 250);
renderMembers();
paint();
window.demo = { members };
