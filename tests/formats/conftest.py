"""Documents for the format tests: written once per session by the formats' own libraries, plus real
files from Debian packages (``bash scripts/test-data.sh`` unpacks r-cran-officer, r-cran-readxl and
calibre into ``$OMNIRET_DEBDOCS`` or ``/tmp/omniret-debdocs/x``; tests that need them skip otherwise)."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import docgen  # noqa: E402

HINT = ("apt-get download r-cran-officer r-cran-readxl calibre && dpkg-deb -x each into /tmp/omniret-debdocs/x "
        "(bash scripts/test-data.sh)")


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """garden.docx, review.pptx, inventory.xlsx, astronomy.epub, recipes.odt, trip.eml, cat.heic, rocket.avif."""
    from skimage import data

    d = tmp_path_factory.mktemp("docs")
    docgen.write_docx(d / "garden.docx")
    docgen.write_pptx(d / "review.pptx")
    docgen.write_xlsx(d / "inventory.xlsx")
    docgen.write_epub(d / "astronomy.epub")
    docgen.write_odt(d / "recipes.odt")
    docgen.write_eml(d / "trip.eml", docx_file=d / "garden.docx", photo=Image.fromarray(data.coffee()))
    docgen.write_heic(d / "cat.heic", Image.fromarray(data.chelsea()))
    Image.fromarray(data.rocket()).save(d / "rocket.avif", quality=70)
    return d


@pytest.fixture
def folder(made: Path, tmp_path: Path) -> Path:
    """A private copy of the made documents (tests may change or break files in it)."""
    out = tmp_path / "docs"
    shutil.copytree(made, out)
    return out


@pytest.fixture(scope="session")
def debdoc():  # type: ignore[no-untyped-def]
    """``debdoc(name)``: the path of a document shipped in a Debian package (see docgen.DEB_FILES)."""
    def get(name: str) -> Path:
        p = docgen.debian_file(name)
        if p is None:
            pytest.skip(f"{name} missing: {HINT}")
        return p
    return get


@pytest.fixture(scope="session")
def base_passwd_html() -> Path:
    """Debian's base-passwd manual (an essential package: on every Debian system)."""
    p = Path("/usr/share/doc/base-passwd/users-and-groups.html")
    if not p.is_file():
        pytest.skip("base-passwd's users-and-groups.html missing (a Debian system has it)")
    return p


@pytest.fixture(scope="session")
def cpython_mail() -> Path:
    """CPython's own e-mail test messages (Lib/test/test_email/data), real RFC 5322 files."""
    p = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    if not (p / "msg_07.txt").is_file():
        pytest.skip("CPython's test suite is not installed (Debian: libpython3.11-testsuite)")
    return p
