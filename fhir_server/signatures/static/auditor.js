// Auditor page: renders a document Bundle and the $verify-signature Parameters.
// Every value from the document goes into the page through textContent (never innerHTML).
"use strict";

const ROLE = { chair: "Chủ trì", secretary: "Thư ký", member: "Thành viên" };
const MODE = { legal: "pháp lý", professional: "chuyên môn", personal: "cá nhân", official: "chính thức" };
const STATUS = { valid: "Hợp lệ", invalid: "Không hợp lệ", indeterminate: "Chưa xác định" };
const COMP_STATUS = { final: "Hoàn tất", amended: "Đã đính chính", preliminary: "Sơ bộ" };

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function dl(rows) {
  const list = el("dl");
  for (const [label, value] of rows) {
    if (value === undefined || value === null || value === "") continue;
    list.append(el("dt", {}, label), el("dd", {}, String(value)));
  }
  return list;
}

function parts(param) {
  const out = {};
  for (const p of param.part || []) {
    const value = p.part ? parts(p) : Object.entries(p).find(([k]) => k.startsWith("value"))?.[1];
    (out[p.name] = out[p.name] || []).push(value);
  }
  return out;
}

function first(obj, name) { return (obj[name] || [])[0]; }

function resolver(bundle) {
  const byRef = {};
  for (const e of bundle.entry || []) {
    const r = e.resource || {};
    byRef[`${r.resourceType}/${r.id}`] = r;
    if (e.fullUrl) byRef[e.fullUrl] = r;
  }
  return (ref) => (ref && ref.reference ? byRef[ref.reference] || byRef[ref.reference.split("/").slice(-2).join("/")] : undefined);
}

function nameOf(resource, ref) {
  if (!resource) return (ref && (ref.display || ref.reference)) || "";
  if (resource.name && typeof resource.name === "string") return resource.name;
  const n = (resource.name || [])[0] || {};
  return n.text || [...(n.prefix || []), n.family, ...(n.given || [])].filter(Boolean).join(" ");
}

function narrativeText(div) {
  const doc = new DOMParser().parseFromString(String(div || ""), "text/html");
  doc.querySelectorAll("p, br, li, tr, div").forEach((n) => n.append("\n"));
  return doc.body.textContent.replace(/\n{3,}/g, "\n\n").trim();
}

function renderVerdict(report) {
  const verdict = document.getElementById("verdict");
  const params = report.parameter || [];
  const valid = params.find((p) => p.name === "valid")?.valueBoolean === true;
  const sigs = params.filter((p) => p.name === "signature").map(parts);
  const codes = sigs.flatMap((s) => (s.reason || []).map((r) => first(r, "code")));
  verdict.className = valid ? "ok" : "bad";
  verdict.dataset.valid = String(valid);
  verdict.replaceChildren();
  if (valid) {
    verdict.append(`HỢP LỆ — ${sigs.length} chữ ký hợp lệ, tài liệu không bị thay đổi sau khi ký`,
      el("p", {}, "VALID — every signature verifies and the document is unchanged since signing."));
  } else if (codes.includes("content-changed") || codes.includes("signature-mismatch")) {
    verdict.append("KHÔNG HỢP LỆ — TÀI LIỆU ĐÃ BỊ THAY ĐỔI hoặc chữ ký bị giả mạo",
      el("p", {}, "NOT VALID — the document was changed after signing or a signature does not match."));
  } else {
    verdict.append("KHÔNG HỢP LỆ — có chữ ký không hợp lệ hoặc chưa xác định được",
      el("p", {}, "NOT VALID — a signature is invalid or its certificate status could not be determined."));
  }
  return sigs;
}

function renderSignatures(sigs, resolve) {
  const box = document.getElementById("signatures");
  box.replaceChildren();
  for (const s of sigs) {
    const status = first(s, "status");
    const who = first(s, "who");
    const types = (s.type || []).map((t) => t.display || t.code).join(", ");
    const card = el("div", { className: `sig ${status}` },
      el("h3", {}, `${STATUS[status] || status} — ${types || "Chữ ký"} — ${nameOf(resolve(who), who)}`));
    for (const r of s.reason || []) {
      if (first(r, "code") !== "valid") card.append(el("p", { className: "reason" }, first(r, "message")));
    }
    card.append(dl([
      ["Vị trí / Location", first(s, "location")],
      ["Người ký (chứng thư) / Signer", first(s, "signer")],
      ["Chủ thể chứng thư / Subject", first(s, "certificateSubject")],
      ["Tổ chức cấp / Issuer", first(s, "certificateIssuer")],
      ["Số hiệu / Serial", first(s, "certificateSerial")],
      ["Hiệu lực / Validity", [first(s, "certificateNotBefore"), first(s, "certificateNotAfter")].filter(Boolean).join(" → ")],
      ["Thời điểm ký / Signed at", first(s, "signingTime")],
      ["Thuật toán / Algorithm", [first(s, "algorithm"), first(s, "key")].filter(Boolean).join(", ")],
      ["Trạng thái thu hồi / Revocation", [first(s, "revocation"), first(s, "revocationSource")].filter(Boolean).join(" — ")],
      ["Chuỗi chứng thư / Chain", (s.chain || []).join(" ← ")],
    ]));
    box.append(card);
  }
}

