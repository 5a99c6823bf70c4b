// txwatch dashboard: live transactions over SSE, a chart of one user's
// recent amounts against their detector's baseline and threshold, and a
// user's history paged by cursor. Vanilla JS, no dependencies, same-origin
// requests only. Text from the server only ever reaches the page through
// textContent (never innerHTML).
'use strict';

(() => {
  /** Rows kept in the live table; older ones are dropped. */
  const MAX_LIVE_ROWS = 200;
  /** Points in the chart. */
  const CHART_POINTS = 120;
  /** Notices shown at once, and for how long. */
  const MAX_NOTICES = 4;
  const NOTICE_MS = 30000;
  /** Health polling, while up and while down. */
  const HEALTH_EVERY_MS = 5000;
  const HEALTH_RETRY_MS = 2000;
  const REQUEST_TIMEOUT_MS = 5000;
  /** A stream the browser gave up on is reopened after this. */
  const STREAM_REOPEN_MS = 3000;

  const $ = (id) => document.getElementById(id);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    user: '',
    anomaliesOnly: false,
    stream: null,
    streamReopen: 0,
    everLive: false,
    simulation: null,
    pending: [],
    flushScheduled: false,
    flushTimer: 0,
    received: 0,
    anomalies: 0,
    arrivals: [], // arrival times (ms) of the last few seconds, for the rate
    chart: [], // {id, date, amount, baseline, threshold, anomaly, reason}, oldest first
    chartIds: new Set(),
    chartSeq: 0,
    logScale: true,
    serverUp: null,
    readyMissing: false,
    history: { query: null, cursors: [], next: '', hasMore: false, seq: 0 },
  };

  // ---------- formatting ----------

  /** "9120.00" -> "9,120.00", keeping the server's exact digits. */
  function groupDigits(text) {
    const [whole, fraction] = String(text).split('.');
    const sign = whole.startsWith('-') ? '-' : '';
    const digits = sign ? whole.slice(1) : whole;
    const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return sign + grouped + (fraction === undefined ? '' : '.' + fraction);
  }

  /** An amount string as sent, or a number, with two decimals. */
  function money(value) {
    if (typeof value === 'number') {
      return Number.isFinite(value) ? groupDigits(value.toFixed(2)) : String(value);
    }
    return groupDigits(value);
  }

  /** 5.0000001 -> "5", 3.456 -> "3.46". */
  function shortNumber(value) {
    return String(Number(value.toFixed(2)));
  }

  const pad = (n) => String(n).padStart(2, '0');

  /** Local "YYYY-MM-DD HH:MM:SS". */
  function fullTime(date) {
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  /** "HH:MM:SS" today, the full date otherwise. */
  function shortTime(date) {
    const now = new Date();
    if (date.toDateString() === now.toDateString()) {
      return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
    }
    return fullTime(date);
  }

  /**
   * Why a transaction was or was not flagged, from its meta_data:
   * "amount 9,120.00 > threshold 2,510.00 (5 × mean 502.00)"; simulated
   * ones (judged against the user's simulated transactions only) say so.
   */
  function verdictOf(t) {
    const verdict = plainVerdictOf(t);
    if (t.meta_data && t.meta_data.simulated === true) {
      verdict.text = `simulated: ${verdict.text}`;
    }
    return verdict;
  }

  function plainVerdictOf(t) {
    const meta = t.meta_data || {};
    const anomaly = meta.is_anomaly === true;
    if (typeof meta.threshold !== 'number' || typeof meta.baseline !== 'number') {
      const seen = typeof meta.window_len === 'number' ? meta.window_len : 0;
      return {
        anomaly,
        text: anomaly ? 'flagged' : `learning: ${seen} earlier amount${seen === 1 ? '' : 's'}`,
      };
    }
    const ratio = meta.baseline > 0 ? meta.threshold / meta.baseline : NaN;
    const relation = Number.isFinite(ratio)
      ? `${shortNumber(ratio)} × mean ${money(meta.baseline)}`
      : `mean ${money(meta.baseline)}`;
    if (!anomaly) {
      return { anomaly, text: `≤ threshold ${money(meta.threshold)} (${relation})` };
    }
    if (Number(t.amount) > meta.threshold) {
      return {
        anomaly,
        text: `amount ${money(t.amount)} > threshold ${money(meta.threshold)} (${relation})`,
      };
    }
    // Two-sided detectors also flag amounts far below the baseline.
    const score = typeof meta.score === 'number' ? `, score ${meta.score.toFixed(2)}` : '';
    return { anomaly, text: `amount ${money(t.amount)} far from mean ${money(meta.baseline)}${score}` };
  }

  // ---------- DOM helpers ----------

  /** An element with text content, classes and data attributes. */
  function el(tag, { text, cls, data, title } = {}, children = []) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    if (title) node.title = title;
    if (data) for (const [key, value] of Object.entries(data)) node.dataset[key] = value;
    for (const child of children) node.append(child);
    return node;
  }

  function svg(tag, attributes = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setPill(node, kind, text) {
    node.dataset.state = kind;
    node.textContent = text;
  }

  function notice(code, message) {
    const list = $('notices');
    const item = el('li', { data: { code } }, [
      el('b', { text: code }),
      document.createTextNode(' ' + message),
    ]);
    list.prepend(item);
    while (list.children.length > MAX_NOTICES) list.lastElementChild.remove();
    setTimeout(() => item.remove(), NOTICE_MS);
  }

  /** fetch with a time limit; resolves to the Response. */
  async function request(url) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    try {
      return await fetch(url, { cache: 'no-store', signal: controller.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  /** GET JSON; throws an Error carrying the API's message on failure. */
  async function getJson(url) {
    const response = await request(url);
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      // not JSON: reported below by status
    }
    if (!response.ok) {
      const message = body && body.message ? body.message : `HTTP ${response.status}`;
      const error = new Error(message);
      error.code = body && body.error ? body.error : String(response.status);
      throw error;
    }
    return body;
  }

  // ---------- live stream ----------

  function streamUrl() {
    const params = new URLSearchParams();
    if (state.user) params.set('user_id', state.user);
    if (state.anomaliesOnly) params.set('anomalies_only', 'true');
    const query = params.toString();
    return '/sse/transactions' + (query ? '?' + query : '');
  }

  /**
   * Opens the live stream for the current scope. `reopened` says it
   * replaces one the browser gave up on, whose missed events are lost.
   */
  function openStream(reopened = false) {
    clearTimeout(state.streamReopen);
    if (state.stream) state.stream.close();
    const source = new EventSource(streamUrl());
    state.stream = source;
    state.everLive = false;
    setPill($('stream-state'), 'connecting', 'stream: connecting');
    source.onopen = () => {
      if (source !== state.stream) return;
      if (state.everLive) {
        // The browser reconnected by itself, sending Last-Event-ID.
        notice('reconnected', 'live stream is back; missed events are replayed');
      } else if (reopened) {
        notice('reopened', 'live stream is back; transactions during the outage are only in History');
      }
      state.everLive = true;
      setPill($('stream-state'), 'live', 'stream: live');
    };
    source.onmessage = (event) => {
      if (source !== state.stream) return;
      let transaction;
      try {
        transaction = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      enqueue(transaction);
    };
    source.addEventListener('error', (event) => {
      if (source !== state.stream) return;
      if (typeof event.data === 'string') {
        // A named `error` event from the server: {"error","message"}.
        let body = {};
        try {
          body = JSON.parse(event.data);
        } catch (_) {
          body = { error: 'error', message: event.data };
        }
        notice(String(body.error || 'error'), String(body.message || ''));
        return;
      }
      // The connection dropped. The browser retries by itself (sending
      // Last-Event-ID, so the server replays what was missed) unless the
      // answer was not a stream at all; then reopen it here.
      if (source.readyState === EventSource.CLOSED) {
        setPill($('stream-state'), 'down', 'stream: disconnected, retrying');
        state.streamReopen = setTimeout(() => openStream(true), STREAM_REOPEN_MS);
      } else {
        setPill($('stream-state'), 'reconnecting', 'stream: reconnecting');
      }
    });
  }

  function enqueue(transaction) {
    state.received += 1;
    if (transaction.meta_data && transaction.meta_data.is_anomaly) state.anomalies += 1;
    state.arrivals.push(performance.now());
    state.pending.push(transaction);
    // Only the newest rows can be shown; keep the backlog bounded when
    // frames do not run (a hidden tab).
    if (state.pending.length > 2 * MAX_LIVE_ROWS) {
      state.pending.splice(0, state.pending.length - MAX_LIVE_ROWS);
    }
    if (!state.flushScheduled) {
      state.flushScheduled = true;
      requestAnimationFrame(flush);
      // Frames pause in background tabs; a timer keeps the page current.
      state.flushTimer = setTimeout(flush, 250);
    }
  }

  /** Applies every event that arrived since the last frame, at once. */
  function flush() {
    if (!state.flushScheduled) return;
    state.flushScheduled = false;
    clearTimeout(state.flushTimer);
    const batch = state.pending;
    state.pending = [];
    const body = $('live-rows');
    const fragment = document.createDocumentFragment();
    const shown = batch.slice(-MAX_LIVE_ROWS);
    for (let i = shown.length - 1; i >= 0; i -= 1) fragment.append(liveRow(shown[i]));
    body.prepend(fragment);
    while (body.children.length > MAX_LIVE_ROWS) body.lastElementChild.remove();
    $('live-empty').hidden = body.children.length > 0;
    $('stat-received').textContent = groupDigits(String(state.received));
    $('stat-anomalies').textContent = groupDigits(String(state.anomalies));
    if (state.user) {
      const mine = batch.filter((t) => t.user_id === state.user);
      if (mine.length && addChartPoints(mine)) renderChart();
    }
  }

  function liveRow(t) {
    const date = new Date(t.txn_date);
    const verdict = verdictOf(t);
    const userButton = el('button', {
      text: String(t.user_id).slice(0, 8),
      cls: 'user-link',
      title: `Show ${t.user_id}`,
      data: { user: String(t.user_id) },
    });
    userButton.type = 'button';
    return el('tr', {
      cls: verdict.anomaly ? 'anomaly' : '',
      data: { id: String(t.id), user: String(t.user_id), anomaly: String(verdict.anomaly) },
    }, [
      el('td', { text: shortTime(date), title: `${fullTime(date)} (${t.txn_date})` }),
      el('td', {}, [userButton]),
      el('td', { text: `${money(t.amount)} ${t.currency || ''}`.trim(), cls: 'num' }),
      el('td', { text: String(t.status), cls: `status ${t.status === 'failed' ? 'failed' : ''}` }),
      el('td', { text: verdict.text, cls: 'reason' }),
    ]);
  }

  /** Drops the live rows (and pending events) outside the current scope. */
  function narrowLive() {
    const keep = (user, anomaly) =>
      (!state.user || user === state.user) && (!state.anomaliesOnly || anomaly);
    state.pending = state.pending.filter((t) =>
      keep(String(t.user_id), !!(t.meta_data && t.meta_data.is_anomaly)));
    for (const row of [...$('live-rows').children]) {
      if (!keep(row.dataset.user, row.dataset.anomaly === 'true')) row.remove();
    }
    $('live-empty').hidden = $('live-rows').children.length > 0;
  }

  function updateRate() {
    const now = performance.now();
    const windowMs = 5000;
    while (state.arrivals.length && state.arrivals[0] < now - windowMs) state.arrivals.shift();
    $('stat-rate').textContent = (state.arrivals.length / (windowMs / 1000)).toFixed(1);
  }

  // ---------- simulation ----------

  function stopSimulation() {
    if (state.simulation) state.simulation.close();
    state.simulation = null;
    const button = $('simulate');
    button.textContent = 'Simulate user';
    button.classList.remove('active');
    button.disabled = !state.user;
  }

  function toggleSimulation() {
    if (state.simulation) {
      stopSimulation();
      return;
    }
    if (!state.user) return;
    // The server simulates a user while someone watches this route; its
    // events also reach the main stream, so this one is only held open.
    state.simulation = new EventSource(`/sse/transactions/${encodeURIComponent(state.user)}`);
    const button = $('simulate');
    button.textContent = 'Stop simulation';
    button.classList.add('active');
  }

  // ---------- users ----------

  async function loadUsers() {
    try {
      const body = await getJson('/users');
      const select = $('user');
      const users = Array.isArray(body.users) ? body.users.map(String) : [];
      if (state.user && !users.includes(state.user)) users.push(state.user);
      const options = [new Option('All users', '')];
      for (const user of users) options.push(new Option(user, user));
      select.replaceChildren(...options);
      select.value = state.user;
    } catch (error) {
      notice('users', `could not load users: ${error.message}`);
    }
  }

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function selectUser(user) {
    if (user === state.user) return;
    state.user = user;
    // Kept in the address, so a reload or a shared link shows the same user.
    window.history.replaceState(null, '', user ? `#user=${user}` : window.location.pathname);
    const select = $('user');
    if (user && ![...select.options].some((option) => option.value === user)) {
      select.append(new Option(user, user));
    }
    select.value = user;
    stopSimulation();
    const scope = user || 'all users';
    $('live-scope').textContent = scope;
    $('chart-scope').textContent = user || 'pick a user';
    $('history-scope').textContent = user || 'pick a user';
    narrowLive();
    openStream();
    loadChart();
    if (user) {
      startHistory();
    } else {
      $('history-rows').replaceChildren();
      $('history-empty').textContent = 'Pick a user and press Load.';
      $('history-empty').hidden = false;
      state.history = { query: null, cursors: [], next: '', hasMore: false, seq: state.history.seq + 1 };
      updatePager();
    }
  }

  // ---------- chart ----------

  function chartPoint(t) {
    const meta = t.meta_data || {};
    return {
      id: String(t.id),
      date: new Date(t.txn_date),
      amount: Number(t.amount),
      amountText: money(t.amount),
      baseline: typeof meta.baseline === 'number' ? meta.baseline : null,
      threshold: typeof meta.threshold === 'number' ? meta.threshold : null,
      anomaly: meta.is_anomaly === true,
      reason: verdictOf(t).text,
    };
  }

  /** Adds transactions to the chart; whether anything changed. */
  function addChartPoints(transactions) {
    let changed = false;
    for (const t of transactions) {
      const id = String(t.id);
      if (state.chartIds.has(id)) continue;
      state.chartIds.add(id);
      state.chart.push(chartPoint(t));
      changed = true;
    }
    if (!changed) return false;
    state.chart.sort((a, b) => a.date - b.date);
    while (state.chart.length > CHART_POINTS) state.chartIds.delete(state.chart.shift().id);
    return true;
  }

  async function loadChart() {
    state.chart = [];
    state.chartIds = new Set();
    const seq = ++state.chartSeq;
    renderChart();
    if (!state.user) return;
    try {
      const params = new URLSearchParams({ user_id: state.user, limit: String(CHART_POINTS) });
      const body = await getJson(`/transactions?${params}`);
      if (seq !== state.chartSeq) return;
      addChartPoints(body.transactions || []);
      renderChart();
    } catch (error) {
      if (seq === state.chartSeq) notice('chart', `could not load recent amounts: ${error.message}`);
    }
  }

  /** Rounds up to 1, 2 or 5 times a power of ten. */
  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
    return 10 * power;
  }

  /** A linear axis from 0: the y of a value, and the values to label. */
  function linearAxis(values, top, height) {
    const maxY = niceCeiling(Math.max(0, ...values) * 1.05);
    const ticks = [0, 1, 2, 3, 4].map((k) => (maxY * k) / 4);
    return { y: (v) => top + height * (1 - v / maxY), ticks };
  }

  /**
   * A logarithmic axis between powers of ten, so ordinary amounts, their
   * mean and threshold stay apart next to a spike 100 times larger.
   */
  function logAxis(values, top, height) {
    const positive = values.filter((v) => v > 0);
    const low = Math.floor(Math.log10(positive.length ? Math.min(...positive) : 1));
    let high = Math.ceil(Math.log10(positive.length ? Math.max(...positive) : 10));
    if (high <= low) high = low + 1;
    const ticks = [];
    for (let power = low; power <= high; power += 1) ticks.push(10 ** power);
    const y = (v) => {
      const exponent = Math.log10(Math.max(v, 10 ** low));
      return top + height * (1 - (exponent - low) / (high - low));
    };
    return { y, ticks };
  }

  function compact(value) {
    if (value > 0 && value < 1) return String(value);
    if (value >= 1e6) return `${shortNumber(value / 1e6)}M`;
    if (value >= 1e4) return `${shortNumber(value / 1e3)}k`;
    return groupDigits(String(Math.round(value)));
  }

  function renderChart() {
    const box = $('chart');
    const points = state.chart;
    if (!state.user || points.length === 0) {
      box.replaceChildren(el('p', {
        cls: 'empty',
        text: state.user ? 'No transactions of this user in the last 30 days yet.' : 'Pick a user to chart their recent amounts.',
      }));
      return;
    }
    const width = 640;
    const height = 260;
    const left = 56;
    const right = 12;
    const top = 12;
    const bottom = 28;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const values = [];
    for (const p of points) {
      values.push(p.amount);
      if (p.baseline !== null) values.push(p.baseline);
      if (p.threshold !== null) values.push(p.threshold);
    }
    const { y, ticks } = state.logScale ? logAxis(values, top, plotHeight) : linearAxis(values, top, plotHeight);
    const x = (i) => left + (points.length === 1 ? plotWidth / 2 : (i * plotWidth) / (points.length - 1));

    const root = svg('svg', {
      viewBox: `0 0 ${width} ${height}`,
      class: 'chart-svg',
      'data-points': points.length,
    });
    for (const value of ticks) {
      root.append(svg('line', { x1: left, x2: width - right, y1: y(value), y2: y(value), class: 'grid' }));
      root.append(svg('text', { x: left - 6, y: y(value) + 4, class: 'axis', 'text-anchor': 'end' }, compact(value)));
    }
    const first = points[0].date;
    const last = points[points.length - 1].date;
    root.append(svg('text', { x: left, y: height - 8, class: 'axis' }, fullTime(first)));
    root.append(svg('text', { x: width - right, y: height - 8, class: 'axis', 'text-anchor': 'end' }, fullTime(last)));

    // Baseline and threshold change with each transaction's window: draw
    // them as steps, broken where a transaction had too little history.
    for (const series of ['baseline', 'threshold']) {
      let path = '';
      let open = false;
      points.forEach((p, i) => {
        const value = p[series];
        if (value === null) {
          open = false;
          return;
        }
        const half = points.length === 1 ? plotWidth / 2 : plotWidth / (points.length - 1) / 2;
        const x0 = Math.max(left, x(i) - half);
        const x1 = Math.min(width - right, x(i) + half);
        path += `${open ? 'L' : 'M'}${x0.toFixed(1)},${y(value).toFixed(1)}L${x1.toFixed(1)},${y(value).toFixed(1)}`;
        open = true;
      });
      if (path) root.append(svg('path', { d: path, class: `series ${series}`, 'data-series': series }));
    }
    const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.amount).toFixed(1)}`).join(' ');
    root.append(svg('polyline', { points: line, class: 'series amount', 'data-series': 'amount' }));
    points.forEach((p, i) => {
      const dot = svg('circle', {
        cx: x(i).toFixed(1),
        cy: y(p.amount).toFixed(1),
        r: p.anomaly ? 5 : 2.5,
        class: p.anomaly ? 'dot anomaly' : 'dot',
        'data-id': p.id,
      });
      dot.append(svg('title', {}, `${fullTime(p.date)}: ${p.amountText}: ${p.reason}`));
      root.append(dot);
    });
    box.replaceChildren(root);
  }

  // ---------- history ----------

  /** A datetime-local value (local time) as RFC 3339 UTC; "" stays "". */
  function toRfc3339(value, field) {
    if (!value) return '';
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) throw new Error(`${field} is not a date`);
    return date.toISOString();
  }

  function historyQuery() {
    const query = new URLSearchParams({ user_id: state.user, limit: $('page-size').value });
    const from = toRfc3339($('from-date').value, 'From');
    const to = toRfc3339($('to-date').value, 'To');
    if (from) query.set('from_date', from);
    if (to) query.set('to_date', to);
    const min = $('min-amount').value.trim();
    const max = $('max-amount').value.trim();
    if (min) query.set('min_amount', min);
    if (max) query.set('max_amount', max);
    return query;
  }

  function startHistory() {
    if (!state.user) {
      $('history-empty').textContent = 'Pick a user first.';
      $('history-empty').hidden = false;
      return;
    }
    let query;
    try {
      query = historyQuery();
    } catch (error) {
      showHistoryError(error.message);
      return;
    }
    state.history.query = query;
    showPage(['']);
  }

  function showHistoryError(message) {
    $('history-rows').replaceChildren();
    $('history-empty').textContent = message;
    $('history-empty').hidden = false;
  }

  /**
   * Loads the page at the top of `cursors` (the cursors of every page so
   * far, "" for the first) and makes that stack current once it arrived.
   */
  async function showPage(cursors) {
    const history = state.history;
    const seq = ++history.seq;
    const query = new URLSearchParams(history.query);
    const cursor = cursors[cursors.length - 1];
    if (cursor) query.set('cursor', cursor);
    $('history-prev').disabled = true;
    $('history-next').disabled = true;
    try {
      const body = await getJson(`/transactions?${query}`);
      if (seq !== history.seq) return;
      const rows = Array.isArray(body.transactions) ? body.transactions : [];
      history.cursors = cursors;
      history.next = typeof body.cursor === 'string' ? body.cursor : '';
      history.hasMore = typeof body.has_more === 'boolean' ? body.has_more : history.next !== '';
      $('history-rows').replaceChildren(...rows.map(historyRow));
      $('history-empty').textContent = cursors.length > 1 ? 'No more transactions.' : 'No transactions match.';
      $('history-empty').hidden = rows.length > 0;
    } catch (error) {
      if (seq !== history.seq) return;
      showHistoryError(`Could not load: ${error.message}`);
    }
    updatePager();
  }

  function historyRow(t) {
    const date = new Date(t.txn_date);
    const verdict = verdictOf(t);
    return el('tr', {
      cls: verdict.anomaly ? 'anomaly' : '',
      data: { id: String(t.id), anomaly: String(verdict.anomaly) },
    }, [
      el('td', { text: fullTime(date), title: String(t.txn_date) }),
      el('td', { text: `${money(t.amount)} ${t.currency || ''}`.trim(), cls: 'num' }),
      el('td', { text: String(t.status), cls: `status ${t.status === 'failed' ? 'failed' : ''}` }),
      el('td', { text: verdict.text, cls: 'reason' }),
      el('td', { text: '…' + String(t.id).slice(-12), cls: 'id', title: String(t.id) }),
    ]);
  }

  function updatePager() {
    const history = state.history;
    const page = history.cursors.length;
    $('history-prev').disabled = page <= 1;
    $('history-next').disabled = !(page >= 1 && history.hasMore);
    const label = $('history-page');
    label.dataset.page = String(page);
    label.textContent = page ? `page ${page}` : '';
  }

  // ---------- health ----------

  async function checkHealth() {
    let kind = 'ok';
    let text = 'server: ok';
    try {
      const health = await request('/health');
      if (!health.ok) {
        kind = 'down';
        text = `server: health answered ${health.status}`;
      } else if (!state.readyMissing) {
        const ready = await request('/ready');
        if (ready.status === 404) {
          // This server has no readiness route; liveness is all we know.
          state.readyMissing = true;
        } else if (ready.ok) {
          text = 'server: ready';
        } else {
          let message = `HTTP ${ready.status}`;
          try {
            const body = await ready.json();
            if (body && body.message) message = body.message;
          } catch (_) {
            // keep the status
          }
          kind = 'degraded';
          text = `server: not ready (${message})`;
        }
      }
    } catch (_) {
      kind = 'down';
      text = 'server: unreachable, retrying';
    }
    const wasUp = state.serverUp;
    state.serverUp = kind !== 'down';
    setPill($('health'), kind, text);
    if (state.serverUp && wasUp === false) {
      // Back after an outage (perhaps a new version): look again.
      state.readyMissing = false;
      loadUsers();
      if (!state.stream || state.stream.readyState === EventSource.CLOSED) openStream(true);
    }
    setTimeout(checkHealth, state.serverUp ? HEALTH_EVERY_MS : HEALTH_RETRY_MS);
  }

  // ---------- wiring ----------

  function start() {
    $('user').addEventListener('change', (event) => selectUser(event.target.value));
    $('refresh-users').addEventListener('click', loadUsers);
    $('anomalies-only').addEventListener('change', (event) => {
      state.anomaliesOnly = event.target.checked;
      narrowLive();
      openStream();
    });
    $('simulate').addEventListener('click', toggleSimulation);
    $('chart-log').addEventListener('change', (event) => {
      state.logScale = event.target.checked;
      renderChart();
    });
    $('live-rows').addEventListener('click', (event) => {
      const button = event.target.closest('button.user-link');
      if (button) selectUser(button.dataset.user);
    });
    $('history-form').addEventListener('submit', (event) => {
      event.preventDefault();
      startHistory();
    });
    $('history-next').addEventListener('click', () => {
      const history = state.history;
      if (history.hasMore && history.next) showPage([...history.cursors, history.next]);
    });
    $('history-prev').addEventListener('click', () => {
      const history = state.history;
      if (history.cursors.length > 1) showPage(history.cursors.slice(0, -1));
    });
    setInterval(updateRate, 1000);
    renderChart();
    updatePager();
    const linked = new URLSearchParams(window.location.hash.slice(1)).get('user');
    if (linked && UUID.test(linked)) selectUser(linked.toLowerCase());
    else openStream();
    loadUsers();
    checkHealth();
  }

  start();
})();
