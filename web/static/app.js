// Citizen lookup page: posts the typed details to the lookup API and shows the certificate:
// Vietnamese beside the English the certificate carries (window.VAXPASS_VI, from
// /static/vi.js), dates as DD/MM/YYYY, the QR code and a link to the PDF.
// No framework, no inline script (the page's CSP allows only 'self'), nothing stored on the
// device, and every value is written with textContent, never as HTML.
(function () {
  'use strict';

  var LOOKUP_URL = '/v1/passports/lookup';
  var TIMEOUT_MS = 20000;
  var INPUTS = ['id_number', 'full_name', 'dob'];
  // The contract's `fields` keys.
  var FIELDS = ['full_name', 'date_of_birth', 'nationality', 'disease', 'doses_received',
    'date_of_vaccination', 'dose_number', 'vaccine', 'vaccine_product', 'manufacturer',
    'certificate_id'];
  // Values read from the HC1 itself, beside the fields in the answer.
  var PAGE = ['name_icao', 'country', 'issuer', 'expires_at'];
  // Dates shown DD/MM/YYYY, as Vietnamese documents write them.
  var DATES = { date_of_birth: true, date_of_vaccination: true };
  // Values shown with their Vietnamese (#field-<key>-vi), by the VAXPASS_VI table's kind.
  var TRANSLATED = { nationality: 'country', vaccine: 'vaccine', country: 'country', issuer: 'issuer' };
  // What the API takes (shared/domain/dose NormalizeDate): DD/MM/YYYY (also D/M, with '.'
  // or '-'), MM/YYYY, or YYYY-MM-DD, YYYY-MM, YYYY. The calendar is the API's to check.
  var DOB_PATTERN = /^([0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?|[0-9]{1,2}([\/.-])[0-9]{1,2}\4[0-9]{4}|[0-9]{1,2}[\/.][0-9]{4})$/;

  var TEXT = {
    notFound: ['Không tìm thấy chứng nhận phù hợp với thông tin đã nhập. Vui lòng kiểm tra lại số CCCD/CMND, họ và tên, ngày sinh.',
      'No certificate matches the details entered. Please check the ID number, full name and date of birth.'],
    tooMany: ['Bạn đã thử quá nhiều lần. Vui lòng đợi {n} giây rồi thử lại.',
      'Too many attempts. Please wait {n} seconds and try again.'],
    invalid: ['Thông tin chưa hợp lệ.', 'The details are not valid:'],
    unavailable: ['Hệ thống đang bận hoặc không kết nối được. Vui lòng thử lại sau.',
      'The service is unavailable. Please try again later.'],
    checkForm: ['Vui lòng kiểm tra các ô được đánh dấu.', 'Please check the highlighted fields.'],
    required: ['Vui lòng nhập thông tin này.', 'This field is required.'],
    dobFormat: ['Ngày sinh phải có dạng NN/TT/NNNN (ví dụ 17/05/1990), TT/NNNN hoặc NNNN.',
      'Date of birth must be DD/MM/YYYY (e.g. 17/05/1990), MM/YYYY or YYYY.'],
    busy: ['Đang tra cứu…', 'Looking up…']
  };

  function $(id) { return document.getElementById(id); }

  // bilingual fills el with "vi / en" as two spans, the English one marked lang="en".
  function bilingual(el, pair, extra) {
    el.textContent = '';
    var vi = document.createElement('span');
    vi.textContent = pair[0];
    var en = document.createElement('span');
    en.lang = 'en';
    en.className = 'en';
    en.textContent = pair[1] + (extra ? ' ' + extra : '');
    el.appendChild(vi);
    el.appendChild(document.createTextNode(' '));
    el.appendChild(en);
  }

  function fill(pair, n) {
    return [pair[0].replace('{n}', n), pair[1].replace('{n}', n)];
  }

  function showMessage(kind, pair, extra) {
    var box = $('message');
    box.className = 'message message-' + kind;
    bilingual(box, pair, extra);
    box.hidden = false;
  }

  function clearMessage() {
    var box = $('message');
    box.hidden = true;
    box.textContent = '';
    $('report-wrap').hidden = true;
  }

  function setFieldError(name, pair, extra) {
    var input = $(name);
    var err = $(name + '-error');
    if (!input || !err) { return false; }
    input.setAttribute('aria-invalid', 'true');
    bilingual(err, pair, extra);
    err.hidden = false;
    return true;
  }

  function clearFieldErrors() {
    INPUTS.forEach(function (name) {
      $(name).removeAttribute('aria-invalid');
      var err = $(name + '-error');
      err.hidden = true;
      err.textContent = '';
    });
  }

  // hideResult removes the previous certificate from the page, so a new lookup on a shared
  // device never shows someone else's details next to a new error.
  function hideResult() {
    $('result').hidden = true;
    FIELDS.concat(PAGE).forEach(function (key) {
      $('field-' + key).textContent = '';
      if (TRANSLATED[key]) { $('field-' + key + '-vi').textContent = ''; }
    });
    var qr = $('qr');
    qr.removeAttribute('src');
    qr.hidden = true;
    var pdf = $('download');
    pdf.removeAttribute('href');
    pdf.hidden = true;
  }

  function display(value) {
    if (value === null || value === undefined) { return '—'; }
    return String(value);
  }

  // doseNumber shows the certified dose as "dn/sd" (EU DCC): dose_number with total_doses
  // (the API's sd), or a ready "2/2" string.
  function doseNumber(fields) {
    var dn = fields.dose_number;
    if (typeof dn === 'string') { return dn; }
    var sd = fields.total_doses;
    if (typeof dn === 'number' && typeof sd === 'number') { return dn + '/' + sd; }
    return display(dn);
  }

  // dateVI writes YYYY-MM-DD (or YYYY-MM, YYYY) as DD/MM/YYYY (MM/YYYY, YYYY), as
  // passportpage.DateVI does for the PDF.
  function dateVI(iso) {
    if (typeof iso !== 'string' || iso === '') { return '—'; }
    if (!/^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$/.test(iso)) { return iso; }
    return iso.split('-').reverse().join('/');
  }

  // valueVI is the Vietnamese of a value the certificate carries in English, '' if none.
  function valueVI(kind, value) {
    var table = window.VAXPASS_VI && window.VAXPASS_VI[kind];
    if (!table || typeof value !== 'string' || !Object.prototype.hasOwnProperty.call(table, value)) { return ''; }
    return String(table[value]);
  }

  // icaoName writes the DCC's fnt and gnt as a passport's machine-readable zone does:
  // NGUYEN<<THI<LAN.
  function icaoName(n) {
    if (!n || typeof n.fnt !== 'string' || n.fnt === '') { return '—'; }
    return typeof n.gnt === 'string' && n.gnt !== '' ? n.fnt + '<<' + n.gnt : n.fnt;
  }

  // expiryDate shows a timestamp as its calendar date in Viet Nam (DD/MM/YYYY).
  function expiryDate(value) {
    if (typeof value !== 'string' || value === '') { return '—'; }
    var t = new Date(value);
    if (isNaN(t.getTime())) { return value; }
    try {
      var parts = {};
      new Intl.DateTimeFormat('en-GB', {
        timeZone: 'Asia/Ho_Chi_Minh', year: 'numeric', month: '2-digit', day: '2-digit'
      }).formatToParts(t).forEach(function (p) { parts[p.type] = p.value; });
      return parts.day + '/' + parts.month + '/' + parts.year;
    } catch (e) {
      return dateVI(value.slice(0, 10));
    }
  }

  // sameOriginPath accepts only a path on this site for the QR image and the PDF.
  function sameOriginPath(p) {
    return typeof p === 'string' && p.charAt(0) === '/' && p.charAt(1) !== '/' && p.charAt(1) !== '\\';
  }

  function setValue(key, value) {
    $('field-' + key).textContent = value;
    if (TRANSLATED[key]) { $('field-' + key + '-vi').textContent = valueVI(TRANSLATED[key], value); }
  }

  function showResult(data) {
    var fields = (data && typeof data.fields === 'object' && data.fields) || {};
    FIELDS.forEach(function (key) {
      var v;
      if (key === 'dose_number') {
        v = doseNumber(fields);
      } else if (DATES[key]) {
        v = dateVI(fields[key]);
      } else {
        v = display(fields[key]);
      }
      setValue(key, v);
    });
    setValue('name_icao', icaoName(data.name_icao));
    setValue('country', data.country ? display(data.country) : '—');
    setValue('issuer', data.issuer ? display(data.issuer) : '—');
    setValue('expires_at', expiryDate(data.expires_at));
    var qr = $('qr');
    if (sameOriginPath(data.qr_png)) {
      qr.src = data.qr_png;
      qr.hidden = false;
    }
    var pdf = $('download');
    if (sameOriginPath(data.pdf)) {
      pdf.href = data.pdf;
      pdf.hidden = false;
    }
    var result = $('result');
    result.hidden = false;
    result.focus({ preventScroll: true });
    if (result.scrollIntoView) { result.scrollIntoView({ behavior: 'smooth', block: 'start' }); }
  }

  function values() {
    return {
      id_number: $('id_number').value.trim(),
      full_name: $('full_name').value.trim().replace(/\s+/g, ' '),
      dob: $('dob').value.trim()
    };
  }

  function validate(v) {
    var first = null;
    INPUTS.forEach(function (name) {
      var problem = null;
      if (v[name] === '') {
        problem = TEXT.required;
      } else if (name === 'dob' && !DOB_PATTERN.test(v.dob)) {
        problem = TEXT.dobFormat;
      }
      if (problem) {
        setFieldError(name, problem);
        if (!first) { first = name; }
      }
    });
    return first;
  }

  var submitButton;
  var submitLabel;
  var blockedUntil = 0;

  function setBusy(busy) {
    var form = $('lookup');
    form.setAttribute('aria-busy', busy ? 'true' : 'false');
    submitButton.disabled = busy || Date.now() < blockedUntil;
    if (busy) {
      bilingual(submitButton, TEXT.busy);
    } else {
      submitButton.textContent = '';
      submitLabel.forEach(function (n) { submitButton.appendChild(n.cloneNode(true)); });
    }
  }

  function blockFor(seconds) {
    blockedUntil = Date.now() + seconds * 1000;
    submitButton.disabled = true;
    window.setTimeout(function () {
      if (Date.now() >= blockedUntil) { submitButton.disabled = false; }
    }, seconds * 1000 + 50);
  }

  function readJSON(res) {
    return res.text().then(function (t) {
      try { return JSON.parse(t); } catch (e) { return null; }
    });
  }

  function handleError(status, body, res) {
    if (status === 404) {
      // One neutral answer: "no such person" and "details do not match" must look the same.
      showMessage('info', TEXT.notFound);
      $('report-wrap').hidden = false;
      return;
    }
    if (status === 429) {
      var n = parseInt(res.headers.get('Retry-After') || '', 10);
      if (!(n > 0)) { n = 60; }
      showMessage('warning', fill(TEXT.tooMany, n));
      blockFor(n);
      return;
    }
    if (status === 400 || status === 422) {
      var err = (body && body.error) || {};
      var msg = typeof err.message === 'string' ? err.message : '';
      if (err.field && setFieldError(err.field, TEXT.invalid, msg)) {
        showMessage('error', TEXT.checkForm);
        $(err.field).focus();
      } else {
        showMessage('error', TEXT.invalid, msg);
      }
      return;
    }
    showMessage('error', TEXT.unavailable);
  }

  function submit(event) {
    event.preventDefault();
    if (submitButton.disabled) { return; }
    hideResult();
    clearMessage();
    clearFieldErrors();
    var v = values();
    var bad = validate(v);
    if (bad) {
      showMessage('error', TEXT.checkForm);
      $(bad).focus();
      return;
    }
    setBusy(true);
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : 0;
    fetch(LOOKUP_URL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify(v),
      cache: 'no-store',
      credentials: 'same-origin',
      referrerPolicy: 'no-referrer',
      signal: controller ? controller.signal : undefined
    }).then(function (res) {
      return readJSON(res).then(function (body) {
        if (res.status === 200 && body) {
          showResult(body);
        } else {
          handleError(res.status, body, res);
        }
      });
    }).catch(function () {
      showMessage('error', TEXT.unavailable);
    }).then(function () {
      if (timer) { window.clearTimeout(timer); }
      setBusy(false);
    });
  }

  function reset() {
    hideResult();
    clearMessage();
    clearFieldErrors();
    $('lookup').reset();
    $('id_number').focus();
  }

  function init() {
    submitButton = $('submit');
    submitLabel = Array.prototype.slice.call(submitButton.childNodes).map(function (n) { return n.cloneNode(true); });
    hideResult();
    $('lookup').addEventListener('submit', submit);
    $('reset').addEventListener('click', reset);
    $('print').addEventListener('click', function () { window.print(); });
    INPUTS.forEach(function (name) {
      $(name).addEventListener('input', function () {
        $(name).removeAttribute('aria-invalid');
        $(name + '-error').hidden = true;
      });
    });
    document.documentElement.classList.add('js');
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());
