#!/usr/bin/env python3
"""The verifier's web view in a real browser: Debian's chromium, headless, driven by
chromium-driver through python3-selenium. Run by VerifierE2eTest.WebViewInChromium, which
starts lim-verifier (--web, --web-users) with a passing and a failing host and passes what
to expect as one JSON argument:

  {"url": "https://127.0.0.1:PORT/", "user": ..., "password": ..., "spki": base64 SHA-256
   of the server key (the only certificate chromium is told to accept), "failed": id,
   "passed": id, "failing_event": event data of the failing row, "failing_reason": ...,
   "policy": the failed host's policy}

Checks: the login page loads and a login opens a session; the fleet lists the failed host
first; fleet → host (its failing row first, explained, hostile strings shown as text, never
run) → history → policy navigation by clicking links; no console error on any page; no
alert. Exit 0 on success, 1 on a failed check, 77 when chromium cannot run here (CTest and
the gtest wrapper count that as skipped). With --bench DIR: loads DIR/host-*.html (written
by WebBench.HostPageOf100000RowsRendersOnePage) and prints chromium's load time instead.
"""
import json
import os
import shutil
import statistics
import sys
import tempfile

SKIP = 77


def fail(msg):
    print("web_browser_test: FAIL: " + msg, flush=True)
    sys.exit(1)


def start_browser(extra_args):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        print("web_browser_test: SKIP: python3-selenium missing (%s)" % e)
        sys.exit(SKIP)
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not chromium or not os.path.exists(driver):
        print("web_browser_test: SKIP: chromium or chromium-driver not installed")
        sys.exit(SKIP)
    profile = tempfile.mkdtemp(prefix="lim-web-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--user-data-dir=" + profile, "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"] + extra_args:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        browser = webdriver.Chrome(service=Service(driver), options=opts)
    except Exception as e:  # chromium cannot start here (no display libraries, no namespaces…)
        shutil.rmtree(profile, ignore_errors=True)
        print("web_browser_test: SKIP: chromium does not start: %s" % str(e).splitlines()[0])
        sys.exit(SKIP)
    browser.set_page_load_timeout(60)
    return browser, profile


def console_errors(browser):
    return [e for e in browser.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]


def wait_for(browser, what, condition, timeout=20):
    """Waits for condition(browser) after a click: a form post or a link may still be loading."""
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        WebDriverWait(browser, timeout).until(condition)
    except Exception:
        fail("%s: timed out at %s\n%s" % (what, browser.current_url, browser.page_source[:3000]))


