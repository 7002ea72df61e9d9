// Test harness: starts `jiefen serve` on free ports with a fresh data dir, mints tokens with
// `jiefen token`, launches Debian's headless Chromium with a fake camera and microphone.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import dgram from 'node:dgram';
import { chromium } from 'playwright-core';

export const BIN = process.env.JIEFEN_BIN || new URL('../../target/debug/jiefen', import.meta.url).pathname;
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

export async function startServer(extraArgs = [], extraEnv = {}, { demo = false } = {}) {
  const dataDir = mkdtempSync(joinPath(tmpdir(), 'jiefen-e2e-'));
  const mediaPort = await freeUdpPort();
  const args = ['serve', ...(demo ? [] : ['--no-demo']), '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--media-port', String(mediaPort), '--media-workers', '1', ...extraArgs];
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...extraEnv };
  delete env.DATABASE_URL; delete env.REDIS_URL;
  Object.assign(env, extraEnv);
  const proc = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', d => { log += d; if (process.env.SHOW_SERVER_LOG) process.stderr.write(d); });
  let out = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 20 s:\n' + log)), 20000);
    proc.stdout.on('data', d => {
      out += d;
      const m = /open (http:\/\/[^\s/]+)\//.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', code => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${log}`)); });
  });
  return {
    url, dataDir, proc,
    log: () => log,
    // The one-time admin password printed on the first start.
    async adminPassword() {
      for (let i = 0; i < 50; i++) {
        const m = /one-time password: (\S+)/.exec(out);
        if (m) return m[1];
        await new Promise(r => setTimeout(r, 100));
      }
      throw new Error('no admin password printed:\n' + out);
    },
    token(room, identity, name, role, { lobby = false } = {}) {
      const a = ['token', '--data-dir', dataDir, '--room', room, '--identity', identity, '--name', name, '--role', role];
      if (lobby) a.push('--lobby');
      const out = JSON.parse(execFileSync(BIN, a, { encoding: 'utf8' }));
      return out.token;
    },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise(r => { if (proc.exitCode !== null) r(); else proc.on('exit', r); setTimeout(r, 5000); });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--autoplay-policy=no-user-gesture-required'],
  });
}

// Opens the join page for a token in a new context and returns the page (not yet joined).
export async function openJoin(browser, server, token, { viewport } = {}) {
  const context = await browser.newContext({ viewport: viewport || { width: 1000, height: 800 }, permissions: ['camera', 'microphone'] });
  const page = await context.newPage();
  page.on('pageerror', e => console.error('[pageerror]', e.message));
  if (process.env.SHOW_CONSOLE) page.on('console', m => console.error(`[console ${m.type()}]`, m.text()));
  await page.goto(`${server.url}/join?token=${token}`);
  return page;
}

export async function join(page) {
  await page.getByTestId('join').click();
}

// Inbound media per publisher identity: { [identity]: { videoFrames, audioPackets, videoPackets } }.
export async function inboundByPublisher(page) {
  return page.evaluate(async () => {
    const c = window.jiefen && window.jiefen.client;
    if (!c || !c.pc) return {};
    const out = {};
    const stats = await c.pc.getStats();
    stats.forEach(s => {
      if (s.type !== 'inbound-rtp') return;
      const trackId = c.midToTrack.get(s.mid);
      const info = trackId && c.tracks.get(trackId);
      if (!info) return;
      const o = out[info.publisher] ||= { videoFrames: 0, videoPackets: 0, audioPackets: 0 };
      if (s.kind === 'video') { o.videoFrames += s.framesDecoded || 0; o.videoPackets += s.packetsReceived || 0; }
      else o.audioPackets += s.packetsReceived || 0;
    });
    return out;
  });
}

// Waits until `page` decodes video and receives audio from each identity in `from`.
export async function waitForMedia(page, from, { timeoutMs = 20000, video = true } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = {};
  while (Date.now() < deadline) {
    last = await inboundByPublisher(page);
    if (from.every(id => last[id] && last[id].audioPackets > 0 && (!video || last[id].videoFrames > 0))) return last;
    await page.waitForTimeout(250);
  }
  const state = await page.evaluate(() => {
    const c = window.jiefen && window.jiefen.client;
    const visible = ['precall', 'lobby', 'session', 'ended'].filter(id => !document.getElementById(id).hidden);
    return { screen: visible.join(','), client: c ? c.state : 'none', pc: c && c.pc ? c.pc.connectionState : 'none',
      tracks: c ? [...c.tracks.keys()] : [], subscriptions: c ? [...c.subscriptions.keys()] : [],
      error: document.getElementById('join-error').textContent, notice: document.getElementById('notice').textContent };
  }).catch(e => ({ error: String(e) }));
  throw new Error(`media from ${from.join(', ')} did not arrive in ${timeoutMs} ms; got ${JSON.stringify(last)}; page ${JSON.stringify(state)}`);
}

export function assert(cond, message) {
  if (!cond) throw new Error('assertion failed: ' + message);
}
