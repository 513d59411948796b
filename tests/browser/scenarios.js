// Browser scenarios for the simulator's checkout and console, in Debian's Chromium driven by
// playwright-core (no browser download). Run by tests/sim/browser.rs, which does the gRPC side;
// one scenario per run, chosen by BROWSER_SCENARIO:
//   deposit        open CHECKOUT_URL, choose a bank, log in, pick an account, enter AMOUNT (when
//                  the order leaves it open), confirm; the page returns to the SuccessURL
//   abandon        open CHECKOUT_URL and cancel; the page returns to the FailURL
//   d1             as deposit, with "Set order options" and Trustly's test case D1
//   execute-payout open CONSOLE_URL and execute the queued payout ORDER_ID
//   release        open CONSOLE_URL, show ORDER_ID's held notifications, copy one as cURL,
//                  release them and wait until the merchant answered
// Each step saves a screenshot into SCREENSHOT_DIR (names start with SHOT_PREFIX, default the
// scenario). Every wait is bounded.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

// Longest wait for one step (an element, a navigation); a step that takes longer has failed.
const STEP_TIMEOUT_MS = 15000;
// A phone-sized window for the checkout, a laptop-sized one for the console.
const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1280, height: 900 };
// The merchant's SuccessURL/FailURL host in the tests; the browser is answered locally.
const MERCHANT = "https://merchant.example/";

const env = (name, fallback) => {
  const value = process.env[name] || fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const scenario = env("BROWSER_SCENARIO");
const shots = env("SCREENSHOT_DIR");
// Screenshot names start with this (a test that runs a scenario twice tells the runs apart).
const prefix = env("SHOT_PREFIX", scenario);
let step = 0;
// The page in use (screenshotted on failure) and the script errors it raised.
let current = null;
const pageErrors = [];

async function shot(page, name) {
  step += 1;
  const file = path.join(shots, `${prefix}-${String(step).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

async function openPage(browser, viewport) {
  const context = await browser.newContext({ viewport });
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  // The merchant's return pages, so following SuccessURL/FailURL needs no network.
  await context.route(`${MERCHANT}**`, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>Merchant</title><h1>Back at the merchant</h1>" }));
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (error) => pageErrors.push(error.message));
  current = page;
  return page;
}

async function openCheckout(page) {
  const response = await page.goto(env("CHECKOUT_URL"));
  if (response.status() !== 200) throw new Error(`checkout answered ${response.status()}`);
  await page.getByRole("heading", { name: "Choose your bank" }).waitFor();
  await shot(page, "bank");
}

// Bank, login and account, up to the confirm step.
async function toConfirm(page) {
  await openCheckout(page);
  await page.getByLabel("Country").selectOption("SE");
  await page.getByRole("radio", { name: "Demobanken" }).check();
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByLabel("Username or personal ID").fill("asa.oberg");
  await page.getByLabel("Password").fill("any-password");
  await shot(page, "login");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("radio", { name: /Everyday account/ }).check();
  const amount = page.getByLabel(/^Amount/);
  if (await amount.isVisible()) await amount.fill(env("AMOUNT"));
}

async function pay(page, expectedStatus) {
  await page.getByRole("button", { name: "Pay" }).click();
  await page.getByText(`Done: the order is ${expectedStatus}`).waitFor();
  await shot(page, "done");
  await page.waitForURL(`${MERCHANT}ok`);
  await shot(page, "merchant");
}

const SCENARIOS = {
  async deposit(browser) {
    const page = await openPage(browser, PHONE);
    await toConfirm(page);
    await shot(page, "confirm");
    await pay(page, "Credited");
  },

  async abandon(browser) {
    const page = await openPage(browser, PHONE);
    await openCheckout(page);
    await page.getByRole("button", { name: "Cancel and return to the merchant" }).click();
    await page.getByText("Done: the order is Cancelled").waitFor();
    await shot(page, "cancelled");
    await page.waitForURL(`${MERCHANT}fail`);
  },

  async d1(browser) {
    const page = await openPage(browser, PHONE);
    await toConfirm(page);
    await page.getByLabel("Set order options").check();
    await page.getByRole("radio", { name: /^D1: Complete order but fail and debit/ }).check();
    await shot(page, "order-options");
    await pay(page, "Debited");
  },

  async "execute-payout"(browser) {
    const page = await openPage(browser, LAPTOP);
    const orderId = env("ORDER_ID");
    await page.goto(env("CONSOLE_URL"));
    const execute = page.getByRole("button", { name: `Execute payout ${orderId}` });
    await execute.waitFor();
    await shot(page, "console");
    await execute.click();
    await page.getByRole("status").getByText(`Execute ${orderId}: done (payoutconfirmation)`).waitFor();
    await page.getByRole("button", { name: `Show order ${orderId}` }).click();
    await page.getByText("answered OK").first().waitFor();
    await shot(page, "executed");
  },

  async release(browser) {
    const page = await openPage(browser, LAPTOP);
    const orderId = env("ORDER_ID");
    await page.goto(env("CONSOLE_URL"));
    await page.getByRole("button", { name: `Show order ${orderId}` }).click();
    const detail = page.locator("#detail");
    await detail.getByText("held").first().waitFor();
    await page.getByRole("button", { name: /^Copy as cURL credit/ }).click();
    const curl = await page.getByLabel(/Posts the signed notification/).inputValue();
    if (!curl.startsWith("curl -X POST") || !curl.includes('"method":"credit"')) {
      throw new Error(`not a cURL command for the credit: ${curl.slice(0, 120)}`);
    }
    await shot(page, "held");
    await page.getByRole("button", { name: `Release held notifications of ${orderId}` }).click();
    await page.getByRole("status").getByText(`Release ${orderId}: done`).waitFor();
    await detail.locator("h3", { hasText: "credit" }).getByText("answered OK").waitFor();
    await shot(page, "released");
  },
};

async function main() {
  const run = SCENARIOS[scenario];
  if (!run) throw new Error(`no scenario ${scenario}; known: ${Object.keys(SCENARIOS).join(", ")}`);
  fs.mkdirSync(shots, { recursive: true });
  const executablePath = env("CHROMIUM", "/usr/bin/chromium");
  if (!fs.existsSync(executablePath)) throw new Error(`${executablePath} is missing: apt-get install chromium`);
  const browser = await chromium.launch({ executablePath, timeout: STEP_TIMEOUT_MS });
  try {
    await run(browser);
    if (pageErrors.length) throw new Error(`script errors in the page: ${pageErrors.join("; ")}`);
  } catch (error) {
    if (current) await shot(current, "failure").catch(() => {});
    throw error;
  } finally {
    await browser.close();
  }
  console.log(`browser: ${scenario} passed`);
}

main().catch((error) => {
  console.error(`browser: ${scenario} failed: ${error.stack || error}`);
  process.exit(1);
});
