/* Ops dashboard: asks for the ops key, keeps it in sessionStorage (this tab only), fetches
   GET /v1/stats with it (read when asked; with ?province= for a province's communes) and
   draws the numbers. A commune or a site opens its follow-up: the worklists' API paths
   and the key that opens them, the dead letters, a prefilled reprocessing selector. No
   external resource, no inline code; all text goes in through textContent. */
(function () {
  'use strict';

  var KEY = 'vaxpass.opsKey';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var numberFormat = new Intl.NumberFormat('vi-VN');
  var percentFormat = new Intl.NumberFormat('vi-VN', { style: 'percent', maximumFractionDigits: 1 });

  var STATUS_LABELS = {
    VERIFIED: ['Xác thực', 'Verified'],
    PENDING: ['Chờ khớp', 'Pending'],
    MISMATCH: ['Sai lệch', 'Mismatch'],
    NOT_FOUND: ['Không tìm thấy', 'Not found'],
    INVALID_ID: ['ID không hợp lệ', 'Invalid ID'],
    NO_ID: ['Thiếu ID', 'No ID']
  };
  var ATTENTION = ['MISMATCH', 'NOT_FOUND', 'INVALID_ID', 'NO_ID'];
  var STATUS_ORDER = ['MISMATCH', 'NOT_FOUND', 'INVALID_ID', 'NO_ID', 'PENDING', 'VERIFIED'];
  var CERT_COLUMNS = [
    ['valid', 'Còn hiệu lực', 'Valid', 'ok'],
    ['expiring', 'Sắp hết hạn', 'Expiring', 'warn'],
    ['expired', 'Hết hạn', 'Expired', ''],
    ['revoked', 'Thu hồi', 'Revoked', 'bad']
  ];

  var SECURITY_LABELS = {
    auth_failed: ['Khóa thiếu hoặc sai', 'Missing or unknown key'],
    auth_revoked: ['Khóa đã thu hồi', 'Revoked key used'],
    forbidden: ['Ngoài quyền', 'Forbidden (role or scope)'],
    body_too_large: ['Dữ liệu gửi quá lớn', 'Request body too large'],
    rate_limited: ['Vượt giới hạn tần suất', 'Rate limited'],
    busy: ['Quá tải, từ chối', 'Busy, refused'],
    identity_locked: ['Tra cứu bị khóa theo số định danh', 'Lookup locked per ID number'],
    import_refused: ['Tệp nhập bị từ chối', 'Import refused'],
    other: ['Khác', 'Other']
  };

  function $(id) { return document.getElementById(id); }
  function fmt(n) { return numberFormat.format(n); }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) { e.className = className; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function bilingual(parent, vi, en) {
    parent.appendChild(document.createTextNode(vi + ' '));
    var s = el('span', 'en', en);
    s.lang = 'en';
    parent.appendChild(s);
    return parent;
  }

  function show(id, on) { $(id).hidden = !on; }

  function showLogin(message) {
    show('dashboard', false);
    show('session', false);
    show('loading', false);
    show('load-error', false);
    show('login', true);
    var err = $('login-error');
    if (message) {
      err.textContent = '';
      bilingual(err, message[0], message[1]);
      err.hidden = false;
    } else {
      err.hidden = true;
    }
    $('key').focus();
  }

  function showLoadError(vi, en) {
    var box = $('load-error');
    box.textContent = '';
    bilingual(box, vi, en);
    box.hidden = false;
    show('loading', false);
  }

  // province is the province whose communes are shown ('' for none): a refresh reads
  // them again with the rest.
  var province = '';
  // picked is the commune or site the follow-up card is about (null for none).
  var picked = null;

  function authHeaders(key) {
    return { 'Authorization': 'Bearer ' + key, 'Accept': 'application/json' };
  }

  function load() {
    var key = sessionStorage.getItem(KEY);
    if (!key) {
      showLogin(null);
      return;
    }
    show('login', false);
    show('load-error', false);
    show('loading', $('dashboard').hidden);
    $('refresh').disabled = true;
    fetch('/v1/stats' + (province ? '?province=' + encodeURIComponent(province) : ''), {
      headers: authHeaders(key),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer'
    }).then(function (res) {
      if (res.status === 401) {
        sessionStorage.removeItem(KEY);
        showLogin(['Khóa vận hành không được chấp nhận.', 'The ops key was not accepted.']);
        return null;
      }
      if (!res.ok) {
        showLoadError('Không tải được số liệu (mã ' + res.status + '). Vui lòng thử lại.',
          'Could not load the figures (status ' + res.status + '). Please try again.');
        return null;
      }
      return res.json();
    }).then(function (snap) {
      if (snap) { render(snap); }
    }).catch(function () {
      showLoadError('Không kết nối được máy chủ. Vui lòng thử lại.', 'Could not reach the server. Please try again.');
    }).then(function () {
      $('refresh').disabled = false;
    });
  }

  function setNumber(id, n) {
    var e = $(id);
    e.textContent = fmt(n);
    e.setAttribute('data-n', String(n));
  }

  function render(snap) {
    var total = snap.total;
    var statuses = snap.statuses;
    setNumber('kpi-doses', total.doses);
    setNumber('kpi-verified', total.by_status.VERIFIED || 0);
    $('kpi-verified-share').textContent = total.doses ? percentFormat.format((total.by_status.VERIFIED || 0) / total.doses) : '\u00a0';
    var attention = 0;
    ATTENTION.forEach(function (s) { attention += total.by_status[s] || 0; });
    setNumber('kpi-attention', attention);
    setNumber('kpi-valid', total.certificates.valid);
    setNumber('kpi-expiring', total.certificates.expiring);
    var note = $('kpi-expiring-note');
    note.textContent = '';
    bilingual(note, 'trong ' + snap.expiring_within_days + ' ngày', 'within ' + snap.expiring_within_days + ' days');
    setNumber('kpi-revoked', total.certificates.revoked);

    var asOf = snap.as_of || snap.generated_at;
    $('asof').textContent = formatTime(asOf);
    $('asof').setAttribute('datetime', asOf);

    renderChart(snap.issuance || []);
    renderTable($('provinces'), statuses, snap.provinces.map(function (p) {
      var unknown = p.code === 'unknown';
      return {
        key: p.code, code: unknown ? '' : p.code,
        name: unknown ? 'Không xác định / Unknown' : (p.name || p.code),
        unknown: unknown, row: p
      };
    }), ['Tỉnh, thành phố', 'Province'], total, { pick: openProvince, selected: province });
    renderTable($('facilities'), statuses, (snap.facilities || []).map(function (f) {
      return { key: f.id, code: f.id, name: f.name || '', row: f };
    }), ['Cơ sở', 'Site'], null, {
      pick: function (r) { openActions({ kind: 'facility', id: r.key, name: r.name, row: r.row }); },
      selected: picked && picked.kind === 'facility' ? picked.id : null
    });
    applyFilter();
    renderCommunes(statuses, snap.communes);
    if (picked) {
      // The follow-up card shows the numbers just read.
      var fresh = findPicked(snap);
      if (fresh) { picked.row = fresh; renderActions(); }
    }
    renderSecurity(snap.security);

    show('loading', false);
    show('session', true);
    show('dashboard', true);
  }

  // renderSecurity lists the security events by kind: today (Vietnam day) and in all.
  function renderSecurity(sec) {
    var card = $('security-card');
    card.hidden = !sec;
    if (!sec) { return; }
    var table = $('security');
    table.textContent = '';
    var thead = el('thead');
    var hr = el('tr');
    [['Loại', 'Kind'], ['Hôm nay', 'Today'], ['Tổng', 'Total']].forEach(function (h, i) {
      var th = bilingual(el('th', i === 0 ? 'name' : null), h[0], h[1]);
      th.scope = 'col';
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    table.appendChild(thead);
    var tbody = el('tbody');
    var kinds = Object.keys(SECURITY_LABELS).filter(function (k) { return sec[k]; });
    Object.keys(sec).forEach(function (k) { if (kinds.indexOf(k) < 0) { kinds.push(k); } });
    kinds.forEach(function (k) {
      var label = SECURITY_LABELS[k] || [k, k];
      var tr = el('tr');
      tr.setAttribute('data-key', k);
      tr.appendChild(bilingual(el('td', 'name'), label[0], label[1]));
      ['today', 'total'].forEach(function (f) {
        var n = sec[k][f] || 0;
        var td = el('td', n === 0 ? 'zero' : (f === 'today' ? 'warn' : null), fmt(n));
        td.setAttribute('data-col', f);
        td.setAttribute('data-n', String(n));
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
  }

  function formatTime(iso) {
    try {
      return new Date(iso).toLocaleString('vi-VN', {
        timeZone: 'Asia/Ho_Chi_Minh', hour: '2-digit', minute: '2-digit',
        day: '2-digit', month: '2-digit', year: 'numeric'
      });
    } catch (e) {
      return iso;
    }
  }

  function columns(statuses, dosesOnly) {
    var cols = [{ key: 'doses', vi: 'Mũi tiêm', en: 'Doses', get: function (r) { return r.doses; } }];
    statuses.forEach(function (s, i) {
      var label = STATUS_LABELS[s] || [s, s];
      cols.push({
        key: 'status:' + s, vi: label[0], en: label[1], status: s, first: i === 0,
        get: function (r) { return r.by_status[s] || 0; }
      });
    });
    if (dosesOnly) { return cols; }
    CERT_COLUMNS.forEach(function (c, i) {
      cols.push({
        key: 'cert:' + c[0], vi: c[1], en: c[2], tone: c[3], groupStart: i === 0,
        get: function (r) { return r.certificates[c[0]]; }
      });
    });
    return cols;
  }

  function numberCell(col, row) {
    var n = col.get(row);
    var td = el('td', null, fmt(n));
    td.setAttribute('data-col', col.key);
    td.setAttribute('data-n', String(n));
    var classes = [];
    if (col.groupStart || col.first) { classes.push('group-start'); }
    if (n === 0) {
      classes.push('zero');
    } else if (col.status === 'VERIFIED' || col.tone === 'ok') {
      classes.push('ok');
    } else if (col.tone) {
      classes.push(col.tone);
    } else if (col.status && ATTENTION.indexOf(col.status) >= 0) {
      classes.push('warn');
    }
    td.className = classes.join(' ');
    return td;
  }

  // renderTable draws rows of counts; opt.pick, when set, makes a row clickable (and
  // keyboard-operable) and is called with it; opt.selected marks a row's key.
  function renderTable(table, statuses, rows, nameHeader, total, opt) {
    opt = opt || {};
    var cols = columns(statuses, opt.dosesOnly);
    table.textContent = '';
    var thead = el('thead');
    var hr = el('tr');
    var th = bilingual(el('th', 'name'), nameHeader[0], nameHeader[1]);
    th.scope = 'col';
    th.setAttribute('data-col', 'name');
    th.title = 'Sắp xếp / Sort';
    hr.appendChild(th);
    cols.forEach(function (c) {
      var h = bilingual(el('th', (c.groupStart || c.first) ? 'group-start' : null), c.vi, c.en);
      h.scope = 'col';
      h.setAttribute('data-col', c.key);
      h.title = 'Sắp xếp / Sort';
      hr.appendChild(h);
    });
    hr.addEventListener('click', function (ev) {
      var h = ev.target.closest('th');
      if (h) { sortBy(table, h); }
    });
    thead.appendChild(hr);
    table.appendChild(thead);

    var tbody = el('tbody');
    rows.forEach(function (r) {
      var tr = el('tr');
      var classes = [];
      if (r.unknown) { classes.push('unknown'); }
      if (r.muted) { classes.push('muted'); }
      if (opt.pick && !r.muted) {
        classes.push('pick');
        tr.tabIndex = 0;
        tr.addEventListener('click', function () { opt.pick(r); });
        tr.addEventListener('keydown', function (ev) {
          if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); opt.pick(r); }
        });
      }
      if (opt.selected !== undefined && opt.selected !== null && opt.selected === r.key) {
        classes.push('selected');
        tr.setAttribute('aria-selected', 'true');
      }
      tr.className = classes.join(' ');
      tr.setAttribute('data-key', r.key);
      tr.setAttribute('data-search', fold(r.key + ' ' + r.name));
      var name = el('td', 'name');
      name.setAttribute('data-col', 'name');
      if (r.code) { name.appendChild(el('span', 'code', r.code)); }
      name.appendChild(document.createTextNode(r.name));
      name.title = (r.code ? r.code + ' ' : '') + r.name;
      tr.appendChild(name);
      cols.forEach(function (c) { tr.appendChild(numberCell(c, r.row)); });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);

    if (total) {
      var tfoot = el('tfoot');
      var fr = el('tr');
      fr.setAttribute('data-key', 'total');
      var label = bilingual(el('td', 'name'), 'Cả nước', 'Whole country');
      label.setAttribute('data-col', 'name');
      fr.appendChild(label);
      cols.forEach(function (c) { fr.appendChild(numberCell(c, total)); });
      tfoot.appendChild(fr);
      table.appendChild(tfoot);
    }
  }

  // sortBy orders a table's body by a column: numbers largest first, names A-Z; a second
  // click reverses. The whole-country row stays at the foot.
  function sortBy(table, th) {
    var col = th.getAttribute('data-col');
    var numeric = col !== 'name';
    var current = th.getAttribute('aria-sort');
    var dir = current === (numeric ? 'descending' : 'ascending') ? (numeric ? 'ascending' : 'descending') : (numeric ? 'descending' : 'ascending');
    table.querySelectorAll('thead th').forEach(function (x) { x.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var value = function (tr) {
      var td = tr.querySelector('td[data-col="' + col + '"]');
      return numeric ? +td.getAttribute('data-n') : tr.getAttribute('data-key');
    };
    rows.sort(function (a, b) {
      var va = value(a), vb = value(b);
      var c = va < vb ? -1 : va > vb ? 1 : 0;
      if (c === 0) { c = a.getAttribute('data-key') < b.getAttribute('data-key') ? -1 : 1; return c; }
      return dir === 'ascending' ? c : -c;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  }

  // fold lower-cases and strips diacritics, so "ha noi" finds "Hà Nội".
  function fold(s) {
    return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/g, 'd').replace(/Đ/g, 'd').toLowerCase();
  }

  function applyFilter() {
    var q = fold($('fac-filter').value.trim());
    var rows = $('facilities').querySelectorAll('tbody tr');
    for (var i = 0; i < rows.length; i++) {
      rows[i].hidden = q !== '' && rows[i].getAttribute('data-search').indexOf(q) < 0;
    }
  }

  // ---- drill-down and follow-up ----

  // openProvince reads the numbers again with a province's communes (current when asked).
  function openProvince(r) {
    province = r.key;
    load();
  }

  function renderCommunes(statuses, pc) {
    var card = $('communes-card');
    if (!province || !pc || pc.province !== province) {
      card.hidden = true;
      return;
    }
    var label = $('com-province');
    label.textContent = '';
    if (pc.province !== 'unknown') { label.appendChild(el('span', 'code', pc.province)); }
    label.appendChild(document.createTextNode(pc.province === 'unknown' ? 'Không xác định / Unknown' : (pc.name || pc.province)));
    var rows = pc.communes.map(function (c) {
      return { key: c.code, code: c.code, name: '', row: c };
    });
    if (pc.without_commune && pc.without_commune.doses > 0) {
      rows.push({ key: '', code: '', name: 'Không có mã xã / No commune code', unknown: true, muted: true, row: pc.without_commune });
    }
    renderTable($('communes'), statuses, rows, ['Mã xã', 'Commune'], null, {
      dosesOnly: true,
      pick: function (r) { openActions({ kind: 'commune', id: r.key, province: pc.province, row: r.row }); },
      selected: picked && picked.kind === 'commune' ? picked.id : null
    });
    if (rows.length === 0) {
      var empty = el('tbody');
      var tr = el('tr');
      var td = bilingual(el('td', 'name'), 'Chưa có mũi tiêm nào có mã xã.', 'No dose record with a commune code yet.');
      td.colSpan = statuses.length + 2;
      tr.appendChild(td);
      empty.appendChild(tr);
      $('communes').appendChild(empty);
    }
    card.hidden = false;
  }

  function findPicked(snap) {
    if (picked.kind === 'facility') {
      return (snap.facilities || []).filter(function (f) { return f.id === picked.id; })[0] || null;
    }
    if (snap.communes && snap.communes.province === picked.province) {
      return snap.communes.communes.filter(function (c) { return c.code === picked.id; })[0] || null;
    }
    return null;
  }

  function openActions(p) {
    picked = p;
    $('act-dead-result').hidden = true;
    $('act-run-result').hidden = true;
    var statuses = ATTENTION.filter(function (s) { return p.row.by_status[s]; });
    var sel = { stage: 'match', status: statuses.length ? statuses : ATTENTION.slice() };
    if (p.kind === 'commune') {
      sel.commune = [p.id];
    } else {
      sel.facility = [p.id];
    }
    sel.reason = 'ops dashboard: ' + (p.kind === 'commune' ? 'commune ' : 'site ') + p.id;
    $('act-selector').value = JSON.stringify(sel, null, 2);
    renderActions();
    // Mark the picked row.
    ['communes', 'facilities'].forEach(function (id) {
      $(id).querySelectorAll('tbody tr').forEach(function (tr) {
        var on = (id === 'communes') === (p.kind === 'commune') && tr.getAttribute('data-key') === p.id;
        tr.classList.toggle('selected', on);
        if (on) { tr.setAttribute('aria-selected', 'true'); } else { tr.removeAttribute('aria-selected'); }
      });
    });
    var card = $('actions-card');
    card.hidden = false;
    card.scrollIntoView({ block: 'start' });
  }

  // renderActions lists, per match status with records, the worklist (the API path and
  // the key that opens it) and the registry officer's view of the picked commune or site.
  function renderActions() {
    var p = picked;
    var scope = $('act-scope');
    scope.textContent = '';
    scope.appendChild(el('span', 'code', p.id));
    if (p.kind === 'commune') {
      bilingual(scope, 'xã', 'commune');
    } else {
      scope.appendChild(document.createTextNode(p.name || ''));
    }
    var note = $('act-worklist-note');
    note.textContent = '';
    if (p.kind === 'commune') {
      bilingual(note, 'Mở bằng khóa cán bộ xã ' + p.id + ' (vai trò clerk); danh sách hộ tịch bằng khóa cán bộ hộ tịch (officer).',
        'Opened with the clerk key of commune ' + p.id + '; the registry view with a registry officer key.');
    } else {
      bilingual(note, 'Mở bằng khóa API của cơ sở ' + p.id + '; danh sách hộ tịch bằng khóa cán bộ hộ tịch (officer).',
        'Opened with site ' + p.id + '’s API key; the registry view with a registry officer key.');
    }
    var table = $('act-worklists');
    table.textContent = '';
    var thead = el('thead');
    var hr = el('tr');
    [['Trạng thái', 'Status'], ['Số', 'Count'], ['Danh sách (GET)', 'Worklist (GET)'], ['Cán bộ hộ tịch (GET)', 'Registry officer (GET)']].forEach(function (h, i) {
      var th = bilingual(el('th', i === 1 ? null : 'name'), h[0], h[1]);
      th.scope = 'col';
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    table.appendChild(thead);
    var tbody = el('tbody');
    (STATUS_ORDER).forEach(function (st) {
      var n = p.row.by_status[st] || 0;
      if (!n) { return; }
      var label = STATUS_LABELS[st] || [st, st];
      var tr = el('tr');
      tr.setAttribute('data-key', st);
      tr.appendChild(bilingual(el('td', 'name'), label[0], label[1]));
      var count = el('td', ATTENTION.indexOf(st) >= 0 ? 'warn' : null, fmt(n));
      count.setAttribute('data-n', String(n));
      tr.appendChild(count);
      var wl = el('td', 'name');
      wl.appendChild(el('code', 'path', '/v1/worklist?status=' + st + '&format=xlsx'));
      wl.setAttribute('data-col', 'worklist');
      tr.appendChild(wl);
      var reg = el('td', 'name');
      if (ATTENTION.indexOf(st) >= 0) {
        reg.appendChild(el('code', 'path', '/v1/registry/records?status=' + st + '&' +
          (p.kind === 'commune' ? 'commune_code=' : 'facility_id=') + encodeURIComponent(p.id)));
      }
      reg.setAttribute('data-col', 'registry');
      tr.appendChild(reg);
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
  }

  function opsFetch(path, init) {
    var key = sessionStorage.getItem(KEY);
    if (!key) {
      showLogin(null);
      return Promise.reject(new Error('signed out'));
    }
    init = init || {};
    init.headers = authHeaders(key);
    init.cache = 'no-store';
    init.credentials = 'omit';
    init.referrerPolicy = 'no-referrer';
    return fetch(path, init).then(function (res) {
      if (res.status === 401) {
        sessionStorage.removeItem(KEY);
        showLogin(['Khóa vận hành không được chấp nhận.', 'The ops key was not accepted.']);
        throw new Error('unauthorized');
      }
      return res.json().catch(function () { return {}; }).then(function (body) { return { status: res.status, body: body }; });
    });
  }

  function showResult(id, vi, en, text) {
    var box = $(id);
    box.textContent = '';
    bilingual(box, vi, en);
    if (text) { box.appendChild(document.createTextNode('\n' + text)); }
    box.hidden = false;
  }

  // showDeadLetters counts the first page (1,000) of each queue.
  function showDeadLetters() {
    var queues = ['central', 'matcher'];
    Promise.all(queues.map(function (q) { return opsFetch('/v1/ops/dead-letters?queue=' + q); })).then(function (answers) {
      var parts = answers.map(function (a, i) {
        if (a.status !== 200) { return queues[i] + ': ? (' + a.status + ')'; }
        var n = (a.body.dead_letters || []).length;
        return queues[i] + ': ' + fmt(n) + (a.body.next ? '+' : '');
      });
      showResult('act-dead-result', 'Thư lỗi', 'Dead letters', parts.join(' · '));
    }).catch(function () {});
  }

  // reprocess posts the selector as it stands in the box: a dry run, or a run after a
  // confirmation. Only counts are shown (the changes name records).
  function reprocess(dryRun) {
    var sel;
    try {
      sel = JSON.parse($('act-selector').value);
    } catch (e) {
      showResult('act-run-result', 'Bộ chọn không phải JSON.', 'The selector is not JSON.', String(e.message || e));
      return;
    }
    sel.dry_run = dryRun;
    if (!dryRun && !window.confirm('Chạy xử lý lại cho bộ chọn này? / Run reprocessing for this selector?')) { return; }
    $('act-dry').disabled = $('act-run').disabled = true;
    opsFetch('/v1/ops/reprocess', { method: 'POST', body: JSON.stringify(sel) }).then(function (a) {
      var b = a.body || {};
      var shown = { http_status: a.status };
      ['run_id', 'status', 'dry_run', 'done', 'counts', 'error', 'message', 'field'].forEach(function (k) {
        if (b[k] !== undefined) { shown[k] = b[k]; }
      });
      showResult('act-run-result', dryRun ? 'Chạy thử' : 'Chạy', dryRun ? 'Dry run' : 'Run', JSON.stringify(shown, null, 2));
    }).catch(function () {}).then(function () {
      $('act-dry').disabled = $('act-run').disabled = false;
    });
  }

  // ---- chart ----

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function dayNumber(iso) { return Math.round(Date.UTC(+iso.slice(0, 4), +iso.slice(5, 7) - 1, +iso.slice(8, 10)) / 86400000); }
  function isoOf(day) { return new Date(day * 86400000).toISOString().slice(0, 10); }

  function niceStep(max, ticks) {
    var raw = Math.max(max, 1) / ticks;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * mag >= raw) { return Math.max(1, steps[i] * mag); }
    }
    return 10 * mag;
  }

  function renderChart(days) {
    var box = $('chart');
    box.textContent = '';
    var W = 1200, H = 280, left = 64, right = 16, top = 22, bottom = 34;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-labelledby': 'chart-title' });
    box.appendChild(root);
    var note = $('chart-note');
    note.textContent = '';
    if (days.length === 0) {
      root.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'class': 'empty' }, 'Chưa có chứng nhận nào / No certificates yet'));
      return;
    }
    // Every day from the first to the last, zero where nothing was issued.
    var first = dayNumber(days[0].date), last = dayNumber(days[days.length - 1].date);
    var counts = {};
    var sum = 0, max = 0;
    days.forEach(function (d) { counts[dayNumber(d.date)] = d.issued; sum += d.issued; max = Math.max(max, d.issued); });
    var n = last - first + 1;
    bilingual(note, 'Tổng ' + fmt(sum) + ' chứng nhận, ' + formatDay(days[0].date) + ' – ' + formatDay(days[days.length - 1].date),
      fmt(sum) + ' certificates in all');
    root.setAttribute('data-total', String(sum));

    var step = niceStep(max, 5);
    var yMax = Math.ceil(max / step) * step;
    var plotW = W - left - right, plotH = H - top - bottom;
    var y = function (v) { return top + plotH - (v / yMax) * plotH; };
    for (var t = 0; t <= yMax; t += step) {
      root.appendChild(svg('line', { x1: left, x2: W - right, y1: y(t), y2: y(t), 'class': 'grid' }));
      root.appendChild(svg('text', { x: left - 8, y: y(t) + 4, 'text-anchor': 'end', 'class': 'tick' }, fmt(t)));
    }
    var slot = plotW / n;
    var barW = Math.max(1, slot * 0.78);
    for (var i = 0; i < n; i++) {
      var v = counts[first + i] || 0;
      if (v === 0) { continue; }
      var bar = svg('rect', { x: (left + i * slot + (slot - barW) / 2).toFixed(2), y: y(v).toFixed(2), width: barW.toFixed(2), height: (top + plotH - y(v)).toFixed(2), 'class': 'bar' });
      bar.setAttribute('data-date', isoOf(first + i));
      bar.setAttribute('data-n', String(v));
      bar.appendChild(svg('title', {}, formatDay(isoOf(first + i)) + ': ' + fmt(v)));
      root.appendChild(bar);
    }
    // The 7-day average smooths the day-to-day noise a morning reader does not care about.
    if (n >= 14) {
      var pts = [], win = 0;
      for (var j = 0; j < n; j++) {
        win += counts[first + j] || 0;
        if (j >= 7) { win -= counts[first + j - 7] || 0; }
        if (j >= 6) { pts.push((left + j * slot + slot / 2).toFixed(1) + ',' + y(win / 7).toFixed(1)); }
      }
      root.appendChild(svg('polyline', { points: pts.join(' '), 'class': 'avg' }));
      var lx = left + 6, ly = 4;
      root.appendChild(svg('rect', { x: lx, y: ly, width: 12, height: 10, 'class': 'legend-bar' }));
      root.appendChild(svg('text', { x: lx + 18, y: ly + 9, 'class': 'tick' }, 'Mỗi ngày / per day'));
      root.appendChild(svg('line', { x1: lx + 150, x2: lx + 168, y1: ly + 5, y2: ly + 5, 'class': 'avg' }));
      root.appendChild(svg('text', { x: lx + 174, y: ly + 9, 'class': 'tick' }, 'Trung bình 7 ngày / 7-day average'));
    }
    root.appendChild(svg('line', { x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, 'class': 'axis' }));
    // x labels: month starts over long ranges, about eight evenly spaced days otherwise.
    var labels = [];
    if (n > 62) {
      for (var d = 0; d < n; d++) {
        var iso = isoOf(first + d);
        if (iso.slice(8) === '01' || d === 0) { labels.push([d, iso.slice(5, 7) + '/' + iso.slice(0, 4)]); }
      }
      var every = Math.ceil(labels.length / 12);
      labels = labels.filter(function (_, k) { return k % every === 0; });
    } else {
      var gap = Math.max(1, Math.ceil(n / 8));
      for (var k = 0; k < n; k += gap) { labels.push([k, formatDay(isoOf(first + k)).slice(0, 5)]); }
    }
    labels.forEach(function (l) {
      var x = left + l[0] * slot + slot / 2;
      root.appendChild(svg('line', { x1: x, x2: x, y1: top + plotH, y2: top + plotH + 5, 'class': 'axis' }));
      root.appendChild(svg('text', { x: x, y: H - 12, 'text-anchor': 'middle', 'class': 'tick' }, l[1]));
    });
  }

  function formatDay(iso) { return iso.slice(8, 10) + '/' + iso.slice(5, 7) + '/' + iso.slice(0, 4); }

  // ---- events ----

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var key = $('key').value.trim();
      if (!key) {
        showLogin(['Hãy nhập khóa vận hành.', 'Enter the ops key.']);
        return;
      }
      sessionStorage.setItem(KEY, key);
      $('key').value = '';
      load();
    });
    $('refresh').addEventListener('click', load);
    $('signout').addEventListener('click', function () {
      sessionStorage.removeItem(KEY);
      province = '';
      picked = null;
      $('communes-card').hidden = true;
      $('actions-card').hidden = true;
      showLogin(null);
    });
    $('fac-filter').addEventListener('input', applyFilter);
    $('com-close').addEventListener('click', function () {
      province = '';
      $('communes-card').hidden = true;
      $('provinces').querySelectorAll('tbody tr.selected').forEach(function (tr) {
        tr.classList.remove('selected');
        tr.removeAttribute('aria-selected');
      });
      if (picked && picked.kind === 'commune') { picked = null; $('actions-card').hidden = true; }
    });
    $('act-close').addEventListener('click', function () { picked = null; $('actions-card').hidden = true; });
    $('act-dead').addEventListener('click', showDeadLetters);
    $('act-dry').addEventListener('click', function () { reprocess(true); });
    $('act-run').addEventListener('click', function () { reprocess(false); });
    load();
  });
})();
