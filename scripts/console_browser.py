"""The admin console in a real browser: headless Chromium through WebDriver.

Usage: console_browser.py BASE_URL ADMIN_TOKEN SIGN_IN_LINK MALOMO_MCP_BIN SCREENSHOT_DIR

Walks the flow a person follows (first-run link, sign-in with a wrong and
a right admin token, add an account, create a server with the keyboard
only, check the live preview, copy the URL, list its tools with the Python
MCP SDK, revoke it, create and rotate the account's event inbox, sign out),
then the CSRF refusals and the XSS strings.
Writes PNG screenshots of the sign-in, account, create and created pages
at 1280 px and 375 px. Exits non-zero on the first failed check.
"""

import asyncio
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

from mcp import Client
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE, ADMIN, LINK, BIN, SHOTS = sys.argv[1:6]
XSS_ACCOUNT = '"><img src=x onerror=alert(1)>'
XSS_SERVER = "<script>alert(1)</script>"
checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1
    print(f"ok: {what}")


def browser(profile, javascript=True):
    options = webdriver.ChromeOptions()
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(flag)
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_window_size(1280, 900)
    return driver


driver = browser(os.path.join(os.environ["CHROME_PROFILE"], "main"))
# A page that a form submission replaces may go stale while a condition
# reads it: that is "not yet", so the wait tries again.
wait = WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,))


def go(path):
    driver.get(BASE + path)


def h1():
    return driver.find_element(By.TAG_NAME, "h1").text


def by_label(text):
    """The input a <label> with exactly this text is for (the stable hook)."""
    label = driver.find_element(By.XPATH, f"//label[normalize-space()={json.dumps(text)}]")
    return driver.find_element(By.ID, label.get_attribute("for"))


def testid(name):
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def shot(name):
    """Full-page screenshots at 1280 px and 375 px (no reload in between:
    the created page can be seen only once)."""
    for width in (1280, 375):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 500})
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        height = min(int(size["height"]) + 1, 6000)
        image = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})["data"]
        path = os.path.join(SHOTS, f"{name}-{width}.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(image))
        check(os.path.getsize(path) > 1000, f"screenshot {path}")
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def no_alert():
    try:
        driver.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def preview_names():
    items = testid("tool-preview").find_elements(By.TAG_NAME, "li")
    return [li.text.split()[0] for li in items]


def tab_to(predicate_js, what, limit=80):
    """Presses Tab until the focused element satisfies predicate_js."""
    for _ in range(limit):
        if driver.execute_script(f"const e = document.activeElement; return !!({predicate_js});"):
            focus = driver.execute_script(
                "const s = getComputedStyle(document.activeElement);"
                "return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;")
            check(focus, f"focus on {what} is visible")
            return
        webdriver.ActionChains(driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached {what}")


def expected_tools(methods, tags):
    out = subprocess.run([BIN, "tools", "--methods", methods, "--tags", tags],
                         check=True, capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


async def mcp_tool_names(url):
    async with Client(url) as client:
        return [t.name for t in (await client.list_tools()).tools]


def mcp_status(url):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "console-test", "version": "1"}}}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def first_run_link():
    driver.get(LINK)
    wait.until(EC.url_to_be(BASE + "/console/accounts"))
    check(h1() == "Integrated accounts", "the one-time link signs in and lands on the accounts")
    sign_out()
    driver.get(LINK)
    check("already used or has expired" in driver.page_source, "the link works once")


def sign_out():
    driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
    wait.until(EC.url_to_be(BASE + "/console/sign-in"))


