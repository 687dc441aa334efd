// Drives LicenseSpring's Node.js SDK (@licensespring/node-sdk, its V1 floating server
// client FloatingAPI) against a floatkey server, one action per run, for
// tests/sdk/test_node_sdk.py. Usage: node driver.js '<json request>'; the request names
// url, product, action and the action's arguments. Prints one JSON line:
// {"ok": true, "result": ...} or {"ok": false, "error": <what the SDK threw>}.
// Exits non-zero only when the driver itself breaks.
'use strict';

const { FloatingAPI } = require('@licensespring/node-sdk');
const LicenseData = require('@licensespring/node-sdk/dist/src/license-data').default;

async function run(request) {
  const api = new FloatingAPI({ apiPath: request.url, appVersion: 'floatkey-test 1.0' }, request.product);
  if (request.action === 'hardware_id') {
    return api.getHardwareID();
  }
  // As an application does: log in first, or register refuses to run at all.
  if (!request.skip_login) {
    await api.authenticate(request.username ?? 'anyone', request.password ?? 'anything');
  }
  switch (request.action) {
    case 'login':
      return { token: api.bearerToken };
    case 'register': {
      const response = await api.registerUser(request.user, request.license_id, request.user_info);
      // What the SDK's own license model makes of the answer (License.check does this).
      const model = new LicenseData(request.product, 24, api.getHardwareID());
      model.updateFloatingRegisterData(response);
      return { response, floating_in_use_devices: model.license.floating_in_use_devices };
    }
    case 'unregister':
      return await api.unregisterUser(request.user, request.license_id);
    case 'borrow':
      return await api.borrow(request.borrowed_until, request.license_id);
    case 'add_consumption':
      return await api.addConsumption(request.consumptions, request.license_id, request.max_overages, request.allow_overages);
    case 'add_feature_consumption':
      return await api.addFeatureConsumption(request.feature, request.consumptions, request.license_id);
    case 'feature_register':
      return await api.registerFeature(request.feature, request.license_id);
    case 'feature_release':
      return await api.featureRelease(request.feature, request.license_id);
    default:
      throw new Error(`driver.js: unknown action ${JSON.stringify(request.action)}`);
  }
}

async function main() {
  const request = JSON.parse(process.argv[2]);
  let answer;
  try {
    answer = { ok: true, result: await run(request) };
  } catch (error) {
    if (error instanceof Error) throw error; // a bug here or in the SDK, not a server answer
    answer = { ok: false, error };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}

main().catch((error) => {
  process.stderr.write(`driver.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(2);
});
