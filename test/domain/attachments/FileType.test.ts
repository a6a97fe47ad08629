import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { fileTypeFromBuffer } from "file-type"
import {
  claimMatches,
  Docx,
  Gif,
  isGenericClaim,
  Jpeg,
  Pdf,
  Png,
  sniff,
  SNIFF_BYTES,
  Text,
  Webp,
  Xlsx
} from "../../../src/domain/attachments/FileType.js"
import { bytes, concat, docxEntries, head, pdf, photo, solid, xlsxEntries, zip } from "./fixtures.js"

describe("sniff", () => {
  it("recognises each image type from real encoder output, and agrees with file-type", async () => {
    const samples = [
      [await solid(40, 30).jpeg().toBuffer(), Jpeg],
      [await solid(40, 30).png().toBuffer(), Png],
      [await solid(40, 30).webp().toBuffer(), Webp],
      [await solid(40, 30).webp({ lossless: true }).toBuffer(), Webp],
      [await solid(40, 30).ensureAlpha().webp().toBuffer(), Webp],
      [await solid(40, 30).gif().toBuffer(), Gif],
      [await photo(300, 200).jpeg({ progressive: true }).toBuffer(), Jpeg]
    ] as const
    for (const [file, kind] of samples) {
      expect(sniff(file)).toEqual(kind)
      expect((await fileTypeFromBuffer(file))?.mime).toBe(kind.mimeType)
    }
  })

  it("recognises PDF, and the first bytes of a large image are enough", async () => {
    expect(sniff(pdf)).toEqual(Pdf)
    const big = await photo(1500, 1500).png().toBuffer()
    expect(big.length).toBeGreaterThan(SNIFF_BYTES)
    expect(sniff(head(big, SNIFF_BYTES))).toEqual(Png)
  })

  it("recognises DOCX and XLSX from their parts, also when sizes are in data descriptors", async () => {
    for (const streamed of [false, true]) {
      const docx = zip(docxEntries, { streamed })
      const xlsx = zip(xlsxEntries, { streamed })
      expect(sniff(docx)).toEqual(Docx)
      expect(sniff(xlsx)).toEqual(Xlsx)
      expect((await fileTypeFromBuffer(docx))?.mime).toBe(Docx.mimeType)
      expect((await fileTypeFromBuffer(xlsx))?.mime).toBe(Xlsx.mimeType)
    }
  })

  it("recognises a large XLSX whose [Content_Types].xml lies past the head (openpyxl writes it last)", () => {
    const [types, ...parts] = xlsxEntries
    const file = zip([
      ...parts,
      { name: "xl/media/image1.png", data: randomBytes(200_000) },
      ...(types === undefined ? [] : [types])
    ])
    expect(sniff(head(file, SNIFF_BYTES))).toEqual(Xlsx)
  })

  it("refuses archives that are not DOCX or XLSX", () => {
    const plain = zip([{ name: "notes.txt", data: bytes("hello") }, { name: "run.exe", data: bytes("MZ") }])
    const noManifest = zip(docxEntries.filter((entry) => entry.name !== "[Content_Types].xml"))
    const both = zip([...docxEntries, { name: "xl/workbook.xml", data: bytes("<workbook/>") }])
    const macros = zip([...docxEntries, { name: "word/vbaProject.bin", data: randomBytes(64) }])
    const odt = zip([
      { name: "mimetype", data: bytes("application/vnd.oasis.opendocument.text") },
      { name: "content.xml", data: bytes("<office:document-content/>") }
    ])
    for (const file of [plain, noManifest, both, macros, odt]) expect(sniff(file)).toBeUndefined()
  })

  it("recognises plain text: UTF-8 with or without BOM, tabs, CR LF, form feeds", () => {
    expect(sniff(bytes("Squats 3x10\r\nBench\t5x5\fPage 2\n"))).toEqual(Text)
    expect(sniff(concat(Uint8Array.of(0xef, 0xbb, 0xbf), bytes("Grüße, 日本語, emoji 💪")))).toEqual(Text)
    expect(sniff(bytes("<3 you, coach"))).toEqual(Text)
    expect(sniff(bytes("a < b and b > c"))).toEqual(Text)
  })

  it("accepts a multi-byte character cut at the end of a truncated head, not of a whole file", () => {
    const text = bytes("é".repeat(SNIFF_BYTES))
    const cut = concat(bytes("a"), head(text, SNIFF_BYTES - 1))
    expect(cut.length).toBe(SNIFF_BYTES)
    expect(cut[SNIFF_BYTES - 1]).toBe(0xc3)
    expect(sniff(cut)).toEqual(Text)
    expect(sniff(bytes("short é").subarray(0, 7))).toBeUndefined()
  })

  it("refuses text with NUL or other control characters, and invalid UTF-8", () => {
    expect(sniff(bytes("abc\u0000def"))).toBeUndefined()
    expect(sniff(bytes("colour \u001b[31mred\u001b[0m"))).toBeUndefined()
    expect(sniff(Uint8Array.of(0x61, 0xc0, 0xaf))).toBeUndefined() // overlong "/"
    expect(sniff(Uint8Array.of(0xed, 0xa0, 0x80))).toBeUndefined() // a surrogate
    expect(sniff(Uint8Array.of(0x63, 0x61, 0x66, 0xe9))).toBeUndefined() // "café" in Latin-1
    expect(sniff(new Uint8Array(0))).toBeUndefined()
  })

  it("refuses markup that browsers would sniff as HTML or XML", () => {
    const pages = [
      "<!DOCTYPE html><html><body>hi</body></html>",
      "  \n<html>",
      "<HTML>",
      "<script>alert(1)</script>",
      "\uFEFF<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
      "<?xml version=\"1.0\"?><svg/>",
      "<!-- comment --><p>x</p>",
      "<iframe src=x>",
      "<a href=\"x\">",
      "<body onload=alert(1)>",
      "<!doctype svg>"
    ]
    for (const page of pages) expect(sniff(bytes(page)), page).toBeUndefined()
  })

  it("refuses executables, unknown binaries and truncated magic numbers", () => {
    const exe = concat(bytes("MZ"), new Uint8Array(58), Uint8Array.of(0x80, 0, 0, 0), randomBytes(200))
    const elf = concat(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 2, 1, 1), new Uint8Array(100))
    for (const file of [exe, elf, randomBytes(4096), Uint8Array.of(0xff, 0xd8), bytes("RIFF\0\0\0\0WAVEfmt ")]) {
      expect(sniff(file)).toBeUndefined()
    }
  })
})

