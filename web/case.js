// A party follows their own case: from a signed link (/case.html#p1....) or with a one-time
// code sent to their phone. No account.
import { t, translate, lang, setLang } from '/i18n.js';
import '/i18n-case.js';
import { h, api, fmtTime, statusLabel, eventLabel, signaturePad, download } from '/case-common.js';

const $ = id => document.getElementById(id);
let token = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : sessionStorage.getItem('jiefen.party');
const flash = text => { $('flash').textContent = text; $('flash').hidden = !text; };

function codeForm() {
  const number = h('input', { name: 'case_number', required: true, 'data-testid': 'case-number' });
  const phone = h('input', { name: 'phone', required: true, inputmode: 'tel', 'data-testid': 'phone' });
  const code = h('input', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', 'data-testid': 'code' });
  const form = h('form', { class: 'panel' }, h('h1', { text: t('progress_title') }), h('p', { text: t('progress_login') }),
    h('label', {}, t('case_number'), number), h('label', {}, t('phone'), phone),
    h('button', { type: 'button', 'data-testid': 'get-code', onclick: async () => {
      try { await api('POST', '/api/v1/party/codes', { case_number: number.value.trim(), phone: phone.value }); flash(t('code_sent')); } catch (e) { flash(t('error') + e.message); }
    }, text: t('get_code') }),
    h('label', {}, t('code'), code),
    h('button', { class: 'primary big', type: 'submit', text: t('verify') }));
  form.onsubmit = async ev => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/api/v1/party/verify', { case_number: number.value.trim(), phone: phone.value, code: code.value.trim() });
      token = r.token; sessionStorage.setItem('jiefen.party', token); flash(''); render();
    } catch (e) { flash(t('error') + e.message); }
  };
  $('view').replaceChildren(form);
}

async function render() {
  translate();
  if (!token) return codeForm();
  let c;
  try { c = await api('GET', '/api/v1/party/case', undefined, token); } catch (e) {
    token = null; sessionStorage.removeItem('jiefen.party'); flash(t('error') + e.message); return codeForm();
  }
  sessionStorage.setItem('jiefen.party', token);
  let agreements = [];
  try { agreements = await api('GET', '/api/v1/party/agreements', undefined, token); } catch { agreements = []; }
  $('view').replaceChildren(...[...agreements.map(a => agreementPanel(a, c.my_party_id)), h('section', { class: 'panel' },
    h('h1', {}, c.case_number, ' ', h('span', { class: 'badge', 'data-testid': 'status', text: statusLabel(c.status) })),
    h('h2', { text: c.title }),
    h('dl', { class: 'facts' },
      h('dt', { text: t('name') }), h('dd', { text: `${c.my_name}（${t('party_role_' + c.my_role)}）` }),
      h('dt', { text: t('mediator') }), h('dd', { text: c.mediator_name || '—' }),
      h('dt', { text: t('next_step') }), h('dd', { 'data-testid': 'next-step', text: c.next_step ? t('next_' + c.next_step) : '—' }),
      h('dt', { text: t('due_by') }), h('dd', { text: fmtTime(c.due_at) || '—' }))),
    c.sessions.length ? h('section', { class: 'panel' }, h('h3', { text: t('my_sessions') }), h('ul', {}, c.sessions.map(s => h('li', {},
      `${fmtTime(s.scheduled_at)} · ${t('session_' + s.status)} `, s.join_url ? h('a', { href: s.join_url, 'data-testid': 'join', text: t('join_session') }) : null)))) : null,
    c.court.length ? h('section', { class: 'panel', 'data-testid': 'court' }, h('h3', { text: t('court') }), h('ul', {}, c.court.map(k => h('li', {},
      `${t('court_' + k.kind)} · ${t('court_status_' + k.status)} ${k.court_ref || ''}`, k.missing ? h('div', { class: 'error', text: k.missing.join('；') }) : null)))) : null,
    h('section', { class: 'panel' }, h('h3', { text: t('timeline') }),
      h('ol', { class: 'timeline', 'data-testid': 'steps' }, c.steps.map(s => h('li', {}, h('strong', { text: eventLabel(s.kind) }), ' · ', fmtTime(s.at)))))].filter(Boolean));
}

// The agreement to read and sign: the exact text, its hash, a signature pad and a code by SMS.
function agreementPanel(a, me) {
  const pad = signaturePad();
  const code = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', placeholder: t('code'), 'data-testid': 'sign-code' });
  const signed = a.signers.filter(s => s.signed_at).map(s => s.name).join('，');
  const canSign = a.status === 'signing' && !a.signers.some(s => s.signer === `party-${me}` && s.signed_at);
  return h('section', { class: 'panel', 'data-testid': 'agreement', dataset: { status: a.status } },
    h('h3', {}, t('agreement'), ' ', h('span', { class: 'badge', 'data-testid': 'agreement-status', text: t('agreement_' + a.status) })),
    h('pre', { class: 'document', text: a.body }),
    h('p', { class: 'hash', text: 'SHA-256 ' + a.sha256 }),
    h('p', {}, t('signed_by'), '：', signed || t('none')),
    h('button', { type: 'button', 'data-testid': 'agreement-pdf', onclick: () => download(`/api/v1/party/agreements/${a.agreement_id}/pdf`, token, `agreement-${a.agreement_id}.pdf`).catch(e => flash(t('error') + e.message)), text: t('download_pdf') }),
    canSign ? h('div', {},
      h('p', { text: t('sign_here') }), pad.element,
      h('label', {}, t('code'), code),
      h('div', { class: 'row wrap' },
        h('button', { type: 'button', onclick: () => pad.clear(), text: t('clear') }),
        h('button', { type: 'button', 'data-testid': 'sign-get-code', onclick: async () => {
          try { await api('POST', `/api/v1/party/agreements/${a.agreement_id}/code`, undefined, token); flash(t('code_sent')); } catch (e) { flash(t('error') + e.message); }
        }, text: t('get_code') }),
        h('button', { class: 'primary', type: 'button', 'data-testid': 'sign', onclick: async () => {
          if (pad.empty) { flash(t('sign_first')); return; }
          try {
            await api('POST', `/api/v1/party/agreements/${a.agreement_id}/sign`, { document_sha256: a.sha256, signature_image: pad.png(), code: code.value.trim() }, token);
            flash(''); render();
          } catch (e) { flash(t('error') + e.message); if (e.body && e.body.code === 'document_changed') render(); }
        }, text: t('sign') }))) : null);
}

$('lang').onclick = () => { setLang(lang() === 'zh-CN' ? 'en' : 'zh-CN'); render(); };
render();
