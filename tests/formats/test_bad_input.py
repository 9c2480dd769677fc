"""Bad documents are refused with the reason: truncated or corrupt containers, the wrong extension,
passwords and DRM, zip bombs, missing libraries (named by their pip package)."""

from __future__ import annotations

import shutil
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from docgen import truncated, with_member

import omniret
from omniret.errors import MediaError
from omniret.media.document import DocOptions
from omniret.media.formats import read_document
from omniret.media.image import load_image

ZIPPED = ("garden.docx", "review.pptx", "inventory.xlsx", "recipes.odt", "astronomy.epub")


@pytest.mark.parametrize("name", ZIPPED)
def test_truncated_container(made: Path, tmp_path: Path, name: str) -> None:
    bad = truncated(made / name, tmp_path / name, 0.6)
    with pytest.raises(MediaError, match=r"truncated or corrupt .*re-save or re-download"):
        read_document(bad)


@pytest.mark.parametrize(("src", "dst", "reason"), [
    ("review.pptx", "x.docx", "wrong extension: the file is a PowerPoint presentation (.pptx), not a Word document "
                              "(.docx); rename it"),
    ("recipes.odt", "x.epub", "wrong extension: the file is an OpenDocument text (.odt), not an EPUB e-book (.epub)"),
    ("garden.docx", "x.xlsx", "wrong extension: the file is a Word document (.docx), not an Excel workbook (.xlsx)"),
    ("trip.eml", "x.pptx", "not a PowerPoint presentation (.pptx) (looks like text)"),
    ("cat.heic", "x.odt", "not an OpenDocument text (.odt) (looks like a HEIC/HEIF image)"),
    ("review.pptx", "x.html", "not an HTML file (looks like a ZIP archive"),
    ("garden.docx", "x.eml", "not an e-mail message (no From, To, Subject or Date header; looks like a ZIP"),
])
def test_wrong_extension(made: Path, tmp_path: Path, src: str, dst: str, reason: str) -> None:
    shutil.copy(made / src, tmp_path / dst)
    with pytest.raises(MediaError) as e:
        read_document(tmp_path / dst)
    assert reason in e.value.reason


def test_plain_zip_and_empty_file(tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.epub", "w") as zf:
        zf.writestr("notes.txt", "just a zip")
    with pytest.raises(MediaError, match=r"not an EPUB e-book \(.epub\) \(a zip archive without its parts"):
        read_document(tmp_path / "a.epub")
    (tmp_path / "b.docx").write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        read_document(tmp_path / "b.docx")


def test_corrupt_part_inside_a_good_zip(made: Path, tmp_path: Path) -> None:
    bad = with_member(made / "garden.docx", tmp_path / "bad.docx", "word/document.xml", b"<w:document><oops")
    with pytest.raises(MediaError, match=r"corrupt Word document \(.docx\) \(XMLSyntaxError"):
        read_document(bad)


def test_password_protected_office_file(made: Path, tmp_path: Path) -> None:
    """Encrypted by msoffcrypto-tool the way Office does it: an OLE2 file holding EncryptionInfo."""
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")
    for name in ("garden.docx", "inventory.xlsx"):
        with open(made / name, "rb") as f, open(tmp_path / name, "wb") as out:
            ooxml.OOXMLFile(f).encrypt("secret", out)
        with pytest.raises(MediaError, match=r"a password-protected (Word document|Excel workbook) .*save a copy without"):
            read_document(tmp_path / name)


def test_password_protected_odt(made: Path, tmp_path: Path) -> None:
    """LibreOffice's encryption (per-member, declared in the manifest); the members here are not really
    encrypted: only the declaration is read, the same as in a file LibreOffice wrote."""
    import zipfile

    with zipfile.ZipFile(made / "recipes.odt") as zf:
        manifest = zf.read("META-INF/manifest.xml").decode()
    manifest = manifest.replace('manifest:full-path="content.xml"', 'manifest:full-path="content.xml">'
                                '<manifest:encryption-data manifest:checksum-type="SHA1"/></manifest:file-entry'
                                '><manifest:file-entry manifest:media-type="" manifest:full-path="x"', 1)
    bad = with_member(made / "recipes.odt", tmp_path / "locked.odt", "META-INF/manifest.xml", manifest.encode())
    with pytest.raises(MediaError, match="password-protected OpenDocument text"):
        read_document(bad)


def test_drm_epub_refused_font_obfuscation_read(made: Path, tmp_path: Path) -> None:
    def encryption(algorithm: str, uri: str) -> bytes:
        return (f'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                f'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                f'<enc:EncryptionMethod Algorithm="{algorithm}"/><enc:CipherData>'
                f'<enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData></encryption>').encode()

    drm = with_member(made / "astronomy.epub", tmp_path / "drm.epub", "META-INF/encryption.xml",
                      encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "EPUB/ch1.xhtml"))
    with pytest.raises(MediaError, match="DRM-protected EPUB"):
        read_document(drm)
    fonts = with_member(made / "astronomy.epub", tmp_path / "fonts.epub", "META-INF/encryption.xml",
                        encryption("http://www.idpf.org/2008/embedding", "EPUB/fonts/a.otf"))
    assert len(read_document(fonts).parts) == len(read_document(made / "astronomy.epub").parts)


