// The imaging section of the administration pages (`/manage/imaging`): an administrator
// finds 台山市人民医院 and registers a DICOM node (a first try with two mistakes shows both
// beside their fields and keeps what was typed), corrects its address; finds
// 江门市中心医院, whose destination is down: the C-ECHO says nothing answers; points it at
// the running storescp, saves, and the C-ECHO succeeds; retries one waiting forward (it is
// delivered) and cancels the other after confirming. Then the page on a phone, for the
// administrator and for the hospital's coordinator, without sideways scrolling.
// Input: {"admin", "coordinator": {username, password}, "county", "tertiary",
//         "down_port", "pacs_port"}. Output: {"retried", "cancelled"}: forward ids.
import {
  assert, input, scenario, newContext, login, open, screenshot, overflowsSideways, text, fillForm,
} from "./lib.mjs";

/** Finds an institution by part of its name and opens it. */
async function pick(page, name, id) {
  await page.locator("#pick-search").fill(name);
  await page.locator(`#pick-results [data-pick="${id}"]`).click();
  await page.locator(`#institution-name[data-institution="${id}"]`).waitFor();
  assert.equal(new URL(page.url()).searchParams.get("institution"), String(id), "the address keeps the institution");
}

/** The state of forward `id` in the list. */
function stateOf(page, id) {
  return page.locator(`#forwards tr[data-forward="${id}"]`).getAttribute("data-state");
}