function renderDocument(bundle, resolve) {
  const article = document.getElementById("document");
  article.replaceChildren();
  const comp = ((bundle.entry || [])[0] || {}).resource || {};
  const patient = resolve(comp.subject) || {};
  const encounter = resolve(comp.encounter) || {};
  const requesting = (comp.extension || []).find((x) => x.url.endsWith("/requesting-organization"));
  article.append(el("h2", {}, comp.title || "Biên bản"), dl([
    ["Trạng thái / Status", COMP_STATUS[comp.status] || comp.status],
    ["Ngày giờ / Date", comp.date],
    ["Bệnh nhân / Patient", [nameOf(patient, comp.subject), patient.birthDate && `sinh ${patient.birthDate}`].filter(Boolean).join(", ")],
    ["Lượt hội chẩn / Encounter", encounter.period ? `${encounter.period.start || ""} → ${encounter.period.end || ""}` : (comp.encounter || {}).reference],
    ["Cơ sở mời hội chẩn / Requesting", requesting ? nameOf(resolve(requesting.valueReference), requesting.valueReference) : ""],
    ["Cơ sở chủ trì / Consulting", nameOf(resolve(comp.custodian), comp.custodian)],
    ["Mã tài liệu / Identifier", bundle.identifier ? bundle.identifier.value : ""],
    ["Thay thế / Replaces", (comp.relatesTo || []).map((r) => `${r.code} ${(r.targetReference || {}).reference || ""}`).join(", ")],
  ]));
  const attesters = el("ul");
  for (const a of comp.attester || []) {
    const role = (a.extension || []).find((x) => x.url.endsWith("/consultation-role"));
    const code = role && role.valueCoding ? role.valueCoding.code : "";
    attesters.append(el("li", {}, `${ROLE[code] || code}: ${nameOf(resolve(a.party), a.party)} (xác nhận ${MODE[a.mode] || a.mode}${a.time ? ", " + a.time : ""})`));
  }
  article.append(el("h3", {}, "Thành phần tham gia / Participants"), attesters);
  for (const section of comp.section || []) {
    article.append(el("h3", {}, section.title || ((section.code || {}).coding || [{}])[0].display || ""));
    article.append(el("div", { className: "narrative" }, narrativeText((section.text || {}).div)));
    for (const entry of section.entry || []) {
      const target = resolve(entry) || {};
      const coding = ((target.code || {}).coding || [])[0];
      if (coding) article.append(el("p", {}, `Mã ICD-10: ${coding.code} — ${coding.display || ""}`));
    }
  }
}

function showError(message) {
  const verdict = document.getElementById("verdict");
  document.getElementById("result").hidden = false;
  verdict.className = "bad";
  verdict.dataset.valid = "false";
  verdict.replaceChildren("KHÔNG KIỂM TRA ĐƯỢC — " + message);
  document.getElementById("signatures").replaceChildren();
  document.getElementById("document").replaceChildren();
}

async function show(response) {
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 && body.login) { window.location.assign(body.login); return; }
  if (!response.ok) {
    const issue = ((body.outcome || {}).issue || [{}])[0];
    showError((issue.details || {}).text || issue.diagnostics || `HTTP ${response.status}`);
    return;
  }
  document.getElementById("result").hidden = false;
  const resolve = resolver(body.bundle || {});
  const sigs = renderVerdict(body.report || {});
  renderSignatures(sigs, resolve);
  renderDocument(body.bundle || {}, resolve);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("documents").addEventListener("click", (event) => {
    const button = event.target.closest("button.doc");
    if (button) fetch(`/auditor/api/documents/${encodeURIComponent(button.dataset.id)}`, { credentials: "same-origin" }).then(show);
  });
  document.getElementById("file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const text = await file.text();
    fetch("/auditor/api/verify", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: text }).then(show);
  });
  document.body.dataset.ready = "true";
});
