"""Small documents built on the fly with the formats' own libraries (a few KB each)."""

from __future__ import annotations

import io
import zipfile

CHAPTERS = [
    ("The Harbour", ["The boat left early.", "Gulls followed it."]),
    ("The Storm", ["Rain came at noon.", "Nobody slept."]),
    ("The Return", ["They came home on 03/04/2025.", "The end."]),
]


def epub_bytes(chapters: list[tuple[str, list[str]]] = CHAPTERS, *, version: int = 3) -> bytes:
    """An EPUB with a cover page, a copyright page, a navigation document and ``chapters`` in
    spine order (their file names deliberately in another order)."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("voxmill-test-book")
    book.set_title("A Small Book")
    book.set_language("en")
    cover = epub.EpubHtml(title="Cover", file_name="cover.xhtml", lang="en")
    cover.content = (
        "<html><body><h1>A Small Book</h1><p>Cover text not to be read.</p></body></html>"
    )
    rights = epub.EpubHtml(title="Copyright", file_name="rights.xhtml", lang="en")
    rights.content = (
        '<html xmlns:epub="http://www.idpf.org/2007/ops"><body>'
        '<section epub:type="copyright-page"><p>Copyright 2025, all rights reserved.</p>'
        "</section></body></html>"
    )
    items = []
    for n, (title, sentences) in enumerate(chapters):
        name = f"part{len(chapters) - n:02d}.xhtml"  # spine order is not file-name order
        item = epub.EpubHtml(title=title, file_name=name, lang="en")
        body = "".join(f"<p>{s}</p>" for s in sentences)
        item.content = f"<html><body><h1>{title}</h1>{body}</body></html>"
        items.append(item)
    for item in (cover, rights, *items):
        book.add_item(item)
    book.toc = [
        epub.Link(i.file_name, t, f"c{n}")
        for n, (i, (t, _)) in enumerate(zip(items, chapters, strict=True))
    ]
    book.add_item(epub.EpubNcx())
    if version == 3:
        book.add_item(epub.EpubNav())
    book.spine = [cover, rights, "nav", *items] if version == 3 else [cover, rights, *items]
    out = io.BytesIO()
    epub.write_epub(out, book, {"epub3_pages": False})
    return out.getvalue()


def docx_bytes() -> bytes:
    """A Word document: a title, two Heading 1 chapters, a Heading 2, lists and a table."""
    import docx

    d = docx.Document()
    d.add_paragraph("Field Notes", style="Title")
    d.add_paragraph("Written in the spring.")
    d.add_heading("Birds", level=1)
    d.add_paragraph("We saw three kinds.")
    d.add_paragraph("Robin", style="List Bullet")
    d.add_paragraph("Wren", style="List Bullet")
    d.add_heading("Trees", level=1)
    d.add_heading("Oaks", level=2)
    oaks = d.add_paragraph("Oaks grow slowly.")
    _footnote(d, oaks, "Some live for a thousand years.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Tree"
    table.cell(0, 1).text = "Height"
    table.cell(1, 0).text = "Oak"
    table.cell(1, 1).text = "20 m"
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def _footnote(document: object, paragraph: object, text: str) -> None:
    """Give ``paragraph`` a footnote (python-docx has no API for footnotes: the part is added by
    hand, as Word writes it)."""
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    from docx.oxml import parse_xml

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    xml = (
        f'<w:footnotes xmlns:w="{w}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
        f'<w:footnote w:id="1"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:footnote>'
        "</w:footnotes>"
    )
    part = Part(
        PackURI("/word/footnotes.xml"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml",
        xml.encode(),
        document.part.package,  # type: ignore[attr-defined]
    )
    document.part.relate_to(part, RT.FOOTNOTES)  # type: ignore[attr-defined]
    run = parse_xml(f'<w:r xmlns:w="{w}"><w:footnoteReference w:id="1"/></w:r>')
    paragraph._p.append(run)  # type: ignore[attr-defined]


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A PDF with a real text layer: each page's lines in Helvetica, top to bottom."""
    from pypdf import PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, StreamObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        ops = ["BT /F1 11 Tf 14 TL 72 740 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = StreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf_bytes() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([["Secret text."]]))))
    writer.encrypt(user_password="s3cret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_bomb_bytes(kind: str = "epub", unpacked: int = 200 * 1024 * 1024) -> bytes:
    """A small ZIP whose one member unpacks to ``unpacked`` bytes of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "epub":
            archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        else:
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr("word/document.xml", "<document/>")
        info = zipfile.ZipInfo("bomb.xhtml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(unpacked // len(chunk)):
                member.write(chunk)
    return out.getvalue()


def _rewrite(data: bytes, name: str, old: bytes, new: bytes) -> bytes:
    """``data`` (a ZIP) with ``old`` replaced by ``new`` in its member ``name``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == name:
                assert old in body, f"{old!r} is not in {name}"
                body = body.replace(old, new, 1)
            archive.writestr(info, body)
    return out.getvalue()


def docx_with_entity_bytes() -> bytes:
    """:func:`docx_bytes` whose document.xml declares an external entity and uses it in the
    paragraph "We saw &x; kinds." (an XXE attempt; a parser without entities drops the text)."""
    data = _rewrite(
        docx_bytes(),
        "word/document.xml",
        b"?>\n<w:document",
        b'?>\n<!DOCTYPE w:document [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n<w:document',
    )
    return _rewrite(data, "word/document.xml", b"We saw three kinds.", b"We saw &x; kinds.")


def epub_with_entities_bytes() -> bytes:
    """:func:`epub_bytes` whose last chapter declares nested entities ("billion laughs") and
    reads ``&h;`` in a paragraph."""
    laughs = b"".join(
        b'<!ENTITY %s "%s">' % (name, (b"&%s;" % below) * 10 if below else b"ha")
        for name, below in ((b"a", b""), (b"b", b"a"), (b"c", b"b"), (b"h", b"c"))
    )
    data = _rewrite(
        epub_bytes(), "EPUB/part01.xhtml", b"<!DOCTYPE html>", b"<!DOCTYPE html [%s]>" % laughs
    )
    return _rewrite(data, "EPUB/part01.xhtml", b"<p>The end.</p>", b"<p>&h;</p>")