await scenario("manage_imaging", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.admin.username, input.admin.password);
  await open(page, "/manage/imaging");
  await page.locator("#pick-search").waitFor();

  // ---- a node for the county hospital -------------------------------------------------
  await pick(page, "台山", input.county);
  await page.locator('#dicom-nodes tr[data-ae="TAISHAN_CT"]').waitFor();
  const nodeForm = page.locator("form#node-form");
  await fillForm(nodeForm, { ae_title: "TAISHAN_DR_ROOM_TWO_WEST", host: "dr.taishan.local", description: "放射科 DR 二号机" });
  await nodeForm.locator('button[type="submit"]').click();
  assert.match(await text(page, '#node-form [data-error-for="ae_title"]'), /16/, "the AE title is too long");
  assert.match(await text(page, '#node-form [data-error-for="host"]'), /IP 地址/, "the host is no IP address");
  assert.match(await text(page, "#node-form [data-form-problem]"), /2 处/);
  await screenshot(page, "node-two-errors");
  // One mistake fixed: the other is still shown, and what was typed stays.
  await nodeForm.locator('[name="ae_title"]').fill("TAISHAN_DR");
  await nodeForm.locator('button[type="submit"]').click();
  await page.waitForFunction(() => !document.querySelector('#node-form [data-error-for="ae_title"]').textContent);
  assert.match(await text(page, '#node-form [data-error-for="host"]'), /IP 地址/);
  assert.equal(await nodeForm.locator('[name="ae_title"]').inputValue(), "TAISHAN_DR");
  assert.equal(await nodeForm.locator('[name="host"]').inputValue(), "dr.taishan.local");
  assert.equal(await nodeForm.locator('[name="description"]').inputValue(), "放射科 DR 二号机");
  await nodeForm.locator('[name="host"]').fill("192.168.10.21");
  await nodeForm.locator('button[type="submit"]').click();
  const dr = page.locator('#dicom-nodes tr[data-ae="TAISHAN_DR"]');
  await dr.waitFor();
  assert.match(await dr.innerText(), /放射科 DR 二号机/, "the node is listed with what it is");
  assert.match(await text(page, "#nodes-status"), /已登记设备 TAISHAN_DR/);
  assert.match(await dr.innerText(), /192\.168\.10\.21/);
  // Its address corrected.
  await dr.locator("button.edit").click();
  const editForm = page.locator("form#node-edit-form");
  assert.equal(await editForm.locator('[name="ae_title"]').inputValue(), "TAISHAN_DR");
  await editForm.locator('[name="host"]').fill("192.168.10.22");
  await editForm.locator('button[type="submit"]').click();
  await page.waitForFunction(() => /192\.168\.10\.22/.test(document.querySelector('#dicom-nodes tr[data-ae="TAISHAN_DR"]')?.textContent ?? ""));
  assert.match(await text(page, "#nodes-status"), /已保存/);
  assert.equal(await page.locator("form#node-form").count(), 1, "the add form is back");

  // ---- the tertiary hospital's destination and its test -------------------------------
  await pick(page, "江门市中心", input.tertiary);
  const destination = page.locator("form#destination-form");
  await destination.waitFor();
  assert.equal(await destination.locator('[name="dest_port"]').inputValue(), String(input.down_port));
  await page.locator("#echo").click();
  await page.locator('#echo-result[data-outcome="unreachable"]').waitFor();
  assert.match(await text(page, "#echo-result"), /无法连接/);
  await destination.locator('[name="dest_port"]').fill(String(input.pacs_port));
  await destination.locator('button[type="submit"]').click();
  await page.locator("#destination-status.done").waitFor();
  assert.match(await text(page, "#destination-saved"), new RegExp(String(input.pacs_port)));
  await page.locator("#echo").click();
  await page.locator('#echo-result[data-outcome="success"]').waitFor();
  assert.match(await text(page, "#echo-result"), /连通正常：JMZX_PACS 在 \d+ 毫秒内应答了 C-ECHO/);
  await screenshot(page, "destination-echo");

  // ---- the forward queue ---------------------------------------------------------------
  const rows = page.locator("#forwards tbody tr");
  await rows.first().waitFor();
  assert.equal(await rows.count(), 2, "the two waiting images");
  const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.forward));
  for (const id of ids) assert.equal(await stateOf(page, id), "pending");
  assert.match(await rows.first().innerText(), /无法连接接收地址/, "the last error, in Chinese");
  const [retried, cancelled] = ids;
  // Retried: sent now to today's destination, the storescp.
  await page.locator(`#forwards tr[data-forward="${retried}"] button.retry`).click();
  await page.waitForFunction(() => /已重新排队/.test(document.querySelector("#forwards-status")?.textContent ?? ""));
  const deadline = Date.now() + 15_000;
  while ((await stateOf(page, retried)) !== "delivered") {
    assert.ok(Date.now() < deadline, `forward ${retried} is delivered`);
    await page.waitForTimeout(300);
    await page.locator("#forwards-refresh").click();
    await page.locator(`#forwards tr[data-forward="${retried}"]`).waitFor();
  }
  assert.equal(await page.locator(`#forwards tr[data-forward="${retried}"] button.retry`).count(), 0, "nothing to retry once delivered");
  // Cancelled, after the page asks.
  await page.locator(`#forwards tr[data-forward="${cancelled}"] button.cancel`).click();
  await page.locator("#confirm-cancel").waitFor();
  assert.equal(await stateOf(page, cancelled), "pending", "nothing happens before the answer");
  await page.locator("#confirm-cancel button.confirm-yes").click();
  await page.waitForFunction((id) => document.querySelector(`#forwards tr[data-forward="${id}"]`)?.dataset.state === "cancelled", cancelled);
  assert.match(await text(page, "#forwards-status"), /已取消/);
  // The filter by state.
  await page.locator("#forward-state").selectOption("delivered");
  await page.waitForFunction(() => document.querySelectorAll("#forwards tbody tr").length === 1);
  assert.equal(await page.locator("#forwards tbody tr").getAttribute("data-forward"), retried);
  assert.ok(!(await overflowsSideways(page)), "the office screen does not scroll sideways");
  await screenshot(page, "forwards");

  // ---- on a phone ------------------------------------------------------------------------
  for (const [who, path, name] of [
    [input.admin, `/manage/imaging?institution=${input.tertiary}`, "phone-admin"],
    [input.coordinator, "/manage/imaging", "phone-coordinator"],
  ]) {
    const phone = await newContext(browser, { phone: true });
    const tab = await phone.newPage();
    await login(tab, who.username, who.password);
    await open(tab, path);
    await tab.locator(`#institution-name[data-institution="${input.tertiary}"]`).waitFor();
    await tab.locator("#forwards tbody tr").first().waitFor();
    assert.equal(await tab.locator("#pick-search").count(), who === input.admin ? 1 : 0,
      "only an administrator picks the institution");
    assert.ok(!(await overflowsSideways(tab)), `${name} does not scroll sideways`);
    await screenshot(tab, name);
    await phone.close();
  }
  return { retried: Number(retried), cancelled: Number(cancelled) };
});
