// The public intake form (also what an org unit's QR code opens: /intake.html?org=ID).
import { t, translate, lang, setLang } from '/i18n.js';
import '/i18n-case.js';
import { h, api } from '/case-common.js';

const $ = id => document.getElementById(id);
const org = Number(new URLSearchParams(location.search).get('org')) || null;

async function render() {
  translate();
  const [categories, units] = await Promise.all([api('GET', '/api/v1/categories'), api('GET', '/api/v1/org-units')]).catch(() => [[], []]);
  const name = c => (lang() === 'en' ? c.name_en : c.name_zh);
  const unitSel = h('select', { name: 'org_unit_id', required: true }, h('option', { value: '', text: t('choose') }),
    units.filter(u => u.level !== 'district').map(u => h('option', { value: u.org_unit_id, selected: u.org_unit_id === org, text: u.name })));
  const catSel = h('select', { name: 'category_code', required: true }, h('option', { value: '', text: t('choose') }),
    categories.filter(c => c.active).map(c => h('option', { value: c.code, text: name(c) })));
  const input = (n, attrs = {}) => h('input', { name: n, ...attrs });
  const form = h('form', { class: 'panel' },
    h('h1', { text: t('intake_title') }), h('p', { text: t('intake_intro') }),
    h('label', {}, t('org_unit'), unitSel), h('label', {}, t('category'), catSel),
    h('label', {}, t('summary_label'), h('textarea', { name: 'summary', required: true, maxlength: 10000 })),
    h('h3', { text: t('applicant') }),
    h('label', {}, t('name'), input('a_name', { required: true, maxlength: 64 })),
    h('label', {}, t('phone'), input('a_phone', { required: true, inputmode: 'tel', autocomplete: 'tel' })),
    h('label', {}, t('address'), input('a_address', { maxlength: 200 })),
    h('h3', { text: t('respondent') }),
    h('label', {}, t('name'), input('r_name', { maxlength: 64 })),
    h('label', {}, t('phone'), input('r_phone', { inputmode: 'tel' })),
    h('button', { class: 'primary big', type: 'submit', 'data-testid': 'submit', text: t('submit') }));
  form.onsubmit = async ev => {
    ev.preventDefault();
    const d = Object.fromEntries(new FormData(form));
    const body = {
      org_unit_id: Number(d.org_unit_id), category_code: d.category_code, summary: d.summary, via: org ? 'qr' : 'web_form',
      applicant: { role: 'applicant', name: d.a_name, phone: d.a_phone, address: d.a_address || '' },
    };
    if (d.r_name) body.respondent = { role: 'respondent', name: d.r_name, phone: d.r_phone || null };
    try {
      const r = await api('POST', '/api/v1/intake', body);
      $('view').replaceChildren(h('section', { class: 'panel', 'data-testid': 'receipt' },
        h('h1', { text: t('intake_done') }),
        h('p', {}, t('intake_number'), '：', h('strong', { 'data-testid': 'case-number', text: r.case_number })),
        h('a', { href: r.progress_url, 'data-testid': 'progress-link', class: 'button', text: t('intake_progress') })));
    } catch (e) {
      const f = $('flash');
      f.textContent = t('error') + (e.body && e.body.details ? e.body.details.field + ': ' : '') + e.message; f.hidden = false;
    }
  };
  $('view').replaceChildren(form);
}

$('lang').onclick = () => { setLang(lang() === 'zh-CN' ? 'en' : 'zh-CN'); render(); };
render();
