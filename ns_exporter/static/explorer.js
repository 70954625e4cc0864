// ns_exporter namespace explorer: renders api/namespaces (the same JSON as
// `ns-exporter list --json`) as a tree. User namespaces own the others; a pid namespace sits
// under its parent pid namespace when both belong to the same user namespace.
// Every value from the exporter is written with textContent, never parsed as HTML.
"use strict";

(function () {
  const TYPE_ORDER = ["user", "pid", "mnt", "net", "ipc", "uts", "cgroup", "time"];
  const API = "api/namespaces";

  const state = {
    data: null,
    roots: [],
    types: new Set(TYPE_ORDER),
    onlyUnexpected: false,
    search: "",
    collapsed: new Set(),
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  // --- the tree ---------------------------------------------------------------------------

  const keyOf = (type, inode) => type + ":" + inode;

  function typeRank(type) {
    const rank = TYPE_ORDER.indexOf(type);
    return rank < 0 ? TYPE_ORDER.length : rank;
  }

  function compareNodes(a, b) {
    // Owned namespaces first, nested user namespaces after them; then by type and inode.
    const aUser = a.ns.ns_type === "user" ? 1 : 0;
    const bUser = b.ns.ns_type === "user" ? 1 : 0;
    return aUser - bUser || typeRank(a.ns.ns_type) - typeRank(b.ns.ns_type) || a.ns.inode - b.ns.inode;
  }

  function placeholderUser(inode) {
    // A user namespace that owns something in the scan but was not in it itself.
    return {
      ns: {
        ns_type: "user", inode: inode, processes: null, holder: "", pid: null, command: "",
        owner: "", owner_uid: null, parent_inode: null, userns_inode: null, created: null,
        container_runtime: "", container_id: "", unit: "", mountpoint: "", unexpected: false,
      },
      placeholder: true,
      children: [],
      note: "",
    };
  }

  function buildTree(namespaces) {
    const nodes = new Map();
    for (const ns of namespaces) {
      nodes.set(keyOf(ns.ns_type, ns.inode), { ns: ns, placeholder: false, children: [], note: "" });
    }
    const roots = [];
    const userNode = (inode) => {
      if (inode === null || inode === undefined) return null;
      const key = keyOf("user", inode);
      if (!nodes.has(key)) {
        const node = placeholderUser(inode);
        nodes.set(key, node);
        roots.push(node);
      }
      return nodes.get(key);
    };

    for (const node of Array.from(nodes.values())) {
      if (node.placeholder) continue;
      const ns = node.ns;
      let parent = null;
      if (ns.ns_type === "user") {
        parent = userNode(ns.parent_inode);
      } else {
        const owner = userNode(ns.userns_inode);
        parent = owner;
        if (ns.ns_type === "pid" && ns.parent_inode !== null && ns.parent_inode !== undefined) {
          const parentPid = nodes.get(keyOf("pid", ns.parent_inode));
          if (parentPid && parentPid.ns.userns_inode === ns.userns_inode) {
            parent = parentPid;
          } else {
            node.note = "child of pid:" + ns.parent_inode;
          }
        }
      }
      if (parent === node) parent = null;
      (parent ? parent.children : roots).push(node);
    }

    const sortAll = (list) => {
      list.sort(compareNodes);
      for (const node of list) sortAll(node.children);
    };
    sortAll(roots);
    return roots;
  }

  // --- filtering --------------------------------------------------------------------------

  function text(ns) {
    return [
      ns.ns_type + ":" + ns.inode, String(ns.inode), ns.command, ns.owner, ns.holder,
      ns.container_runtime, ns.container_id, ns.unit, ns.mountpoint,
      ns.pid === null ? "" : String(ns.pid),
    ].join(" ").toLowerCase();
  }

  function matches(node) {
    const ns = node.ns;
    if (node.placeholder) return false;
    if (!state.types.has(ns.ns_type)) return false;
    if (state.onlyUnexpected && !ns.unexpected) return false;
    return !state.search || text(ns).includes(state.search);
  }

  // Marks node.match and node.visible (matches itself or has a visible descendant).
  function mark(node) {
    let below = false;
    for (const child of node.children) below = mark(child) || below;
    node.match = matches(node);
    node.visible = node.match || below;
    return node.visible;
  }

  // --- rendering --------------------------------------------------------------------------

  function age(created) {
    if (created === null || created === undefined) return "";
    let s = Math.max(0, Math.round(Date.now() / 1000 - created));
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      if (s >= size || (unit === "s" && parts.length === 0)) {
        parts.push(Math.floor(s / size) + unit);
        s %= size;
      }
      if (parts.length === 2) break;
    }
    return parts.join(" ") + " ago";
  }

  function attribution(ns) {
    const cell = el("td");
    if (ns.container_runtime) {
      const id = ns.container_id ? " " + ns.container_id.slice(0, 12) : "";
      cell.append(el("span", { text: ns.container_runtime + id, title: ns.container_id || "" }));
    }
    if (ns.unit) {
      if (cell.childNodes.length) cell.append(el("br"));
      cell.append(el("span", { class: "muted", text: ns.unit }));
    }
    return cell;
  }

  function owner(ns) {
    if (!ns.owner && (ns.owner_uid === null || ns.owner_uid === undefined)) return "";
    if (ns.owner_uid === null || ns.owner_uid === undefined || ns.owner === String(ns.owner_uid)) {
      return ns.owner;
    }
    return ns.owner + " (" + ns.owner_uid + ")";
  }

  function row(node, depth) {
    const ns = node.ns;
    const key = keyOf(ns.ns_type, ns.inode);
    const hasChildren = node.children.some((child) => child.visible);
    const collapsed = state.collapsed.has(key);

    const nameCell = el("td", { class: "ns" });
    nameCell.style.paddingLeft = 0.5 + depth * 1.4 + "em";
    if (hasChildren) {
      const toggle = el("button", {
        type: "button",
        class: "toggle",
        "aria-expanded": String(!collapsed),
        "aria-label": (collapsed ? "Expand " : "Collapse ") + key,
        text: collapsed ? "▸" : "▾",
      });
      toggle.addEventListener("click", () => {
        if (state.collapsed.has(key)) state.collapsed.delete(key);
        else state.collapsed.add(key);
        render();
      });
      nameCell.append(toggle);
    } else {
      nameCell.append(el("span", { class: "leaf" }));
    }
    nameCell.append(el("span", { class: "type", text: ns.ns_type }), el("span", { text: String(ns.inode) }));
    if (node.placeholder) nameCell.append(el("span", { class: "note", text: "not in the scan" }));
    if (node.note) nameCell.append(el("span", { class: "note", text: node.note }));

    const holder = ns.holder === "mount" && ns.mountpoint ? "mount " + ns.mountpoint : ns.holder;
    const created = el("td", { text: age(ns.created) });
    if (ns.created) created.title = new Date(ns.created * 1000).toISOString();
    const flags = el("td");
    if (ns.unexpected) flags.append(el("span", { class: "flag", text: "unexpected" }));

    const tr = el(
      "tr",
      {
        class: [node.match ? "match" : "context", ns.unexpected ? "unexpected" : ""].join(" ").trim(),
        "data-ns-type": ns.ns_type,
        "data-inode": String(ns.inode),
        "aria-level": String(depth + 1),
      },
      nameCell,
      el("td", { class: "num", text: ns.processes === null ? "" : String(ns.processes) }),
      el("td", { class: "num", text: ns.pid === null ? "" : String(ns.pid) }),
      el("td", { class: "cmd", text: ns.command }),
      el("td", { text: owner(ns) }),
      el("td", { text: holder }),
      attribution(ns),
      created,
      flags,
    );
    return tr;
  }

  function render() {
    const body = $("tree").tBodies[0];
    const rows = [];
    let shown = 0;
    const walk = (nodes, depth) => {
      for (const node of nodes) {
        if (!node.visible) continue;
        rows.push(row(node, depth));
        if (node.match) shown += 1;
        if (!state.collapsed.has(keyOf(node.ns.ns_type, node.ns.inode))) walk(node.children, depth + 1);
      }
    };
    for (const root of state.roots) mark(root);
    walk(state.roots, 0);
    body.replaceChildren(...rows);
    const total = state.data ? state.data.namespaces.length : 0;
    setStatus(shown + " of " + total + " namespaces match", false);
  }

  function setStatus(message, isError) {
    const status = $("status");
    status.textContent = message;
    status.classList.toggle("error", isError);
  }

  function renderTypes(namespaces) {
    const counts = new Map(TYPE_ORDER.map((type) => [type, 0]));
    for (const ns of namespaces) counts.set(ns.ns_type, (counts.get(ns.ns_type) || 0) + 1);
    const box = $("types");
    box.querySelectorAll("label").forEach((label) => label.remove());
    for (const [type, count] of counts) {
      const input = el("input", { type: "checkbox", value: type, name: "ns_type" });
      input.checked = state.types.has(type);
      input.addEventListener("change", () => {
        if (input.checked) state.types.add(type);
        else state.types.delete(type);
        render();
      });
      box.append(el("label", {}, input, " " + type + " ", el("span", { class: "muted", text: "(" + count + ")" })));
    }
  }

  function renderScan(scan, count) {
    const when = new Date(scan.timestamp * 1000);
    $("scan").textContent =
      "Scan of " + when.toLocaleString() + ": " + count + " namespaces, " +
      scan.processes_scanned + " processes, took " + scan.duration_seconds.toFixed(3) + " s.";
  }

  async function load() {
    setStatus("Loading…", false);
    try {
      const response = await fetch(API, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) {
        setStatus("Could not load " + API + ": HTTP " + response.status, true);
        return;
      }
      const data = await response.json();
      state.data = data;
      state.roots = buildTree(data.namespaces);
      renderScan(data.scan, data.namespaces.length);
      renderTypes(data.namespaces);
      render();
    } catch (err) {
      setStatus("Could not load " + API + ": " + err.message, true);
    }
  }

  function allKeys(nodes, into) {
    for (const node of nodes) {
      if (node.children.length) into.add(keyOf(node.ns.ns_type, node.ns.inode));
      allKeys(node.children, into);
    }
    return into;
  }

  function init() {
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("only-unexpected").addEventListener("change", (event) => {
      state.onlyUnexpected = event.target.checked;
      render();
    });
    $("search").addEventListener("input", (event) => {
      state.search = event.target.value.trim().toLowerCase();
      render();
    });
    $("expand-all").addEventListener("click", () => {
      state.collapsed.clear();
      render();
    });
    $("collapse-all").addEventListener("click", () => {
      state.collapsed = allKeys(state.roots, new Set());
      render();
    });
    $("reload").addEventListener("click", load);
    load();
  }

  // Exposed for tests and the curious: the tree as built from the last load.
  window.nsExplorer = { buildTree: buildTree, state: state };
  init();
})();
