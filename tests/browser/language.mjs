// The language switch changes the page text: the login page in Chinese (the default),
// the switch to English, a login, the bar in English, and back to Chinese.
// Input: {"username", "password", "display_name"}.
import {
  assert, input, scenario, newContext, open, login, reloadingBy, text, screenshot, overflowsSideways,
} from "./lib.mjs";

const lang = (page) => page.evaluate(() => document.documentElement.lang);
const cookie = async (context) =>
  (await context.cookies()).find((c) => c.name === "duikou_lang")?.value;

await scenario("language", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();

  await open(page, "/login");
  assert.equal(await lang(page), "zh-CN", "the default language is Chinese");
  assert.equal(await text(page, "form#login h1"), "登录", "the login page's heading in Chinese");
  assert.equal(await text(page, "#lang-switch"), "English", "the switch offers English");
  await screenshot(page, "login-zh");

  await reloadingBy(page, () => page.click("#lang-switch"));
  assert.equal(await cookie(context), "en", "the switch sets the duikou_lang cookie");
  assert.equal(await lang(page), "en", "after the switch the page is in English");
  assert.equal(await text(page, "form#login h1"), "Log in", "the login page's heading in English");
  assert.equal(await text(page, "#lang-switch"), "中文", "the switch offers Chinese");
  await screenshot(page, "login-en");

  await login(page, input.username, input.password);
  assert.equal(new URL(page.url()).pathname, "/home", "a login goes home");
  assert.equal(await lang(page), "en", "the language survives the login");
  assert.equal(await text(page, '#bar nav a[href="/home"]'), "Home", "the bar in English");
  assert.equal(await text(page, "#who"), input.display_name, "the bar names who is logged in");
  assert.equal(await text(page, "#app h1"), `Hello, ${input.display_name}`, "the home page in English");
  await screenshot(page, "home-en");

  await reloadingBy(page, () => page.click("#lang-switch"));
  assert.equal(await cookie(context), "zh", "switching back sets the cookie to Chinese");
  assert.equal(await lang(page), "zh-CN", "after switching back the page is in Chinese");
  assert.equal(await text(page, '#bar nav a[href="/home"]'), "首页", "the bar in Chinese");
  assert.equal(await text(page, "#app h1"), `您好，${input.display_name}`, "the home page in Chinese");
  assert.equal(new URL(page.url()).pathname, "/home", "the switch stays on the page");
  await screenshot(page, "home-zh");

  // The same on a phone's screen.
  const phone = await newContext(browser, { phone: true });
  const small = await phone.newPage();
  await login(small, input.username, input.password);
  assert.equal(await text(small, '#bar nav a[href="/home"]'), "首页");
  assert.equal(await overflowsSideways(small), false, "the home page fits a phone's width");
  await screenshot(small, "home-zh-phone");

  return { screenshots: ["login-zh", "login-en", "home-en", "home-zh", "home-zh-phone"] };
});
