"""One file → an `ExtractedDocument` of chunks (synchronous: run it in a worker).

`extract` sniffs the type, hands the file to the extractor for it (PDF,
image, Markdown, HTML, DOCX, plain text, source code), and cuts the blocks
it gets back into chunks. Every failure a user can cause (empty, encrypted,
broken, unsupported, too large, an image/PDF/DOCX bomb, nothing readable) is an
`IngestError` with a stable code and a message fit for the admin's screen.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from allin.knowledge.bombs import check_docx_parts, check_pdf_streams
from allin.knowledge.chunk import Block, Chunker
from allin.knowledge.code import code_blocks
from allin.knowledge.filetypes import FileType, decode_text, detect
from allin.knowledge.markup import Markup, docx_blocks, html_blocks, markdown_blocks, text_blocks
from allin.knowledge.ocr import Ocr
from allin.knowledge.pdf import MAX_OCR_IMAGES, extract_pdf
from allin.knowledge.textclean import strip_junk
from allin.knowledge.types import Chunk, ExtractedDocument, IngestError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 40_000_000
MAX_DECODED_SIDE = 4000  # images are kept (and JPEGs decoded) at most this large


def extract(
    path: Path,
    *,
    ocr: Ocr | None,
    max_bytes: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_ocr_images: int = MAX_OCR_IMAGES,
    chunker: Chunker | None = None,
) -> ExtractedDocument:
    """Read `path` into chunks; raise IngestError when it cannot be ingested."""
    path = Path(path)
    ftype = detect(path, max_bytes=max_bytes)
    warnings: list[str] = []
    pages: int | None = None
    title: str | None
    if ftype.kind == "pdf":
        check_pdf_streams(path)  # before pdfium inflates anything
        result = extract_pdf(path, ocr=ocr, max_pixels=max_pixels, max_ocr_images=max_ocr_images)
        title, blocks, pages = result.title, result.blocks, result.pages
        warnings.extend(result.warnings)
    elif ftype.kind == "image":
        title, blocks = None, _image_blocks(path, ocr, max_pixels)
    elif ftype.kind == "docx":
        check_docx_parts(path)  # before lxml builds a tree
        markup = _docx(path)
        title, blocks = markup.title, markup.blocks
    else:
        markup = _text_markup(path, ftype, warnings)
        title, blocks = markup.title, markup.blocks
        warnings.extend(markup.warnings)
    title = strip_junk(title or "").strip() or _title_from_name(path)
    chunks = _without_junk((chunker or Chunker()).chunk(blocks, title))
    if not chunks:
        detail = f" ({'; '.join(warnings)})" if warnings else ""
        raise IngestError("no_text", f"{path.name}: no readable text{detail}")
    return ExtractedDocument(title=title, mime=ftype.mime, pages=pages, chunks=chunks, warnings=warnings)


def _without_junk(chunks: list[Chunk]) -> list[Chunk]:
    """Chunks with invisible junk removed (see textclean); ones left empty are dropped, `ord` renumbered."""
    kept = []
    for chunk in chunks:
        content = strip_junk(chunk.content)
        if not content.strip():
            continue
        section = strip_junk(chunk.section) if chunk.section else chunk.section
        kept.append(replace(chunk, ord=len(kept), content=content, section=section))
    return kept


def _text_markup(path: Path, ftype: FileType, warnings: list[str]) -> Markup:
    text, warning = decode_text(path.read_bytes())
    if warning:
        warnings.append(warning)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if ftype.kind == "markdown":
        return markdown_blocks(text)
    if ftype.kind == "html":
        return html_blocks(text)
    if ftype.kind == "code":
        blocks, code_warnings = code_blocks(text, ftype.language)
        return Markup(path.name, blocks, code_warnings)
    return text_blocks(text, title_from_first_line=path.suffix.lower() != ".log")


def _docx(path: Path) -> Markup:
    try:
        return docx_blocks(path)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError("malformed", f"{path.name} is not a readable Word document: {exc}") from None
    except Exception as exc:  # python-docx raises many types on broken XML
        if type(exc).__name__ in ("PackageNotFoundError", "XMLSyntaxError", "InvalidXmlError"):
            raise IngestError("malformed", f"{path.name} is not a readable Word document: {exc}") from None
        raise


def _image_blocks(path: Path, ocr: Ocr | None, max_pixels: int) -> list[Block]:
    image = open_image(path, max_pixels)
    if ocr is None:
        raise IngestError("no_text", f"{path.name} is an image and OCR is off")
    return [Block("image", "\n\n".join(ocr.read(image)))]


def open_image(path: Path, max_pixels: int) -> Image.Image:
    """Decode an image only after its header says it is a sane size (no decompression bombs)."""
    try:
        with Image.open(path) as im:  # reads the header only
            width, height = im.size
            if width * height > max_pixels:
                raise IngestError(
                    "image_bomb",
                    f"{path.name} claims {width}×{height} pixels, over the limit of {max_pixels:,}",
                )
            if im.format == "JPEG":
                im.draft("RGB", (MAX_DECODED_SIDE, MAX_DECODED_SIDE))  # decode at a reduced scale
            im.seek(0)  # the first frame of an animation
            im.load()  # peak memory: at most max_pixels × bands bytes
            im.thumbnail((MAX_DECODED_SIDE, MAX_DECODED_SIDE))  # OCR reads at ≤ 2,000 px anyway
            return ImageOps.exif_transpose(im)  # a copy: the file's image is closed on exit
    except Image.DecompressionBombError as exc:
        raise IngestError("image_bomb", f"{path.name}: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise IngestError("malformed", f"{path.name} is not a readable image: {exc}") from None


def _title_from_name(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name
