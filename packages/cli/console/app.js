// The Hadron web console (docs/console.md): plain browser JavaScript, no dependencies, no CDN.
// The token is kept in sessionStorage (this tab only) and sent to the console server, which
// calls the cluster with it. The stream view refreshes every 2 s.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 2000;
  const HISTORY = 60;
  let token = sessionStorage.getItem('hadron-token') || '';
  let timer;
  let prev; // last /api/stream answer, for publish rates
  const lagHistory = new Map(); // group -> lags

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const row = (cells) => {
    const tr = document.createElement('tr');
    for (const c of cells) tr.appendChild(c instanceof Node ? c : el('td', c));
    return tr;
  };
  const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
  const ago = (ms, now) => (ms ? `${Math.max(0, Math.round((now - ms) / 1000))} s ago` : '-');

  async function api(path) {
    const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.json();
    if (!res.ok) throw Object.assign(new Error(`${body.error} [${body.code}]`), { status: res.status });
    return body;
  }

  function spark(values) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 120 24');
    const max = Math.max(1, ...values);
    const pts = values.map((v, i) => `${(i * 120) / Math.max(1, HISTORY - 1)},${23 - (v / max) * 22}`);
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.appendChild(line);
    const td = el('td');
    td.appendChild(svg);
    td.title = `lag over the last ${values.length} refreshes: ${values.join(', ')}`;
    return td;
  }

  function render(s) {
    $('stream-title').textContent = `Stream ${s.stream}`;
    $('totals').textContent = `${s.partitions.length} partitions, ${s.totals.events} events, ${bytes(s.totals.sizeBytes)}, ${s.totals.segments} segments`;
    const tb = $('partitions').tBodies[0];
    tb.replaceChildren();
    for (const p of s.partitions) {
      const before = prev && prev.partitions.find((x) => x.partition === p.partition);
      const rate = before ? ((p.lastOffset - before.lastOffset) / Math.max(0.001, (s.now - prev.now) / 1000)).toFixed(1) : '-';
      tb.appendChild(row([p.partition, p.address, p.firstOffset, p.lastOffset, p.events, bytes(p.sizeBytes), `${rate} ev/s`, p.state]));
    }
    for (const f of s.failures) tb.appendChild(row([f.partition, '', '', '', '', '', '', `error: ${f.error}`]));
    const gb = $('groups').tBodies[0];
    gb.replaceChildren();
    for (const g of s.groups) {
      const h = lagHistory.get(g.name) || [];
      h.push(g.lag);
      if (h.length > HISTORY) h.shift();
      lagHistory.set(g.name, h);
      gb.appendChild(row([g.name, g.durable ? 'yes' : 'no', g.members, g.lag, spark(h), ago(g.oldestUnackedTimeMs, s.now), g.redeliveries]));
    }
    if (s.groups.length === 0) gb.appendChild(row(['no consumer groups', '', '', '', '', '', '']));
    prev = s;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  const svgEl = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  };
  const STATES = ['waiting', 'ready', 'delivered', 'done'];
  let selected; // { pipeline, partition, offset } of the instance whose detail is shown

  // Layers by longest path from the entry stages (edges: dependencies and after).
  function layout(stages) {
    const parents = new Map(stages.map((s) => [s.name, [...s.dependencies, ...s.after]]));
    const layer = new Map();
    const depth = (name, seen) => {
      if (layer.has(name)) return layer.get(name);
      if (seen.has(name)) return 0; // a cycle cannot pass validation; do not loop
      seen.add(name);
      const ps = (parents.get(name) || []).filter((p) => parents.has(p));
      const d = ps.length ? 1 + Math.max(...ps.map((p) => depth(p, seen))) : 0;
      layer.set(name, d);
      return d;
    };
    for (const s of stages) depth(s.name, new Set());
    const rows = new Map();
    const pos = new Map();
    for (const s of stages) {
      const l = layer.get(s.name);
      const r = rows.get(l) || 0;
      rows.set(l, r + 1);
      pos.set(s.name, { x: 10 + l * 200, y: 10 + r * 70 });
    }
    return { pos, width: 10 + (Math.max(0, ...layer.values()) + 1) * 200, height: 10 + Math.max(1, ...rows.values()) * 70 };
  }

  // The pipeline's DAG as SVG: a box per stage with its counts over active instances.
  function dag(p, counts) {
    const W = 160;
    const H = 48;
    const { pos, width, height } = layout(p.stages);
    const svg = svgEl('svg', { class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `pipeline ${p.name} stage graph` });
    const defs = svgEl('defs');
    const marker = svgEl('marker', { id: `arrow-${p.name}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto' });
    marker.appendChild(svgEl('path', { d: 'M0,0 L10,5 L0,10 z' }));
    defs.appendChild(marker);
    svg.appendChild(defs);
    for (const s of p.stages) {
      for (const [kind, list] of [['dependency', s.dependencies], ['after', s.after]]) {
        for (const from of list) {
          const a = pos.get(from);
          const b = pos.get(s.name);
          if (!a || !b) continue;
          const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
          const edge = svgEl('path', { class: `edge ${kind}`, d: `M${x1},${y1} C${x1 + 20},${y1} ${x2 - 20},${y2} ${x2},${y2}`, 'marker-end': `url(#arrow-${p.name})`, 'data-from': from, 'data-to': s.name });
          edge.appendChild(svgEl('title', {}, `${s.name} ${kind === 'after' ? 'runs after' : 'depends on'} ${from}`));
          svg.appendChild(edge);
        }
      }
    }
    for (const s of p.stages) {
      const { x, y } = pos.get(s.name);
      const c = counts.get(s.name) || { waiting: 0, ready: 0, delivered: 0, done: 0 };
      const g = svgEl('g', { class: 'stage', 'data-stage': s.name });
      g.appendChild(svgEl('rect', { x, y, width: W, height: H }));
      g.appendChild(svgEl('text', { x: x + 8, y: y + 18 }, s.name));
      g.appendChild(svgEl('text', { class: 'counts', x: x + 8, y: y + 36 }, STATES.filter((st) => c[st] > 0).map((st) => `${c[st]} ${st}`).join(' · ') || 'no active instance'));
      g.appendChild(svgEl('title', {}, `${s.name}: ${STATES.map((st) => `${c[st]} ${st}`).join(', ')}`));
      svg.appendChild(g);
    }
    return svg;
  }

  function showInstance(pipeline, partition, inst) {
    selected = { pipeline, partition, offset: inst.offset };
    $('instance').hidden = false;
    $('instance-title').textContent = `Instance of ${pipeline}: partition ${partition}, offset ${inst.offset}, root event ${inst.rootEventId}`;
    const tb = $('instance-stages').tBodies[0];
    tb.replaceChildren();
    for (const st of inst.stages) {
      const o = st.output;
      const attrs = o ? Object.entries({ id: o.id, source: o.source, type: o.type, ...o.optattrs }).map(([k, v]) => `${k}=${v}`).join('\n') : '';
      const data = o ? showData(decode(o.data), 'json') : st.outputBytes ? `(${st.outputBytes} bytes, too large to show)` : '';
      tb.appendChild(row([st.name, el('td', st.state, `state-${st.state}`), st.attempts, el('td', attrs, 'data'), el('td', data, 'data')]));
    }
  }

  async function refreshPipelines() {
    const list = (await api('/api/pipelines')).pipelines;
    const out = $('pipelines');
    const cards = [];
    for (const p of list) {
      const st = await api(`/api/pipeline?name=${encodeURIComponent(p.name)}`);
      const counts = new Map();
      const instances = [];
      for (const part of st.partitions) {
        if (part.error) continue;
        for (const i of part.instances) {
          instances.push({ partition: part.partition, inst: i });
          for (const s of i.stages) {
            const c = counts.get(s.name) || { waiting: 0, ready: 0, delivered: 0, done: 0 };
            c[s.state] = (c[s.state] || 0) + 1;
            counts.set(s.name, c);
          }
        }
      }
      const card = el('div', undefined, 'pipeline-card');
      card.dataset.pipeline = p.name;
      card.appendChild(el('h3', p.name));
      const oldest = instances.reduce((m, x) => Math.min(m, x.inst.offset), Infinity);
      card.appendChild(el('p', `${instances.length} active instance(s)${instances.length ? `, oldest at offset ${oldest}` : ''}; triggers: ${p.triggers.join(', ') || '(all events)'}; max parallel ${p.maxParallel}; start: ${p.startLocation}`, 'summary'));
      card.appendChild(dag(p, counts));
      const t = el('table', undefined, 'instances');
      t.appendChild(row([el('th', 'Partition'), el('th', 'Offset'), el('th', 'Root event'), el('th', 'Stages')]));
      for (const { partition, inst } of instances) {
        const tr = row([partition, inst.offset, inst.rootEventId, inst.stages.map((s) => `${s.name}=${s.state}`).join(' ')]);
        tr.className = 'instance';
        tr.addEventListener('click', () => {
          for (const x of document.querySelectorAll('tr.instance.selected')) x.classList.remove('selected');
          tr.classList.add('selected');
          showInstance(p.name, partition, inst);
        });
        if (selected && selected.pipeline === p.name && selected.partition === partition && selected.offset === inst.offset) {
          tr.classList.add('selected');
          showInstance(p.name, partition, inst);
        }
        t.appendChild(tr);
      }
      if (instances.length === 0) t.appendChild(row(['no active instances', '', '', '']));
      card.appendChild(t);
      cards.push(card);
    }
    if (list.length === 0) cards.push(el('p', 'no Pipeline reads this stream'));
    out.replaceChildren(...cards);
  }

  async function refreshTokens() {
    const r = await api('/api/tokens');
    const tb = $('tokens').tBodies[0];
    tb.replaceChildren();
    if (!r.tokens) {
      $('tokens-note').textContent = `Tokens are not shown: ${r.refused}`;
      return;
    }
    $('tokens-note').textContent = `${r.tokens.length} token(s): names and permissions only (keys and JWTs are never shown)`;
    const both = (x) => `${x.pub.join(', ') || '-'} / ${x.sub.join(', ') || '-'}`;
    for (const t of r.tokens) tb.appendChild(row([t.name, t.all ? 'yes' : 'no', t.streams.pub.join(', ') || '-', t.streams.sub.join(', ') || '-', both(t.exchanges), both(t.endpoints)]));
  }

  async function refreshRest() {
    try {
      await refreshPipelines();
      $('pipelines-error').textContent = '';
    } catch (err) {
      $('pipelines-error').textContent = err.message;
    }
    try {
      await refreshTokens();
    } catch (err) {
      $('tokens-note').textContent = `error: ${err.message}`;
    }
  }

  async function refresh() {
    try {
      render(await api('/api/stream'));
      await refreshRest();
      $('status').textContent = `live, updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (err.status === 401 || err.status === 403) return signOut(err.message);
      $('status').textContent = `error: ${err.message}`;
    }
  }

  function decode(b64) {
    const bin = atob(b64);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return u8;
  }
  function showData(u8, format) {
    const hex = () => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join(' ');
    if (format === 'hex') return hex();
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(u8);
    } catch {
      return `(binary) ${hex()}`;
    }
    if (format === 'json') {
      try {
        return JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        return text;
      }
    }
    return text;
  }

  async function browse(ev) {
    if (ev) ev.preventDefault();
    $('browse-error').textContent = '';
    const q = new URLSearchParams({ partition: $('b-partition').value, offset: $('b-offset').value, count: $('b-count').value });
    try {
      const r = await api(`/api/events?${q}`);
      const tb = $('events').tBodies[0];
      tb.replaceChildren();
      for (const e of r.events) {
        if (!e.event) {
          tb.appendChild(row([e.offset, new Date(e.timeMs).toISOString(), '(undecodable)', '']));
          continue;
        }
        const attrs = { id: e.event.id, source: e.event.source, type: e.event.type, specversion: e.event.specversion, ...e.event.optattrs };
        const td = el('td', showData(decode(e.event.data), $('b-format').value), 'data');
        tb.appendChild(row([e.offset, new Date(e.timeMs).toISOString(), el('td', Object.entries(attrs).map(([k, v]) => `${k}=${v}`).join('\n'), 'data'), td]));
      }
      if (r.events.length === 0) $('browse-error').textContent = `no events there (readable: ${r.firstOffset}–${r.lastOffset})`;
    } catch (err) {
      $('browse-error').textContent = err.message;
    }
  }

  async function pipeline(ev) {
    ev.preventDefault();
    $('pipeline-error').textContent = '';
    const out = $('pipeline');
    out.replaceChildren();
    try {
      const r = await api(`/api/pipeline?name=${encodeURIComponent($('p-name').value)}`);
      const ok = r.partitions.filter((p) => !p.error);
      if (ok.length === 0) throw new Error(r.partitions.map((p) => `partition ${p.partition}: ${p.error}`).join('; '));
      const counts = new Map();
      let active = 0;
      for (const p of ok) {
        active += p.instances.length;
        for (const i of p.instances) for (const s of i.stages) {
          const c = counts.get(s.name) || { waiting: 0, ready: 0, delivered: 0, done: 0 };
          c[s.state] = (c[s.state] || 0) + 1;
          counts.set(s.name, c);
        }
      }
      out.appendChild(el('p', `${active} active instances`));
      const t = el('table');
      t.appendChild(row([el('th', 'Stage'), el('th', 'waiting'), el('th', 'ready'), el('th', 'delivered'), el('th', 'done')]));
      for (const [name, c] of counts) t.appendChild(row([name, c.waiting, c.ready, c.delivered, c.done]));
      out.appendChild(t);
      const it = el('table');
      it.appendChild(row([el('th', 'Partition'), el('th', 'Offset'), el('th', 'Root event'), el('th', 'Stages')]));
      for (const p of ok) for (const i of p.instances) it.appendChild(row([p.partition, i.offset, i.rootEventId, i.stages.map((s) => `${s.name}=${s.state}`).join(' ')]));
      out.appendChild(it);
    } catch (err) {
      $('pipeline-error').textContent = err.message;
    }
  }

  function signOut(message) {
    clearInterval(timer);
    token = '';
    prev = undefined;
    sessionStorage.removeItem('hadron-token');
    $('app').hidden = true;
    $('signin').hidden = false;
    $('signout').hidden = true;
    $('status').textContent = 'signed out';
    $('signin-error').textContent = message || '';
  }

  async function signIn(t) {
    token = t;
    try {
      const s = await api('/api/stream');
      sessionStorage.setItem('hadron-token', token);
      $('signin').hidden = true;
      $('app').hidden = false;
      $('signout').hidden = false;
      $('signin-error').textContent = '';
      render(s);
      await refreshRest();
      $('status').textContent = 'live';
      timer = setInterval(refresh, REFRESH_MS);
    } catch (err) {
      signOut(err.message);
    }
  }

  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void signIn($('token').value.trim());
  });
  $('signout').addEventListener('click', () => signOut());
  $('browse').addEventListener('submit', browse);
  $('pipeline-form').addEventListener('submit', pipeline);
  if (token) void signIn(token);
})();
