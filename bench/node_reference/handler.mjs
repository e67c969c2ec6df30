// handler.mjs - Lambda wrapper for LibreChat API
//
// The original Node.js handler from shared/reference/lambda-handler-contract.md, kept as it
// was (its fixed 1 s delay, 500 ms health polls, server started inside the first invocation,
// single-value headers and query) so bench/bench_runtime.py can measure it beside the Python
// runtime. Adapted only to run against the benchmark's upstream; every change is marked
// "bench:":
// - the server command, port and health path come from UPSTREAM_COMMAND (split on
//   whitespace), UPSTREAM_PORT and UPSTREAM_HEALTH_PATH, with the original values as defaults;
// - the S3 config fetch is skipped when CONFIG_S3_BUCKET is unset (no AWS here);
// - the config is written to CONFIG_PATH when set (the contract lists it as a Lambda
//   variable), so parallel runs do not share /tmp/librechat.yaml.
// - context.callbackWaitsForEmptyEventLoop = false, so a second event is ever handled (see
//   the handler).
import { spawn } from 'child_process';
import http from 'http';
import https from 'https';
import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';

const LIBRECHAT_PORT = Number(process.env.UPSTREAM_PORT || 3080); // bench: was 3080
const LIBRECHAT_HOST = 'localhost';
const CONFIG_PATH = process.env.CONFIG_PATH || '/tmp/librechat.yaml'; // bench: was fixed
// bench: were 'node /app/dist/server/index.js' and '/api/health'
const [SERVER_BIN, ...SERVER_ARGS] = (
  process.env.UPSTREAM_COMMAND || 'node /app/dist/server/index.js'
).trim().split(/\s+/);
const HEALTH_PATH = process.env.UPSTREAM_HEALTH_PATH || '/api/health';

let server = null;
let serverReady = false;

// SSE endpoints that require streaming
const SSE_PATTERNS = [
  /^\/api\/ask\//,
  /^\/api\/chat\//,
  /^\/api\/agents\//
];

/**
 * Download config file from S3 at cold start
 */
async function fetchConfig() {
  if (!process.env.CONFIG_S3_BUCKET) return; // bench: no bucket, no fetch
  const s3 = new S3Client({});
  const bucket = process.env.CONFIG_S3_BUCKET || 'genai-shared-config';
  const key = process.env.CONFIG_S3_KEY || 'lambda-test/librechat/librechat.yaml';

  try {
    const command = new GetObjectCommand({ Bucket: bucket, Key: key });
    const response = await s3.send(command);
    const body = await response.Body.transformToString();

    // Replace domain references (FR-027)
    const customDomain = process.env.DOMAIN_SERVER || 'lambda-test.sandbox.data.apro.is';
    const updatedConfig = body.replace(/genai\.sandbox\.data\.apro\.is/g, customDomain.replace('https://', ''));

    const fs = await import('fs');
    fs.writeFileSync(CONFIG_PATH, updatedConfig);
    console.log('Config file fetched and updated successfully');
  } catch (error) {
    console.error('Failed to fetch config:', error);
    throw error;
  }
}

/**
 * Start LibreChat server (cold start only)
 */
