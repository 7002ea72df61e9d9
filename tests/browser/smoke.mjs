import { startServer, launchBrowser, openJoin, join, waitForMedia } from './harness.mjs';
const server = await startServer();
const browser = await launchBrowser();
try {
  const m = await openJoin(browser, server, server.token('r1', 'med', '王调解员', 'mediator'));
  const p = await openJoin(browser, server, server.token('r1', 'zhang', '张三', 'party'));
  await join(m); await join(p);
  const t0 = Date.now();
  console.log('party gets', await waitForMedia(p, ['med']));
  console.log('mediator gets', await waitForMedia(m, ['zhang']), Date.now() - t0, 'ms');
} finally {
  await browser.close();
  console.log(server.log().slice(-3000));
  await server.stop();
}
