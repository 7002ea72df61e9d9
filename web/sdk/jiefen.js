// jiefen client SDK: wraps the signaling protocol (docs/signaling.md) and one RTCPeerConnection.
// Plain ES module, no dependencies. See docs/sdk.md.
//
//   import { JiefenClient } from '/sdk/jiefen.js';
//   const c = new JiefenClient({ token });
//   c.addEventListener('track', e => ...);   // e.detail: { trackId, publisher, source, kind, track, stream }
//   await c.connect();                        // resolves 'joined' or 'lobby'
//   await c.publish(stream);                  // microphone + camera from getUserMedia

export const PROTOCOL_VERSION = 1;

const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

// The room data channel: its label and the SFU's refusal codes (media/src/data.rs).
const DATA_LABEL = 'jiefen';
const DATA_ERRORS = { 1: 'malformed', 2: 'too_large', 3: 'rate_limited', 4: 'not_permitted', 5: 'unknown_recipient' };

export class JiefenError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class JiefenClient extends EventTarget {
  constructor({ token, url, simulcast = true } = {}) {
    super();
    if (!token) throw new JiefenError('token_invalid', 'a join token is required');
    this.token = token;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.url = url || `${proto}//${location.host}/rtc/v1/ws`;
    // Reconnects start from here (a load balancer in production), which redirects as needed.
    this.entryUrl = this.url;
    this.ws = null;
    this.pc = null;
    this.dc = null;
    this.state = 'new'; // new | connecting | lobby | joined | reconnecting | closed
    this.self = null; // { identity, name, role, roomAdmin }
    this.participants = new Map(); // identity -> info
    this.tracks = new Map(); // track id -> { id, publisher, kind, source }
    this.lobby = [];
    this.recording = false;
    this.caucus = {};
    this.local = new Map(); // source -> { track, transceiver }
    this.subscriptions = new Map(); // track id -> transceiver
    this.midToTrack = new Map();
    this.negotiating = Promise.resolve();
    this.pendingAnswer = null;
    this.closedByUs = false;
    this.attempt = 0;
    // With `simulcast` (the default), cameras publish three layers (q, h, f at 1/4, 1/2, full
    // size) and the server forwards each subscriber the one that fits the size it shows the
    // video at (see setVideoSize).
    this.simulcast = simulcast;
    this.videoSizes = new Map(); // track id -> "w x h" last sent
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // Opens the websocket and joins. Resolves with 'joined' or 'lobby'; rejects with a JiefenError.
  connect({ resume = false, redirects = 0 } = {}) {
    this.state = this.state === 'reconnecting' ? 'reconnecting' : 'connecting';
    decideCodecOrder(); // ahead of the first publish
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', token: this.token, protocol: PROTOCOL_VERSION, resume }));
      ws.onmessage = ev => {
        let m;
        try { m = JSON.parse(ev.data); } catch { return; }
        if (!settled && m.type === 'redirect' && redirects < 3) {
          // The room lives on another node: go there.
          settled = true;
          ws.onclose = null;
          try { ws.close(); } catch {}
          const base = new URL(m.url);
          this.url = `${base.protocol === 'https:' ? 'wss:' : 'ws:'}//${base.host}/rtc/v1/ws`;
          this.connect({ resume, redirects: redirects + 1 }).then(resolve, reject);
          return;
        }
        if (!settled && m.type === 'error') {
          settled = true;
          reject(new JiefenError(m.code, m.message));
          return;
        }
        if (!settled && (m.type === 'joined' || m.type === 'lobby_waiting')) {
          settled = true;
          resolve(m.type === 'joined' ? 'joined' : 'lobby');
        }
        this.onMessage(m);
      };
      ws.onerror = () => {};
      ws.onclose = ev => {
        if (!settled) {
          settled = true;
          reject(new JiefenError('unavailable', `connection closed (${ev.code})`));
          return;
        }
        this.onSocketClosed(ev);
      };
    });
  }

  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  onMessage(m) {
    switch (m.type) {
      case 'joined': return this.onJoined(m);
      case 'lobby_waiting': this.state = 'lobby'; return this.emit('lobby', {});
      case 'lobby': this.lobby = m.waiting; return this.emit('lobbychange', { waiting: m.waiting });
      case 'refused': this.state = 'closed'; return this.emit('refused', {});
      case 'answer': if (this.pendingAnswer) { this.pendingAnswer.resolve(m.sdp); this.pendingAnswer = null; } return;
      case 'participant_joined':
        this.participants.set(m.participant.identity, m.participant);
        return this.emit('participants', { participants: [...this.participants.values()] });
      case 'participant_updated':
        this.participants.set(m.participant.identity, m.participant);
        if (this.self && m.participant.identity === this.self.identity) this.self.group = m.participant.group;
        return this.emit('participants', { participants: [...this.participants.values()] });
      case 'participant_left':
        this.participants.delete(m.identity);
        return this.emit('participants', { participants: [...this.participants.values()] });
      case 'track_published':
        this.tracks.set(m.track.id, m.track);
        return this.renegotiate();
      case 'track_unpublished':
        this.tracks.delete(m.track);
        this.emit('trackended', { trackId: m.track });
        return this.renegotiate();
      case 'chat': return this.emit('chat', { ...m, via: 'signaling' });
      case 'connection_quality': return this.emit('quality', { identity: m.identity, quality: m.quality });
      case 'active_speaker': this.activeSpeaker = m.identity; return this.emit('speaker', { identity: m.identity });
      case 'recording': this.recording = m.recording; return this.emit('recording', { recording: m.recording, by: m.by });
      case 'document': return this.emit('document', { kind: m.kind, title: m.title, version: m.version, sha256: m.sha256, body: m.body });
      case 'mute_requested': return this.emit('muterequested', { source: m.source, by: m.by });
      case 'caucus': this.caucus = m.groups; return this.emit('caucus', { groups: m.groups });
      case 'connection_state': return this.emit('connectionstate', { state: m.state });
      case 'publish_layers': return this.setPublishLayers(m.source, m.active);
      case 'removed': this.closedByUs = true; this.state = 'closed'; return this.emit('removed', { reason: m.reason });
      case 'session_ended': this.closedByUs = true; this.state = 'closed'; return this.emit('ended', { by: m.by });
      case 'going_away': return this.emit('goingaway', {});
      case 'error':
        console.warn('jiefen: server error', m.code, m.message);
        if (this.pendingAnswer && m.code === 'bad_offer') { this.pendingAnswer.reject(new JiefenError(m.code, m.message)); this.pendingAnswer = null; }
        return this.emit('error', { code: m.code, message: m.message });
      default: return;
    }
  }

  onJoined(m) {
    const rejoin = (this.state === 'reconnecting' || this.self !== null) && !m.resumed;
    this.state = 'joined';
    this.attempt = 0;
    this.self = { identity: m.identity, name: m.name, role: m.role, roomAdmin: m.room_admin, group: null };
    this.room = m.room;
    this.participants = new Map(m.participants.map(p => [p.identity, p]));
    this.tracks = new Map(m.tracks.map(t => [t.id, t]));
    this.lobby = m.lobby;
    this.recording = m.recording;
    if (rejoin) this.resetPeerConnection();
    this.ensurePeerConnection();
    this.emit('joined', { self: this.self, participants: [...this.participants.values()], recording: this.recording, lobby: this.lobby, rejoined: rejoin || !!m.resumed, resumed: !!m.resumed });
    // Re-attach local tracks on a new connection after a reconnect.
    if (rejoin) {
      for (const [source, l] of this.local) {
        const init = { direction: 'sendonly', streams: [l.stream] };
        if (source === 'camera' && this.simulcast) init.sendEncodings = SIMULCAST_LAYERS;
        l.transceiver = this.pc.addTransceiver(l.track, init);
        if (source === 'camera') preferCodecs(l.transceiver);
      }
    }
    this.renegotiate();
  }

  ensurePeerConnection() {
    if (this.pc) return this.pc;
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    pc.ontrack = ev => {
      const mid = ev.transceiver.mid;
      const trackId = this.midToTrack.get(mid);
      const info = trackId && this.tracks.get(trackId);
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      this.emit('track', { trackId, publisher: info ? info.publisher : (ev.streams[0] && ev.streams[0].id), source: info && info.source, kind: ev.track.kind, track: ev.track, stream });
    };
    // The room data channel (chat and control), relayed by the SFU: see docs/signaling.md.
    this.openDataChannel(pc);
    pc.onconnectionstatechange = () => {
      this.emit('mediastate', { state: pc.connectionState });
      if (pc.connectionState === 'failed' && this.state === 'joined') {
        // Same seat, same subscriptions: restart ICE over the signaling connection; rejoin
        // from scratch only if that does not bring media back.
        this.restartIce();
        clearTimeout(this.iceRestartTimer);
        this.iceRestartTimer = setTimeout(() => {
          if (this.pc === pc && pc.connectionState !== 'connected' && this.state === 'joined') this.reconnect();
        }, 10000);
      }
    };
    return pc;
  }

  openDataChannel(pc) {
    const dc = pc.createDataChannel(DATA_LABEL, { ordered: true });
    dc.binaryType = 'arraybuffer';
    this.dc = dc;
    dc.onopen = () => { if (this.dc === dc) this.emit('datastate', { open: true }); };
    dc.onclose = () => { if (this.dc === dc) this.emit('datastate', { open: false }); };
    dc.onmessage = ev => { if (this.dc === dc) this.onData(ev.data); };
  }

  get dataOpen() { return !!this.dc && this.dc.readyState === 'open'; }

  // A frame from the SFU: a relayed message (sender named by the server) or a refusal.
  onData(data) {
    if (typeof data === 'string' || !(data instanceof ArrayBuffer)) return;
    const b = new Uint8Array(data);
    if (b[0] === 0xEE && b.length >= 2) {
      const reason = new TextDecoder().decode(b.subarray(2));
      return this.emit('dataerror', { code: DATA_ERRORS[b[1]] || 'unknown', reason });
    }
    if (b[0] !== 0x01 || b.length < 3) return;
    const len = b[1];
    if (b.length < 3 + len) return;
    const from = new TextDecoder().decode(b.subarray(2, 2 + len));
    const flags = b[2 + len];
    const payload = b.subarray(3 + len);
    const detail = { from, private: (flags & 2) !== 0 };
    if (flags & 1) detail.text = new TextDecoder().decode(payload); else detail.bytes = payload;
    if (detail.text !== undefined && detail.text.startsWith('{')) {
      // The app's own control messages (chat) are JSON; anything else is the caller's.
      let m = null;
      try { m = JSON.parse(detail.text); } catch {}
      if (m && m.t === 'chat' && typeof m.text === 'string') {
        const who = this.participants.get(from);
        return this.emit('chat', { from, name: who ? who.name : from, text: m.text, at: Math.floor(Date.now() / 1000), via: 'datachannel', private: detail.private });
      }
    }
    this.emit('data', detail);
  }

  // Sends on the room data channel: a string or bytes, to everyone or to `to` (identities).
  // Returns false when the channel is not open.
  sendData(payload, { to = [] } = {}) {
    if (!this.dataOpen) return false;
    if (typeof payload === 'string' && to.length === 0) { this.dc.send(payload); return true; }
    const enc = new TextEncoder();
    const text = typeof payload === 'string';
    const body = text ? enc.encode(payload) : new Uint8Array(payload.buffer ? payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength) : payload);
    const names = to.map(t => enc.encode(t));
    const frame = new Uint8Array(3 + names.reduce((n, x) => n + 1 + x.length, 0) + body.length);
    let i = 0;
    frame[i++] = 0x01;
    frame[i++] = names.length;
    for (const n of names) { frame[i++] = n.length; frame.set(n, i); i += n.length; }
    frame[i++] = text ? 1 : 0;
    frame.set(body, i);
    this.dc.send(frame);
    return true;
  }

  resetPeerConnection() {
    if (this.dc) { try { this.dc.close(); } catch {} }
    this.dc = null;
    if (this.pc) { try { this.pc.close(); } catch {} }
    this.pc = null;
    this.subscriptions.clear();
    this.midToTrack.clear();
  }

  // Publishes every track of a stream (microphone, camera) or a screen-share stream.
  async publish(stream, { screen = false } = {}) {
    await decideCodecOrder();
    this.ensurePeerConnection();
    for (const track of stream.getTracks()) {
      const source = screen ? 'screen' : (track.kind === 'audio' ? 'microphone' : 'camera');
      if (this.local.has(source)) await this.unpublish(source);
      const init = { direction: 'sendonly', streams: [stream] };
      if (source === 'camera' && this.simulcast) init.sendEncodings = SIMULCAST_LAYERS;
      const transceiver = this.pc.addTransceiver(track, init);
      if (track.kind === 'video') preferCodecs(transceiver);
      this.local.set(source, { track, stream, transceiver });
    }
    return this.renegotiate();
  }

  async unpublish(source) {
    const l = this.local.get(source);
    if (!l) return;
    this.local.delete(source);
    try { l.transceiver.sender.replaceTrack(null); l.transceiver.direction = 'inactive'; } catch {}
    return this.renegotiate();
  }

  // The server pauses simulcast layers nobody watches (and resumes them when someone does):
  // the encoder stops producing them, which spares a phone's uplink and battery.
  async setPublishLayers(source, active) {
    const l = this.local.get(source);
    if (!l || !Array.isArray(active)) return;
    const sender = l.transceiver.sender;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    let changed = false;
    for (const e of params.encodings) {
      const i = SIMULCAST_LAYERS.findIndex(layer => layer.rid === e.rid);
      if (i >= 0 && i < active.length && e.active !== !!active[i]) { e.active = !!active[i]; changed = true; }
    }
    if (!changed) return;
    try { await sender.setParameters(params); } catch (err) { console.warn('jiefen: could not change simulcast layers', err); return; }
    this.emit('publishlayers', { source, active });
  }

  // Muting detaches the track from its sender, so no packets leave at all (not just silence).
  async setMuted(source, muted) {
    const l = this.local.get(source);
    if (l) {
      l.track.enabled = !muted;
      try { await l.transceiver.sender.replaceTrack(muted ? null : l.track); } catch {}
    }
    this.send({ type: 'mute', source, muted });
  }

  // Serialised offer/answer: every change of tracks goes through here.
  renegotiate() {
    this.negotiating = this.negotiating.then(() => this.negotiate()).catch(e => this.emit('error', { code: 'bad_offer', message: String(e && e.message || e) }));
    return this.negotiating;
  }

  async negotiate() {
    if (this.state !== 'joined' || !this.pc) return;
    const pc = this.pc;
    // A receive-only m-line for each room track we may see and do not yet have.
    for (const [id, t] of this.tracks) {
      if (t.publisher === this.self.identity || this.subscriptions.has(id)) continue;
      const tr = pc.addTransceiver(t.kind, { direction: 'recvonly' });
      this.subscriptions.set(id, tr);
    }
    for (const [id, tr] of [...this.subscriptions]) {
      if (!this.tracks.has(id)) { this.subscriptions.delete(id); try { tr.direction = 'inactive'; } catch {} }
    }
    // Nothing to send or receive yet: an offer without m-lines would be answered without a
    // BUNDLE group, and Chrome (max-bundle) then refuses every later offer on this connection.
    if (pc.getTransceivers().length === 0 && !this.dc) return;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const publish = [];
    for (const [source, l] of this.local) if (l.transceiver.mid !== null) publish.push({ mid: l.transceiver.mid, source });
    const subscribe = [];
    this.midToTrack.clear();
    for (const [id, tr] of this.subscriptions) {
      if (tr.mid !== null) { subscribe.push({ mid: tr.mid, track: id }); this.midToTrack.set(tr.mid, id); }
    }
    const answer = new Promise((resolve, reject) => {
      this.pendingAnswer = { resolve, reject };
      setTimeout(() => reject(new Error('no answer within 10 s')), 10000);
    });
    this.send({ type: 'offer', sdp: pc.localDescription.sdp, publish, subscribe });
    const sdp = await answer;
    if (this.pc !== pc) return;
    await pc.setRemoteDescription({ type: 'answer', sdp });
  }

  // An ICE restart on the current peer connection (new ICE credentials both ways).
  restartIce() {
    if (!this.pc) return Promise.resolve();
    this.pc.restartIce();
    return this.renegotiate();
  }

  // Chat goes over the room data channel; over signaling while the channel is not open.
  chat(text, { to = [] } = {}) {
    if (this.sendData(JSON.stringify({ t: 'chat', text }), { to })) return 'datachannel';
    this.send({ type: 'chat', text });
    return 'signaling';
  }
  // Tells the server the size (CSS pixels × devicePixelRatio) a remote video is shown at.
  setVideoSize(trackId, width, height) {
    const w = Math.round(width), h = Math.round(height), key = `${w}x${h}`;
    if (!trackId || this.videoSizes.get(trackId) === key) return;
    this.videoSizes.set(trackId, key);
    this.send({ type: 'set_video_size', track: trackId, width: w, height: h });
  }
  admit(identity) { this.send({ type: 'admit', identity }); }
  refuse(identity) { this.send({ type: 'refuse', identity }); }
  muteParticipant(identity, source = 'microphone') { this.send({ type: 'mute_participant', identity, source }); }
  remove(identity) { this.send({ type: 'remove', identity }); }
  setRecording(recording) { this.send({ type: 'set_recording', recording }); }
  setCaucus(groups) { this.send({ type: 'set_caucus', groups }); }
  joinCaucusGroup(group) { this.send({ type: 'join_caucus_group', group }); }
  endCaucus() { this.send({ type: 'end_caucus' }); }
  endSession() { this.send({ type: 'end_session' }); }

  leave() {
    this.closedByUs = true;
    this.state = 'closed';
    this.send({ type: 'leave' });
    try { this.ws && this.ws.close(); } catch {}
    this.resetPeerConnection();
    for (const l of this.local.values()) l.track.stop();
    this.local.clear();
  }

  onSocketClosed() {
    if (this.closedByUs || this.state === 'closed') { this.emit('closed', {}); return; }
    this.reconnect();
  }

  // Rejoins with the same token: same seat on the server, a new peer connection here.
  async reconnect() {
    if (this.state === 'reconnecting' || this.state === 'closed') return;
    this.state = 'reconnecting';
    this.emit('reconnecting', {});
    try { this.ws && this.ws.close(); } catch {}
    while (this.state === 'reconnecting') {
      const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
      this.attempt++;
      await new Promise(r => setTimeout(r, delay));
      // Only the websocket dropped and media still flows: ask for the same seat back.
      const resume = !!this.pc && !['failed', 'closed'].includes(this.pc.connectionState);
      this.url = this.entryUrl;
      try {
        await this.connect({ resume });
        this.emit('reconnected', {});
        return;
      } catch (e) {
        if (e.code === 'token_expired' || e.code === 'token_invalid' || e.code === 'forbidden') {
          this.state = 'closed';
          this.emit('error', { code: e.code, message: e.message });
          return;
        }
        this.state = 'reconnecting';
        if (this.attempt > 30) { this.state = 'closed'; this.emit('closed', {}); return; }
      }
    }
  }
}

