"""The admin console in a real browser (headless Chromium driven by
Selenium through Debian's chromedriver), against a running gateway.

Usage: console.py ADMIN_URL PROXY_URL ADMIN_TOKEN CLIENT_KEY SHOTS_DIR

Signs in (a wrong token first), creates a namespace with a header matcher
and a rate rule through the forms (a refused value first: the API's detail
shown at the field), sends traffic, finds it on the overview and in the
namespace's usage, runs a dry-run, restores the revision before the
namespace, finds the changes in the audit log, checks a phone-width
layout, and saves a screenshot of each page in SHOTS_DIR. Fails (exit 1,
with a screenshot and the page's HTML) on the first unmet expectation or
on a Content-Security-Policy violation. Waits are on conditions, never
fixed sleeps.
"""

import json
import os
import re
import shutil
import sys
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

ADMIN, PROXY, TOKEN, KEY, SHOTS = sys.argv[1:6]
CODE = "team-ui"


def api(method, path, body=None):
    """The admin API, as the console calls it."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(ADMIN + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def chat(tenant):
    """A chat completion through the proxy with `x-tenant`; its status."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    req = urllib.request.Request(
        PROXY + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST"
    )
    req.add_header("Authorization", "Bearer " + KEY)
    req.add_header("Content-Type", "application/json")
    req.add_header("x-tenant", tenant)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1280,900",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(driver_path), options=opts)


d = browser()
wait = WebDriverWait(d, 20)


def el(css):
    return wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def click(css):
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, css))).click()


def type_into(css, text):
    e = el(css)
    e.clear()
    e.send_keys(text)


def text_of(css):
    return el(css).text


def until_text(css, pred, what):
    """Waits until the text of `css` satisfies `pred`."""

    def check(_):
        try:
            t = d.find_element(By.CSS_SELECTOR, css).text
        except Exception:
            return False
        return t if pred(t) else False

    return WebDriverWait(d, 20, ignored_exceptions=()).until(check, what)


def page(nav, heading):
    click("#nav-" + nav)
    until_text("main h1", lambda t: t.strip() == heading, f"the {heading} page")


def shot(name, top=True):
    """A screenshot of the page, from its top unless `top` is false."""
    if top:
        d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(os.path.join(SHOTS, name + ".png"))


def csp_violations():
    return [
        m["message"]
        for m in d.get_log("browser")
        if "Content Security Policy" in m.get("message", "")
    ]


