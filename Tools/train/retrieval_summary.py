#!/usr/bin/env python3
"""Recall@1/@5, mean rank and concentration of a Storyloom `retrieve` step, from `storyloom export` JSONL:

    storyloom export WORKFLOW --store STORE --columns STEP | python3 Tools/train/retrieval_summary.py

Concentration (issue #11): the largest share of queries (stories) that have one same image in their top 3 —
the goal is that no image is in the top 3 of more than 5% of the stories. Needs `retrieve` with k >= 3.
"""
import collections
import json
import sys

by_step = collections.defaultdict(list)
for line in sys.stdin:
    if line.strip():
        row = json.loads(line)
        if row.get("kind") == "retrieve" and row.get("status") == "ok":
            by_step[row["step"]].append(row)
for step, rows in sorted(by_step.items()):
    n = len(rows)
    top3 = collections.Counter(c["id"] for r in rows for c in r["ranked"][:3])
    hub, count = top3.most_common(1)[0]
    ranks = [r["target_rank"] for r in rows if r.get("target_rank") is not None]
    print(json.dumps({"step": step, "n": n, "recall@1": sum(r <= 1 for r in ranks) / n, "recall@5": sum(r <= 5 for r in ranks) / n,
                      "mean_rank": round(sum(ranks) / len(ranks), 1), "top3_max_share": count / n, "top3_max_image": hub,
                      "images_over_5pct": sum(c > 0.05 * n for c in top3.values())}))
