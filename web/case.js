// A party follows their own case: from a signed link (/case.html#p1....) or with a one-time
// code sent to their phone. No account.
import { t, translate, lang, setLang } from '/i18n.js';
import '/i18n-case.js';
import { h, api, fmtTime, statusLabel, eventLabel } from '/case-common.js';

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
  $('view').replaceChildren(h('section', { class: 'panel' },
    h('h1', {}, c.case_number, ' ', h('span', { class: 'badge', 'data-testid': 'status', text: statusLabel(c.status) })),
    h('h2', { text: c.title }),
    h('dl', { class: 'facts' },
      h('dt', { text: t('name') }), h('dd', { text: `${c.my_name}（${t('party_role_' + c.my_role)}）` }),
      h('dt', { text: t('mediator') }), h('dd', { text: c.mediator_name || '—' }),
      h('dt', { text: t('next_step') }), h('dd', { 'data-testid': 'next-step', text: c.next_step ? t('next_' + c.next_step) : '—' }),
      h('dt', { text: t('due_by') }), h('dd', { text: fmtTime(c.due_at) || '—' }))),
    c.sessions.length ? h('section', { class: 'panel' }, h('h3', { text: t('my_sessions') }), h('ul', {}, c.sessions.map(s => h('li', {},
      `${fmtTime(s.scheduled_at)} · ${t('session_' + s.status)} `, s.join_url ? h('a', { href: s.join_url, 'data-testid': 'join', text: t('join_session') }) : null)))) : null,
    h('section', { class: 'panel' }, h('h3', { text: t('timeline') }),
      h('ol', { class: 'timeline', 'data-testid': 'steps' }, c.steps.map(s => h('li', {}, h('strong', { text: eventLabel(s.kind) }), ' · ', fmtTime(s.at))))));
}

$('lang').onclick = () => { setLang(lang() === 'zh-CN' ? 'en' : 'zh-CN'); render(); };
render();
