#!/usr/bin/env bash
# make handout: what a teacher gives students. Every file git tracks here
# (git ls-files: no build products, nothing untracked; an edited file goes
# as it is now), except the teacher's, becomes OUT/NAME, a git repository
# of one commit that can be pushed as a template repository (GitHub
# Classroom), and OUT/NAME.tar.gz, the same files without .git. The
# workspace there has no teacher crate, and its Cargo.lock is the one cargo
# wants, so the first build changes nothing.
#
# It refuses, and leaves nothing in OUT, if the handout would hold a line
# of the answer keys or of the reference solution (see KEYS), or if its
# labs/student is not the untouched skeleton (the solution must apply to
# it: a teacher who tried the solution here and forgot would hand it out).
#
# Usage: teacher/handout.sh [--name NAME] [--out DIR]
# (by default NAME is tcpechod-lab and DIR is dist, under the current folder)

set -euo pipefail

# What never reaches students, one tracked path a line; a path that ends
# in / is a folder and everything under it. The one list to change.
EXCLUDE='
teacher/
.ci/
dist/
'

# The answer keys and the reference solution, where they may be (every one
# that exists is read). No line of them may be in a handout, bar the lines
# the handout shows anyway (see secret_lines).
KEYS='
teacher/SOLUCIONES.md
teacher/ANSWER_KEY.md
labs/SOLUCIONES.md
labs/ANSWERS.md
'
SOLUTIONS='
teacher/solution.patch
labs/student-solution.patch
'

LANGUAGE=en
case "${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}" in es*) LANGUAGE=es ;; esac
# t ENGLISH SPANISH: the text in the user's language.
t() { if [ "$LANGUAGE" = es ]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }
fail() { printf 'handout: %s\n' "$1" >&2; exit 1; }

name=tcpechod-lab
out=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --name) [ $# -ge 2 ] || fail "$(t "--name needs a value" "--name necesita un valor")"; name=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || fail "$(t "--out needs a value" "--out necesita un valor")"; out=$2; shift 2 ;;
        *) fail "$(t "unknown argument '$1' (usage: teacher/handout.sh [--name NAME] [--out DIR])" \
            "argumento desconocido '$1' (uso: teacher/handout.sh [--name NOMBRE] [--out CARPETA])")" ;;
    esac
done
# The name is a folder's and a file's, and the top folder in the tarball.
if ! [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
    fail "$(t "the name '$name' must be letters, digits, '.', '_' or '-', starting with a letter or digit" \
        "el nombre '$name' debe tener solo letras, cifras, '.', '_' o '-', y empezar por letra o cifra")"
fi

command -v git >/dev/null 2>&1 || fail "$(t "git is needed, and it is not installed" "hace falta git, y no está instalado")"
CARGO=${CARGO:-cargo}
mkdir -p -- "$out" || fail "$(t "cannot create the folder $out" "no se puede crear la carpeta $out")"
out_abs=$(cd -- "$out" && pwd)
folder=$out_abs/$name
tarball=$out_abs/$name.tar.gz
shown=${out%/}/$name # as the user named it, for the messages

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || fail "$(t "$ROOT is not a git checkout: the handout is made of the files git tracks" \
        "$ROOT no es una copia de git: el material se hace con los archivos que git controla")"
case "$ROOT/" in "$folder"/*)
    fail "$(t "$shown would hold this repository: choose another --out or --name" \
        "$shown contendría este repositorio: elige otro --out u otro --name")" ;;
esac
# Only a previous handout is replaced: never a folder of something else.
if [ -e "$folder" ] && ! { [ -d "$folder/.git" ] && [ ! -e "$folder/teacher" ]; }; then
    fail "$(t "$shown exists and is not a handout: remove it or choose another --name" \
        "$shown existe y no es un material de la práctica: bórralo o elige otro --name")"
fi
rm -rf -- "$folder" "$tarball"

tmp=$(mktemp -d)
made=no
# A failure leaves nothing that could be handed out by mistake.
cleanup() {
    rm -rf -- "$tmp"
    if [ "$made" != yes ]; then rm -rf -- "$folder" "$tarball"; fi
}
trap cleanup EXIT

# The tracked files that exist (one deleted here is not handed out), minus
# EXCLUDE.
excluded() {
    local path
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        case "$path" in
            */) if [[ $1 == "$path"* ]]; then return 0; fi ;;
            *) if [ "$1" = "$path" ]; then return 0; fi ;;
        esac
    done <<<"$EXCLUDE"
    return 1
}
: >"$tmp/files"
while IFS= read -r -d '' file; do
    if { [ -e "$file" ] || [ -L "$file" ]; } && ! excluded "$file"; then
        printf '%s\0' "$file" >>"$tmp/files"
    fi
