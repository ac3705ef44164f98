'use strict';
// Shared helpers for the @jupyterlab/services tests. The server under test is started by
// tests/gateway_it/run_js.py, which passes its address and token in SANDCELL_GW_URL and
// SANDCELL_GW_TOKEN (and SANDCELL_GW_TARGET=sandcell|jupyter).

const assert = require('node:assert/strict');
const WebSocket = require('ws');
const services = require('@jupyterlab/services');

const { ServerConnection, KernelManager, KernelAPI, KernelSpecAPI } = services;

const BASE_URL = process.env.SANDCELL_GW_URL;
const TOKEN = process.env.SANDCELL_GW_TOKEN;
const TARGET = process.env.SANDCELL_GW_TARGET || 'sandcell';
const REFERENCE = TARGET === 'jupyter';

if (!BASE_URL || TOKEN === undefined) {
  throw new Error(
    'SANDCELL_GW_URL and SANDCELL_GW_TOKEN are not set: run these tests through ' +
      'tests/gateway_it/run_js.py, which starts the server under test'
  );
}
const url = new URL(BASE_URL);
if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
  throw new Error(`refusing to test a server that is not on this machine: ${BASE_URL}`);
}

// A WebSocket that offers no subprotocol, so that the server picks the legacy JSON framing.
class LegacyWebSocket extends WebSocket {
  constructor(address, _protocols, options) {
    super(address, [], options);
  }
}

function makeSettings(framing = 'v1') {
  return ServerConnection.makeSettings({
    baseUrl: BASE_URL,
    wsUrl: BASE_URL.replace(/^http/, 'ws'),
    token: TOKEN,
    appendToken: true,
    WebSocket: framing === 'legacy' ? LegacyWebSocket : WebSocket
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    })
  ]).finally(() => clearTimeout(timer));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function defaultKernelName(settings) {
  const specs = await KernelSpecAPI.getSpecs(settings);
  assert.ok(specs.default, 'no default kernelspec');
  return specs.default;
}

// Runs code; returns {reply, iopub, stdout, result}. iopub holds this request's iopub messages
// in arrival order (each with a `t` arrival time in ms).
async function execute(kernel, code, options = {}, timeoutMs = 30000) {
  const iopub = [];
  const future = kernel.requestExecute({ code, ...options });
  future.onIOPub = msg => {
    iopub.push(Object.assign(msg, { t: Date.now() }));
  };
  const reply = await withTimeout(future.done, timeoutMs, `execute ${JSON.stringify(code)}`);
  // `done` resolves on the reply and the idle status both.
  const stdout = iopub
    .filter(m => m.header.msg_type === 'stream' && m.content.name === 'stdout')
    .map(m => m.content.text)
    .join('');
  const res = iopub.find(m => m.header.msg_type === 'execute_result');
  const result = res ? res.content.data['text/plain'] : undefined;
  return { reply, iopub, stdout, result, future };
}

function types(iopub) {
  return iopub.map(m =>
    m.header.msg_type === 'status' ? `status:${m.content.execution_state}` : m.header.msg_type
  );
}

async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) {
      return v;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await sleep(50);
  }
}

async function waitIdle(kernel, ms = 60000) {
  await waitFor(
    () => kernel.connectionStatus === 'connected' && kernel.status === 'idle',
    ms,
    `kernel ${kernel.id} connected and idle (now ${kernel.connectionStatus}/${kernel.status})`
  );
}

module.exports = {
  services,
  KernelManager,
  KernelAPI,
  KernelSpecAPI,
  REFERENCE,
  TARGET,
  makeSettings,
  withTimeout,
  sleep,
  defaultKernelName,
  execute,
  types,
  waitFor,
  waitIdle
};
