"""Helpers for infra/scripts/bench-crawl and bench-cost (standard library only).

  bench_crawl.py store DATA_DIR       one line of key=value store figures of the crawl there
  bench_crawl.py summary RESULTS.tsv  the per-corpus table, the ratios and the targets

RESULTS.tsv rows (written by bench-crawl): corpus tool run limit pages elapsed_s user_s
sys_s rss_kib [key=value ...], the last fields only on tributary rows (from `store`).
"""

import json
import math
import sqlite3
import statistics
import sys
from collections import defaultdict
from pathlib import Path

# shared/src/store/mod.rs MAX_TRANSACTION_OPS - 1: URL items per registering transaction.
URLS_PER_TRANSACTION = 99
MIB = 1024 * 1024


def item_bytes(pk, sk, attributes):
    """DynamoDB-ish item size: key strings plus the attributes' JSON (a slight overestimate:
    DynamoDB counts names and values, not JSON punctuation)."""
    return len(pk.encode()) + len(sk.encode()) + len(attributes.encode())


def store_figures(data_dir):
    """What one `tributary-local crawl` wrote to its embedded store (the same items the
    DynamoDB store writes): item sizes and how many registering transactions it took."""
    db = sqlite3.connect(f"file:{Path(data_dir) / 'tributary.sqlite'}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT pk, sk, attributes FROM items WHERE pk LIKE 'CRAWL#%'"
    ).fetchall()
    jobs = [(pk, sk, a) for pk, sk, a in rows if sk == "JOB"]
    urls = [(pk, sk, a) for pk, sk, a in rows if sk.startswith("URL#")]
    if len(jobs) != 1 or not urls:
        return {}
    job = json.loads(jobs[0][2])
    counters = job.get("counters", {})
    finished, queued, children = [], [], defaultdict(int)
    for pk, sk, attributes in urls:
        url = json.loads(attributes)
        finished.append(item_bytes(pk, sk, attributes))
        # The item as first registered: URL, depth, parent, queued state, version.
        first = {k: url.get(k) for k in ("url", "depth", "parent")}
        first.update(state="queued", item_version=1)
        queued.append(item_bytes(pk, sk, json.dumps(first, separators=(",", ":"))))
        if url.get("parent"):
            children[url["parent"]] += 1
    register_transactions = sum(
        math.ceil(n / URLS_PER_TRANSACTION) for n in children.values()
    )
    # SendMessageBatch takes 10 messages: one request per 10 links a page registered.
    send_requests = 1 + sum(math.ceil(n / 10) for n in children.values())
    return {
        "done": counters.get("done", 0),
        "discovered": counters.get("discovered", 0),
        "skipped_limit": counters.get("skipped_limit", 0),
        "skipped_scope": counters.get("skipped_scope", 0),
        "url_items": len(urls),
        "job_item_bytes": item_bytes(*jobs[0]),
        "url_item_bytes_mean": round(statistics.fmean(finished)),
        "url_item_bytes_max": max(finished),
        "queued_item_bytes_mean": round(statistics.fmean(queued)),
        "register_transactions": register_transactions,
        "send_requests": send_requests,
    }


