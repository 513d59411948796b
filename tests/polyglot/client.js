#!/usr/bin/env node
// Polyglot smoke test: a Node gRPC client of trustly-sidecar, loading proto/ at run time.
//
// Usage: node tests/polyglot/client.js --addr 127.0.0.1:50051
//
// It loads proto/trustly/v1/payment_service.proto with @grpc/proto-loader (no generated code)
// and, against a running sidecar (for example `cargo run -- --sandbox`), calls Deposit,
// RegisterAccount, AccountPayout and an invalid Deposit that must be refused with
// INVALID_ARGUMENT. Each call has a 30 s deadline. Exit 0 when every step passes, 1 on the first
// failure, 2 on a usage or setup error.
//
// If TRUSTLY_SIDECAR_GRPC_TOKEN is set (non-empty), every call carries the metadata
// `authorization: Bearer <token>`.
//
// Needs: npm ci --prefix tests/polyglot
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');

const LABEL = 'node';
const DEADLINE_MS = 30_000;
const END_USER_ID = 'node-user-1';
const TOTAL = 4;
const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILE = 'trustly/v1/payment_service.proto';

class StepFailed extends Error {}

function die(message, code = 2) {
  process.stderr.write(`${LABEL}: FAIL: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  let addr;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--addr') {
      addr = argv[i + 1];
      i += 1;
    } else if (arg.startsWith('--addr=')) {
      addr = arg.slice('--addr='.length);
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write('usage: node tests/polyglot/client.js --addr HOST:PORT\n');
      process.exit(0);
    } else {
      die(`unknown argument ${JSON.stringify(arg)}; usage: client.js --addr HOST:PORT`);
    }
  }
  if (!addr) die('missing --addr HOST:PORT; usage: client.js --addr HOST:PORT');
  return addr;
}

function requireDep(name) {
  try {
    return require(name);
  } catch (err) {
    return die(`cannot load ${name} (${err.message}); run: npm ci --prefix tests/polyglot`);
  }
}

function loadService(grpc, protoLoader) {
  if (!fs.existsSync(path.join(PROTO_ROOT, PROTO_FILE))) {
    die(`${PROTO_FILE} not found under ${PROTO_ROOT}`);
  }
  let definition;
  try {
    definition = protoLoader.loadSync(PROTO_FILE, {
      includeDirs: [PROTO_ROOT],
      keepCase: false,
      defaults: true,
      longs: String,
      enums: String,
      oneofs: true,
    });
  } catch (err) {
    die(`cannot load ${PROTO_FILE}: ${err.message}`);
  }
  const service = grpc.loadPackageDefinition(definition)?.trustly?.v1?.PaymentService;
  if (typeof service !== 'function') die('trustly.v1.PaymentService not found in the loaded proto');
  return service;
}

const digits = (value) => typeof value === 'string' && /^[0-9]+$/.test(value);

function main() {
  const addr = parseArgs(process.argv.slice(2));
  const grpc = requireDep('@grpc/grpc-js');
  const protoLoader = requireDep('@grpc/proto-loader');
  const PaymentService = loadService(grpc, protoLoader);

  const client = new PaymentService(addr, grpc.credentials.createInsecure());
  const token = process.env.TRUSTLY_SIDECAR_GRPC_TOKEN || '';

  // One unary call with a fresh 30 s deadline; resolves to the response or rejects with the
  // grpc-js ServiceError (which has .code and .details).
  const rawCall = (method, request) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    if (token) metadata.add('authorization', `Bearer ${token}`);
    client[method](request, metadata, { deadline: Date.now() + DEADLINE_MS }, (err, resp) => {
      if (err) reject(err);
      else resolve(resp);
    });
  });
  const statusName = (code) => Object.keys(grpc.status).find((k) => grpc.status[k] === code) ?? String(code);
  const call = async (method, request) => {
    try {
      return await rawCall(method, request);
    } catch (err) {
      throw new StepFailed(`${method} failed: ${statusName(err.code)}: ${err.details}`);
    }
  };

  const depositRequest = (amount) => ({
    messageId: crypto.randomUUID(),
    endUserId: END_USER_ID,
    currencyCode: 'EUR',
    amount,
    shopperStatement: 'Polyglot',
    user: {
      firstName: 'Noah',
      lastName: 'Ødegård ✨',
      country: 'SE',
      locale: 'sv_SE',
      successUrl: 'https://merchant.example/ok',
      failUrl: 'https://merchant.example/fail',
      email: 'noah@example.com',
    },
  });

  let passed = 0;
  const steps = async () => {
    // (a) Deposit
    let resp = await call('Deposit', depositRequest('100.00'));
    if (!digits(resp.orderId)) throw new StepFailed(`Deposit: orderId ${JSON.stringify(resp.orderId)} is not all digits`);
    if (typeof resp.url !== 'string' || !resp.url.startsWith('http')) {
      throw new StepFailed(`Deposit: url ${JSON.stringify(resp.url)} does not start with http`);
    }
    console.log(`${LABEL}: step 1/${TOTAL} Deposit ok: orderId=${resp.orderId} url=${resp.url}`);
    passed += 1;

    // (b) RegisterAccount
    const accountNumber = String(crypto.randomInt(10_000_000, 100_000_000));
    resp = await call('RegisterAccount', {
      endUserId: END_USER_ID,
      account: {
        clearingHouse: 'SWEDEN',
        bankNumber: '6112',
        accountNumber,
        firstName: 'Noah',
        lastName: 'Ødegård',
      },
    });
    if (!digits(resp.accountId)) {
      throw new StepFailed(`RegisterAccount: accountId ${JSON.stringify(resp.accountId)} is not all digits`);
    }
    if (typeof resp.descriptor !== 'string' || !resp.descriptor.startsWith('*')) {
      throw new StepFailed(`RegisterAccount: descriptor ${JSON.stringify(resp.descriptor)} does not start with *`);
    }
    const { accountId } = resp;
    console.log(`${LABEL}: step 2/${TOTAL} RegisterAccount ok: accountId=${accountId} descriptor=${resp.descriptor}`);
    passed += 1;

    // (c) AccountPayout
    resp = await call('AccountPayout', {
      accountId,
      endUserId: END_USER_ID,
      messageId: crypto.randomUUID(),
      amount: { amount: '10.00', currencyCode: 'EUR' },
      shopperStatement: 'Polyglot payout',
    });
    if (resp.accepted !== true) throw new StepFailed(`AccountPayout: accepted is ${JSON.stringify(resp.accepted)}, want true`);
    if (!digits(resp.orderId)) throw new StepFailed(`AccountPayout: orderId ${JSON.stringify(resp.orderId)} is not all digits`);
    console.log(`${LABEL}: step 3/${TOTAL} AccountPayout ok: orderId=${resp.orderId} accepted=${resp.accepted}`);
    passed += 1;

    // (d) Deposit with three decimals must be refused before anything reaches Trustly.
    let refused;
    try {
      resp = await rawCall('Deposit', depositRequest('10.001'));
    } catch (err) {
      refused = err;
    }
    if (!refused) {
      throw new StepFailed(`Deposit amount 10.001: succeeded (orderId=${JSON.stringify(resp.orderId)}), want INVALID_ARGUMENT`);
    }
    if (refused.code !== grpc.status.INVALID_ARGUMENT) {
      throw new StepFailed(`Deposit amount 10.001: got ${statusName(refused.code)}: ${refused.details}, want INVALID_ARGUMENT`);
    }
    console.log(`${LABEL}: step 4/${TOTAL} Deposit amount 10.001 refused ok: INVALID_ARGUMENT: ${refused.details}`);
    passed += 1;
  };

  steps().then(
    () => {
      client.close();
      console.log(`${LABEL}: ${passed} passed, 0 failed`);
      process.exitCode = 0;
    },
    (err) => {
      client.close();
      const why = err instanceof StepFailed ? err.message : `unexpected error: ${err && err.stack ? err.stack : err}`;
      process.stderr.write(`${LABEL}: FAIL at step ${passed + 1}/${TOTAL} against ${addr}: ${why}\n`);
      console.log(`${LABEL}: ${passed} passed, 1 failed`);
      process.exitCode = 1;
    },
  );
}

main();