def sign_in():
    go("/console/sign-in")
    shot("sign-in")
    by_label("Admin token").send_keys("not-the-admin-token")
    by_label("Admin token").submit()
    wait.until(EC.presence_of_element_located((By.ID, "admin_token-error")))
    check("not a valid admin API token" in driver.page_source, "a wrong token is refused")
    check(driver.current_url == BASE + "/console/sign-in", "and the page stays at sign-in")
    check(ADMIN not in driver.page_source and "not-the-admin-token" not in driver.page_source,
          "no token is echoed into the page")
    by_label("Admin token").send_keys(ADMIN)
    by_label("Admin token").submit()
    wait.until(EC.url_to_be(BASE + "/console/accounts"))
    check(driver.execute_script("return document.cookie") == "",
          "the session cookie is HttpOnly (invisible to scripts)")
    check(driver.execute_script("return localStorage.length") == 0, "nothing in localStorage")


def sandbox_base_url():
    row = driver.find_element(By.XPATH, "//tr[th/a[normalize-space()='sandbox']]")
    return row.find_elements(By.TAG_NAME, "td")[0].text


def add_account(name, base_url):
    go("/console/accounts")
    by_label("Name").send_keys(name)
    by_label("Malomo API key").send_keys("sk_console_browser_test_0001")
    by_label("Base URL").send_keys(base_url)
    driver.find_element(By.XPATH, "//button[normalize-space()='Add account']").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "nav.tabs")))
    check(h1() == name, f"account {name!r} added, its page shown with the name as text")
    return driver.current_url


def create_with_keyboard(name):
    """The create form driven by the keyboard alone: Tab, typing, Space, Enter."""
    driver.find_element(By.XPATH, "//nav//a[normalize-space()='Create MCP server']").click()
    wait.until(EC.presence_of_element_located((By.ID, "create-form")))
    check(len(preview_names()) >= 20, "the preview starts with every tool")
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    tab_to("e.id === 'name'", "the Name field")
    webdriver.ActionChains(driver).send_keys(name).perform()
    before = driver.find_element(By.ID, "preview").get_attribute("innerHTML")
    tab_to("e.name === 'methods' && e.value === 'read'", "the read checkbox")
    webdriver.ActionChains(driver).send_keys(Keys.SPACE).perform()
    wait.until(lambda d: d.find_element(By.ID, "preview").get_attribute("innerHTML") != before)
    before = driver.find_element(By.ID, "preview").get_attribute("innerHTML")
    tab_to("e.name === 'tags' && e.value === 'orders'", "the orders checkbox")
    webdriver.ActionChains(driver).send_keys(Keys.SPACE).perform()
    wait.until(lambda d: d.find_element(By.ID, "preview").get_attribute("innerHTML") != before)
    check(by_label("read").is_selected() and by_label("orders").is_selected(),
          "read and orders checked by keyboard, found by their labels")
    expected = expected_tools("read", "orders")
    shown = preview_names()
    check(shown == expected, f"the preview shows exactly the read order tools ({len(expected)})")
    badges = testid("tool-preview").find_elements(By.CSS_SELECTOR, ".badge")
    check(all(b.text == "read-only" for b in badges) and len(badges) == len(expected),
          "every previewed tool carries a read-only badge, in words")
    tab_to("e.id === 'answer_budget'", "the answer budget field")
    webdriver.ActionChains(driver).send_keys("8192").perform()
    shot("create")
    tab_to("e.type === 'submit' && e.value === 'create'", "the Create button")
    webdriver.ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="mcp-url"]')))
    check("8192 bytes" in driver.page_source, "the created server shows its answer budget")
    return expected


def no_tool_warning():
    driver.find_element(By.XPATH, "//a[normalize-space()='Create MCP server']").click()
    wait.until(EC.presence_of_element_located((By.ID, "create-form")))
    by_label("delete").click()
    wait.until(lambda d: len(preview_names()) > 0 and all(
        n.startswith("delete_") for n in preview_names()))
    by_label("accounts").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="preview-problem"]')))
    check(preview_names() == [], "a config that leaves no tool says so before submit")


