"""files.export for Docs editor files: the text body of a Doc rendered in the formats Drive offers.

Owns which export types each Docs kind supports and how the bytes are made: text/plain, text/csv,
text/html, a minimal PDF, and OOXML (docx/xlsx/pptx) as small valid zip files built with zipfile.
Output is deterministic (fixed zip timestamps) so the same Doc always exports to the same bytes.
Must never touch HTTP or the store.
"""

from __future__ import annotations

import html
import io
import zipfile

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
PDF = "application/pdf"

FORMATS = {
    "application/vnd.google-apps.document": ["text/plain", "text/html", PDF, DOCX],
    "application/vnd.google-apps.spreadsheet": ["text/csv", PDF, XLSX],
    "application/vnd.google-apps.presentation": ["text/plain", PDF, PPTX],
}


def export_formats(mime: str) -> list[str]:
    return FORMATS.get(mime, [])


def export(doc_mime: str, text: str, target: str) -> bytes:
    """Render `text` as `target`; raises ValueError when the conversion is not offered."""
    if target not in export_formats(doc_mime):
        raise ValueError(target)
    if target in ("text/plain", "text/csv"):
        return text.encode("utf-8")
    if target == "text/html":
        body = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines())
        return f"<html><head><meta charset=\"utf-8\"></head><body>{body}</body></html>".encode()
    if target == PDF:
        return _pdf(text)
    if target == DOCX:
        return _docx(text)
    if target == XLSX:
        return _xlsx(text)
    if target == PPTX:
        return _pptx(text)
    raise ValueError(target)


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, body)
    return buf.getvalue()


_RELS_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _root_rels(target: str) -> str:
    return (
        f'{_RELS_HEAD}<Relationships xmlns="{_PKG_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="{target}"/></Relationships>'
    )


def _docx(text: str) -> bytes:
    paras = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{html.escape(line)}</w:t></w:r></w:p>' for line in text.splitlines()
    ) or "<w:p/>"
    return _zip(
        {
            "[Content_Types].xml": f'{_RELS_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            "</Types>",
            "_rels/.rels": _root_rels("word/document.xml"),
            "word/document.xml": f'{_RELS_HEAD}<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body>{paras}</w:body></w:document>",
        }
    )


def _xlsx(text: str) -> bytes:
    rows = []
    for r, line in enumerate(text.splitlines(), start=1):
        cells = "".join(
            f'<c t="inlineStr"><is><t>{html.escape(v)}</t></is></c>' for v in line.split(",")
        )
        rows.append(f'<row r="{r}">{cells}</row>')
    return _zip(
        {
            "[Content_Types].xml": f'{_RELS_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>",
            "_rels/.rels": _root_rels("xl/workbook.xml"),
            "xl/workbook.xml": f'{_RELS_HEAD}<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            f'xmlns:r="{_DOC_REL}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
            "xl/_rels/workbook.xml.rels": f'{_RELS_HEAD}<Relationships xmlns="{_PKG_RELS}">'
            f'<Relationship Id="rId1" Type="{_DOC_REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
            "xl/worksheets/sheet1.xml": f'{_RELS_HEAD}<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<sheetData>{''.join(rows)}</sheetData></worksheet>",
        }
    )


def _pptx(text: str) -> bytes:
    ns_p = "http://schemas.openxmlformats.org/presentationml/2006/main"
    ns_a = "http://schemas.openxmlformats.org/drawingml/2006/main"
    paras = "".join(f"<a:p><a:r><a:t>{html.escape(line)}</a:t></a:r></a:p>" for line in text.splitlines()) or "<a:p/>"
    return _zip(
        {
            "[Content_Types].xml": f'{_RELS_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/ppt/presentation.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/>'
            '<Override PartName="/ppt/slides/slide1.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.slide+xml"/>'
            "</Types>",
            "_rels/.rels": _root_rels("ppt/presentation.xml"),
            "ppt/presentation.xml": f'{_RELS_HEAD}<p:presentation xmlns:p="{ns_p}" xmlns:r="{_DOC_REL}">'
            '<p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst>'
            '<p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>',
            "ppt/_rels/presentation.xml.rels": f'{_RELS_HEAD}<Relationships xmlns="{_PKG_RELS}">'
            f'<Relationship Id="rId1" Type="{_DOC_REL}/slide" Target="slides/slide1.xml"/></Relationships>',
            "ppt/slides/slide1.xml": f'{_RELS_HEAD}<p:sld xmlns:p="{ns_p}" xmlns:a="{ns_a}"><p:cSld><p:spTree>'
            '<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>'
            '<p:sp><p:nvSpPr><p:cNvPr id="2" name="Text"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr><p:spPr/>'
            f"<p:txBody><a:bodyPr/>{paras}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>",
        }
    )


def _pdf(text: str) -> bytes:
    """A one-page PDF with the text in Helvetica (ASCII only; other characters become '?')."""
    lines = text.splitlines() or [""]
    ops = ["BT", "/F1 11 Tf", "14 TL", "50 800 Td"]
    for line in lines[:50]:
        safe = line.encode("ascii", "replace").decode().replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({safe}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()
