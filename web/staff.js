// The staff workbench: sign-in, case list with filters and overdue markers, case detail with
// the timeline, actions, matching and assignment, sessions with links and QR codes, records,
// assessments, follow-up; registration; the supervision queue.
import { t, translate, lang, setLang } from '/i18n.js';
import '/i18n-case.js';
import { h, api as rawApi, ApiError, fmtTime, statusLabel, eventLabel, signaturePad, download } from '/case-common.js';

const $ = id => document.getElementById(id);
const view = () => $('view');
let session = JSON.parse(sessionStorage.getItem('jiefen.staff') || 'null');
let categories = [];
let units = [];

async function api(method, path, body) {
  try {
    return await rawApi(method, path, body, session && session.token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && path !== '/api/v1/auth/login') { signOut(false); }
    throw e;
  }
}

function flash(text, kind = '') {
  const f = $('flash');
  f.textContent = text; f.className = 'banner ' + kind; f.hidden = !text;
  if (text) setTimeout(() => { if (f.textContent === text) f.hidden = true; }, 6000);
}
const fail = e => flash(t('error') + (e.body && e.body.details && e.body.details.field ? e.body.details.field + ': ' : '') + e.message);

function signOut(callServer = true) {
  if (callServer && session) api('POST', '/api/v1/auth/logout').catch(() => {});
  session = null; sessionStorage.removeItem('jiefen.staff');
  location.hash = '#login'; route();
}

function header() {
  $('nav').hidden = !session; $('logout').hidden = !session;
  $('who').textContent = session ? `${session.account.display_name || session.account.username}` : '';
  for (const a of document.querySelectorAll('nav.tabs a')) a.classList.toggle('on', location.hash.startsWith(a.getAttribute('href')));
}