async function ensureServerRunning() {
  if (serverReady) return;

  // Fetch config on cold start (FR-026)
  await fetchConfig();

  return new Promise((resolve, reject) => {
    console.log('Starting LibreChat server...');

    server = spawn(SERVER_BIN, SERVER_ARGS, { // bench: was spawn('node', ['/app/dist/server/index.js'], ...)
      env: {
        ...process.env,
        PORT: String(LIBRECHAT_PORT),
        HOST: LIBRECHAT_HOST,
        CONFIG_PATH: CONFIG_PATH
      },
      stdio: ['pipe', 'pipe', 'pipe']
    });

    server.stdout.on('data', (data) => {
      console.log(`LibreChat: ${data}`);
    });

    server.stderr.on('data', (data) => {
      console.error(`LibreChat stderr: ${data}`);
    });

    server.on('error', (err) => {
      console.error('Failed to start server:', err);
      reject(err);
    });

    // Wait for server to be healthy
    const maxAttempts = 60;
    let attempts = 0;

    const checkHealth = () => {
      attempts++;
      const req = http.request({
        hostname: LIBRECHAT_HOST,
        port: LIBRECHAT_PORT,
        path: HEALTH_PATH, // bench: was '/api/health'
        method: 'GET',
        timeout: 1000
      }, (res) => {
        if (res.statusCode === 200) {
          console.log('LibreChat server is ready');
          serverReady = true;
          resolve();
        } else {
          retry();
        }
      });

      req.on('error', retry);
      req.on('timeout', retry);
      req.end();
    };

    const retry = () => {
      if (attempts < maxAttempts) {
        setTimeout(checkHealth, 500);
      } else {
        reject(new Error('Server failed to start within timeout'));
      }
    };

    // Start checking after a short delay
    setTimeout(checkHealth, 1000);
  });
}

/**
 * Check if path requires SSE streaming
 */
function isStreamingEndpoint(path) {
  return SSE_PATTERNS.some(pattern => pattern.test(path));
}

/**
 * Forward request to LibreChat and stream response
 */
async function proxyRequest(event, responseStream) {
  const options = {
    hostname: LIBRECHAT_HOST,
    port: LIBRECHAT_PORT,
    path: event.path + (event.queryStringParameters
      ? '?' + new URLSearchParams(event.queryStringParameters).toString()
      : ''),
    method: event.httpMethod,
    headers: {
      ...event.headers,
      host: `${LIBRECHAT_HOST}:${LIBRECHAT_PORT}`
    }
  };

  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      // Set response metadata
      const httpResponseMetadata = {
        statusCode: res.statusCode,
        headers: { ...res.headers }
      };

      responseStream = awslambda.HttpResponseStream.from(responseStream, httpResponseMetadata);

      // Stream the response
      res.on('data', (chunk) => {
        responseStream.write(chunk);
      });

      res.on('end', () => {
        responseStream.end();
        resolve();
      });

      res.on('error', (err) => {
        console.error('Response error:', err);
        reject(err);
      });
    });

    req.on('error', (err) => {
      console.error('Request error:', err);
      reject(err);
    });

    // Set timeout for streaming requests
    if (isStreamingEndpoint(event.path)) {
      req.setTimeout(890000); // Just under Lambda 15-min limit
    }

    // Send request body if present
    if (event.body) {
      const body = event.isBase64Encoded
        ? Buffer.from(event.body, 'base64')
        : event.body;
      req.write(body);
    }

    req.end();
  });
}

/**
 * Main Lambda handler with streaming support
 */
export const handler = awslambda.streamifyResponse(
  async (event, responseStream, context) => {
    // bench: without this, aws-lambda-ric asks for the next event only once the event loop
    // is empty, which the running server's child process and pipes never allow: the original
    // serves one request per environment and then hangs until the function times out.
    // REFERENCE_WAIT_FOR_EMPTY_EVENT_LOOP=true restores that behaviour.
    if (process.env.REFERENCE_WAIT_FOR_EMPTY_EVENT_LOOP !== 'true') {
      context.callbackWaitsForEmptyEventLoop = false;
    }
    try {
      // Ensure LibreChat is running
      await ensureServerRunning();

      // Proxy request to LibreChat
      await proxyRequest(event, responseStream);
    } catch (error) {
      console.error('Handler error:', error);

      const errorResponse = {
        statusCode: 500,
        headers: { 'Content-Type': 'application/json' }
      };

      responseStream = awslambda.HttpResponseStream.from(responseStream, errorResponse);
      responseStream.write(JSON.stringify({
        error: 'Internal Server Error',
        message: error.message
      }));
      responseStream.end();
    }
  }
);