def run():
    os.makedirs(SHOTS, exist_ok=True)
    d.get(ADMIN + "/ui")

    # Sign-in: a wrong token is refused on the form; the right one enters.
    type_into("#token", "not-the-token")
    click("#sign-in")
    until_text("#error", lambda t: len(t) > 0, "the refused token's error")
    shot("01-sign-in")
    # By keyboard: the token, then Enter.
    type_into("#token", TOKEN + Keys.ENTER)
    el("#nav-overview")
    assert d.execute_script("return window.localStorage.length") == 0, "nothing in localStorage"
    assert d.execute_script("return window.sessionStorage.length") >= 1, "the token is kept for the tab"

    # A namespace through the form.
    page("namespaces", "Namespaces")
    # A dialog takes the focus, Escape closes it and gives the focus back.
    click("#ns-new")
    wait.until(lambda _: d.switch_to.active_element.get_attribute("id") == "ns-name", "focus in the dialog")
    d.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait.until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "#ns-name")), "the dialog closed")
    wait.until(lambda _: d.switch_to.active_element.get_attribute("id") == "ns-new", "focus back")
    click("#ns-new")
    type_into("#ns-name", "Team UI")
    type_into("#ns-code", CODE)
    type_into("#ns-description", "made in the console")
    click("#ns-save")
    until_text("#notice", lambda t: len(t) > 0, "the creation notice")
    row = wait.until(
        EC.presence_of_element_located(
            (By.XPATH, f"//table[@id='ns-table']//tr[.//code[text()='{CODE}']]")
        )
    )
    ns_id = row.get_attribute("data-id")
    assert ns_id, "the row carries its id"
    shot("02-namespaces")

    # A header matcher and a rate rule on its page.
    click(f"#ns-open-{ns_id}")
    click("#matcher-new")
    Select(el("#matcher-type")).select_by_value("header")
    type_into("#matcher-field", "x-tenant")
    Select(el("#matcher-operator")).select_by_value("eq")
    type_into("#matcher-value", CODE)
    click("#matcher-save")
    wait.until(
        EC.presence_of_element_located(
            (By.XPATH, f"//table[@id='matcher-table']//td[contains(., '{CODE}')]")
        )
    )
    click("#rule-new")
    type_into("#rule-name", "ui-rate")
    # A value the API refuses: its detail is shown and the field marked.
    type_into("#rule-max-requests", "0")
    type_into("#rule-window", "60")
    click("#rule-save")
    until_text(".dialog [role=alert], #error", lambda t: "max_requests" in t, "the API's detail")
    wait.until(
        lambda _: d.find_element(By.CSS_SELECTOR, "#rule-max-requests").get_attribute(
            "aria-invalid"
        )
        == "true",
        "the refused field marked invalid",
    )
    shot("03-rule-refused", top=False)
    type_into("#rule-max-requests", "3")
    click("#rule-save")
    wait.until(
        EC.presence_of_element_located(
            (By.XPATH, "//table[@id='rule-table']//td[contains(., 'ui-rate')]")
        )
    )

    # Traffic: three pass, the rule refuses the next two.
    statuses = [chat(CODE) for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses

    # The overview shows it.
    page("overview", "Overview")
    until_text(
        "#totals",
        lambda t: re.search(r"Requests \(60 min\)\s*5\b", t, re.I) is not None,
        "5 requests in the last hour",
    )
    el("#chart-requests svg")
    shot("04-overview")

    # The namespace's usage shows it.
    d.get(f"{ADMIN}/ui#/namespaces/{ns_id}")
    until_text(
        "#ns-requests-per-minute",
        lambda t: re.search(r"\b5\s*$", t.strip()) is not None,
        "the namespace's 5 requests this minute",
    )
    shot("05-namespace")

    # The other pages render their data.
    page("upstreams", "Upstreams")
    until_text("main", lambda t: "127.0.0.1" in t, "the pool's server")
    shot("06-upstreams")
    page("catalog", "Catalog")
    shot("07-catalog")
    page("keys", "Keys and users")
    shot("08-keys")
    page("limits", "Limits")
    until_text("main", lambda t: "ui-rate" in t, "the rule with its counters")
    shot("09-limits")

    # A dry run of the tenant's request lands in its namespace.
    page("dry-run", "Dry-run")
    Select(el("#dry-method")).select_by_value("POST")
    type_into("#dry-path", "/v1/chat/completions")
    type_into("#dry-headers", f"x-tenant: {CODE}\nauthorization: Bearer {KEY}")
    type_into("#dry-body", '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}')
    click("#dry-run")
    until_text("#dry-result", lambda t: CODE in t, "the decision names the namespace")
    shot("10-dry-run")

    # Restore the revision before the namespace (confirmed in a dialog).
    revs = api("GET", "/api/v1/revisions?limit=500")["items"]
    made = next(r for r in revs if f"namespaces/{ns_id} created" in r["summary"])
    target = made["revision"] - 1
    page("revisions", "Revisions")
    click(f"#restore-{target}")
    el("#confirm-yes")
    shot("11-restore-confirm")
    click("#confirm-yes")
    until_text("#notice", lambda t: str(target) in t, "the restore's notice")
    shot("12-revisions", top=False)
    codes = [n["namespace_code"] for n in api("GET", "/api/v1/namespaces")]
    assert CODE not in codes, codes
    assert chat(CODE) == 200, "the rule went with the restore"

    # Both changes are in the audit log.
    page("audit", "Audit")
    until_text(
        "#audit-table",
        lambda t: "restore" in t and "namespaces" in t and "create" in t,
        "the creation and the restore",
    )
    shot("13-audit")

    # Phone width: the menu collapses, pages stay usable.
    d.set_window_size(390, 844)
    d.get(ADMIN + "/ui#/overview")
    el("#menu-toggle")
    shot("14-phone-overview")
    click("#menu-toggle")
    click("#nav-namespaces")
    until_text("main h1", lambda t: t.strip() == "Namespaces", "namespaces at phone width")
    shot("15-phone-namespaces")

    # Signing out forgets the token.
    d.set_window_size(1280, 900)
    click("#sign-out")
    el("#token")
    assert d.execute_script("return window.sessionStorage.length") == 0

    # An admin user signs in with e-mail and password; a plain user cannot.
    api("POST", "/api/v1/users", {"email": "boss@example.com", "password": "console password", "role": "admin"})
    api("POST", "/api/v1/users", {"email": "dev@example.com", "password": "console password"})
    click("#mode-user")
    type_into("#email", "dev@example.com")
    type_into("#password", "console password")
    click("#sign-in")
    until_text("#error", lambda t: "admin" in t, "a plain user refused")
    type_into("#email", "boss@example.com")
    click("#sign-in")
    until_text("#nav", lambda t: "user:boss@example.com" in t, "signed in as the admin user")
    shot("16-signed-in-as-user")
    click("#sign-out")
    el("#mode-user")

    bad = csp_violations()
    assert not bad, f"Content-Security-Policy violations: {bad}"


try:
    run()
    print("console flow: ok")
except Exception:
    traceback.print_exc()
    try:
        d.save_screenshot(os.path.join(SHOTS, "failure.png"))
        with open(os.path.join(SHOTS, "failure.html"), "w") as f:
            f.write(d.page_source)
        print("browser log:", d.get_log("browser"))
    except Exception:
        pass
    sys.exit(1)
finally:
    d.quit()