// ---- sign-in ----
function loginView() {
  const totpRow = h('label', { hidden: true }, t('totp'), h('input', { id: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code' }));
  const form = h('form', { class: 'panel', 'data-testid': 'login' },
    h('h1', { text: t('login') }),
    h('label', {}, t('username'), h('input', { id: 'username', autocomplete: 'username', required: true })),
    h('label', {}, t('password'), h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    totpRow,
    h('button', { class: 'primary big', type: 'submit', text: t('login') }));
  form.onsubmit = async ev => {
    ev.preventDefault();
    try {
      const body = { username: $('username').value, password: $('password').value };
      if (!totpRow.hidden) body.totp = $('totp').value;
      session = await api('POST', '/api/v1/auth/login', body);
      sessionStorage.setItem('jiefen.staff', JSON.stringify(session));
      location.hash = '#cases';
    } catch (e) {
      if (e.body && e.body.code === 'totp_required') { totpRow.hidden = false; flash(t('totp_needed'), 'info'); }
      else if (e.status === 429) flash(t('login_locked'));
      else flash(t('login_failed'));
    }
  };
  view().replaceChildren(form);
}

// ---- first sign-in with a one-time password: a password of one's own first ----
function passwordView() {
  const form = h('form', { class: 'panel', 'data-testid': 'set-password' },
    h('h1', { text: t('set_password') }),
    h('p', { text: t('set_password_why') }),
    h('label', {}, t('current_password'), h('input', { id: 'old-password', type: 'password', autocomplete: 'current-password', required: true })),
    h('label', {}, t('new_password'), h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', minlength: 10, required: true })),
    h('label', {}, t('repeat_password'), h('input', { id: 'repeat-password', type: 'password', autocomplete: 'new-password', minlength: 10, required: true })),
    h('button', { class: 'primary big', type: 'submit', text: t('save_password') }));
  form.onsubmit = async ev => {
    ev.preventDefault();
    const username = session.account.username, fresh = $('new-password').value;
    if (fresh !== $('repeat-password').value) { flash(t('passwords_differ')); return; }
    try {
      await api('POST', '/api/v1/auth/password', { old_password: $('old-password').value, new_password: fresh });
      // The change ends every session: sign in again with the new password.
      session = await rawApi('POST', '/api/v1/auth/login', { username, password: fresh });
      sessionStorage.setItem('jiefen.staff', JSON.stringify(session));
      location.hash = '#cases'; route();
    } catch (e) { fail(e); }
  };
  view().replaceChildren(form);
}

// ---- list ----
const STATUSES = ['registered', 'accepted', 'assigned', 'mediating', 'agreement_reached', 'mediation_failed', 'closed', 'followed_up', 'supervised', 'refused', 'withdrawn'];
const catName = code => { const c = categories.find(c => c.code === code); return c ? (lang() === 'en' ? c.name_en : c.name_zh) : code; };
const options = (items, selected) => [h('option', { value: '', text: t('all') }), ...items.map(([v, label]) => h('option', { value: v, selected: v === selected, text: label }))];

async function listView(params) {
  const q = new URLSearchParams(params);
  if (!q.get('per_page')) q.set('per_page', '20');
  const filters = h('form', { class: 'filters panel', 'data-testid': 'filters' },
    h('label', {}, t('filter_status'), h('select', { name: 'status' }, options(STATUSES.map(s => [s, statusLabel(s)]), q.get('status')))),
    h('label', {}, t('filter_category'), h('select', { name: 'category' }, options(categories.map(c => [c.code, catName(c.code)]), q.get('category')))),
    h('label', {}, t('filter_q'), h('input', { name: 'q', value: q.get('q') || '' })),
    h('label', {}, t('filter_phone'), h('input', { name: 'phone', value: q.get('phone') || '', inputmode: 'tel' })),
    h('label', {}, h('input', { type: 'checkbox', name: 'overdue', value: 'true', checked: q.get('overdue') === 'true', style: 'width:auto;min-height:0' }), ' ', t('filter_overdue')),
    h('button', { class: 'primary', type: 'submit', text: t('search') }));
  filters.onsubmit = ev => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v) next.set(k, v);
    location.hash = '#cases?' + next;
  };
  view().replaceChildren(filters, h('p', { text: '…' }));
  let page;
  try { page = await api('GET', '/api/v1/cases?' + q); } catch (e) { fail(e); return; }
  const rows = page.items.map(c => h('tr', { class: 'clickable', 'data-testid': 'case-row', dataset: { caseId: c.case_id }, onclick: () => { location.hash = '#case/' + c.case_id; } },
    h('td', {}, c.case_number, ' ', c.quick_track ? h('span', { class: 'badge quick', text: t('quick') }) : null),
    h('td', { text: c.title }),
    h('td', {}, c.applicant || '', h('br'), h('small', { text: c.applicant_phone || '' })),
    h('td', {}, h('span', { class: 'badge', text: statusLabel(c.status) })),
    h('td', { text: c.org_unit_name }),
    h('td', {}, fmtTime(c.stage_due_at), ' ', c.overdue ? h('span', { class: 'badge overdue', 'data-testid': 'overdue', text: t('overdue') }) : null)));
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  const go = p => { q.set('page', String(p)); location.hash = '#cases?' + q; };
  view().replaceChildren(filters,
    h('p', {}, `${t('total')} ${page.total} ${t('items')}`),
    h('table', { class: 'list', 'data-testid': 'case-list' },
      h('thead', {}, h('tr', {}, ['col_number', 'col_title', 'col_applicant', 'col_status', 'col_unit', 'col_due'].map(k => h('th', { text: t(k) })))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, text: t('none') })))),
    h('div', { class: 'actions' },
      h('button', { disabled: page.page <= 1, onclick: () => go(page.page - 1), text: t('prev') }),
      h('span', { text: `${page.page} / ${pages}` }),
      h('button', { disabled: page.page >= pages, onclick: () => go(page.page + 1), text: t('next') })));
}

// ---- detail ----
const OWN_FORMS = new Set(['assign', 'transfer', 'follow_up']);

