// The jiefen browser app: landing, device check, lobby, session and host console.
import { JiefenClient, peekClaims } from '/sdk/jiefen.js';
import { t, translate, lang, setLang } from '/i18n.js';

const $ = id => document.getElementById(id);
const screens = ['landing', 'precall', 'lobby', 'session', 'ended'];
function show(name) { for (const s of screens) $(s).hidden = s !== name; }

const params = new URLSearchParams(location.search);
const token = params.get('token');
const claims = token ? peekClaims(token) : null;

let client = null;
let localStream = null;
let meterStop = null;
let previewReady = Promise.resolve();
let joinMode = 'full'; // full | audio-only | no-camera
const state = { audioMuted: false, videoOff: false, screen: null, tiles: new Map() };

function setupChrome() {
  if (localStorage.getItem('jiefen.large') === '1') document.documentElement.classList.add('large');
  $('large-text').onclick = () => {
    const on = document.documentElement.classList.toggle('large');
    localStorage.setItem('jiefen.large', on ? '1' : '0');
  };
  $('lang').onclick = () => { setLang(lang() === 'zh-CN' ? 'en' : 'zh-CN'); translate(); refreshLabels(); };
  translate();
}

function errorText(code, message) {
  const key = 'error_' + code;
  const text = t(key);
  return text === key ? t('error_generic') + (message || code) : text;
}

// ---- device check ----
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  const fill = (sel, kind) => {
    const el = $(sel);
    const current = el.value;
    el.innerHTML = '';
    for (const d of devices.filter(d => d.kind === kind)) {
      const o = document.createElement('option');
      o.value = d.deviceId; o.textContent = d.label || kind;
      el.appendChild(o);
    }
    if (current) el.value = current;
  };
  fill('camera-select', 'videoinput');
  fill('mic-select', 'audioinput');
  return devices;
}

async function startPreview() {
  $('device-problem').hidden = true;
  $('device-actions').hidden = true;
  if (localStream) localStream.getTracks().forEach(tr => tr.stop());
  localStream = null;
  const devices = await listDevices();
  const hasCamera = devices.some(d => d.kind === 'videoinput');
  const wantVideo = joinMode === 'full' && hasCamera;
  const camId = $('camera-select').value, micId = $('mic-select').value;
  try {
    localStream = await navigator.mediaDevices.getUserMedia({
      audio: micId ? { deviceId: { exact: micId } } : true,
      video: wantVideo ? (camId ? { deviceId: { exact: camId }, width: 640, height: 480 } : { width: 640, height: 480 }) : false,
    });
  } catch (e) {
    $('device-problem').textContent = t('camera_denied');
    $('device-problem').hidden = false;
    $('device-actions').hidden = false;
    return;
  }
  if (!hasCamera && joinMode === 'full') {
    $('device-problem').textContent = t('no_camera');
    $('device-problem').hidden = false;
  }
  $('preview').srcObject = localStream;
  await listDevices();
  startMeter(localStream);
}

function startMeter(stream) {
  if (meterStop) meterStop();
  const track = stream.getAudioTracks()[0];
  if (!track || !window.AudioContext) return;
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  src.connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  let running = true;
  const tick = () => {
    if (!running) return;
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
    $('level').style.width = Math.min(100, peak * 1.6) + '%';
    requestAnimationFrame(tick);
  };
  tick();
  meterStop = () => { running = false; ctx.close(); };
}

function speakerTest() {
  const ctx = new AudioContext();
  const osc = ctx.createOscillator();
  osc.frequency.value = 660;
  osc.connect(ctx.destination);
  osc.start();
  setTimeout(() => { osc.stop(); ctx.close(); }, 600);
}

