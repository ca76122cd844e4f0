"""Corpus for the demo models: the English fortune cookies Debian ships in `fortunes` + `fortunes-min`.

Source: Debian packages `fortunes` and `fortunes-min` (source package fortune-mod 1:1.99.1-7.3),
fetched with `apt-get download` and unpacked with `dpkg-deb -x` (nothing is installed). Licence: BSD
(see usr/share/doc/fortunes/copyright inside the package: "This program falls under the BSD copyright").

Preprocessing, exactly:
  1. every cookie file under usr/share/games/fortunes/ (not the .dat indexes, not the .u8 links), except
     `art` and `ascii-art` (pictures, not prose), read as UTF-8 (invalid bytes replaced);
  2. split on lines that are exactly '%'; in each cookie: tabs expanded to 8 columns, trailing spaces of
     every line removed, leading/trailing blank lines removed; empty cookies dropped; exact duplicates
     dropped (first kept, files in sorted order);
  3. split: a cookie goes to validation when sha1(text) mod 20 == 0 (5 %), else to training;
  4. order inside each split shuffled with random.Random(1234).
Writes OUT/train.jsonl and OUT/val.jsonl (one JSON string per line) and OUT/corpus.json (counts, sizes).

usage: python prepare_corpus.py OUT_DIR [--debs DIR]   (downloads the two .deb files into DIR when absent)
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import subprocess
import sys

PACKAGES = ["fortunes", "fortunes-min"]
EXCLUDED = {"art", "ascii-art"}


def fetch_debs(deb_dir: str) -> list[str]:
    os.makedirs(deb_dir, exist_ok=True)
    debs = []
    for pkg in PACKAGES:
        found = glob.glob(os.path.join(deb_dir, f"{pkg}_*.deb"))
        if not found:
            subprocess.run(["apt-get", "download", pkg], cwd=deb_dir, check=True)
            found = glob.glob(os.path.join(deb_dir, f"{pkg}_*.deb"))
        if not found:
            sys.exit(f"could not download Debian package {pkg}")
        debs.append(sorted(found)[-1])
    return debs


def cookies_from(text: str) -> list[str]:
    out, cur = [], []
    for line in text.split("\n") + ["%"]:
        if line == "%":
            lines = [l.expandtabs(8).rstrip() for l in cur]
            while lines and not lines[0]:
                lines.pop(0)
            while lines and not lines[-1]:
                lines.pop()
            if lines:
                out.append("\n".join(lines))
            cur = []
        else:
            cur.append(line)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--debs", default=None)
    args = ap.parse_args()
    deb_dir = args.debs or os.path.join(args.out, "debs")
    debs = fetch_debs(deb_dir)
    root = os.path.join(args.out, "unpacked")
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    data_dir = os.path.join(root, "usr/share/games/fortunes")
    files = sorted(f for f in os.listdir(data_dir)
                   if not f.endswith((".dat", ".u8")) and f not in EXCLUDED
                   and os.path.isfile(os.path.join(data_dir, f)) and not os.path.islink(os.path.join(data_dir, f)))
    seen, train, val = set(), [], []
    raw_bytes = 0
    for f in files:
        with open(os.path.join(data_dir, f), "rb") as fh:
            raw = fh.read()
        raw_bytes += len(raw)
        for c in cookies_from(raw.decode("utf-8", errors="replace")):
            if c in seen:
                continue
            seen.add(c)
            (val if int(hashlib.sha1(c.encode()).hexdigest(), 16) % 20 == 0 else train).append(c)
    random.Random(1234).shuffle(train)
    random.Random(1234).shuffle(val)
    for name, items in (("train", train), ("val", val)):
        with open(os.path.join(args.out, f"{name}.jsonl"), "w") as fh:
            for c in items:
                fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    info = {
        "source": "Debian packages " + ", ".join(os.path.basename(d) for d in debs),
        "licence": "BSD (fortune-mod; see usr/share/doc/fortunes/copyright in the package)",
        "files": files,
        "raw_bytes": raw_bytes,
        "train_cookies": len(train), "train_chars": sum(len(c) for c in train),
        "val_cookies": len(val), "val_chars": sum(len(c) for c in val),
    }
    with open(os.path.join(args.out, "corpus.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    print(json.dumps({k: v for k, v in info.items() if k != "files"}, indent=1))


if __name__ == "__main__":
    main()
