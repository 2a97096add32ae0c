"""ZIP containers (EPUB, DOCX): refused before they are unpacked when they would unpack too big.

The central directory gives every member's size; the sum and the count are checked against the
limits, and so is the compression ratio (a zip bomb packs gigabytes into kilobytes). The worker
process's address-space limit backs this up should a member lie about its size.
"""

from __future__ import annotations

import io
import zipfile

from contract.limits import MAX_COMPRESSION_RATIO
from text_processing.formats.errors import UploadError, human_size
from text_processing.xmldecl import find_doctype

_XML_MEMBERS = (".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx", ".svg", ".smil")


def open_zip(data: bytes, *, kind: str, max_unpacked: int, max_members: int) -> zipfile.ZipFile:
    """Open ``data`` as a ZIP after checking its directory.

    Raises:
        UploadError: Not a ZIP (422), or a zip bomb: too many members, too large unpacked, or
            compressed far beyond what text compresses to (413).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise UploadError(f"the {kind} file is damaged (not a readable ZIP container): {e}") from e
    if len(members) > max_members:
        raise UploadError(
            f"the {kind} file holds {len(members)} files, over the limit of {max_members}",
            status=413,
        )
    total = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members)
    if total > max_unpacked:
        raise UploadError(
            f"the {kind} file unpacks to {human_size(total)}, over the limit of "
            f"{human_size(max_unpacked)} (a zip bomb, or a document far too large)",
            status=413,
        )
    if total > 1024 * 1024 and total > MAX_COMPRESSION_RATIO * max(packed, 1):
        raise UploadError(
            f"the {kind} file is compressed {total // max(packed, 1)}:1 "
            f"({human_size(packed)} → {human_size(total)}): that is a zip bomb, not a document",
            status=413,
        )
    for member in members:
        if member.flag_bits & 0x1:
            raise UploadError(f"the {kind} file is encrypted; remove the password and try again")
    return archive


def refuse_declarations(archive: zipfile.ZipFile, *, kind: str, any_doctype: bool) -> None:
    """Refuse a container whose XML declares entities (see :mod:`text_processing.xmldecl`):
    they are never expanded, so the text that uses them would be lost without a word.

    Args:
        archive: From :func:`open_zip` (its sizes already checked).
        kind: The format's name for the message ("Word", "EPUB").
        any_doctype: Refuse any DOCTYPE, not only one that declares something (formats that
            never carry one, such as Word's).

    Raises:
        UploadError: 422, naming the member and the line.
    """
    for member in archive.infolist():
        if member.is_dir() or not member.filename.lower().endswith(_XML_MEMBERS):
            continue
        with archive.open(member) as stream:
            found = find_doctype(stream)
        if found is None or not (found.declares or any_doctype):
            continue
        what = "declares its own XML entities" if found.declares else "has a DOCTYPE declaration"
        raise UploadError(
            f"the {kind} file's {member.filename} {what} (line {found.line}); Voxmill does not "
            "expand XML entities, so the text that uses them would be lost. Save or export the "
            "document again without them (an editor writes the characters themselves) and upload "
            "that"
        )