// ---- session ----
function tileFor(identity) {
  let tile = state.tiles.get(identity);
  if (tile) return tile;
  const el = document.createElement('div');
  el.className = 'tile';
  el.dataset.identity = identity;
  const video = document.createElement('video');
  video.autoplay = true; video.playsInline = true;
  const name = document.createElement('span');
  name.className = 'name';
  el.append(video, name);
  $('grid').appendChild(el);
  tile = { el, video, name, audio: null, stream: new MediaStream() };
  state.tiles.set(identity, tile);
  layoutGrid();
  return tile;
}

// Each remote video reports its on-screen size so the server sends the simulcast layer that fits.
const sizeObserver = new ResizeObserver(entries => {
  for (const e of entries) {
    const tile = [...state.tiles.values()].find(t => t.video === e.target);
    if (!tile || !tile.trackId || !client) continue;
    const dpr = window.devicePixelRatio || 1;
    client.setVideoSize(tile.trackId, e.contentRect.width * dpr, e.contentRect.height * dpr);
  }
});
function observeSize(tile) {
  if (tile.observed) return;
  tile.observed = true;
  sizeObserver.observe(tile.video);
}

function removeTile(identity) {
  const tile = state.tiles.get(identity);
  if (!tile) return;
  tile.el.remove();
  if (tile.audio) tile.audio.remove();
  state.tiles.delete(identity);
  layoutGrid();
}

function roleLabel(role) { return t('role_' + role); }

function labelTile(identity) {
  const tile = state.tiles.get(identity);
  if (!tile) return;
  const p = client.participants.get(identity);
  const self = client.self && identity === client.self.identity;
  const info = self ? client.self : p;
  if (!info) return;
  tile.name.textContent = `${info.name} · ${roleLabel(info.role)}${self ? ' ' + t('you') : ''}`;
  tile.el.classList.toggle('spotlight', info.role === 'mediator' && state.tiles.size > 2);
}

function layoutGrid() {
  const n = state.tiles.size;
  $('grid').className = 'grid ' + (n <= 1 ? 'n1' : n === 2 ? 'n2' : n <= 4 ? 'n4' : 'many');
}

function refreshLabels() {
  if (!client) return;
  for (const id of state.tiles.keys()) labelTile(id);
  $('toggle-audio').textContent = t(state.audioMuted ? 'unmute' : 'mute');
  $('toggle-video').textContent = t(state.videoOff ? 'camera_on' : 'camera_off');
  $('toggle-screen').textContent = t(state.screen ? 'stop_share' : 'share_screen');
  $('toggle-recording').textContent = t(client.recording ? 'stop_recording' : 'start_recording');
  renderHost();
}

function renderHost() {
  if (!client || !client.self || !client.self.roomAdmin) return;
  $('host').hidden = false;
  $('room-name').textContent = client.room || '';
  const lobby = $('lobby-list');
  lobby.innerHTML = '';
  if (!client.lobby.length) {
    const li = document.createElement('li'); li.textContent = t('lobby_empty'); lobby.appendChild(li);
  }
  for (const p of client.lobby) {
    const li = document.createElement('li');
    li.textContent = `${p.name} · ${roleLabel(p.role)}`;
    const admit = button(t('admit'), () => client.admit(p.identity));
    admit.dataset.testid = 'admit';
    admit.dataset.identity = p.identity;
    li.append(admit, button(t('refuse'), () => client.refuse(p.identity)));
    lobby.appendChild(li);
  }
  const list = $('participant-list');
  list.innerHTML = '';
  for (const p of client.participants.values()) {
    const li = document.createElement('li');
    const group = p.group ? ` [${t('group')}: ${p.group}]` : '';
    li.textContent = `${p.name} · ${roleLabel(p.role)}${group}`;
    li.append(button(t('mute_participant'), () => client.muteParticipant(p.identity)),
      button(t('remove'), () => client.remove(p.identity)));
    if (p.group) li.append(button(t('caucus_hop'), () => client.joinCaucusGroup(p.group)));
    list.appendChild(li);
  }
}

function button(text, onclick) {
  const b = document.createElement('button');
  b.textContent = text; b.onclick = onclick;
  return b;
}

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

