'use strict';
// The SnapStart tests' upstream: a Node server that holds a Redis client (the fake ioredis
// next to it) and reports, on GET /state, what the preload did to it and to Math.random.
const http = require('node:http');
const Redis = require('ioredis').default;

const client = new Redis();
const server = http.createServer((req, res) => {
  if (req.url === '/health') return res.end('OK');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    redisStatus: client.status,
    redisConnects: client.connects,
    random: Math.random(),
    uuid: require('node:crypto').randomUUID(),
  }));
});
server.listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1');