async function detailView(id) {
  let c;
  try { c = await api('GET', `/api/v1/cases/${id}`); } catch (e) { fail(e); view().replaceChildren(h('p', { text: e.message })); return; }
  const reload = () => detailView(id);
  const act = async (action, reason) => {
    try { await api('POST', `/api/v1/cases/${id}/transitions`, { action, version: c.version, reason }); reload(); }
    catch (e) { if (e.body && e.body.code === 'version_conflict') { flash(t('version_conflict')); reload(); } else fail(e); }
  };
  const reasonInput = h('input', { placeholder: t('reason'), 'data-testid': 'reason' });
  const NEEDS_REASON = new Set(['refuse', 'fail', 'withdraw', 'reopen']);
  const actionButtons = c.actions.filter(a => !OWN_FORMS.has(a)).map(a => h('button', {
    class: a === 'accept' || a === 'start_mediation' || a === 'reach_agreement' || a === 'close' ? 'primary' : '', 'data-testid': 'act-' + a,
    onclick: () => { if (NEEDS_REASON.has(a) && !reasonInput.value.trim()) { flash(t('reason_needed')); reasonInput.focus(); return; } act(a, reasonInput.value.trim() || undefined); },
    text: t('act_' + a) }));
  const info = h('section', { class: 'panel', 'data-testid': 'case-detail' },
    h('h1', {}, c.case_number, ' ', h('span', { class: 'badge', 'data-testid': 'status', text: statusLabel(c.status) }), ' ',
      c.overdue ? h('span', { class: 'badge overdue', text: t('overdue') }) : null, c.quick_track ? h('span', { class: 'badge quick', text: t('quick') }) : null),
    h('h2', { text: c.title }), h('p', { text: c.summary }),
    h('dl', { class: 'facts' },
      h('dt', { text: t('category') }), h('dd', { text: catName(c.category_code) }),
      h('dt', { text: t('org_unit') }), h('dd', { text: c.org_unit_name }),
      h('dt', { text: t('mediator') }), h('dd', { 'data-testid': 'mediator', text: c.mediator_name ? `${c.mediator_name}（${c.mediation_org_name}）` : '—' }),
      h('dt', { text: t('col_due') }), h('dd', { text: fmtTime(c.stage_due_at) || '—' }),
      h('dt', { text: t('version') }), h('dd', { text: String(c.version) })),
    actionButtons.length ? h('div', { class: 'actions' }, reasonInput, ...actionButtons) : null,
    ['leader', 'system_admin', 'district_coordinator'].includes(session.account.role) && ['registered', 'accepted', 'assigned', 'mediating'].includes(c.status) && c.leader_staff_id !== session.account.staff_account_id
      ? h('button', { 'data-testid': 'leader-take', onclick: async () => {
        try { await api('POST', `/api/v1/cases/${id}/leader`, { version: c.version }); reload(); } catch (e) { fail(e); }
      }, text: t('leader_take') }) : null);

  const parties = h('section', { class: 'panel' }, h('h3', { text: t('parties') }),
    h('table', { class: 'list' }, h('tbody', {}, c.parties.map(p => h('tr', {},
      h('td', { text: t('party_role_' + p.role) }), h('td', { text: p.name }), h('td', { text: p.phone || '' }), h('td', { text: p.id_number_masked || '' }), h('td', { text: p.address }),
      h('td', {}, h('button', { class: 'link', onclick: async () => {
        try { const l = await api('POST', `/api/v1/cases/${id}/parties/${p.party_id}/link`, { send_sms: false }); prompt(t('party_link'), l.url); } catch (e) { fail(e); }
      }, text: t('party_link') })))))));

  const sections = [info, parties];
  if (c.actions.includes('assign')) sections.push(matchingPanel(c, reload));
  if (c.actions.includes('transfer')) sections.push(transferPanel(c, reload));
  sections.push(await sessionsPanel(c, reload));
  sections.push(await agreementPanel(c, reload));
  sections.push(await courtPanel(c, reload));
  sections.push(await recordingsPanel(c));
  sections.push(await assessmentsPanel(c));
  if (c.actions.includes('follow_up')) sections.push(followUpPanel(c, reload));
  sections.push(timelinePanel(c));
  view().replaceChildren(...sections);
}

function matchingPanel(c, reload) {
  const list = h('ol', { 'data-testid': 'suggestions' });
  const panel = h('section', { class: 'panel' }, h('h3', { text: t('matching') }),
    h('button', { 'data-testid': 'show-matching', onclick: async () => {
      try {
        const ranked = await api('GET', `/api/v1/cases/${c.case_id}/matching`);
        list.replaceChildren(...ranked.map(s => h('li', { 'data-testid': 'suggestion' },
          h('strong', { text: s.name }), ` · ${s.mediation_org_name} · ${t('score')} ${s.score} · ${t('load')} ${s.load}/${s.max_load} `,
          h('button', { class: 'primary', 'data-testid': 'assign', onclick: async () => {
            try { await api('POST', `/api/v1/cases/${c.case_id}/assign`, { mediator_id: s.mediator_id, version: c.version }); reload(); } catch (e) { fail(e); }
          }, text: t('assign') }),
          h('div', { class: 'reasons' }, s.reasons.map(r => `${t('reason_' + r.code)} (${r.points > 0 ? '+' : ''}${r.points})`).join('；')))));
      } catch (e) { fail(e); }
    }, text: t('show_matching') }), list);
  return panel;
}