def check_page(browser, what, expect_title):
    wait_for(browser, what, lambda b: expect_title in b.title and b.execute_script("return document.readyState") == "complete")
    errors = console_errors(browser)
    if errors:
        fail("%s: console errors: %s" % (what, errors))
    if expect_title not in browser.title:
        fail("%s: title %r does not contain %r (url %s)\n%s" % (what, browser.title, expect_title,
                                                               browser.current_url, browser.page_source[:2000]))
    # A hostile string that escaped the escaping would have opened an alert.
    try:
        alert = browser.switch_to.alert
        fail("%s: an alert is open: %r" % (what, alert.text))
    except Exception as e:
        if type(e).__name__ != "NoAlertPresentException":
            raise


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        return bench(sys.argv[2])
    if len(sys.argv) != 2:
        fail("usage: web_browser_test.py JSON | --bench DIR")
    cfg = json.loads(sys.argv[1])
    from selenium.webdriver.common.by import By  # noqa: E402 (after the skip check below)
    browser, profile = start_browser(["--ignore-certificate-errors-spki-list=" + cfg["spki"]])
    try:
        url = cfg["url"].rstrip("/")
        browser.get(url + "/")
        check_page(browser, "first load", "Log in")  # no session: sent to the login page
        if not browser.current_url.endswith("/login"):
            fail("not sent to /login but to " + browser.current_url)
        browser.find_element(By.ID, "user").send_keys(cfg["user"])
        browser.find_element(By.ID, "password").send_keys("wrong")
        browser.find_element(By.ID, "login").click()
        wait_for(browser, "a wrong password shows an error", lambda b: b.find_elements(By.ID, "login-error"))
        console_errors(browser)  # the 401 of the wrong password is logged as a failed load: expected
        browser.find_element(By.ID, "user").send_keys(cfg["user"])
        browser.find_element(By.ID, "password").send_keys(cfg["password"])
        browser.find_element(By.ID, "login").click()
        check_page(browser, "fleet", "Fleet")

        rows = browser.find_elements(By.CSS_SELECTOR, "#fleet tbody tr")
        if len(rows) < 2:
            fail("fleet: %d rows" % len(rows))
        first = rows[0].find_elements(By.TAG_NAME, "td")
        if first[0].text != cfg["failed"] or first[1].text != "failed":
            fail("fleet: first row is %r %r, not the failed host %r" % (first[0].text, first[1].text, cfg["failed"]))
        if cfg["failing_reason"] not in first[7].text:
            fail("fleet: the failed host's latest failure %r does not name %s" % (first[7].text, cfg["failing_reason"]))
        texts = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
        if cfg["passed"] not in texts:
            fail("fleet: the passing host %r is not listed: %r" % (cfg["passed"], texts))
        passed_row = rows[texts.index(cfg["passed"])].find_elements(By.TAG_NAME, "td")
        if passed_row[1].text != "attested":
            fail("fleet: the passing host is %r" % passed_row[1].text)

        # fleet → host: click the failed host's link.
        first[0].find_element(By.TAG_NAME, "a").click()
        check_page(browser, "host", "Host")
        h1 = browser.find_element(By.TAG_NAME, "h1").text
        if h1 != "Host " + cfg["failed"]:
            fail("host: heading %r" % h1)
        entries = browser.find_elements(By.CSS_SELECTOR, "#entries tbody tr")
        if not entries:
            fail("host: no integrated table rows")
        cells = entries[0].find_elements(By.TAG_NAME, "td")
        if entries[0].get_attribute("class") != "fail" or cells[5].text != cfg["failing_reason"]:
            fail("host: the first row is not the failing one: %r" % [c.text for c in cells])
        if cells[4].text != cfg["failing_event"]:
            fail("host: failing row's event data %r, not %r (hostile text must show as text)"
                 % (cells[4].text, cfg["failing_event"]))
        if "reference" not in cells[6].text:
            fail("host: the failing row has no explanation: %r" % cells[6].text)
        ok_rows = [r for r in entries if r.find_elements(By.TAG_NAME, "td")[5].text == "ok"]
        if not ok_rows:
            fail("host: no row verified ok below the failing one")
        if browser.find_elements(By.TAG_NAME, "script"):
            fail("host: the page holds a <script> element")
        host_ms = browser.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return [n.responseStart - n.requestStart, n.loadEventEnd];")

        # host → history.
        browser.find_element(By.ID, "history-link").click()
        check_page(browser, "history", "History of")
        reasons = [r.find_elements(By.TAG_NAME, "td")[2].text for r in browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")]
        if cfg["failing_reason"] not in reasons:
            fail("history: %s not among %r" % (cfg["failing_reason"], reasons))

        # history → host → policy.
        browser.find_element(By.CSS_SELECTOR, "main p a").click()
        check_page(browser, "host again", "Host")
        browser.find_element(By.CSS_SELECTOR, "dl.kv dd a").click()
        check_page(browser, "policy", "Policy " + cfg["policy"])
        if not browser.find_elements(By.CSS_SELECTOR, "#paths tbody tr"):
            fail("policy: no paths listed")

        # The policies list and back to the fleet through the header.
        browser.find_element(By.LINK_TEXT, "policies").click()
        check_page(browser, "policies", "Policies")
        browser.find_element(By.LINK_TEXT, "fleet").click()
        check_page(browser, "fleet again", "Fleet")

        # The passing host's page: every row ok, none failing.
        browser.find_element(By.LINK_TEXT, cfg["passed"]).click()
        check_page(browser, "passing host", "Host")
        verdicts = [r.find_elements(By.TAG_NAME, "td")[5].text for r in browser.find_elements(By.CSS_SELECTOR, "#entries tbody tr")]
        if not verdicts or any(v != "ok" for v in verdicts):
            fail("passing host: verdicts %r" % verdicts)

        # Log out: the session is gone, the fleet sends to the login page again.
        browser.find_element(By.CSS_SELECTOR, "header form button").click()
        browser.get(url + "/")
        check_page(browser, "after logout", "Log in")
        print("web_browser_test: OK (%d fleet rows, %d host rows; host page over HTTPS: first byte %.1f ms after the "
              "request, loaded %.1f ms after navigation start)" % (len(rows), len(entries), host_ms[0], host_ms[1]))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def bench(directory):
    """Chromium's time to load, lay out and paint each saved page (navigation start to the
    end of the load event), 11 loads each: median and spread."""
    browser, profile = start_browser([])
    try:
        for name in sorted(f for f in os.listdir(directory) if f.startswith("host-") and f.endswith(".html")):
            times = []
            for _ in range(11):
                browser.get("file://" + os.path.join(os.path.abspath(directory), name))
                t = browser.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0];"
                    "return [n.domContentLoadedEventEnd, n.loadEventEnd, document.querySelectorAll('#entries tbody tr').length];")
                times.append(t)
            loads = sorted(x[1] for x in times)
            print("chromium %s: %d rows shown, load ms median %.1f min %.1f max %.1f (DOMContentLoaded median %.1f)"
                  % (name, times[0][2], statistics.median(loads), loads[0], loads[-1],
                     statistics.median(x[0] for x in times)))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
