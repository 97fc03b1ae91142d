// A Node.js client of both services, as another team's generated client would be:
// it loads protos/ with @grpc/proto-loader and calls over @grpc/grpc-js. It prints one
// JSON object of what it saw; tests/test_interop_node.py runs it against a live server.
//   TARGET=127.0.0.1:50051 API_KEY=ark_test_ent_... node client.js
"use strict";
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTOS = path.resolve(__dirname, "../../../protos");
const target = process.env.TARGET;
const apiKey = process.env.API_KEY;

const definition = protoLoader.loadSync(
  ["arcus/counters/v1/counters.proto", "arcus/receivables/v1/advances.proto"],
  { includeDirs: [PROTOS], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true },
);
const api = grpc.loadPackageDefinition(definition);

// google.rpc.Status and its details, to decode grpc-status-details-bin.
const details = new protobuf.Root();
details.resolvePath = (_origin, target) => path.join(PROTOS, target);
details.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], { keepCase: false });
const Status = details.lookupType("google.rpc.Status");

function decodeStatus(error) {
  const raw = error.metadata && error.metadata.get("grpc-status-details-bin")[0];
  if (!raw) return null;
  const status = Status.decode(raw);
  const unpacked = status.details.map((any) => {
    const typeName = (any.typeUrl || any.type_url).split("/").pop();  // protobufjs keeps Any's own case
    const type = details.lookupType(typeName);
    return { type: typeName, value: type.toObject(type.decode(any.value), { longs: String }) };
  });
  return { code: status.code, message: status.message, details: unpacked };
}

function call(client, method, request, metadata) {
  return new Promise((resolve) => {
    client[method](request, metadata, { deadline: Date.now() + 10000 }, (error, response) => {
      if (error) resolve({ ok: false, code: error.code, status: decodeStatus(error) });
      else resolve({ ok: true, response });
    });
  });
}

async function main() {
  const credentials = grpc.credentials.createInsecure();
  const counters = new api.arcus.counters.v1.CounterService(target, credentials);
  const advances = new api.arcus.receivables.v1.AdvanceService(target, credentials);
  const authed = new grpc.Metadata();
  authed.set("authorization", `Bearer ${apiKey}`);
  const anonymous = new grpc.Metadata();

  const seen = {};
  seen.unauthenticated = await call(counters, "getCounter", { counterType: "COUNTER_TYPE_INVOICE" }, anonymous);
  seen.advanced = await call(counters, "advanceCounter",
    { counterType: "COUNTER_TYPE_INVOICE", advanceTo: "342665", prefix: "INV-" }, authed);
  seen.invalid = await call(counters, "advanceCounter",
    { counterType: "COUNTER_TYPE_PO", advanceTo: "1", prefix: "PO-", padding: 13 }, authed);
  seen.created = await call(advances, "createAdvance", {
    advance: {
      customer: { id: "C-00019" },
      paymentInformation: {
        paymentDate: "2024-06-13", receiptDate: "2024-06-13",
        paymentMethod: "PAYMENT_METHOD_PRINTED_CHECK", financialEntity: { id: "BOA" },
      },
      advanceSummary: { id: "511" },
      items: [{ glAccount: { id: "2200" }, accountLabel: { id: "Travel" }, txnAmount: "500",
                dimensions: { location: { id: "CA" } } }],
    },
  }, authed);
  seen.missing = await call(advances, "getAdvance", { key: "987654" }, authed);
  counters.close();
  advances.close();
  process.stdout.write(JSON.stringify(seen) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack || error) + "\n");
  process.exit(1);
});