function transferPanel(c, reload) {
  const target = h('select', {}, units.filter(u => u.org_unit_id !== c.org_unit_id).map(u => h('option', { value: u.org_unit_id, text: u.name })));
  const reason = h('input', { placeholder: t('reason') });
  return h('section', { class: 'panel' }, h('h3', { text: t('act_transfer') }),
    h('div', { class: 'row wrap' }, h('label', {}, t('transfer_to'), target), reason,
      h('button', { onclick: async () => {
        try { await api('POST', `/api/v1/cases/${c.case_id}/transfer`, { org_unit_id: Number(target.value), reason: reason.value, version: c.version }); reload(); } catch (e) { fail(e); }
      }, text: t('act_transfer') })));
}

async function qrImage(path) {
  const res = await fetch(path, { headers: { Authorization: 'Bearer ' + session.token } });
  return URL.createObjectURL(await res.blob());
}

async function sessionsPanel(c, reload) {
  let sessions = [];
  try { sessions = await api('GET', `/api/v1/cases/${c.case_id}/sessions`); } catch (e) { fail(e); }
  const canSchedule = c.actions.includes('start_mediation') || c.actions.includes('reach_agreement') || ['assigned', 'mediating'].includes(c.status);
  const items = sessions.map(s => {
    const links = h('div', { class: 'qrs', 'data-testid': 'links' });
    const minutes = h('textarea', { placeholder: t('minutes_placeholder') });
    return h('li', { 'data-testid': 'session' },
      h('strong', { text: `${t('mode_' + s.mode)} · ${t('session_' + s.status)}` }), ` ${fmtTime(s.scheduled_at)}`,
      s.recording ? h('span', { class: 'recording', text: t('recording_on') }) : null,
      h('div', { class: 'reasons' }, `${t('present')}: ${s.present.length} · ${t('attendance')}: `,
        s.attendance.map(a => `${(s.invitees.find(i => i.identity === a.identity) || { name: a.identity }).name} ${a.seconds ?? '…'}${t('seconds')}`).join('，')),
      h('button', { 'data-testid': 'get-links', onclick: async () => {
        try {
          const ls = await api('GET', `/api/v1/sessions/${s.session_id}/links`);
          const figs = [];
          for (const l of ls) {
            const img = h('img', { alt: l.name, src: await qrImage(`/api/v1/sessions/${s.session_id}/invitees/${l.session_invitee_id}/qr`) });
            figs.push(h('figure', { class: 'qr' }, img, h('figcaption', {}, `${l.name}（${l.role}）`, h('br'), h('a', { href: l.url, target: '_blank', 'data-testid': 'join-link', text: t('join_session') }))));
          }
          links.replaceChildren(...figs);
        } catch (e) { fail(e); }
      }, text: t('links') }), links,
      s.records.length ? h('ul', {}, s.records.map(r => h('li', { text: `${r.kind === 'minutes' ? t('records') : t('conclusion') + ' · ' + (r.department || '')}: ${r.content}` }))) : null,
      h('div', { class: 'row wrap' }, minutes, h('button', { onclick: async () => {
        try { await api('POST', `/api/v1/sessions/${s.session_id}/records`, { kind: 'minutes', content: minutes.value }); reload(); } catch (e) { fail(e); }
      }, text: t('add_minutes') })));
  });
  const mode = h('select', { 'data-testid': 'mode' }, ['one_to_one', 'many_to_one', 'many_to_many'].map(m => h('option', { value: m, selected: m === 'many_to_one', text: t('mode_' + m) })));
  const box = (label, testid) => { const i = h('input', { type: 'checkbox', 'data-testid': testid, style: 'width:auto;min-height:0' }); return [h('label', {}, i, ' ', label), i]; };
  const [lobbyL, lobby] = box(t('lobby_on'), 'lobby');
  const [recL, rec] = box(t('recording_on'), 'recording');
  const [confL, conf] = box(t('conference'), 'conference');
  const form = canSchedule ? h('div', { class: 'row wrap' }, mode, lobbyL, recL, confL, h('button', { class: 'primary', 'data-testid': 'schedule', onclick: async () => {
    try { await api('POST', `/api/v1/cases/${c.case_id}/sessions`, { mode: mode.value, lobby: lobby.checked, recording: rec.checked, conference: conf.checked }); reload(); } catch (e) { fail(e); }
  }, text: t('schedule') })) : null;
  return h('section', { class: 'panel' }, h('h3', { text: t('sessions') }), h('ul', {}, items), form);
}

