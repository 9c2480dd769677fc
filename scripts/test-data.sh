#!/usr/bin/env bash
# Optional system data for the full test suite (tests that need it skip with this hint otherwise):
# a headless browser for the web-page tests, espeak-ng for synthetic speech, the cairo library for
# SVG drawings (CairoSVG), texlive's PDF documentation for the real-PDF tests (into $OMNIRET_TEXDOC or
# /tmp/texdoc/x, where the `texdoc` test fixture looks), and real office/e-book files for the
# document-format tests (r-cran-officer's example .docx/.pptx, r-cran-readxl's .xlsx, calibre's EPUB
# quick-start guide; into $OMNIRET_DEBDOCS or /tmp/omniret-debdocs/x). Needs root and Debian's package
# mirrors (no other network).
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
ldconfig -p 2>/dev/null | grep -q 'libcairo\.so\.2' || need+=(libcairo2)  # CairoSVG draws SVG files
texdoc=${OMNIRET_TEXDOC:-/tmp/texdoc/x}
debdocs=${OMNIRET_DEBDOCS:-/tmp/omniret-debdocs/x}
if [ ${#need[@]} -gt 0 ] || [ ! -d "$texdoc/usr/share/doc/texlive-doc/latex" ] \
   || [ ! -f "$debdocs/usr/share/calibre/quick_start/eng.epub" ]; then
  apt-get update -qq || echo "warning: apt-get update failed" >&2
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "+ apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" || echo "warning: could not install ${need[*]}" >&2
fi
if [ ! -d "$texdoc/usr/share/doc/texlive-doc/latex" ]; then
  echo "+ texlive-latex-base-doc -> $texdoc"
  mkdir -p "$(dirname "$texdoc")" && (cd "$(dirname "$texdoc")" && apt-get download texlive-latex-base-doc \
    && dpkg-deb -x texlive-latex-base-doc_*.deb "$texdoc") || echo "warning: texlive PDFs not available" >&2
fi
if [ ! -f "$debdocs/usr/share/calibre/quick_start/eng.epub" ]; then
  echo "+ r-cran-officer r-cran-readxl calibre -> $debdocs"
  mkdir -p "$debdocs" && (cd "$(dirname "$debdocs")" && apt-get download r-cran-officer r-cran-readxl calibre \
    && for deb in r-cran-officer_*.deb r-cran-readxl_*.deb calibre_*.deb; do dpkg-deb -x "$deb" "$debdocs"; done \
    && rm -f r-cran-officer_*.deb r-cran-readxl_*.deb calibre_*.deb) || echo "warning: document samples not available" >&2
fi
exit 0