async function join() {
  $('join').disabled = true;
  $('join').textContent = t('joining');
  $('join-error').hidden = true;
  // Publish what the device check found: wait for it if the button was pressed early.
  await previewReady;
  client = new JiefenClient({ token });
  window.jiefen = { client };
  wire(client);
  try {
    const where = await client.connect();
    if (where === 'lobby') show('lobby');
  } catch (e) {
    $('join').disabled = false;
    $('join').textContent = t('join');
    $('join-error').textContent = errorText(e.code, e.message);
    $('join-error').hidden = false;
  }
}

function wire(c) {
  c.addEventListener('joined', async ev => {
    if (meterStop) { meterStop(); meterStop = null; }
    show('session');
    $('reconnecting').hidden = true;
    const self = ev.detail.self;
    const tile = tileFor(self.identity);
    tile.video.muted = true;
    if (localStream) tile.video.srcObject = localStream;
    labelTile(self.identity);
    for (const p of ev.detail.participants) { tileFor(p.identity); labelTile(p.identity); }
    $('recording').hidden = !c.recording;
    $('toggle-video').hidden = !localStream || !localStream.getVideoTracks().length;
    $('toggle-screen').hidden = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
    if (!ev.detail.rejoined && localStream) await c.publish(localStream);
    refreshLabels();
  });
  c.addEventListener('lobby', () => show('lobby'));
  c.addEventListener('refused', () => { $('ended-text').textContent = t('lobby_refused'); show('ended'); });
  c.addEventListener('lobbychange', () => renderHost());
  c.addEventListener('participants', ev => {
    const present = new Set(ev.detail.participants.map(p => p.identity));
    if (c.self) present.add(c.self.identity);
    for (const id of [...state.tiles.keys()]) if (!present.has(id)) removeTile(id);
    for (const p of ev.detail.participants) { tileFor(p.identity); labelTile(p.identity); }
    renderHost();
  });
  c.addEventListener('track', ev => {
    const { publisher, track, kind, trackId } = ev.detail;
    if (!publisher) return;
    const tile = tileFor(publisher);
    labelTile(publisher);
    if (kind === 'video') {
      tile.video.srcObject = new MediaStream([track]);
      tile.trackId = trackId;
      observeSize(tile);
      tile.video.dataset.testid = 'remote-video';
      tile.video.dataset.identity = publisher;
      tile.video.dataset.track = trackId || '';
    } else {
      if (!tile.audio) {
        tile.audio = document.createElement('audio');
        tile.audio.autoplay = true;
        tile.audio.dataset.testid = 'remote-audio';
        tile.audio.dataset.identity = publisher;
        document.body.appendChild(tile.audio);
      }
      tile.audio.srcObject = new MediaStream([track]);
    }
  });
  // A weak uplink is marked on the participant's tile.
  c.addEventListener('quality', ev => {
    const tile = state.tiles.get(ev.detail.identity);
    if (tile) tile.el.dataset.quality = ev.detail.quality;
  });
  // The server names the loudest participant (audio levels); its tile is highlighted.
  c.addEventListener('speaker', ev => {
    for (const [id, tile] of state.tiles) tile.el.classList.toggle('speaking', id === ev.detail.identity);
  });
  c.addEventListener('chat', ev => {
    const li = document.createElement('li');
    li.textContent = `${ev.detail.name}: ${ev.detail.text}`;
    li.dataset.via = ev.detail.via;
    $('chat-log').appendChild(li);
    $('chat-panel').hidden = false;
  });
  c.addEventListener('recording', ev => { $('recording').hidden = !ev.detail.recording; refreshLabels(); });
  // The agreement under review: everyone sees the same version and its hash.
  c.addEventListener('document', ev => {
    const d = ev.detail;
    $('document-title').textContent = d.title;
    $('document-version').textContent = `v${d.version}`;
    $('document-body').textContent = d.body;
    $('document-hash').textContent = 'SHA-256 ' + d.sha256;
    $('document').hidden = false;
  });
  c.addEventListener('muterequested', ev => {
    if (ev.detail.source === 'microphone' && !state.audioMuted) toggleAudio();
    notice(t('muted_by_host'));
  });
  c.addEventListener('caucus', () => renderHost());
  c.addEventListener('reconnecting', () => { $('reconnecting').hidden = false; });
  c.addEventListener('reconnected', () => { $('reconnecting').hidden = true; });
  c.addEventListener('removed', () => end(t('removed')));
  c.addEventListener('closed', () => { if (!$('session').hidden) end(t('connection_lost')); });
  c.addEventListener('ended', () => end(t('ended')));
  c.addEventListener('error', ev => notice(errorText(ev.detail.code, ev.detail.message)));
  // The SFU refused a data channel message (chat): say why.
  c.addEventListener('dataerror', ev => notice(errorText(ev.detail.code, ev.detail.reason)));
}

