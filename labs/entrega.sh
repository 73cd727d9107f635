#!/usr/bin/env bash
# What you hand in (section 4 of the statement), in one file: your server
# (labs/student/src/main.rs), your answer sheet (RESPUESTAS.md, or
# ANSWER_SHEET.md in English: whichever you filled in, or both), and what
# the checker says of your server now (check.txt). The file is
# entrega-USER.tar.gz at the top of the repository, USER being your user
# name (ENTREGA=name makes it entrega-name.tar.gz). `make entrega` runs this.
#
# Your server is built and checked first; if it does not build, or fails
# a check, the file is made all the same (and says so): hand in what you
# have. Exit status: 0 when the file is made, 1 when it cannot be.
set -euo pipefail

case "${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}" in es*) LAB_LANG=es ;; *) LAB_LANG=en ;; esac
t() { if [ "$LAB_LANG" = es ]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }
say() { printf '%s\n' "$(t "$1" "$2")"; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STUDENT=$ROOT/labs/student
who=${ENTREGA:-$(id -un)}
# Only letters, digits, dots, dashes and underscores in a file name.
who=$(printf '%s' "$who" | tr -c 'A-Za-z0-9._-' '_')
name=entrega-$who
if [ ! -f "$STUDENT/src/main.rs" ]; then
    say "entrega: $STUDENT/src/main.rs is missing: nothing to hand in" \
        "entrega: falta $STUDENT/src/main.rs: no hay nada que entregar"
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/$name"
cp "$STUDENT/src/main.rs" "$work/$name/main.rs"
# answered SHEET LETTER: whether any part of the sheet is answered. A part
# starts at a line that begins with `## P<n>` (`## Q<n>` in English) and
# a non-digit or the end of the line; it is answered when it holds a
# letter or a digit outside its heading, the quoted question (`>` lines)
# and the labels Respuesta: and Answer: themselves. The teacher's grader
# counts with the same rule.
answered() {
    LC_ALL=C awk -v letter="$2" '
        substr($0, 1, 4) == "## " letter && substr($0, 5, 1) ~ /[0-9]/ { part = 1; next }
        !part || /^[ \t]*>/ { next }
        { line = $0; gsub(/Respuesta:|Answer:/, "", line); if (line ~ /[A-Za-z0-9]/) found = 1 }
        END { exit !found }' "$1"
}
# The sheets you filled in; both, if you filled in neither (so that the
# teacher sees them empty).
sheets=0
for sheet in RESPUESTAS.md:P ANSWER_SHEET.md:Q; do
    letter=${sheet#*:} sheet=${sheet%:*}
    if [ -f "$ROOT/$sheet" ] && answered "$ROOT/$sheet" "$letter"; then
        cp "$ROOT/$sheet" "$work/$name/$sheet"
        sheets=$((sheets + 1))
    fi
done
if [ "$sheets" = 0 ]; then
    for sheet in RESPUESTAS.md ANSWER_SHEET.md; do
        if [ -f "$ROOT/$sheet" ]; then cp "$ROOT/$sheet" "$work/$name/$sheet"; fi
    done
    say "entrega: your answer sheet (RESPUESTAS.md or ANSWER_SHEET.md) has no answer yet" \
        "entrega: tu hoja de respuestas (RESPUESTAS.md o ANSWER_SHEET.md) aún no tiene ninguna respuesta"
fi

say "== Building and checking your server (labs/student)" "== Compilando y comprobando tu servidor (labs/student)"
check_status=none
if make -s -C "$STUDENT" all >"$work/build.txt" 2>&1; then
    check_status=0
    (cd "$STUDENT" && ./check) >"$work/$name/check.txt" 2>&1 || check_status=$?
    tail -n 1 "$work/$name/check.txt"
else
    tail -n 20 "$work/build.txt"
    { t "Your server does not build:" "Tu servidor no compila:"; echo; cat "$work/build.txt"; } >"$work/$name/check.txt"
    say "entrega: your server does not build (above); handing it in as it is" \
        "entrega: tu servidor no compila (arriba); se entrega tal cual"
fi
{
    echo "user: $(id -un)"
    echo "name: $who"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -n)"
    echo "checker exit status: $check_status"
    if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
        echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)"
    fi
} >"$work/$name/INFO"

tar -czf "$work/$name.tar.gz" -C "$work" "$name"
mv -f "$work/$name.tar.gz" "$ROOT/$name.tar.gz"
say "== Made $name.tar.gz (at the top of the repository): upload that file" \
    "== Hecho $name.tar.gz (en la raíz del repositorio): sube ese fichero"
tar -tzf "$ROOT/$name.tar.gz" | sed 's/^/   /'