// The mediation agreement: draft or revise (article 29 fields), read, sign with a drawn signature.
async function agreementPanel(c, reload) {
  let list = [];
  try { list = await api('GET', `/api/v1/cases/${c.case_id}/agreements`); } catch (e) { fail(e); }
  const current = list[list.length - 1];
  const f = current ? current.fields : { facts: '', disputes: '', responsibilities: '', terms: [{ content: '', performer: '', deadline: '', method: '' }] };
  const area = (v, id) => h('textarea', { 'data-testid': 'agreement-' + id }, v);
  const facts = area(f.facts, 'facts'), disputes = area(f.disputes, 'disputes'), resp = area(f.responsibilities, 'responsibilities');
  const term = f.terms[0] || {};
  const tContent = h('input', { value: term.content || '', 'data-testid': 'term-content', placeholder: t('term_content') });
  const tPerformer = h('input', { value: term.performer || '', 'data-testid': 'term-performer', placeholder: t('term_performer') });
  const tDeadline = h('input', { type: 'date', value: term.deadline || '', 'data-testid': 'term-deadline' });
  const tMethod = h('input', { value: term.method || '', placeholder: t('term_method') });
  const editable = ['mediating', 'agreement_reached'].includes(c.status) && (!current || current.status === 'signing');
  const fields = () => ({ facts: facts.value, disputes: disputes.value, responsibilities: resp.value,
    terms: [{ content: tContent.value, performer: tPerformer.value, deadline: tDeadline.value, method: tMethod.value }, ...f.terms.slice(1)] });
  let templates = [];
  if (editable && !current) { try { templates = await api('GET', '/api/v1/agreement-templates'); } catch { templates = []; } }
  const picker = templates.length ? h('select', { 'data-testid': 'agreement-template', onchange: ev => {
    const tpl = templates.find(x => x.code === ev.target.value);
    if (!tpl) return;
    facts.value = tpl.facts; disputes.value = tpl.disputes; resp.value = tpl.responsibilities; tContent.value = tpl.term; tMethod.value = tpl.method;
  } }, h('option', { value: '', text: t('ag_template') }), templates.filter(x => !x.categories.length || x.categories.includes(c.category_code)).map(x => h('option', { value: x.code, text: x.name }))) : null;
  const form = editable ? h('div', {},
    picker,
    h('label', {}, t('ag_facts'), facts), h('label', {}, t('ag_disputes'), disputes), h('label', {}, t('ag_responsibilities'), resp),
    h('div', { class: 'grid n2' }, h('label', {}, t('term_content'), tContent), h('label', {}, t('term_performer'), tPerformer), h('label', {}, t('term_deadline'), tDeadline), h('label', {}, t('term_method'), tMethod)),
    h('button', { class: 'primary', 'data-testid': 'agreement-save', onclick: async () => {
      try {
        if (current) await api('PUT', `/api/v1/agreements/${current.agreement_id}`, { version: current.version, fields: fields() });
        else await api('POST', `/api/v1/cases/${c.case_id}/agreements`, fields());
        reload();
      } catch (e) { fail(e); }
    }, text: current ? t('ag_revise') : t('ag_draft') })) : null;
  let signing = null;
  if (current && current.status === 'signing' && !current.signers.find(s => s.signer === 'mediator').signed_at) {
    const pad = signaturePad();
    signing = h('div', {}, h('p', { text: t('sign_here') }), pad.element, h('button', { class: 'primary', 'data-testid': 'mediator-sign', onclick: async () => {
      if (pad.empty) { flash(t('sign_first')); return; }
      try { await api('POST', `/api/v1/agreements/${current.agreement_id}/sign`, { document_sha256: current.sha256, signature_image: pad.png() }); reload(); } catch (e) { fail(e); }
    }, text: t('sign') }));
  }
  return h('section', { class: 'panel', 'data-testid': 'agreement-panel' }, h('h3', {}, t('agreement'), ' ', current ? h('span', { class: 'badge', 'data-testid': 'agreement-status', text: `${t('agreement_' + current.status)} · v${current.version}` }) : null),
    current ? h('pre', { class: 'document', text: current.body }) : null,
    current ? h('ul', {}, current.signers.map(s => h('li', { text: `${s.name}：${s.signed_at ? fmtTime(s.signed_at) : t('not_signed')}` }))) : null,
    current && current.seal ? h('p', { class: 'hash', text: 'seal ' + current.seal }) : null,
    current ? h('button', { 'data-testid': 'agreement-pdf', onclick: () => download(`/api/v1/agreements/${current.agreement_id}/pdf`, session.token, `agreement-${current.agreement_id}.pdf`).catch(fail), text: t('download_pdf') }) : null,
    signing, form);
}

