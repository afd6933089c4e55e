// Two-step verification in the browser: the administrator, whose role requires it, is
// sent to enrol at the first sign-in; the page shows the QR code and the key, the code
// of an authenticator (DCMTK's neighbour in Debian, oathtool, computing it from the key
// read off the page) turns it on, and the ten recovery codes are shown once. Signing in
// again asks for the code after the password: a wrong one is marked, the right one lets
// her in, and the audit log (administrators only) opens.
// Input: {"admin": {username, password}}. Output: {"recovery_codes": [...]}.
import { execFileSync } from "node:child_process";
import { assert, input, scenario, newContext, login, open, ready, screenshot, overflowsSideways } from "./lib.mjs";

/** The codes oathtool computes from `secret` (base32): the current step's and the next `ahead`. */
function oathtool(secret, ahead = 0) {
  return execFileSync("oathtool", ["--totp", "-b", "-w", String(ahead), secret], { encoding: "utf8" })
    .trim().split("\n");
}

await scenario("two_factor", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.admin.username, input.admin.password);
  assert.equal(new URL(page.url()).pathname, "/two-factor", "an administrator is sent to enrol");
  await page.locator("#two-factor-required").waitFor();
  await page.locator("#two-factor-begin").click();
  const key = page.locator("#two-factor-secret");
  await key.waitFor();
  assert.ok(await page.locator("#two-factor-qr").evaluate((img) => img.complete && img.naturalWidth > 0), "the QR code is drawn");
  const secret = await key.getAttribute("data-secret");
  assert.equal((await key.innerText()).replace(/\s+/g, ""), secret, "the key shown is the key");
  assert.ok(!(await overflowsSideways(page)));
  await screenshot(page, "enrol");
  const form = page.locator("#two-factor-confirm");
  await form.locator('input[name="code"]').fill("000000");
  await form.locator('button[type="submit"]').click();
  await form.locator('[data-error-for="code"]:not(:empty), [role="alert"]:not(:empty)').first().waitFor();
  const [now, next] = oathtool(secret, 1);
  await form.locator('input[name="code"]').fill(now);
  await form.locator('button[type="submit"]').click();
  await page.locator("#recovery-codes li").nth(9).waitFor();
  const recovery = await page.locator("#recovery-codes code").allInnerTexts();
  assert.equal(recovery.length, 10);
  await screenshot(page, "recovery-codes");

  // Signing in again: the password, then the code.
  const again = await newContext(browser);
  const tab = await again.newPage();
  await open(tab, "/login");
  await tab.locator('form#login input[name="username"]').fill(input.admin.username);
  await tab.locator('form#login input[name="password"]').fill(input.admin.password);
  await tab.locator('form#login button[type="submit"]').click();
  const code = tab.locator("#login-code");
  await code.waitFor();
  await code.fill("000000");
  await tab.locator('#login-second-factor button[type="submit"]').click();
  await tab.locator('#login-code[aria-invalid="true"]').waitFor();
  await screenshot(tab, "code-refused");
  await tab.evaluate(() => { window.__duikouOld = true; });
  await code.fill(next);
  await tab.locator('#login-second-factor button[type="submit"]').click();
  await tab.waitForFunction(() => !window.__duikouOld && document.body?.dataset.ready === "true");
  await ready(tab);
  assert.notEqual(new URL(tab.url()).pathname, "/login");
  await open(tab, "/audit");
  await tab.locator("#audit tbody tr").first().waitFor();
  assert.match(await tab.locator("#audit").innerText(), /开启两步验证/, "the enrolment is in the audit log");
  return { recovery_codes: recovery };
});
