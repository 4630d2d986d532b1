#!/usr/bin/env bash
# Download real fastText Wikipedia vectors and MUSE bilingual dictionaries for a language pair.
# Not used by the tests (they use ../shared/data and generated pairs). Needs network access.
#
#   bash scripts/download_data.sh es en [DEST]      # -> DEST/wiki.es.vec, DEST/wiki.en.vec,
#                                                   #    DEST/es-en.0-5000.txt, DEST/es-en.5000-6500.txt
# Then:
#   mapalign fit DEST/wiki.es.vec DEST/wiki.en.vec --dict DEST/es-en.0-5000.txt -o run/
#   mapalign evaluate run/ --dict DEST/es-en.5000-6500.txt
# Licences: fastText vectors CC BY-SA 3.0; MUSE dictionaries CC BY-NC 4.0.
set -euo pipefail
src=${1:?source language code, e.g. es}
tgt=${2:?target language code, e.g. en}
dest=${3:-data/real}
mkdir -p "$dest"
fetch() {  # URL FILE: download to a temporary name, then rename (never a half file)
    [ -s "$2" ] && { echo "have $2"; return; }
    curl -fL --retry 3 -o "$2.part" "$1" && mv "$2.part" "$2"
}
for lang in "$src" "$tgt"; do
    fetch "https://dl.fbaipublicfiles.com/fasttext/vectors-wiki/wiki.$lang.vec" "$dest/wiki.$lang.vec"
done
for split in 0-5000 5000-6500; do
    fetch "https://dl.fbaipublicfiles.com/arrival/dictionaries/$src-$tgt.$split.txt" "$dest/$src-$tgt.$split.txt"
done
echo "done: $dest"
