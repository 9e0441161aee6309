#!/usr/bin/python3
"""A hardware kind is one self-registering unit (README, "Adding a hardware kind"): no C++ source
outside the kind's own files (paths that carry its name) and tests/ names it in code.

The kinds are found from their registrations (FAULTLINE_REGISTER_KIND(name, ...)). Comments are
ignored; string literals count (a switch on a kind's name is a string comparison). `ideal`, the
exact product every layer falls back to, is the engine's reference and also a preset and trace
field name, so it is not checked. Prints PASS, or every offending line and FAIL."""
import os
import re
import sys

root = sys.argv[1]
sources = []
for folder, dirs, files in os.walk(root):
    rel = os.path.relpath(folder, root)
    top = rel.split(os.sep)[0]
    if top in ("tests", ".git") or top.startswith("build"):
        dirs[:] = []
        continue
    sources += [os.path.join(folder, f) for f in files if f.endswith((".cpp", ".h", ".in"))]


def code_of(text):
    """The text with // and /* */ comments blanked (string literals kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


codes = {p: code_of(open(p, encoding="utf-8").read()) for p in sorted(sources)}
kinds = sorted({m.group(1) for c in codes.values() for m in re.finditer(r"^FAULTLINE_REGISTER_KIND\((\w+)", c, re.M)})
if len(kinds) < 2:
    print("FAIL: found no kind registrations under", root)
    sys.exit(1)
bad = []
for kind in kinds:
    if kind == "ideal":
        continue
    word = re.compile(r"\b" + re.escape(kind) + r"\b")
    for path, code in codes.items():
        if kind in os.path.relpath(path, root):
            continue
        for number, line in enumerate(code.split("\n"), 1):
            if word.search(line):
                bad.append(f"{os.path.relpath(path, root)}:{number}: names kind '{kind}': {line.strip()}")
print("kinds:", ", ".join(kinds))
if bad:
    print("\n".join(bad))
    print("FAIL")
    sys.exit(1)
print("PASS")