done < <(git ls-files -z --cached)
mkdir -p -- "$folder"
tar --null -T "$tmp/files" -cf - | tar -xf - -C "$folder"

# GitHub Classroom's autograding file goes where GitHub looks for it, in
# the students' repositories only: in the teacher's own it would run, and
# fail, on every push.
mkdir -p -- "$folder/.github/workflows"
cp -- teacher/classroom.yml "$folder/.github/workflows/classroom.yml"

# The workspace without the teacher crate, and the lock without it (what
# cargo would do at the first build, done here so that the build leaves
# the repository clean).
sed -i '/^members *=/ { s/, *"teacher"//; s/"teacher", *//; }' "$folder/Cargo.toml"
if grep -q '"teacher"' "$folder/Cargo.toml"; then
    fail "$(t "the handout's Cargo.toml still names the teacher crate: teacher/handout.sh must drop it from members" \
        "el Cargo.toml del material aún nombra el crate teacher: teacher/handout.sh debe quitarlo de members")"
fi
if ! (cd "$folder" && { "$CARGO" update --workspace --offline || "$CARGO" update --workspace; }) >"$tmp/cargo" 2>&1; then
    cat "$tmp/cargo" >&2
    fail "$(t "cargo could not update the handout's Cargo.lock (above)" \
        "cargo no pudo poner al día el Cargo.lock del material (arriba)")"
fi

# From here on git works in the handout, whatever the caller's environment.
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_COMMON_DIR
git -C "$folder" init -q -b main

# The guard. The skeleton first: the solution must apply to the handout's
# labs/student, so that it is the untouched one.
found_secret=no
while IFS= read -r patch; do
    if [ -z "$patch" ] || [ ! -f "$patch" ]; then continue; fi
    found_secret=yes
    if ! git -C "$folder" apply --check "$ROOT/$patch" 2>/dev/null; then
        fail "$(t "labs/student is not the untouched skeleton: $patch does not apply to it (is the solution applied here? git apply -R $patch)" \
            "labs/student no es el esqueleto sin tocar: $patch no se aplica a él (¿está aplicada aquí la solución? git apply -R $patch)")"
    fi
done <<<"$SOLUTIONS"

