// Node peer for bench/compare, on the ws package (from the repo's
// node_modules): /echo sends every message back, /broadcast sends every
// message to all the other /broadcast connections. No permessage-deflate.
// Usage: node bench/peers/node_server.js [PORT]  (127.0.0.1, default 8091)
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8091);
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 24 });
const members = new Set();

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  if (path !== '/echo' && path !== '/broadcast') { socket.destroy(); return; }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (path === '/echo') {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    } else {
      members.add(ws);
      ws.on('message', (data, isBinary) => {
        for (const o of members) if (o !== ws) o.send(data, { binary: isBinary });
      });
      ws.on('close', () => members.delete(ws));
    }
    ws.on('error', () => {});
  });
});
server.listen(port, '127.0.0.1', 4096);
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
