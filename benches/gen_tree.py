#!/usr/bin/env python3
"""Writes a deterministic (seeded) file tree for benches/layer-speed.sh.

The mix is meant to look like a real image layer rather than like one kind of data:
  ~60% source/text-like files (thousands, a few KiB to a few MiB, gzip ~4x),
  ~20% compressible binary (tables, zero-heavy sections, like libraries),
  ~20% random bytes (already-compressed assets: nothing to gain).
Usage: gen_tree.py DIR MIB [SEED]
"""
import os
import random
import sys

def main():
    root, mib = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20240601
    rng = random.Random(seed)
    total = mib << 20
    budget = {"text": total * 60 // 100, "bin": total * 20 // 100}
    budget["rand"] = total - budget["text"] - budget["bin"]

    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 12)))
             for _ in range(4000)]
    keywords = ["fn", "let", "if", "else", "return", "for", "in", "match", "struct", "impl",
                "pub", "use", "self", "mut", "const", "static", "while", "loop", "break", "true"]
    punct = [" = ", "(", ")", ";", ", ", ".", " { ", " }", " + ", " == ", "::", "->", "&", "[", "]"]

    def line():
        indent = "    " * rng.randint(0, 4)
        parts = []
        for _ in range(rng.randint(2, 10)):
            r = rng.random()
            if r < 0.25:
                parts.append(rng.choice(keywords))
            elif r < 0.75:
                parts.append(rng.choice(words))
            elif r < 0.85:
                parts.append(str(rng.randint(0, 99999)))
            else:
                parts.append(rng.choice(punct))
            parts.append(" ")
        return indent + "".join(parts).rstrip() + "\n"

    lines = [line() for _ in range(30000)]

    def text_file(size):
        # Local repetition like real code: each file draws from its own subset.
        start = rng.randrange(len(lines) - 2000)
        local = lines[start:start + 600]
        out, n = [], 0
        while n < size:
            chunk = rng.choices(local, k=256)
            # A few lines unique to the file, like identifiers and literals.
            chunk[rng.randrange(256)] = line()
            s = "".join(chunk)
            out.append(s)
            n += len(s)
        return "".join(out).encode()[:size]

    skew = bytes([0] * 160 + list(range(1, 97)))  # 256 entries: zero-heavy byte values

    def bin_file(size):
        out, n = [], 0
        while n < size:
            k = min(size - n, rng.randint(4096, 262144))
            kind = rng.random()
            if kind < 0.4:
                b = rng.randbytes(k).translate(skew)
            elif kind < 0.7:
                rec = rng.randbytes(rng.choice([16, 24, 32, 48, 64]))
                b = (rec * (k // len(rec) + 1))[:k]
                b = bytes(x ^ y for x, y in zip(b[:256], rng.randbytes(256))) + b[256:]
            else:
                b = bytes(k // 2) + rng.randbytes(k - k // 2)
            out.append(b)
            n += len(b)
        return b"".join(out)[:size]

    def rand_file(size):
        return rng.randbytes(size)

    exts = {"text": [".rs", ".py", ".c", ".h", ".js", ".txt", ".md", ".json", ".conf"],
            "bin": [".so", ".a", ".bin", ".dat"],
            "rand": [".png", ".jpg", ".gz", ".woff2", ".zip"]}
    dirs = []
    for p in range(24):
        for m in range(rng.randint(3, 12)):
            dirs.append(f"pkg{p:02}/{rng.choice(['src', 'lib', 'share', 'assets'])}/mod{m:02}")
    nfiles = 0
    for kind, gen, lo, hi in [("text", text_file, 1 << 10, 4 << 20),
                              ("bin", bin_file, 64 << 10, 24 << 20),
                              ("rand", rand_file, 16 << 10, 16 << 20)]:
        left = budget[kind]
        i = 0
        while left > 0:
            # Skewed log-uniform sizes: many small files, a few large ones.
            size = min(left, int(lo * (hi / lo) ** (rng.random() ** 3)))
            d = os.path.join(root, rng.choice(dirs))
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, f"{kind}{i:05}{rng.choice(exts[kind])}")
            with open(path, "wb") as f:
                f.write(gen(size))
            if kind == "bin" and rng.random() < 0.5:
                os.chmod(path, 0o755)
            else:
                os.chmod(path, 0o644)
            if rng.random() < 0.02:
                link = path + ".link"
                if not os.path.lexists(link):
                    os.symlink(os.path.basename(path), link)
            left -= size
            i += 1
            nfiles += 1
    print(f"{nfiles} files, {mib} MiB in {root}", file=sys.stderr)

main()
