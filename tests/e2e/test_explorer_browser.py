"""The namespace explorer in headless Chromium (Debian's), against the running exporter.

Checks that the tree renders with user-namespace ownership and pid nesting, that the type
filter and the search work, and that the page logs no console error. Saves screenshots to
artifacts/.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

from tests.e2e.stack import NOT_EXPOSED_YET, POLICY, REPO, bound_netns, leaf
from tests.helpers import (
    USER_OWNED_PID_NS,
    Exporter,
    ns_inode,
    run_exporter,
    spawned,
    wait_for,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"  # Debian's package; playwright never downloads a browser here
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = REPO / "artifacts"


@dataclass(frozen=True, slots=True)
class Scene:
    exporter: Exporter
    netns_path: str
    host_pid: int  # the host's pid namespace (the test's own)
    outer_pid: int  # pid namespace made by `unshare --pid`
    inner_pid: int  # pid namespace inside it
    child_user: int  # user namespace made by `unshare --user`
    child_user_pid: int  # the pid namespace that user namespace owns


def _namespaces(exporter: Exporter) -> list[dict[str, Any]]:
    body = requests.get(f"{exporter.url}/api/namespaces", timeout=5).json()
    namespaces: list[dict[str, Any]] = body["namespaces"]
    return namespaces


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    tmp = str(tmp_path_factory.mktemp("explorer"))
    with contextlib.ExitStack() as stack:
        netns_path = stack.enter_context(bound_netns(f"nsdash-{os.getpid()}"))
        # pid namespace nesting: sleep runs two pid namespaces below the host's.
        nested = stack.enter_context(
            spawned(
                [
                    *("unshare", "--pid", "--fork", "--mount-proc"),
                    *("unshare", "--pid", "--fork", "--mount-proc", "sleep", "600"),
                ]
            )
        )
        # a user namespace owning a pid (and mnt) namespace
        owned = stack.enter_context(spawned(USER_OWNED_PID_NS))
        owned_leaf = leaf(owned.pid, 1)
        policy = Path(tmp) / "policy.yml"
        policy.write_text(POLICY)
        exporter = stack.enter_context(
            run_exporter("--scan.interval=1s", f"--config.file={policy}", tmp_dir=tmp)
        )
        scene = Scene(
            exporter=exporter,
            netns_path=netns_path,
            host_pid=ns_inode(os.getpid(), "pid"),
            outer_pid=ns_inode(leaf(nested.pid, 1), "pid"),
            inner_pid=ns_inode(leaf(nested.pid, 2), "pid"),
            child_user=ns_inode(owned_leaf, "user"),
            child_user_pid=ns_inode(owned_leaf, "pid"),
        )
        wanted = {
            ("pid", scene.inner_pid),
            ("pid", scene.child_user_pid),
            ("user", scene.child_user),
        }

        def all_seen() -> bool:
            seen = {(ns["ns_type"], ns["inode"]) for ns in _namespaces(scene.exporter)}
            return wanted <= seen

        wait_for(all_seen, timeout=30)
        yield scene


@pytest.fixture(scope="module")
def browser_page() -> Iterator[tuple[Page, list[str]]]:
    """A Chromium page and the console errors and page errors it reports."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            url = message.location.get("url", "")
            errors.append(f"console {message.type}: {message.text} ({url})")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", on_console)
            page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
            page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
            yield page, errors
        finally:
            browser.close()