def read_results(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 9:
            continue
        corpus, tool, run, limit, pages, elapsed, user, sys_, rss = fields[:9]
        extra = dict(f.split("=", 1) for f in fields[9:] if "=" in f)
        rows.append(
            {
                "corpus": corpus,
                "tool": tool,
                "run": int(run),
                "limit": int(limit),
                "pages": int(pages),
                "elapsed": max(float(elapsed), 0.001),
                "cpu": float(user) + float(sys_),
                "rss_mib": int(rss) / 1024,
                **extra,
            }
        )
    return rows


def medians(rows):
    """Per (corpus, tool, limit): medians of pages, pages/s, CPU s, CPU ms/page, RSS."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row["corpus"], row["tool"], row["limit"])].append(row)
    out = {}
    for key, group in groups.items():
        out[key] = {
            "runs": len(group),
            "pages": statistics.median(r["pages"] for r in group),
            "rate": statistics.median(r["pages"] / r["elapsed"] for r in group),
            "cpu": statistics.median(r["cpu"] for r in group),
            "cpu_ms_page": statistics.median(
                1000 * r["cpu"] / max(r["pages"], 1) for r in group
            ),
            "rss": statistics.median(r["rss_mib"] for r in group),
            "rss_max": max(r["rss_mib"] for r in group),
            "rows": group,
        }
    return out


def verdict(ok):
    return "PASS" if ok else "FAIL"


def summary(path):
    rows = read_results(path)
    if not rows:
        print("no results")
        return 1
    stats = medians(rows)
    print()
    print("| corpus | tool | limit | runs | pages | pages/s | CPU s | CPU ms/page | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (corpus, tool, limit), s in sorted(stats.items()):
        print(
            f"| {corpus} | {tool} | {limit} | {s['runs']} | {s['pages']:.0f} | {s['rate']:.1f} "
            f"| {s['cpu']:.2f} | {s['cpu_ms_page']:.2f} | {s['rss']:.1f} |"
        )
    print("\n(medians over the runs; pages = HTML pages each tool fetched)")
    failed = False
    for (corpus, tool, limit), ours in sorted(stats.items()):
        if tool != "tributary":
            continue
        for other, speed_target, rss_target in (("spider", 1.2, None), ("wget", 4.0, 45.0)):
            # wget has no page limit: its run covers the whole site at any --limit.
            them = stats.get((corpus, other, limit)) or stats.get((corpus, other, 0))
            if not them:
                continue
            speed = ours["rate"] / max(them["rate"], 0.001)
            cpu = ours["cpu_ms_page"] / max(them["cpu_ms_page"], 0.001)
            rss = ours["rss"] / max(them["rss"], 0.001)
            if rss_target is None:
                ok = speed >= speed_target and ours["rss"] <= them["rss"]
                target = f">= {speed_target}x pages/s and peak RSS <= {other}'s"
            else:
                ok = speed >= speed_target and ours["rss"] <= rss_target
                target = f">= {speed_target}x pages/s and peak RSS <= {rss_target:.0f} MiB"
            print(
                f"{corpus}: tributary / {other}: {speed:.2f}x pages/s, {cpu:.2f}x CPU per page, "
                f"{rss:.2f}x peak RSS ({ours['rss']:.1f} vs {them['rss']:.1f} MiB); "
                f"target {target}: {verdict(ok)}"
            )
    scale = sorted(
        (limit, s) for (corpus, tool, limit), s in stats.items()
        if tool == "tributary-rss" and corpus == "scipy"
    )
    if len(scale) >= 2:
        (small, low), (large, high) = scale[0], scale[-1]
        diff = high["rss"] - low["rss"]
        ok = abs(diff) < 10
        failed |= not ok
        print(
            f"scipy peak RSS: --limit {small}: {low['rss']:.1f} MiB ({low['pages']:.0f} pages), "
            f"--limit {large}: {high['rss']:.1f} MiB ({high['pages']:.0f} pages); "
            f"difference {diff:+.1f} MiB (target < 10 MiB): {verdict(ok)}"
        )
    for (corpus, tool, limit), s in sorted(stats.items()):
        last = s["rows"][-1]
        if tool == "tributary" and "job_item_bytes" in last:
            print(
                f"{corpus} store: {last['url_items']} URL items (mean {last['url_item_bytes_mean']} B, "
                f"max {last['url_item_bytes_max']} B; {last['queued_item_bytes_mean']} B when queued), "
                f"job item {last['job_item_bytes']} B, {last['register_transactions']} registering "
                f"transactions, discovered {last['discovered']}, over the limit {last['skipped_limit']}"
            )
    return 1 if failed else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "store":
        figures = store_figures(argv[2])
        print("\t".join(f"{k}={v}" for k, v in figures.items()))
        return 0
    if len(argv) == 3 and argv[1] == "summary":
        return summary(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
