import { describe, expect, it } from "@effect/vitest"
import {
  contentDisposition,
  ensureExtension,
  MAX_FILE_NAME_LENGTH,
  sanitizeFileName
} from "../../../src/domain/attachments/FileName.js"
import { Jpeg, Pdf, Text } from "../../../src/domain/attachments/FileType.js"

describe("sanitizeFileName", () => {
  it("keeps ordinary names as they are", () => {
    expect(sanitizeFileName("Progress photo 2026-03.jpg", "jpg")).toBe("Progress photo 2026-03.jpg")
    expect(sanitizeFileName("plan; week 3 (v2).pdf", "pdf")).toBe("plan; week 3 (v2).pdf")
  })

  it("keeps only the last path segment, for either separator", () => {
    expect(sanitizeFileName("../../etc/passwd", "txt")).toBe("passwd")
    expect(sanitizeFileName("C:\\Windows\\System32\\x.exe", "bin")).toBe("x.exe")
    expect(sanitizeFileName("a/b\\c/..\\photo.png", "png")).toBe("photo.png")
    expect(sanitizeFileName("uploads/", "png")).toBe("file.png")
  })

  it("removes leading and trailing dots, so no hidden files and no `..`", () => {
    expect(sanitizeFileName(".bashrc", "txt")).toBe("bashrc")
    expect(sanitizeFileName("..", "txt")).toBe("file.txt")
    expect(sanitizeFileName(". . .hidden.txt", "txt")).toBe("hidden.txt")
    expect(sanitizeFileName("report.pdf. . ", "pdf")).toBe("report.pdf")
  })

  it("replaces control characters and collapses whitespace", () => {
    expect(sanitizeFileName("a\u0000b\r\nc\u007f\u0085d.txt", "txt")).toBe("a b c d.txt")
    expect(sanitizeFileName("  many \t  spaces\u00a0\u3000here .txt  ", "txt")).toBe("many spaces here .txt")
  })

  it("removes bidi overrides, isolates and invisible characters", () => {
    expect(sanitizeFileName("invoice\u202Egnp.exe", "bin")).toBe("invoicegnp.exe")
    expect(sanitizeFileName("\u2066photo\u2069\u200B.jpg\u200F", "jpg")).toBe("photo.jpg")
    expect(sanitizeFileName("\uFEFFnotes.txt", "txt")).toBe("notes.txt")
  })

  it("replaces characters that Windows refuses or that end a quoted header value", () => {
    expect(sanitizeFileName("say \"hi\" <now>: a|b?*.txt", "txt")).toBe("say _hi_ _now__ a_b__.txt")
  })

  it("normalises to NFC and keeps non-Latin names", () => {
    const decomposed = "Cafe\u0301 \u00fcbung.txt".normalize("NFD")
    expect(sanitizeFileName(decomposed, "txt")).toBe("Caf\u00e9 \u00fcbung.txt")
    expect(sanitizeFileName("トレーニング計画 💪.pdf", "pdf")).toBe("トレーニング計画 💪.pdf")
  })

  it("falls back to file.<ext> when nothing is left", () => {
    expect(sanitizeFileName(undefined, "png")).toBe("file.png")
    expect(sanitizeFileName("", ".pdf")).toBe("file.pdf")
    expect(sanitizeFileName(" \u202E\u0000 ", "txt")).toBe("file.txt")
  })

  it("cuts long names to 200 characters, keeping the extension and whole code points", () => {
    const long = sanitizeFileName(`${"a".repeat(500)}.jpeg`, "jpg")
    expect(long.length).toBe(MAX_FILE_NAME_LENGTH)
    expect(long.endsWith("a.jpeg")).toBe(true)
    const emoji = sanitizeFileName(`${"💪".repeat(300)}.txt`, "txt")
    expect(Array.from(emoji).length).toBe(MAX_FILE_NAME_LENGTH)
    expect(emoji).toBe(`${"💪".repeat(196)}.txt`)
    expect(sanitizeFileName("b".repeat(300), "txt")).toBe("b".repeat(200))
  })

  it("replaces lone surrogates", () => {
    expect(sanitizeFileName("a\uD800b.txt", "txt")).toBe("a\uFFFDb.txt")
  })

  it("is idempotent", () => {
    const names = ["../x/..hidden. .txt", `${"é".repeat(300)}.pdf`, "a\u202E\"b\".exe", "C:\\a\\ b .txt"]
    for (const name of names) {
      const once = sanitizeFileName(name, "bin")
      expect(sanitizeFileName(once, "bin")).toBe(once)
    }
  })
})

describe("ensureExtension", () => {
  it("keeps an extension that fits the type, in any case, and appends the type's otherwise", () => {
    expect(ensureExtension("me.JPEG", Jpeg)).toBe("me.JPEG")
    expect(ensureExtension("notes.md", Text)).toBe("notes.md")
    expect(ensureExtension("page.html", Text)).toBe("page.html.txt")
    expect(ensureExtension("invoice.pdf.exe", Pdf)).toBe("invoice.pdf.exe.pdf")
    expect(ensureExtension("scan", Pdf)).toBe("scan.pdf")
  })
})

describe("contentDisposition", () => {
  it("gives a plain filename for ASCII names", () => {
    expect(contentDisposition("attachment", "plan week 3.pdf")).toBe(
      "attachment; filename=\"plan week 3.pdf\"; filename*=UTF-8''plan%20week%203.pdf"
    )
  })

  it("gives an ASCII fallback and the exact name percent-encoded in UTF-8", () => {
    expect(contentDisposition("inline", "Übung (1) für Jörg's Plan*.jpg")).toBe(
      "inline; filename=\"Ubung (1) fur Jorg's Plan_.jpg\"; " +
        "filename*=UTF-8''%C3%9Cbung%20%281%29%20f%C3%BCr%20J%C3%B6rg%27s%20Plan_.jpg"
    )
    expect(contentDisposition("attachment", "日本.txt")).toBe(
      "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"
    )
  })

  it("cannot be broken out of by quotes, backslashes, percent signs or line breaks", () => {
    const header = contentDisposition("attachment", "a\"; filename=evil.html\r\nSet-Cookie: x=1.txt")
    expect(header).toBe(
      "attachment; filename=\"a_; filename=evil.html Set-Cookie_ x=1.txt\"; " +
        "filename*=UTF-8''a_%3B%20filename%3Devil.html%20Set-Cookie_%20x%3D1.txt"
    )
    expect(contentDisposition("inline", "x\\%41.txt")).toBe("inline; filename=\"_41.txt\"; filename*=UTF-8''%2541.txt")
    const quoted = contentDisposition("attachment", "50% \"off\".txt")
    expect(quoted).toBe("attachment; filename=\"50_ _off_.txt\"; filename*=UTF-8''50%25%20_off_.txt")
  })
})