def _rows(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.eval_on_selector_all(
        "#tree tbody tr",
        """rows => rows.map(r => ({
            ns_type: r.dataset.nsType,
            inode: Number(r.dataset.inode),
            level: Number(r.getAttribute('aria-level')),
            match: r.classList.contains('match'),
            text: r.innerText,
        }))""",
    )
    return rows


def _parent_of(rows: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """The nearest row above with a level one less: the tree parent."""
    level = rows[index]["level"]
    for row in reversed(rows[:index]):
        if row["level"] == level - 1:
            return row
    raise AssertionError(f"row {rows[index]} has no parent")


def _index(rows: list[dict[str, Any]], ns_type: str, inode: int) -> int:
    for i, row in enumerate(rows):
        if row["ns_type"] == ns_type and row["inode"] == inode:
            return i
    raise AssertionError(f"{ns_type}:{inode} is not in the tree")


def _set_types(page: Page, types: set[str]) -> None:
    for box in page.query_selector_all("#types input[type=checkbox]"):
        want = box.get_attribute("value") in types
        if box.is_checked() != want:
            box.click()


def test_landing_page_links_to_the_explorer(
    scene: Scene, browser_page: tuple[Page, list[str]]
) -> None:
    page, errors = browser_page
    errors.clear()
    page.goto(scene.exporter.url + "/")
    page.click("text=Namespace explorer")
    page.wait_for_selector("#tree tbody tr")
    assert page.url == scene.exporter.url + "/explorer"
    # The landing page names no icon, so Chromium asks for /favicon.ico (404); the
    # explorer page names an inline one and must cause no error at all.
    assert [e for e in errors if not e.endswith("/favicon.ico)")] == []


def test_tree_renders_ownership_and_pid_nesting(
    scene: Scene, browser_page: tuple[Page, list[str]]
) -> None:
    page, errors = browser_page
    errors.clear()
    with page.expect_response(lambda r: r.url.endswith("/api/namespaces")) as response:
        page.goto(scene.exporter.url + "/explorer")
    document = response.value.json()
    page.wait_for_selector("#tree tbody tr")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "explorer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    rows = _rows(page)
    # Every namespace of the scan the page loaded is a row, once; with no filter all match.
    shown = sorted((r["ns_type"], r["inode"]) for r in rows if r["match"])
    loaded = sorted((ns["ns_type"], ns["inode"]) for ns in document["namespaces"])
    assert shown == loaded
    assert all(r["match"] for r in rows if r["ns_type"] != "user"), "only placeholders are context"
    assert page.inner_text("#status") == f"{len(loaded)} of {len(loaded)} namespaces match"

    outer = _index(rows, "pid", scene.outer_pid)
    inner = _index(rows, "pid", scene.inner_pid)
    assert _parent_of(rows, inner)["inode"] == scene.outer_pid
    assert _parent_of(rows, outer)["inode"] == scene.host_pid

    owned = _index(rows, "pid", scene.child_user_pid)
    parent = _parent_of(rows, owned)
    assert (parent["ns_type"], parent["inode"]) == ("user", scene.child_user)
    assert f"child of pid:{scene.host_pid}" in rows[owned]["text"]

    netns = next(r for r in rows if scene.netns_path in r["text"])
    assert netns["ns_type"] == "net"
    # The root is the initial user namespace, owning the host's namespaces.
    assert rows[0]["ns_type"] == "user"
    assert rows[0]["level"] == 1
    assert not errors


def test_type_filter(scene: Scene, browser_page: tuple[Page, list[str]]) -> None:
    page, errors = browser_page
    errors.clear()
    page.goto(scene.exporter.url + "/explorer")
    page.wait_for_selector("#tree tbody tr")

    _set_types(page, {"net"})
    rows = _rows(page)
    matching = [r for r in rows if r["match"]]
    assert matching, "net namespaces must be listed"
    assert {r["ns_type"] for r in matching} == {"net"}
    # Rows of other types stay only as context (the user namespaces that own the matches).
    assert {r["ns_type"] for r in rows if not r["match"]} <= {"user"}
    assert any(scene.netns_path in r["text"] for r in matching)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-net-only.png"), full_page=True)

    _set_types(page, {"pid"})
    rows = _rows(page)
    pids = {r["inode"] for r in rows if r["match"]}
    assert {scene.outer_pid, scene.inner_pid, scene.child_user_pid} <= pids
    assert {r["ns_type"] for r in rows if r["match"]} == {"pid"}

    _set_types(page, set())
    assert _rows(page) == []
    assert page.inner_text("#status").startswith("0 of ")
    assert not errors


def test_search_and_collapse(scene: Scene, browser_page: tuple[Page, list[str]]) -> None:
    page, errors = browser_page
    errors.clear()
    page.goto(scene.exporter.url + "/explorer")
    page.wait_for_selector("#tree tbody tr")

    page.fill("#search", str(scene.inner_pid))
    rows = _rows(page)
    assert [(r["ns_type"], r["inode"]) for r in rows if r["match"]] == [("pid", scene.inner_pid)]
    page.fill("#search", "")

    page.click("#collapse-all")
    assert len(_rows(page)) == len([r for r in _rows(page) if r["level"] == 1])
    page.click("#expand-all")
    assert any(r["level"] > 1 for r in _rows(page))
    assert not errors


@pytest.mark.xfail(
    "ns_namespace_unexpected" in NOT_EXPOSED_YET,
    strict=True,
    reason="the policy is not applied on this branch yet",
)
def test_unexpected_flag_and_filter(scene: Scene, browser_page: tuple[Page, list[str]]) -> None:
    page, errors = browser_page
    errors.clear()
    with page.expect_response(lambda r: r.url.endswith("/api/namespaces")) as response:
        page.goto(scene.exporter.url + "/explorer")
    document = response.value.json()
    page.wait_for_selector("#tree tbody tr")
    flagged = sorted(
        (ns["ns_type"], ns["inode"]) for ns in document["namespaces"] if ns["unexpected"]
    )
    # The policy expects every namespace a process is in: the bind-mounted netns is not.
    netns = next(r for r in _rows(page) if scene.netns_path in r["text"])
    assert ("net", netns["inode"]) in flagged
    assert "unexpected" in netns["text"]

    page.check("#only-unexpected")
    shown = sorted((r["ns_type"], r["inode"]) for r in _rows(page) if r["match"])
    assert shown == flagged
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-unexpected.png"), full_page=True)
    assert not errors


def _crafted(ns_type: str, inode: int, **kw: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "ns_type": ns_type,
        "inode": inode,
        "ns_id": None,
        "processes": 1,
        "holder": "process",
        "pid": 100,
        "command": "sh",
        "owner_uid": 0,
        "owner": "root",
        "parent_inode": None,
        "userns_inode": 1,
        "created": 1.7e9,
        "container_runtime": "",
        "container_id": "",
        "unit": "",
        "mountpoint": "",
        "unexpected": False,
    }
    ns.update(kw)
    return ns


HOSTILE = '<img src=x onerror="window.pwned=1">'


def test_rendering_of_a_crafted_document(
    scene: Scene, browser_page: tuple[Page, list[str]]
) -> None:
    """The real page, served by the exporter, fed a document with every case the tree knows:
    hostile command names, attribution, unexpected flags, an owner missing from the scan."""
    page, errors = browser_page
    errors.clear()
    document = {
        "scan": {"timestamp": 1.8e9, "duration_seconds": 0.01, "processes_scanned": 3},
        "namespaces": [
            _crafted("user", 1, userns_inode=None),
            _crafted(
                "net",
                2,
                command=HOSTILE,
                unexpected=True,
                container_runtime="docker",
                container_id="0123456789abcdef0123",
                unit="docker.service",
                owner="1000",
                owner_uid=1000,
            ),
            _crafted("pid", 3, userns_inode=999),  # its owner is not in the scan
        ],
    }
    page.route("**/api/namespaces", lambda route: route.fulfill(json=document))
    try:
        page.goto(scene.exporter.url + "/explorer")
        page.wait_for_selector("#tree tbody tr")
        rows = _rows(page)
    finally:
        page.unroute("**/api/namespaces")
    by_key = {(r["ns_type"], r["inode"]): r for r in rows}
    net = by_key[("net", 2)]
    assert HOSTILE in net["text"], "the command is shown as text"
    assert page.evaluate("window.pwned") is None
    assert page.query_selector("#tree img") is None
    assert "docker 0123456789ab" in net["text"]
    assert "docker.service" in net["text"]
    assert "unexpected" in net["text"]
    assert _parent_of(rows, rows.index(net))["inode"] == 1
    placeholder = by_key[("user", 999)]
    assert "not in the scan" in placeholder["text"]
    assert not placeholder["match"]
    assert _parent_of(rows, rows.index(by_key[("pid", 3)]))["inode"] == 999

    page.check("#only-unexpected")
    assert [(r["ns_type"], r["inode"]) for r in _rows(page) if r["match"]] == [("net", 2)]
    assert page.inner_text("#status") == "1 of 3 namespaces match"
    assert not errors