// The court: judicial confirmation of an effective agreement, or one-click litigation after failure.
async function courtPanel(c, reload) {
  let packages = [];
  try { packages = await api('GET', `/api/v1/cases/${c.case_id}/court-packages`); } catch (e) { fail(e); }
  const items = packages.map(p => h('li', { 'data-testid': 'court-package', dataset: { status: p.status } },
    h('strong', { text: `${t('court_' + p.kind)} · ${t('court_status_' + p.status)}` }), ` ${p.court_ref || ''} `,
    p.reason ? h('div', { text: p.reason }) : null, p.missing ? h('div', { class: 'error', text: p.missing.join('；') }) : null,
    p.document ? h('pre', { class: 'document', text: `${p.document.title}\n${p.document.text}` }) : null));
  const actions = [];
  let agreements = [];
  try { agreements = await api('GET', `/api/v1/cases/${c.case_id}/agreements`); } catch { agreements = []; }
  const effective = agreements.find(a => a.status === 'effective');
  if (effective) {
    let courts = [];
    try { courts = await api('GET', `/api/v1/cases/${c.case_id}/courts`); } catch (e) { fail(e); }
    const sel = h('select', { 'data-testid': 'court-select' }, courts.map(p => h('option', { value: p.court.court_id, text: `${p.court.name}（${p.grounds.map(g => t('ground_' + g)).join('、')}）` })));
    actions.push(h('div', { class: 'row wrap' }, sel, h('button', { class: 'primary', 'data-testid': 'apply-confirmation', onclick: async () => {
      try { await api('POST', `/api/v1/cases/${c.case_id}/confirmations`, { agreement_id: effective.agreement_id, court_id: sel.value, applicant_party_ids: c.parties.map(p => p.party_id) }); reload(); } catch (e) { fail(e); }
    }, text: t('apply_confirmation') })));
  }
  if (c.status === 'mediation_failed' || c.timeline.some(e => e.kind === 'fail')) {
    const claims = h('textarea', { placeholder: t('claims_hint') });
    const facts = h('textarea', { placeholder: t('facts_hint') });
    const ev = h('input', { placeholder: t('evidence_hint') });
    actions.push(h('div', {}, h('label', {}, t('claims'), claims), h('label', {}, t('facts'), facts), h('label', {}, t('evidence'), ev),
      h('button', { class: 'primary', 'data-testid': 'file-lawsuit', onclick: async () => {
        const evidence = ev.value.split(/[;；]/).map(x => x.trim()).filter(Boolean).map(x => { const [name, source, proves] = x.split(/[,，]/).map(y => (y || '').trim()); return { name, source, proves }; });
        const applicant = c.parties.find(p => p.role === 'applicant') || c.parties[0];
        try { await api('POST', `/api/v1/cases/${c.case_id}/filings`, { court_id: 'bj-sjs', plaintiff_party_id: applicant.party_id, claims: claims.value.split('\n').filter(Boolean), facts: facts.value, evidence }); reload(); } catch (e) { fail(e); }
      }, text: t('file_lawsuit') })));
  }
  if (!items.length && !actions.length) return h('span');
  return h('section', { class: 'panel', 'data-testid': 'court-panel' }, h('h3', { text: t('court') }), items.length ? h('ul', {}, items) : null, ...actions);
}

async function recordingsPanel(c) {
  let list = [];
  try { list = await api('GET', `/api/v1/cases/${c.case_id}/recordings`); } catch (e) { fail(e); }
  const items = [];
  for (const r of list) {
    const result = h('span', { 'data-testid': 'recording-verify-result' });
    const players = h('div', { class: 'qrs' });
    if (r.status === 'complete') {
      try {
        const d = await api('GET', `/api/v1/recordings/${r.recording_id}`);
        for (const f of d.files) {
          const audio = /microphone/.test(f.name);
          players.append(h('figure', {}, h(audio ? 'audio' : 'video', { controls: true, preload: 'metadata', src: f.url, 'data-testid': 'recording-media', style: audio ? 'width:240px' : 'width:240px;background:#000' }),
            h('figcaption', {}, h('a', { href: f.url, download: f.name, text: f.name }))));
        }
      } catch (e) { fail(e); }
    }
    items.push(h('li', { 'data-testid': 'recording', dataset: { status: r.status, recordingId: r.recording_id } },
      h('strong', { text: `#${r.recording_id} · ${t('rec_status_' + r.status)}` }), ` ${fmtTime(r.started_at)} – ${fmtTime(r.ended_at)}`,
      r.manifest_sha256 ? h('div', { class: 'hash', text: 'SHA-256 ' + r.manifest_sha256 }) : null,
      r.problem ? h('div', { class: 'error', text: r.problem }) : null,
      players,
      r.status === 'complete' ? h('button', { 'data-testid': 'recording-verify', onclick: async () => {
        try { const v = await api('GET', `/api/v1/recordings/${r.recording_id}/verify`); result.textContent = v.intact ? t('rec_intact') : t('rec_changed'); result.className = v.intact ? '' : 'error'; } catch (e) { fail(e); }
      }, text: t('verify_chain') }) : null, ' ', result));
  }
  return h('section', { class: 'panel' }, h('h3', { text: t('recordings') }), items.length ? h('ul', {}, items) : h('p', { text: t('none') }));
}

