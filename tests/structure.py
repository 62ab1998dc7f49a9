#!/usr/bin/env python3
"""Layout rules that no compiler checks, run by tests/run.sh.

1. No Rust source file over 1,000 lines.
2. No import cycle between the modules of a crate: module `a` naming
   `crate::b` (or `super::b` from a sibling) while `b` names `a`, directly or
   through others. A parent and its own child modules may name each other
   (`mod child;` / `use super::Thing`), so those edges do not count.
3. One version of each crypto crate among Kluis's own dependencies: where two
   versions are in the tree (hpke and opaque-ke sit on different generations
   of the RustCrypto traits), only third-party crates may pull the second.

Prints every violation and exits 1 if there is any.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_LINES = 1000
CRYPTO = ["sha2", "hkdf", "hmac", "rand_core", "rand", "getrandom", "argon2",
          "aes-gcm", "ed25519-dalek", "x25519-dalek", "zeroize", "subtle"]


def rust_files():
    for base in ["crates", "src-tauri", "tests", "fuzz"]:
        for p in (ROOT / base).rglob("*.rs"):
            if "target" in p.parts or "node_modules" in p.parts:
                continue
            yield p


def long_files():
    bad = []
    for p in rust_files():
        n = sum(1 for _ in p.open(encoding="utf-8", errors="replace"))
        if n > MAX_LINES:
            bad.append(f"{p.relative_to(ROOT)}: {n} lines (max {MAX_LINES})")
    return bad


def module_path(src: pathlib.Path, f: pathlib.Path):
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


USE_CRATE = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
USE_SUPER = re.compile(r"\bsuper::((?:super::)*)([a-z_][a-z0-9_]*)")
TEST_MOD = re.compile(r"^#\[cfg\(test\)\]\s*\n\s*mod\s+\w+\s*\{", re.M)


def strip_tests(text: str) -> str:
    """Drops inline `#[cfg(test)] mod tests { ... }` blocks (a test module
    naming its parent is not a cycle between production modules) and
    comments."""
    m = TEST_MOD.search(text)
    text = text[: m.start()] if m else text
    # Comments (doc links included) are not imports.
    return re.sub(r"//[^\n]*", "", text)


def crate_cycles(src: pathlib.Path):
    files = {}
    for f in src.rglob("*.rs"):
        if f.name == "tests.rs" or "tests" in f.relative_to(src).parts:
            continue
        files[module_path(src, f)] = strip_tests(f.read_text(encoding="utf-8", errors="replace"))
    mods = set(files)

    def resolve(path):
        # The longest prefix of `path` that is a module with a file.
        for n in range(len(path), 0, -1):
            if tuple(path[:n]) in mods:
                return tuple(path[:n])
        return None

    edges = {m: set() for m in mods}
    for m, text in files.items():
        targets = set()
        for hit in USE_CRATE.findall(text):
            targets.add(resolve(hit.split("::")))
        for ups, name in USE_SUPER.findall(text):
            depth = 1 + ups.count("super::")
            base = m[: len(m) - depth] if len(m) >= depth else ()
            targets.add(resolve(list(base) + [name]))
        for t in targets:
            if t is None or t == m:
                continue
            # Parent <-> descendant edges are how Rust modules nest; skip.
            if t[: len(m)] == m or m[: len(t)] == t:
                continue
            edges[m].add(t)

    # Strongly connected components (Tarjan), reported when larger than one.
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted("::".join(c) or "crate" for c in comp))

    sys.setrecursionlimit(10000)
    for v in sorted(mods):
        if v not in index:
            visit(v)
    return out


def cycles():
    bad = []
    for src in sorted([*ROOT.glob("crates/*/src"), ROOT / "src-tauri/src"]):
        for comp in crate_cycles(src):
            bad.append(f"{src.relative_to(ROOT)}: import cycle between {', '.join(comp)}")
    return bad


def crypto_versions():
    bad = []
    for name in CRYPTO:
        tree = subprocess.run(
            ["cargo", "tree", "-q", "--workspace", "-e", "normal,dev,build", "-i", name,
             "--prefix", "depth", "--depth", "1"],
            cwd=ROOT, capture_output=True, text=True)
        if tree.returncode != 0:
            # Not in the tree at all, or more than one version: ask per version.
            specs = re.findall(rf"{re.escape(name)}@[0-9][^\s]*", tree.stderr)
        else:
            specs = [None]
        versions = {}
        for spec in specs:
            args = ["cargo", "tree", "-q", "--workspace", "-e", "normal,dev,build",
                    "-i", spec or name, "--prefix", "depth", "--depth", "1"]
            res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
            lines = res.stdout.splitlines()
            if not lines:
                continue
            version = lines[0].split()[1]
            users = {l[1:].split()[0] for l in lines[1:] if l.startswith("1")}
            ours = sorted(u for u in users if u.startswith("kluis"))
            if ours:
                versions[version] = ours
        if len(versions) > 1:
            detail = "; ".join(f"{v} by {', '.join(u)}" for v, u in sorted(versions.items()))
            bad.append(f"{name}: Kluis crates depend on {len(versions)} versions ({detail})")
    return bad


def main():
    problems = long_files() + cycles()
    if "--no-cargo" not in sys.argv:
        problems += crypto_versions()
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("layout: no file over 1,000 lines, no import cycle, one version of each crypto crate")


if __name__ == "__main__":
    main()