def copy_url():
    url = testid("mcp-url").text.strip()
    check(url.startswith(BASE + "/mcp/"), "the URL is shown")
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": BASE, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    driver.find_element(By.XPATH, "//button[normalize-space()='Copy URL']").click()
    wait.until(lambda d: "Copied" in d.page_source)
    pasted = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, e => done('error: ' + e));")
    check(pasted == url, "the copy button puts the URL on the clipboard")
    return pasted


def python_snippet_runs(url, expected):
    code = driver.find_element(By.ID, "snippet-python").text
    check(url in code, "the Python snippet carries the URL")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and all(n in out.stdout for n in expected),
          "the Python SDK snippet runs as shown and lists the tools")


def revoke(server_name, account_url, screenshot=True):
    driver.get(account_url)
    row = driver.find_element(By.XPATH, f"//tr[th[normalize-space()={json.dumps(server_name)}]]")
    check("active" in row.text, "the new server is listed as active, in words")
    if screenshot:
        shot("account")
    row.find_element(By.CSS_SELECTOR, '[data-testid="revoke"]').click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="confirm"]')))
    check(h1() == f"Revoke MCP server {server_name}?", "revoking asks for confirmation")
    testid("confirm").click()
    wait.until(EC.url_to_be(account_url))
    check(f"MCP server {server_name} revoked." in driver.page_source, "the console says it is revoked")


def hook_status(url):
    request = urllib.request.Request(url, data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def event_inbox(account_url):
    """Creates the account's event inbox from its page, then rotates it."""
    driver.get(account_url)
    testid("inbox-rotate").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="inbox-url"]')))
    shot("inbox")
    url = testid("inbox-url").text.strip()
    check(url.startswith(BASE + "/hooks/"), "the event inbox URL is shown")
    check(hook_status(url) == 401, "an unsigned delivery to it is refused as unsigned, not unknown")
    driver.get(account_url)
    check("Rotate event inbox URL" in driver.page_source and url not in driver.page_source,
          "the account page says the inbox exists, without its URL")
    testid("inbox-rotate").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="inbox-url"]')))
    rotated = testid("inbox-url").text.strip()
    check(rotated != url and hook_status(url) == 404 and hook_status(rotated) == 401,
          "rotating retires the old inbox URL at once")


def csrf_refusals(account_url):
    # A page on another port of this host: same site, other origin. It
    # carries the real form token, so only the Origin check stands between.
    driver.get(account_url + "/servers/new")
    token = driver.find_element(By.NAME, "csrf").get_attribute("value")
    action = account_url + "/servers"
    attack = (f'<form id="f" method="post" action="{action}"><input name="csrf" value="{token}">'
              '<input name="name" value="forged"><input name="expiry" value="none"></form>'
              '<script>document.getElementById("f").submit()</script>').encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(attack)

        def log_message(self, *args):
            pass

    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        driver.get(f"http://127.0.0.1:{evil.server_port}/")
        wait.until(EC.url_to_be(action))
        check("another site" in driver.page_source, "a form posted from another origin is refused")
    finally:
        evil.shutdown()
    # The console's own form with a tampered form token.
    driver.get(account_url + "/servers/new")
    by_label("Name").send_keys("forged")
    driver.execute_script("document.querySelector('#create-form input[name=csrf]').value = 'tampered';")
    driver.find_element(By.XPATH, "//button[@value='create']").click()
    wait.until(lambda d: "form token" in d.page_source)
    check("form token is missing or stale" in driver.page_source, "a wrong form token is refused")
    driver.get(account_url)
    check("forged" not in driver.page_source, "neither forged request created a server")