async function assessmentsPanel(c) {
  let list = [];
  try { list = await api('GET', `/api/v1/cases/${c.case_id}/assessments`); } catch (e) { fail(e); }
  const items = list.map(a => h('li', {}, h('strong', { text: t('kind_' + a.kind) }), ' ', a.summary === null ? t('restricted') : `${t('risk')}: ${t('risk_' + a.risk_level)} · ${a.summary}`));
  const role = session.account.role;
  let form = null;
  if (role === 'assessor' || role === 'system_admin') {
    const kind = h('select', {}, ['family', 'psychological', 'legal'].map(k => h('option', { value: k, text: t('kind_' + k) })));
    const risk = h('select', {}, ['low', 'medium', 'high'].map(k => h('option', { value: k, text: t('risk_' + k) })));
    const summary = h('textarea', { placeholder: t('summary') });
    form = h('div', {}, h('div', { class: 'row wrap' }, kind, risk), summary, h('button', { onclick: async () => {
      try { await api('POST', `/api/v1/cases/${c.case_id}/assessments`, { kind: kind.value, risk_level: risk.value, summary: summary.value }); detailView(c.case_id); } catch (e) { fail(e); }
    }, text: t('add_assessment') }));
  }
  return h('section', { class: 'panel' }, h('h3', { text: t('assessments') }), items.length ? h('ul', {}, items) : h('p', { text: t('none') }), form);
}

function followUpPanel(c, reload) {
  const performed = h('select', { 'data-testid': 'performed' }, ['yes', 'partly', 'no'].map(p => h('option', { value: p, text: t('performed_' + p) })));
  const satisfaction = h('input', { type: 'number', min: 1, max: 5, value: 5, 'data-testid': 'satisfaction' });
  const notes = h('textarea', { placeholder: t('notes') });
  return h('section', { class: 'panel' }, h('h3', { text: t('follow_up') }),
    h('div', { class: 'row wrap' }, h('label', {}, t('performed'), performed), h('label', {}, t('satisfaction'), satisfaction)), notes,
    h('button', { class: 'primary', 'data-testid': 'save-follow-up', onclick: async () => {
      try { await api('POST', `/api/v1/cases/${c.case_id}/follow-ups`, { version: c.version, performed: performed.value, satisfaction: Number(satisfaction.value), notes: notes.value }); reload(); } catch (e) { fail(e); }
    }, text: t('save') }));
}

function timelinePanel(c) {
  const result = h('p', { 'data-testid': 'chain-result' });
  return h('section', { class: 'panel' }, h('h3', { text: t('timeline') }),
    h('ol', { class: 'timeline', 'data-testid': 'timeline' }, c.timeline.map(e => h('li', { dataset: { kind: e.kind } },
      h('strong', { text: eventLabel(e.kind) }), ` · ${fmtTime(e.at)} · ${e.actor}`, e.payload && e.payload.reason ? ` · ${e.payload.reason}` : '',
      h('div', { class: 'hash', text: e.hash.slice(0, 16) })))),
    h('button', { 'data-testid': 'verify-chain', onclick: async () => {
      try {
        const r = await api('GET', `/api/v1/cases/${c.case_id}/events/verify`);
        result.textContent = r.intact ? t('chain_ok').replace('{n}', r.entries) : t('chain_bad').replace('{p}', r.problem);
        result.className = r.intact ? '' : 'error';
      } catch (e) { fail(e); }
    }, text: t('verify_chain') }), result);
}