def test_encrypted_email(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"] = "secret", "a@example.org"
    msg.make_mixed()
    msg.set_type("multipart/encrypted")
    msg.set_param("protocol", "application/pgp-encrypted")
    msg.attach(EmailMessage())
    (tmp_path / "s.eml").write_bytes(bytes(msg))
    with pytest.raises(MediaError, match=r"encrypted e-mail \(OpenPGP or S/MIME\).*decrypted copy"):
        read_document(tmp_path / "s.eml")


def test_zip_bomb_limit(made: Path) -> None:
    with pytest.raises(MediaError, match=r"unpacks to .* over the limit .*zip bomb"):
        read_document(made / "garden.docx", DocOptions(max_unpacked=10_000))
    with pytest.raises(MediaError, match=r"file too large: .*DocOptions.max_bytes"):
        read_document(made / "trip.eml", DocOptions(max_bytes=1000))


@pytest.mark.parametrize(("name", "module", "package"), [
    ("garden.docx", "docx", "python-docx"), ("review.pptx", "pptx", "python-pptx"),
    ("inventory.xlsx", "openpyxl", "openpyxl"), ("astronomy.epub", "ebooklib", "EbookLib"),
    ("recipes.odt", "odf", "odfpy"),
])
def test_missing_library_names_its_package(made: Path, monkeypatch: pytest.MonkeyPatch, name: str, module: str,
                                           package: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    with pytest.raises(MediaError, match=rf"needs the {package} package: pip install {package} "):
        read_document(made / name)


def test_missing_heif_plugin_and_truncated_heic(made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MediaError, match="truncated|corrupt"):
        load_image(truncated(made / "cat.heic", tmp_path / "cut.heic", 0.5))
    import omniret.media.image as image

    monkeypatch.setattr(image, "_HEIF_REGISTERED", False)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    shutil.copy(made / "cat.heic", tmp_path / "photo.jpg")  # the plugin is found by the content, not the name
    with pytest.raises(MediaError, match=r"HEIC/HEIF images need the pillow-heif package: pip install pillow-heif"):
        load_image(tmp_path / "photo.jpg")


def test_bad_documents_fail_alone_in_an_add(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each bad file is a failure with its reason; the good ones are indexed; a missing library is a
    failure naming the package, not a skipped file."""
    truncated(folder / "review.pptx", folder / "cut.pptx", 0.5)
    shutil.copy(folder / "review.pptx", folder / "renamed.xlsx")
    monkeypatch.setitem(sys.modules, "odf", None)
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(folder, workers=0)
    failed = {Path(u).name: r for u, r in report.failed}
    assert set(failed) == {"cut.pptx", "renamed.xlsx", "recipes.odt"}
    assert "truncated or corrupt PowerPoint" in failed["cut.pptx"] and "wrong extension" in failed["renamed.xlsx"]
    assert "pip install odfpy" in failed["recipes.odt"]
    assert report.new == 10 and report.skipped == []