def xss_strings_stay_text(base_url):
    account_url = add_account(XSS_ACCOUNT, base_url)
    check(no_alert() and not driver.find_elements(By.CSS_SELECTOR, "main img"),
          "the account name ran no script and made no image")
    driver.find_element(By.XPATH, "//a[normalize-space()='Create MCP server']").click()
    wait.until(EC.presence_of_element_located((By.ID, "create-form")))
    by_label("Name").send_keys(XSS_SERVER)
    by_label("read").click()
    driver.find_element(By.XPATH, "//button[@value='create']").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="mcp-url"]')))
    check(h1() == f"MCP server {XSS_SERVER} created", "the server name is shown as text")
    driver.get(account_url)
    row = driver.find_element(By.XPATH, f"//tr[th[normalize-space()={json.dumps(XSS_SERVER)}]]")
    check(row is not None and no_alert(), "listed as text, no script ran")
    go("/console/accounts")
    check(XSS_ACCOUNT in driver.find_element(By.TAG_NAME, "table").text and no_alert(),
          "the accounts list shows the name as text")


def without_javascript(account_url, expected):
    """The same create and revoke with scripting off: the preview comes from
    the Update preview button, and nothing needs the script."""
    global driver, wait
    main_driver, main_wait = driver, wait
    driver = browser(os.path.join(os.environ["CHROME_PROFILE"], "nojs"), javascript=False)
    wait = WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,))
    try:
        go("/console/sign-in")
        by_label("Admin token").send_keys(ADMIN)
        by_label("Admin token").submit()
        wait.until(EC.url_to_be(BASE + "/console/accounts"))
        driver.get(account_url + "/servers/new")
        by_label("Name").send_keys("no-script")
        by_label("read").click()
        by_label("orders").click()
        update = driver.find_element(By.XPATH, "//button[normalize-space()='Update preview']")
        check(update.is_displayed(), "without the script the Update preview button is shown")
        update.click()
        wait.until(lambda d: preview_names() == expected)
        check(by_label("read").is_selected() and by_label("Name").get_attribute("value") == "no-script",
              "the server-rendered preview keeps the form as filled")
        driver.find_element(By.XPATH, "//button[@value='create']").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="mcp-url"]')))
        url = testid("mcp-url").text.strip()
        check(not driver.find_element(By.XPATH, "//button[normalize-space()='Copy URL']").is_displayed(),
              "the copy button, which needs the script, stays hidden")
        check(sorted(asyncio.run(mcp_tool_names(url))) == sorted(expected),
              "the server made without the script lists the same tools")
        revoke("no-script", account_url, screenshot=False)
        check(mcp_status(url) == 404, "and is revoked without the script too")
    finally:
        driver.quit()
        driver, wait = main_driver, main_wait


def main():
    os.makedirs(SHOTS, exist_ok=True)
    first_run_link()
    sign_in()
    base_url = sandbox_base_url()
    check(base_url.startswith("http://127.0.0.1:"), "the embedded sandbox account is listed")
    account_url = add_account("acme-store", base_url)
    expected = create_with_keyboard("orders-reader")
    shot("created")
    url = copy_url()
    python_snippet_runs(url, expected)
    listed = asyncio.run(mcp_tool_names(url))
    check(sorted(listed) == sorted(expected), "an MCP client at the URL lists the same tools")
    driver.get(account_url)
    no_tool_warning()
    revoke("orders-reader", account_url)
    check(mcp_status(url) == 404, "the revoked URL answers 404")
    without_javascript(account_url, expected)
    event_inbox(account_url)
    csrf_refusals(account_url)
    xss_strings_stay_text(base_url)
    go("/console/tools")
    check(len(driver.find_elements(By.CSS_SELECTOR, ".catalog > li")) >= 20, "the tools page lists the catalog")
    sign_out()
    go("/console/accounts")
    check(driver.current_url == BASE + "/console/sign-in", "after sign-out pages lead to sign-in")
    print(f"console browser test: {checks} checks passed")


try:
    main()
except Exception:
    try:
        driver.save_screenshot(os.path.join(os.environ.get("FAILURE_DIR", "/tmp"), "console-failure.png"))
        print("page at failure:", driver.current_url, file=sys.stderr)
    except Exception:
        pass
    raise
finally:
    driver.quit()