// ---- registration ----
function newView() {
  const f = (name, attrs = {}) => h('input', { name, ...attrs });
  const unitSel = h('select', { name: 'org_unit_id', required: true }, units.map(u => h('option', { value: u.org_unit_id, selected: session.account.org_unit_id === u.org_unit_id, text: u.name })));
  const catSel = h('select', { name: 'category_code', required: true }, categories.filter(c => c.active).map(c => h('option', { value: c.code, text: catName(c.code) })));
  const form = h('form', { class: 'panel', 'data-testid': 'new-case' },
    h('h1', { text: t('new_case') }),
    h('label', {}, t('title'), f('title', { required: true, maxlength: 200 })),
    h('label', {}, t('summary_label'), h('textarea', { name: 'summary', required: true })),
    h('label', {}, t('category'), catSel), h('label', {}, t('org_unit'), unitSel),
    h('label', {}, h('input', { type: 'checkbox', name: 'quick_track', style: 'width:auto;min-height:0' }), ' ', t('quick')),
    h('h3', { text: t('applicant') }),
    h('div', { class: 'grid n2' }, h('label', {}, t('name'), f('a_name', { required: true })), h('label', {}, t('phone'), f('a_phone', { inputmode: 'tel' })),
      h('label', {}, t('id_number'), f('a_id')), h('label', {}, t('address'), f('a_address'))),
    h('h3', { text: t('respondent') }),
    h('div', { class: 'grid n2' }, h('label', {}, t('name'), f('r_name')), h('label', {}, t('phone'), f('r_phone', { inputmode: 'tel' }))),
    h('button', { class: 'primary big', type: 'submit', text: t('submit') }));
  form.onsubmit = async ev => {
    ev.preventDefault();
    const d = Object.fromEntries(new FormData(form));
    const parties = [{ role: 'applicant', name: d.a_name, phone: d.a_phone || null, id_number: d.a_id || null, address: d.a_address || '' }];
    if (d.r_name) parties.push({ role: 'respondent', name: d.r_name, phone: d.r_phone || null });
    try {
      const created = await api('POST', '/api/v1/cases', { title: d.title, summary: d.summary, category_code: d.category_code, org_unit_id: Number(d.org_unit_id), quick_track: !!d.quick_track, parties });
      flash(`${t('created')} ${created.case_number}`, 'info');
      location.hash = '#case/' + created.case_id;
    } catch (e) { fail(e); }
  };
  view().replaceChildren(form);
}

// ---- supervision ----
async function supervisionView() {
  let queue;
  try { queue = await api('GET', '/api/v1/supervision'); } catch (e) { fail(e); view().replaceChildren(h('p', { text: e.message })); return; }
  view().replaceChildren(h('h1', { text: t('nav_supervision') }),
    h('table', { class: 'list', 'data-testid': 'supervision' },
      h('thead', {}, h('tr', {}, [t('col_number'), t('col_title'), t('col_status'), t('supervision_reasons'), t('col_due')].map(x => h('th', { text: x })))),
      h('tbody', {}, queue.length ? queue.map(c => h('tr', { class: 'clickable', onclick: () => { location.hash = '#case/' + c.case_id; } },
        h('td', { text: c.case_number }), h('td', { text: c.title }), h('td', { text: statusLabel(c.status) }),
        h('td', {}, c.reasons.map(r => h('span', { class: 'badge overdue', text: t('why_' + r) }))), h('td', { text: fmtTime(c.stage_due_at) })))
        : h('tr', {}, h('td', { colspan: 5, text: t('none') })))));
}

// ---- routing ----
async function route() {
  header();
  const hash = location.hash || '#cases';
  if (!session) { loginView(); return; }
  if (session.account && session.account.must_change_password) { passwordView(); return; }
  if (!categories.length) {
    [categories, units] = await Promise.all([rawApi('GET', '/api/v1/categories'), rawApi('GET', '/api/v1/org-units')]).catch(() => [[], []]);
  }
  const [path, query] = hash.slice(1).split('?');
  if (path.startsWith('case/')) return detailView(Number(path.slice(5)));
  if (path === 'new') return newView();
  if (path === 'supervision') return supervisionView();
  if (path === 'login') { location.hash = '#cases'; return; }
  return listView(query || '');
}

$('lang').onclick = () => { setLang(lang() === 'zh-CN' ? 'en' : 'zh-CN'); translate(); route(); };
$('logout').onclick = () => signOut(true);
window.addEventListener('hashchange', route);
translate();
route();