# secret_lines: "SOURCE:LINE<tab>TEXT" for every line of the keys and the
# solution that must not be in the handout, each trimmed. Not secret: a
# line with no letter or digit; of the solution, an added line of fewer
# than 12 characters besides spaces (break;), or one the handout's code
# has whole (the skeleton, and the lab's server in src/, which the
# exercises send students to read); of the keys, a line inside a fenced
# block (what a program printed: the lab's own output, not an answer), a
# line under 40 bytes (a heading, a command), or one the handout shows
# anyway (the statement, the lab's scripts and their recorded runs, which
# the keys quote).
# teacher/tests/handout.rs checks the handout with the same rules.
secret_lines() {
    local awk_args=(kind=code "$folder/labs/student/src/main.rs")
    local file
    while IFS= read -r -d '' file; do awk_args+=("$file"); done \
        < <(find "$folder/src" -name '*.rs' -type f -print0)
    awk_args+=(kind=shown)
    for file in README.md README_EN.md PARA_SABER_MAS.md GOING_FURTHER.md labs/*.sh labs/recorded/*; do
        if [ -f "$folder/$file" ]; then awk_args+=("$folder/$file"); fi
    done
    while IFS= read -r file; do
        if [ -n "$file" ] && [ -f "$file" ]; then awk_args+=(kind=solution "name=$file" "$ROOT/$file"); fi
    done <<<"$SOLUTIONS"
    while IFS= read -r file; do
        if [ -n "$file" ] && [ -f "$file" ]; then awk_args+=(kind=key "name=$file" "$ROOT/$file"); fi
    done <<<"$KEYS"
    LC_ALL=C awk '
        function trim(s) { sub(/^[ \t\r\f\v]+/, "", s); sub(/[ \t\r\f\v]+$/, "", s); return s }
        kind == "code" { code[trim($0)] = 1; next }
        kind == "shown" { shown = shown "\n" $0; next }
        kind == "solution" && /^\+/ && !/^\+\+\+/ {
            text = trim(substr($0, 2)); bare = text; gsub(/[ \t\r\f\v]/, "", bare)
            if (text ~ /[A-Za-z0-9]/ && length(bare) >= 12 && !(text in code)) print name ":" FNR "\t" text
            next
        }
        kind == "key" && FNR == 1 { fenced = 0 }
        kind == "key" && /^[ \t]*```/ { fenced = !fenced; next }
        kind == "key" && !fenced {
            text = trim($0)
            if (text ~ /[A-Za-z0-9]/ && length(text) >= 40 && index(shown, text) == 0) print name ":" FNR "\t" text
        }' "${awk_args[@]}"
}
while IFS= read -r file; do
    if [ -n "$file" ] && [ -f "$file" ]; then found_secret=yes; fi
done <<<"$KEYS"
if [ "$found_secret" = no ]; then
    printf 'handout: %s\n' "$(t "warning: no answer key or reference solution found (KEYS, SOLUTIONS): nothing to check the handout against" \
        "aviso: no se encuentran las soluciones ni la solución de referencia (KEYS, SOLUTIONS): no hay con qué comprobar el material")" >&2
fi
secret_lines >"$tmp/secrets"
cut -f2 "$tmp/secrets" >"$tmp/patterns"
if [ -s "$tmp/patterns" ] \
    && (cd "$folder" && LC_ALL=C grep -rnIF --exclude-dir=.git -f "$tmp/patterns" -- .) >"$tmp/leaks"; then
    # Each file that leaks: its first leak, the line it gives away, and how
    # many more it holds.
    LC_ALL=C awk -F '\t' -v holds="$(t "holds line" "contiene la línea")" \
        -v more="$(t "(and %d more such lines)" "(y %d líneas más como esa)")" '
        NR == FNR { where[NR] = $1; text[NR] = $2; count = NR; next }
        {
            place = $0; sub(/^\.\//, "", place); match(place, /^[^:]*:[0-9]+:/)
            line = substr(place, RLENGTH + 1); place = substr(place, 1, RLENGTH - 1)
            file = place; sub(/:[0-9]+$/, "", file)
            if (file in leaks) { leaks[file]++; next }
            leaks[file] = 1; order[++files] = file
            for (i = 1; i <= count; i++) if (index(line, text[i])) break
            first[file] = sprintf("%s %s %s: %s", place, holds, where[i], text[i])
        }
        END {
            for (f = 1; f <= files; f++) {
                printf "handout: %s", first[order[f]]
                if (leaks[order[f]] > 1) printf " " more, leaks[order[f]] - 1
                printf "\n"
            }
        }' "$tmp/secrets" "$tmp/leaks" >&2
    fail "$(t "refused: the handout would give students the lines of the answer keys or of the reference solution above. Move those files into teacher/, or add them to EXCLUDE at the top of teacher/handout.sh." \
        "rechazado: el material daría a los estudiantes las líneas de las soluciones o de la solución de referencia de arriba. Mueve esos archivos a teacher/, o añádelos a EXCLUDE al principio de teacher/handout.sh.")"
fi

# One commit, by the teacher if git knows who they are.
author_name=$(git config user.name || true)
author_email=$(git config user.email || true)
if [ -z "$author_name" ] || [ -z "$author_email" ]; then
    author_name="TCPechod lab"
    author_email="tcpechod-lab@localhost"
fi
git -C "$folder" add -A -f .
git -C "$folder" -c "user.name=$author_name" -c "user.email=$author_email" \
    commit -q --no-verify -m "The TCPechod lab, as handed out ($name)"
git -C "$folder" archive --format=tar.gz --prefix="$name/" -o "$tarball" HEAD
made=yes

files=$(git -C "$folder" ls-files | wc -l)
t "handout: made $shown/ ($files files; a git repository of one commit) and $shown.tar.gz (the same files).
As a template repository (GitHub Classroom): create an empty repository, run git -C $shown push URL main,
and tick \"Template repository\" in its settings; or give students $shown.tar.gz.
" "handout: hecho $shown/ ($files archivos; un repositorio git de un commit) y $shown.tar.gz (los mismos archivos).
Como repositorio plantilla (GitHub Classroom): crea un repositorio vacío, ejecuta git -C $shown push URL main
y marca \"Template repository\" en su configuración; o da a los estudiantes $shown.tar.gz.
"
