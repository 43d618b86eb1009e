#!/usr/bin/env python3
"""Where a JIT-compiled kernel stalls, line by line, from Nsight Compute's source page.

On the device machine (docs/PERFORMANCE.md, "Where the chunked prep stalls"):

  MODELC_NVRTC_SOURCE_DIR=$PWD/ksrc MODELC_CACHE_DIR=/tmp/empty-cache \\
    ncu --clock-control none --set full -k regex:delta_rule_cp_prep -c 1 --kill on -o prep \\
    .gpu-bin/gpu_kernels --ignored bench_delta_chunk_parallel
  ncu -i prep.ncu-rep --page source --csv --print-source cuda,sass > prep.csv

then, anywhere:

  scripts/ncu_lines.py prep.csv ksrc [--top 40] [--region "step 0=485-576,350-360" ...]

`ksrc` holds the kernel sources NVRTC compiled (`MODELC_NVRTC_SOURCE_DIR` writes each as
`<name>.cu`, the file name its line info records; an empty kernel cache makes every module
compile). The report's CUDA view names each line of that file with its warp stall samples and
instructions executed; this prints the lines with the most samples, their three largest stall
reasons and their source text, and with --region the share of named line ranges (inlined
helpers keep their own lines, so give their ranges too).
"""
import argparse
import csv
import os
import sys


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def read_lines(report):
    """{(file, line): {metric: value}} for the .cu files of the report's CUDA view."""
    lines, path, header = {}, None, None
    with open(report, newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            if row[0] == "File Path":
                path = row[1]
            elif row[0] == "Line No":
                header = row
            elif path and path.endswith(".cu") and header and row[0].isdigit():
                values = dict(zip(header[4:], row[4:]))
                metrics = {k: number(v) for k, v in values.items() if k.startswith("stall_") and "(Not" not in k}
                metrics["samples"] = number(values.get("Warp Stall Sampling (All Samples)", "0"))
                metrics["instructions"] = number(values.get("Instructions Executed", "0"))
                lines[(os.path.basename(path), int(row[0]))] = metrics
    return lines


def parse_region(spec):
    name, ranges = spec.rsplit("=", 1)
    return name, [tuple(int(x) for x in r.split("-")) for r in ranges.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report", help="CSV of ncu --page source --csv --print-source cuda,sass")
    ap.add_argument("sources", help="folder of the <name>.cu files (MODELC_NVRTC_SOURCE_DIR)")
    ap.add_argument("--top", type=int, default=40, help="lines to print (default 40)")
    ap.add_argument("--region", action="append", default=[], help='"NAME=FIRST-LAST[,FIRST-LAST]"')
    args = ap.parse_args()

    lines = read_lines(args.report)
    if not lines:
        sys.exit(f"{args.report}: no CUDA source lines of a .cu file (was it printed with --print-source cuda,sass?)")
    total = sum(m["samples"] for m in lines.values()) or 1.0
    insts = sum(m["instructions"] for m in lines.values()) or 1.0
    texts = {}
    for name in {f for f, _ in lines}:
        try:
            with open(os.path.join(args.sources, name)) as f:
                texts[name] = f.read().split("\n")
        except OSError as e:
            sys.exit(f"{os.path.join(args.sources, name)}: {e.strerror} (the source the report's lines refer to)")

    print(f"{total:.0f} warp stall samples, {insts:.0f} warp instructions")
    for (name, ln), m in sorted(lines.items(), key=lambda kv: -kv[1]["samples"])[: args.top]:
        reasons = sorted(((k[len("stall_"):], v) for k, v in m.items() if k.startswith("stall_")), key=lambda x: -x[1])
        why = " ".join(f"{k}:{v:.0f}" for k, v in reasons[:3] if v > 0)
        text = texts[name][ln - 1].strip() if ln - 1 < len(texts[name]) else "?"
        print(f"{ln:5d} {100 * m['samples'] / total:5.1f}%  {m['instructions'] / 1e3:8.0f}k inst  {why:40s} | {text[:100]}")

    if args.region:
        print()
        counted = set()
        for name, ranges in map(parse_region, args.region):
            keys = [k for k in lines if k not in counted and any(lo <= k[1] <= hi for lo, hi in ranges)]
            counted.update(keys)
            s = sum(lines[k]["samples"] for k in keys)
            i = sum(lines[k]["instructions"] for k in keys)
            print(f"{name:45s} {100 * s / total:5.1f}% of samples  {100 * i / insts:5.1f}% of instructions")
        rest = [k for k in lines if k not in counted]
        s = sum(lines[k]["samples"] for k in rest)
        i = sum(lines[k]["instructions"] for k in rest)
        print(f"{'(the rest)':45s} {100 * s / total:5.1f}% of samples  {100 * i / insts:5.1f}% of instructions")


if __name__ == "__main__":
    main()