describe("claims", () => {
  it("absent and octet-stream claims are generic", () => {
    expect(isGenericClaim(undefined)).toBe(true)
    expect(isGenericClaim("")).toBe(true)
    expect(isGenericClaim("Application/Octet-Stream")).toBe(true)
    expect(isGenericClaim("image/png")).toBe(false)
  })

  it("a claim matches when generic or equal to the sniffed type, ignoring case, parameters and aliases", () => {
    expect(claimMatches(undefined, Png)).toBe(true)
    expect(claimMatches("application/octet-stream", Pdf)).toBe(true)
    expect(claimMatches("image/png", Png)).toBe(true)
    expect(claimMatches("IMAGE/JPEG", Jpeg)).toBe(true)
    expect(claimMatches("image/jpg", Jpeg)).toBe(true)
    expect(claimMatches("text/plain; charset=utf-8", Text)).toBe(true)
    expect(claimMatches("text/csv", Text)).toBe(true)
    expect(claimMatches(Docx.mimeType, Docx)).toBe(true)
  })

  it("a specific claim that differs is a mismatch", () => {
    expect(claimMatches("image/png", Jpeg)).toBe(false)
    expect(claimMatches("image/jpg", Png)).toBe(false)
    expect(claimMatches("text/html", Text)).toBe(false)
    expect(claimMatches("application/pdf", Text)).toBe(false)
    expect(claimMatches(Xlsx.mimeType, Docx)).toBe(false)
    expect(claimMatches("application/zip", Docx)).toBe(false)
  })
})