function end(text) {
  if (client) client.leave();
  for (const id of [...state.tiles.keys()]) removeTile(id);
  $('ended-text').textContent = text;
  show('ended');
}

function toggleAudio() {
  state.audioMuted = !state.audioMuted;
  client.setMuted('microphone', state.audioMuted);
  refreshLabels();
}

function toggleVideo() {
  state.videoOff = !state.videoOff;
  client.setMuted('camera', state.videoOff);
  refreshLabels();
}

async function toggleScreen() {
  if (state.screen) {
    state.screen.getTracks().forEach(tr => tr.stop());
    state.screen = null;
    await client.unpublish('screen');
  } else {
    try {
      state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    } catch { return; }
    state.screen.getVideoTracks()[0].onended = () => { if (state.screen) toggleScreen(); };
    await client.publish(state.screen, { screen: true });
  }
  refreshLabels();
}

function splitCaucus() {
  // Parties in their own groups, one each; officials stay in the plenary.
  const groups = {};
  let i = 1;
  for (const p of client.participants.values()) if (p.role === 'party') groups[p.identity] = 'G' + i++;
  client.setCaucus(groups);
}

function main() {
  setupChrome();
  if (!token) {
    show('landing');
    return;
  }
  if (!claims) {
    show('precall');
    $('join').disabled = true;
    $('join-error').textContent = t('error_token_invalid');
    $('join-error').hidden = false;
    return;
  }
  show('precall');
  $('display-name').value = claims.name || '';
  if (claims.exp && claims.exp * 1000 < Date.now()) {
    $('join').disabled = true;
    $('join-error').textContent = t('error_token_expired');
    $('join-error').hidden = false;
  }
  previewReady = startPreview();
  $('camera-select').onchange = () => { previewReady = startPreview(); };
  $('mic-select').onchange = () => { previewReady = startPreview(); };
  $('speaker-test').onclick = speakerTest;
  $('retry-devices').onclick = () => { joinMode = 'full'; previewReady = startPreview(); };
  $('join-audio-only').onclick = () => { joinMode = 'audio-only'; previewReady = startPreview(); };
  $('join').onclick = join;
  $('toggle-audio').onclick = toggleAudio;
  $('toggle-video').onclick = toggleVideo;
  $('toggle-screen').onclick = toggleScreen;
  $('toggle-chat').onclick = () => { $('chat-panel').hidden = !$('chat-panel').hidden; };
  $('chat-form').onsubmit = ev => {
    ev.preventDefault();
    const text = $('chat-input').value.trim();
    if (text) client.chat(text);
    $('chat-input').value = '';
  };
  $('leave').onclick = () => end(t('left'));
  $('rejoin').onclick = () => location.reload();
  $('toggle-recording').onclick = () => client.setRecording(!client.recording);
  $('caucus-split').onclick = splitCaucus;
  $('caucus-end').onclick = () => client.endCaucus();
  $('end-session').onclick = () => client.endSession();
}

main();
