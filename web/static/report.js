// Citizen's report page: posts what the citizen types to /v1/reports and shows the
// reference the answer carries, then the report's status (GET /v1/reports/{reference}).
// The answer is the same whatever the registry holds, so the page says nothing about
// whether a record exists. No framework, no inline script, nothing stored on the device;
// every value is written with textContent.
(function () {
  'use strict';

  var REPORTS_URL = '/v1/reports';
  var TIMEOUT_MS = 20000;
  var INPUTS = ['id_number', 'full_name', 'dob', 'gender', 'facility_id', 'commune_code', 'phone', 'note'];
  var REQUIRED = { id_number: true, full_name: true, dob: true, gender: true, facility_id: true, commune_code: true };
  // DD/MM/YYYY (also D/M/YYYY, with '.' or '-') or YYYY-MM-DD: the API (dose.NormalizeDate) checks the calendar.
  var DOB_PATTERN = /^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}([\/.-])[0-9]{1,2}\2[0-9]{4})$/;
  var REF_PATTERN = /^[A-Z2-7]{26}$/;

  var STATUS = {
    received: ['Đã nhận, đang chờ xử lý', 'Received, waiting to be reviewed'],
    in_review: ['Đang được kiểm tra', 'Being reviewed'],
    resolved: ['Đã giải quyết: hãy tra cứu lại hộ chiếu', 'Resolved: look up your passport again'],
    rejected: ['Không thể xử lý', 'Could not be processed']
  };
  var TEXT = {
    required: ['Vui lòng nhập thông tin này.', 'This field is required.'],
    dobFormat: ['Ngày sinh phải có dạng NN/TT/NNNN, ví dụ 17/05/1990.', 'Date of birth must be DD/MM/YYYY, e.g. 17/05/1990.'],
    invalid: ['Thông tin chưa hợp lệ.', 'This value is not valid:'],
    checkForm: ['Vui lòng kiểm tra các ô được đánh dấu.', 'Please check the highlighted fields.'],
    tooMany: ['Đã có quá nhiều báo cáo cho số CCCD này. Vui lòng đợi {n} giây rồi thử lại.',
      'Too many reports for this ID number. Please wait {n} seconds and try again.'],
    unavailable: ['Hệ thống đang bận hoặc không kết nối được. Vui lòng thử lại sau.',
      'The service is unavailable. Please try again later.'],
    refFormat: ['Mã báo cáo gồm 26 ký tự (chữ in hoa A–Z và số 2–7).', 'A reference is 26 characters (capitals A–Z and digits 2–7).'],
    unknownRef: ['Không có báo cáo với mã này.', 'No report has this reference.'],
    busy: ['Đang gửi…', 'Sending…']
  };

  function $(id) { return document.getElementById(id); }

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

  function showMessage(kind, pair, extra) {
    var box = $('message');
    box.className = 'message message-' + kind;
    bilingual(box, pair, extra);
    box.hidden = false;
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

  function clearErrors() {
    INPUTS.concat(['ref']).forEach(function (name) {
      $(name).removeAttribute('aria-invalid');
      var err = $(name + '-error');
      err.hidden = true;
      err.textContent = '';
    });
    $('message').hidden = true;
  }

  function request(method, url, body) {
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, TIMEOUT_MS) : null;
    var opts = { method: method, headers: { 'Accept': 'application/json' }, credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    if (ctl) { opts.signal = ctl.signal; }
    return fetch(url, opts).then(function (resp) {
      if (timer) { clearTimeout(timer); }
      return resp.json().catch(function () { return {}; }).then(function (data) {
        return { status: resp.status, data: data, retryAfter: resp.headers.get('Retry-After') };
      });
    }, function (err) {
      if (timer) { clearTimeout(timer); }
      throw err;
    });
  }

  function showReceipt(ref, status) {
    $('reference').textContent = ref;
    var pair = STATUS[status] || [status, status];
    var el = $('status');
    el.setAttribute('data-status', status);
    bilingual(el, pair);
    var box = $('receipt');
    box.hidden = false;
    box.focus();
  }

  function check(ref, onError) {
    return request('GET', REPORTS_URL + '/' + encodeURIComponent(ref)).then(function (r) {
      if (r.status === 200 && r.data.reference) {
        showReceipt(r.data.reference, r.data.status);
      } else if (r.status === 404) {
        onError(TEXT.unknownRef);
      } else {
        onError(TEXT.unavailable);
      }
    }, function () { onError(TEXT.unavailable); });
  }

  function submitReport(ev) {
    ev.preventDefault();
    clearErrors();
    var body = {};
    var bad = false;
    INPUTS.forEach(function (name) {
      body[name] = $(name).value.trim();
      if (REQUIRED[name] && body[name] === '') {
        bad = setFieldError(name, TEXT.required) || bad;
      }
    });
    if (body.dob !== '' && !DOB_PATTERN.test(body.dob)) {
      bad = setFieldError('dob', TEXT.dobFormat) || bad;
    }
    if (bad) {
      showMessage('warning', TEXT.checkForm);
      return;
    }
    var button = $('submit');
    button.disabled = true;
    showMessage('info', TEXT.busy);
    request('POST', REPORTS_URL, body).then(function (r) {
      button.disabled = false;
      $('message').hidden = true;
      if (r.status === 202 && r.data.reference) {
        $('report').reset();
        showReceipt(r.data.reference, r.data.status);
        return;
      }
      var e = r.data && r.data.error;
      if (r.status === 400 && e && e.field && setFieldError(e.field, TEXT.invalid, e.message)) {
        showMessage('warning', TEXT.checkForm);
      } else if (r.status === 429) {
        var n = parseInt(r.retryAfter, 10) || 60;
        showMessage('error', [TEXT.tooMany[0].replace('{n}', n), TEXT.tooMany[1].replace('{n}', n)]);
      } else {
        showMessage('error', TEXT.unavailable);
      }
    }, function () {
      button.disabled = false;
      showMessage('error', TEXT.unavailable);
    });
  }

  function checkTyped(ev) {
    ev.preventDefault();
    clearErrors();
    var ref = $('ref').value.trim().toUpperCase();
    if (!REF_PATTERN.test(ref)) {
      setFieldError('ref', TEXT.refFormat);
      return;
    }
    check(ref, function (pair) { setFieldError('ref', pair); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('report').addEventListener('submit', submitReport);
    $('lookup-ref').addEventListener('submit', checkTyped);
    $('check').addEventListener('click', function () {
      check($('reference').textContent, function (pair) { showMessage('error', pair); });
    });
  });
}());
