#!/usr/bin/env bash
# Rebuild the sample corpus (what ../shared/corpus holds on dev machines) from its public sources,
# for machines that lack it, such as CI. Tests skip whatever is still missing.
#
# Usage: scripts/fetch-corpus.sh [DEST]          DEST defaults to ../shared/corpus beside the repo
#   ENG_PRACTICES_SRC=DIR  use a local checkout of github.com/google/eng-practices instead of cloning
#   PDFPLUMBER_SRC=DIR     use a local checkout of github.com/jsvine/pdfplumber instead of cloning
#
# Makes (layout and names as in the corpus README):
#   DEST/eng-practices/md/*.md     Google's engineering-practices guide (CC-BY 3.0), paths flattened:
#                                  review/reviewer/speed.md -> review_reviewer_speed.md
#   DEST/eng-practices/pdf/*.pdf   the same rendered with pandoc + wkhtmltopdf (skipped if those are missing)
#   DEST/images/*.png              two of those pages at 110 dpi with pdftoppm (skipped if missing)
#   DEST/wild-pdfs/*.pdf           real-world PDFs from pdfplumber's tests/pdfs (MIT), plus a 0-byte empty.pdf
# Needs git; for the PDFs and images also pandoc, wkhtmltopdf and poppler-utils (Debian packages).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-$REPO/../shared/corpus}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$WORK}  # wkhtmltopdf's Qt wants one

log() { printf 'fetch-corpus: %s\n' "$*" >&2; }

# --- Google's eng-practices -------------------------------------------------------------------
ENG=${ENG_PRACTICES_SRC:-}
if [ -z "$ENG" ]; then
  log "cloning google/eng-practices"
  git clone --quiet --depth 1 https://github.com/google/eng-practices "$WORK/eng-practices"
  ENG=$WORK/eng-practices
fi

# The 14 documents of the corpus. Newer upstream revisions say "PR" where older ones said "CL";
# the second name is used when the first is gone, and the file keeps the corpus's name.
DOCS=(
  "README.md"
  "review/index.md"
  "review/emergencies.md"
  "review/developer/index.md"
  "review/developer/cl-descriptions.md|review/developer/pr-descriptions.md"
  "review/developer/small-cls.md|review/developer/small-prs.md"
  "review/developer/handling-comments.md"
  "review/reviewer/index.md"
  "review/reviewer/looking-for.md"
  "review/reviewer/navigate.md"
  "review/reviewer/speed.md"
  "review/reviewer/comments.md"
  "review/reviewer/pushback.md"
  "review/reviewer/standard.md"
)
MD=$DEST/eng-practices/md
mkdir -p "$MD"
cp "$ENG/LICENSE" "$DEST/eng-practices/LICENSE"
for entry in "${DOCS[@]}"; do
  wanted=${entry%%|*}
  source=""
  IFS='|' read -r -a names <<< "$entry"
  for name in "${names[@]}"; do
    if [ -f "$ENG/$name" ]; then source=$ENG/$name; break; fi
  done
  if [ -z "$source" ]; then
    log "warning: $wanted not found upstream; skipped"
    continue
  fi
  flat=${wanted//\//_}
  # Drop the site generator's [TOC] markers; the text is otherwise unchanged.
  sed -e '/^\[TOC\]$/d' "$source" > "$MD/$flat"
done
log "eng-practices: $(ls "$MD" | wc -l) Markdown files in $MD"

# --- PDFs of the same documents, and two pages as images ----------------------------------------
PDF=$DEST/eng-practices/pdf
if command -v pandoc >/dev/null && command -v wkhtmltopdf >/dev/null; then
  mkdir -p "$PDF"
  for md in "$MD"/*.md; do
    base=$(basename "$md" .md)
    pandoc --from=markdown --to=html5 --standalone --metadata title="$base" \
      --output="$WORK/$base.html" "$md"
    # Debian's wkhtmltopdf runs without a display through Qt's offscreen platform.
    QT_QPA_PLATFORM=offscreen wkhtmltopdf --quiet --enable-local-file-access \
      "$WORK/$base.html" "$PDF/$base.pdf"
  done
  log "eng-practices: $(ls "$PDF" | wc -l) PDFs in $PDF"
else
  log "pandoc or wkhtmltopdf missing: eng-practices/pdf skipped (apt-get install pandoc wkhtmltopdf)"
fi

if command -v pdftoppm >/dev/null && [ -d "$PDF" ]; then
  mkdir -p "$DEST/images"
  render() {  # render PDF PAGE OUTPUT_BASENAME
    if [ -f "$PDF/$1.pdf" ]; then
      pdftoppm -r 110 -f "$2" -l "$2" -singlefile -png "$PDF/$1.pdf" "$DEST/images/$3"
    fi
  }
  render review_reviewer_speed 1 code-review-speed-page1
  render review_developer_small-cls 2 small-cls-page2
  log "images: $(ls "$DEST/images" | wc -l) PNGs in $DEST/images"
else
  log "pdftoppm or the PDFs missing: images skipped (apt-get install poppler-utils)"
fi

# --- pdfplumber's real-world test PDFs ---------------------------------------------------------
PLUMBER=${PDFPLUMBER_SRC:-}
if [ -z "$PLUMBER" ]; then
  log "fetching jsvine/pdfplumber tests/pdfs"
  # Only that folder's files are downloaded (partial clone + sparse checkout).
  git clone --quiet --depth 1 --filter=blob:none --sparse https://github.com/jsvine/pdfplumber "$WORK/pdfplumber"
  git -C "$WORK/pdfplumber" sparse-checkout set tests/pdfs
  PLUMBER=$WORK/pdfplumber
fi
WILD=$DEST/wild-pdfs
mkdir -p "$WILD"
for name in \
  nics-background-checks-2015-11.pdf senate-expenditures.pdf federal-register-2020-17221.pdf \
  scotus-transcript-p1.pdf image_structure.pdf issue-33-lorem-ipsum.pdf la-precinct-bulletin-2014-p1.pdf \
  malformed-from-issue-932.pdf password-example.pdf; do
  if [ -f "$PLUMBER/tests/pdfs/$name" ]; then
    cp "$PLUMBER/tests/pdfs/$name" "$WILD/$name"
  else
    log "warning: tests/pdfs/$name not found upstream; skipped"
  fi
done
cp "$PLUMBER/LICENSE.txt" "$WILD/LICENSE-pdfplumber.txt"
: > "$WILD/empty.pdf"  # a 0-byte file: the "empty upload" case
log "wild-pdfs: $(ls "$WILD" | wc -l) files in $WILD"