const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', maxBitrate: 1500000 },
];

// Video codec order: VP8 first where the browser encodes it efficiently; H.264 first where only
// H.264 is hardware-accelerated (Safari, the WeChat browser on iOS) or VP8 is missing.
let h264First = false;
let codecOrder = null;
function decideCodecOrder() {
  codecOrder ||= queryCodecOrder();
  return codecOrder;
}
async function queryCodecOrder() {
  try {
    const mc = navigator.mediaCapabilities;
    if (mc && mc.encodingInfo) {
      const cfg = mime => ({ type: 'webrtc', video: { contentType: mime, width: 640, height: 480, bitrate: 800000, framerate: 30 } });
      // Some browsers never answer this query: give it half a second.
      const timeout = new Promise(resolve => setTimeout(() => resolve(null), 500));
      const answer = await Promise.race([Promise.all([mc.encodingInfo(cfg('video/VP8')), mc.encodingInfo(cfg('video/H264'))]), timeout]);
      if (answer) {
        const [vp8, h264] = answer;
        h264First = (!vp8.supported || !vp8.powerEfficient) && h264.supported && h264.powerEfficient;
      }
    }
  } catch {}
  return h264First;
}

function preferCodecs(transceiver) {
  if (!window.RTCRtpSender || !RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpSender.getCapabilities('video');
  if (!caps) return;
  const first = h264First ? /h264/i : /vp8/i, second = h264First ? /vp8/i : /h264/i;
  const rank = c => (first.test(c.mimeType) ? 0 : second.test(c.mimeType) ? 1 : /rtx|red|ulpfec/i.test(c.mimeType) ? 3 : 2);
  const codecs = [...caps.codecs].sort((a, b) => rank(a) - rank(b));
  try { transceiver.setCodecPreferences(codecs); } catch {}
}

// Decodes a JWT's claims for display (the server verifies; this does not).
export function peekClaims(token) {
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(atob(b64).split('').map(c => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
    return JSON.parse(json);
  } catch {
    return null;
  }
}
