"""Turns Faultline result files into a Markdown report with plots (PNG and SVG, matplotlib).

Called by `faultline report`; reads
  - sweep summaries (PREFIX.json of `faultline sweep`): Walking Noise (accuracy vs sigma per layer,
    midpoint sigma per layer) or grid (accuracy vs the swept values),
  - evaluation results (`faultline eval --out`, one result or an array): accuracy per hardware
    description with its 95 % confidence interval, per-layer SNR, and the cycle level's totals,
  - studies repeated over training seeds (seed_study.json of bench/seed_study_summary.py): the
    accuracy of every seed's network as strip plots, per arm the 95 % CI over seeds, and the
    paired differences between arms.

Usage: report.py --out DIR RESULT.json [RESULT.json ...]
Bad input ends with one line on stderr naming the file and exit status 2.
"""
import json
import math
import os
import sys


def fail(message):
    sys.stderr.write(f"faultline report: error: {message}\n")
    sys.exit(2)


class Schema:
    """Checks the fields the report reads, so that a malformed file is one clear line, never a
    traceback: each check names the file and the field's path (e.g. rows[3].accuracy.mean)."""

    def __init__(self, path):
        self.path = path

    def get(self, obj, key, where, kinds, optional=False):
        if not isinstance(obj, dict):
            fail(f"{self.path}: '{where or 'top level'}' must be an object")
        field = f"{where}.{key}" if where else key
        if key not in obj:
            if optional:
                return None
            fail(f"{self.path}: missing field '{field}'")
        value = obj[key]
        names = {"number": "a number", "int": "an integer", "str": "a string", "list": "an array", "dict": "an object",
                 "bool": "true or false", "null": "null"}
        ok = False
        for k in kinds.split("|"):
            ok = ok or (k == "number" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
            ok = ok or (k == "int" and isinstance(value, int) and not isinstance(value, bool))
            ok = ok or (k == "str" and isinstance(value, str))
            ok = ok or (k == "list" and isinstance(value, list))
            ok = ok or (k == "dict" and isinstance(value, dict))
            ok = ok or (k == "bool" and isinstance(value, bool))
            ok = ok or (k == "null" and value is None)
        if not ok:
            fail(f"{self.path}: field '{field}' must be {' or '.join(names[k] for k in kinds.split('|'))}, got {type(value).__name__}")
        return value

    def items(self, obj, key, where, nonempty=False):
        values = self.get(obj, key, where, "list")
        if nonempty and not values:
            fail(f"{self.path}: field '{where + '.' if where else ''}{key}' is empty")
        return values

    def accuracy(self, obj, where):
        a = self.get(obj, "accuracy", where, "dict")
        w = f"{where}.accuracy" if where else "accuracy"
        for k in ("mean", "std"):
            self.get(a, k, w, "number")
        ci = self.items(a, "ci95", w)
        if len(ci) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in ci):
            fail(f"{self.path}: field '{w}.ci95' must be two numbers")
        for k, t in enumerate(self.items(a, "trials", w)):
            if not isinstance(t, (int, float)) or isinstance(t, bool):
                fail(f"{self.path}: field '{w}.trials[{k}]' must be a number")

    def evaluation(self, r, where):
        for k in ("hardware", "model", "data"):
            self.get(r, k, where, "str")
        self.get(r, "images", where, "int")
        self.get(r, "seed", where, "int")
        self.get(r, "level", where, "str", optional=True)
        self.accuracy(r, where)
        for k, layer in enumerate(self.items(r, "layers", where)):
            self.get(layer, "name", f"{where}.layers[{k}]", "str")
            self.get(layer, "snr_db", f"{where}.layers[{k}]", "number|null", optional=True)
        c = self.get(r, "cycle_level_per_pass", where, "dict", optional=True)
        if c is not None:
            for k in ("cycles", "energy_pj", "utilisation"):
                self.get(c, k, f"{where}.cycle_level_per_pass", "number", optional=True)

    def sweep(self, d):
        settings = self.get(d, "settings", "", "dict")
        for k in ("data", "hw"):
            self.get(settings, k, "settings", "str")
        self.get(settings, "trials", "settings", "int")
        self.get(settings, "seed", "settings", "int")
        self.get(d, "model", "", "str", optional=True)
        rows = self.items(d, "rows", "", nonempty=True)
        for k, r in enumerate(rows):
            w = f"rows[{k}]"
            self.get(r, "sigma", w, "number")
            self.get(r, "layer", w, "str")
            self.get(r, "role", w, "str")
            self.get(r, "images", w, "int")
            for j, v in enumerate(self.items(r, "values", w)):
                if not isinstance(v, str):
                    fail(f"{self.path}: field '{w}.values[{j}]' must be a string")
            self.accuracy(r, w)
        if d["kind"] == "grid":
            axes = self.items(settings, "axes", "settings", nonempty=True)
            for k, a in enumerate(axes):
                self.get(a, "path", f"settings.axes[{k}]", "str")
                values = self.items(a, "values", f"settings.axes[{k}]", nonempty=True)
                if not all(isinstance(v, str) for v in values):
                    fail(f"{self.path}: field 'settings.axes[{k}].values' must hold strings")
            for k, r in enumerate(rows):
                if len(r["values"]) != len(axes):
                    fail(f"{self.path}: field 'rows[{k}].values' has {len(r['values'])} values for {len(axes)} axes")
        else:
            w = self.get(d, "walking_noise", "", "dict")
            self.get(w, "mode", "walking_noise", "str")
            for k in ("clean_accuracy", "chance", "target", "tolerance"):
                self.get(w, k, "walking_noise", "number")
            for k, m in enumerate(self.items(w, "midpoints", "walking_noise")):
                where = f"walking_noise.midpoints[{k}]"
                self.get(m, "layer", where, "str")
                self.get(m, "bisections", where, "int")
                if self.get(m, "found", where, "bool"):
                    for f in ("midpoint", "from_sweep", "sigma_lo", "sigma_hi"):
                        self.get(m, f, where, "number")
                    if m["midpoint"] <= 0:
                        fail(f"{self.path}: field '{where}.midpoint' must be positive")
                    if "midpoint_ci" in m:
                        ci = self.items(m, "midpoint_ci", where)
                        if len(ci) != 2 or not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0) for v in ci):
                            fail(f"{self.path}: field '{where}.midpoint_ci' must be [low, high], positive numbers or null (open)")
                        if ci[0] is not None and ci[1] is not None and ci[0] > ci[1]:
                            fail(f"{self.path}: field '{where}.midpoint_ci' has low above high")
                        self.get(m, "bootstrap_replicates", where, "int")
                else:
                    self.get(m, "why", where, "str")


def load(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        fail(f"{path}: is a folder, not a file")
    except OSError as e:
        fail(f"{path}: cannot open ({e.strerror})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"{path}: not UTF-8 text (byte {e.start})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"{path}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})")
    except RecursionError:
        fail(f"{path}: JSON nested too deeply")
    schema = Schema(path)
    if isinstance(data, dict) and data.get("kind") in ("walking_noise", "grid") and "rows" in data:
        schema.sweep(data)
        return data["kind"], data
    if isinstance(data, dict) and data.get("kind") == "seed_study":
        schema.get(data, "title", "", "str")
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for k, a in enumerate(schema.items(data, "arms", "", nonempty=True)):
            w = f"arms[{k}]"
            schema.get(a, "arm", w, "str")
            schema.get(a, "condition", w, "str")
            seeds = schema.items(a, "seeds", w, nonempty=True)
            values = schema.items(a, "values", w, nonempty=True)
            if len(seeds) != len(values) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
                fail(f"{path}: field '{w}.seeds' must hold one integer seed per value")
            if not all(number(v) and 0 <= v <= 1 for v in values):
                fail(f"{path}: field '{w}.values' must hold accuracies in [0, 1]")
            schema.get(a, "mean", w, "number")
        for k, c in enumerate(schema.items(data, "comparisons", "")):
            w = f"comparisons[{k}]"
            for f in ("a", "b", "condition"):
                schema.get(c, f, w, "str")
            schema.get(c, "mean", w, "number")
            schema.get(c, "holds", w, "bool")
            ci = c.get("ci95")
            if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(number(v) for v in ci) and ci[0] <= ci[1]):
                fail(f"{path}: field '{w}.ci95' must be [low, high] or null")
        return "seed_study", data
    if isinstance(data, dict) and data.get("kind") == "ipu_plan":
        for k, u in enumerate(schema.items(data, "units", "", nonempty=True)):
            w = f"units[{k}]"
            schema.get(u, "unit", w, "str")
            tiles = schema.get(u, "tiles", w, "int")
            schema.get(u, "capacity", w, "int")
            for field in ("resident", "transient"):
                values = schema.items(u, field, w)
                if len(values) != tiles or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
                    fail(f"{path}: field '{w}.{field}' must hold {tiles} byte counts")
        for k, l in enumerate(schema.items(data, "layers", "", nonempty=True)):
            schema.get(l, "layer", f"layers[{k}]", "str")
            schema.get(l, "tiles_used", f"layers[{k}]", "int")
        return "ipu_plan", data
    if isinstance(data, dict) and "strategy" in data and "layers" in data:
        schema.get(data, "strategy", "", "str")
        for k, layer in enumerate(schema.items(data, "layers", "", nonempty=True)):
            w = f"layers[{k}]"
            schema.get(layer, "layer", w, "str")
            schema.get(layer, "space", w, "int")
            schema.get(layer, "reference_cycles", w, "int")
            for j, t in enumerate(schema.items(layer, "trials", w)):
                if not (isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and (isinstance(t[1], (int, str)) and not isinstance(t[1], bool))):
                    fail(f"{path}: field '{w}.trials[{j}]' must be [schedule, cycles or reason]")
        return "tune", data
    results = data if isinstance(data, list) else [data]
    if results and all(isinstance(r, dict) and "accuracy" in r and "hardware" in r for r in results):
        for k, r in enumerate(results):
            schema.evaluation(r, f"[{k}]" if isinstance(data, list) else "")
        return "eval", results
    fail(f"{path}: not a faultline result (expected `faultline sweep` PREFIX.json, `faultline eval --out` JSON, `faultline tune` tune.json, `faultline ipu plan --out` JSON or bench/seed_study_summary.py's seed_study.json)")


def atomic_target(path):
    """The temporary name a file is written under before it replaces `path` (same folder), so
    that a failed write never leaves a truncated file where a good one was."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp")


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


class Report:
    def __init__(self, out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plt = plt
        self.out = out
        self.lines = ["# Faultline report", ""]
        self.figures = 0
        self.tunes = []

    def save(self, fig, stem, caption, tight=True):
        self.figures += 1
        name = f"{self.figures:02d}_{stem}"
        if tight:
            fig.tight_layout()
        # No dates in the files: the same results give the same report.
        for ext, options in ((".png", {"dpi": 120, "metadata": {"Software": None}}), (".svg", {"metadata": {"Date": None, "Creator": None}})):
            target = os.path.join(self.out, name + ext)
            try:
                fig.savefig(atomic_target(target), format=ext[1:], **options)
                os.replace(atomic_target(target), target)
            except OSError as e:
                remove_quietly(atomic_target(target))
                fail(f"{target}: cannot write ({e.strerror or e})")
        self.plt.close(fig)
        self.lines += [f"![{caption}]({name}.png)", "", f"*{caption}* ([SVG]({name}.svg))", ""]

    def walking(self, path, d):
        w = d["walking_noise"]
        settings = d["settings"]
        rows = d["rows"]
        self.lines += [f"## Walking Noise ({w['mode']}): {os.path.basename(path)}", "",
                       f"Model `{d.get('model', '?')}` on `{settings['data']}`, base hardware `{settings['hw']}`, "
                       f"{settings['trials']} trial(s) per point, seed {settings['seed']}, "
                       f"{rows[0]['images']} images. Noise: {w['mode']} on one layer's output at a time "
                       f"(Borras, Klein, Fröning, arXiv 2212.10430). Clean accuracy {100 * w['clean_accuracy']:.2f} %, "
                       f"chance {100 * w['chance']:.2f} %; the midpoint is the sigma at which accuracy reaches "
                       f"{100 * w['target']:.2f} % (halfway), bisected to sigma_hi/sigma_lo <= {1 + w['tolerance']:.3g}.", ""]
        layers = [m["layer"] for m in w["midpoints"]]
        fig, ax = self.plt.subplots(figsize=(7, 4.5))
        for layer in layers:
            pts = sorted((r["sigma"], r["accuracy"]["mean"], r["accuracy"]["std"]) for r in rows
                         if r["layer"] == layer and r["role"] in ("sweep", "bisect"))
            ax.errorbar([p[0] for p in pts], [100 * p[1] for p in pts], yerr=[100 * p[2] for p in pts], marker=".", capsize=2, label=layer)
        ax.axhline(100 * w["target"], color="gray", linestyle="--", linewidth=0.8, label="midpoint target")
        ax.axhline(100 * w["chance"], color="gray", linestyle=":", linewidth=0.8, label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("noise sigma")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"Accuracy vs {w['mode']} noise per layer")
        ax.legend(fontsize=8)
        self.save(fig, "walking_accuracy", f"Accuracy vs {w['mode']} noise sigma, noise at one layer at a time (error bars: std over trials)")
        found = [m for m in w["midpoints"] if m["found"]]
        sigmas = [r["sigma"] for r in rows if r["role"] in ("sweep", "bisect")]
        lowest, highest = (min(sigmas), max(sigmas)) if sigmas else (0, 0)

        def ci_bounds(m):
            # An open side of the interval (null) reaches the end of the evaluated range.
            low, high = m.get("midpoint_ci", [None, None])
            return (low if low is not None else lowest), (high if high is not None else highest)

        def ci_text(m):
            if "midpoint_ci" not in m:
                return "–"
            low, high = m["midpoint_ci"]
            return f"[{'< %.4g' % lowest if low is None else '%.4g' % low}, {'> %.4g' % highest if high is None else '%.4g' % high}]"

        with_ci = all("midpoint_ci" in m for m in found)
        if found:
            fig, ax = self.plt.subplots(figsize=(7, 3.5))
            if with_ci:
                err = [[max(0.0, m["midpoint"] - ci_bounds(m)[0]) for m in found], [max(0.0, ci_bounds(m)[1] - m["midpoint"]) for m in found]]
                what = f"95 % bootstrap CI over the trials, {found[0]['bootstrap_replicates']} replicates"
            else:
                err = [[m["midpoint"] - m["sigma_lo"] for m in found], [m["sigma_hi"] - m["midpoint"] for m in found]]
                what = "the final bisection bracket (one trial: no interval)"
            ax.bar([m["layer"] for m in found], [m["midpoint"] for m in found], yerr=err, capsize=3)
            ax.set_yscale("log")
            ax.set_ylabel("midpoint sigma")
            ax.set_title("Midpoint noise level per layer (higher: more robust)")
            self.save(fig, "walking_midpoints", f"Midpoint noise level per layer (error bars: {what})")
        self.lines += ["| layer | midpoint sigma | 95 % CI (bootstrap over trials) | from the sweep alone | bracket | bisections |",
                       "|---|---|---|---|---|---|"]
        for m in w["midpoints"]:
            if m["found"]:
                self.lines.append(f"| {m['layer']} | {m['midpoint']:.4g} | {ci_text(m)} | {m['from_sweep']:.4g} | "
                                  f"[{m['sigma_lo']:.4g}, {m['sigma_hi']:.4g}] | {m['bisections']} |")
            else:
                self.lines.append(f"| {m['layer']} | – | – | – | {m['why']} | {m['bisections']} |")
        if found:
            weakest = min(found, key=lambda m: m["midpoint"])
            line = (f"The layer that breaks first under {w['mode']} noise is **{weakest['layer']}** "
                    f"(midpoint sigma {weakest['midpoint']:.4g}")
            if with_ci and len(found) > 1:
                # Separated only if its interval lies below every other layer's.
                others = [m for m in found if m is not weakest]
                separated = all(ci_bounds(weakest)[1] < ci_bounds(m)[0] for m in others)
                line += (f", 95 % CI {ci_text(weakest)}); its interval lies below every other layer's." if separated else
                         f", 95 % CI {ci_text(weakest)}); its interval overlaps another layer's, so the ranking is not resolved by these trials.")
            else:
                line += ")."
            self.lines += ["", line]
        self.lines.append("")

    def grid(self, path, d):
        settings = d["settings"]
        axes = settings["axes"]
        rows = d["rows"]
        self.lines += [f"## Sweep over {', '.join(a['path'] for a in axes)}: {os.path.basename(path)}", "",
                       f"Model `{d.get('model', '?')}`, base hardware `{settings['hw']}`, {settings['trials']} trial(s) per point, "
                       f"seed {settings['seed']}, {rows[0]['images'] if rows else 0} images.", ""]

        def number(v):
            try:
                return float(v)
            except ValueError:
                return None

        first = axes[0]
        xs = [number(v) for v in first["values"]]
        numeric = all(x is not None for x in xs)
        fig, ax = self.plt.subplots(figsize=(7, 4.5))
        groups = {}
        for r in rows:
            key = tuple(r["values"][1:])
            groups.setdefault(key, []).append(r)
        for key, group in groups.items():
            label = ", ".join(f"{a['path']}={v}" for a, v in zip(axes[1:], key)) or None
            x = [number(r["values"][0]) if numeric else i for i, r in enumerate(group)]
            ax.errorbar(x, [100 * r["accuracy"]["mean"] for r in group],
                        yerr=[[100 * (r["accuracy"]["mean"] - r["accuracy"]["ci95"][0]) for r in group],
                              [100 * (r["accuracy"]["ci95"][1] - r["accuracy"]["mean"]) for r in group]],
                        marker="o", capsize=3, label=label)
        if not numeric:
            ax.set_xticks(range(len(first["values"])))
            ax.set_xticklabels(first["values"])
        elif all(x > 0 for x in xs) and max(xs) / min(xs) > 100:
            ax.set_xscale("log")
        ax.set_xlabel(first["path"])
        ax.set_ylabel("accuracy (%)")
        if len(axes) > 1:
            ax.legend(fontsize=8)
        self.save(fig, "grid_accuracy", f"Accuracy vs {first['path']} (error bars: 95 % confidence interval)")
        self.lines += ["| " + " | ".join(a["path"] for a in axes) + " | accuracy | 95 % CI | trials |",
                       "|" + "---|" * (len(axes) + 3)]
        for r in rows:
            a = r["accuracy"]
            self.lines.append("| " + " | ".join(r["values"]) + f" | {100 * a['mean']:.2f} % | [{100 * a['ci95'][0]:.2f}, {100 * a['ci95'][1]:.2f}] % | "
                              f"{len(a['trials'])} |")
        self.lines.append("")

    def evaluations(self, path, results):
        self.lines += [f"## Accuracy per hardware description: {os.path.basename(path)}", "",
                       f"Model `{results[0]['model']}` on `{results[0]['data']}`, {results[0]['images']} images, level "
                       f"{results[0].get('level', 'functional')}, seed {results[0]['seed']}.", ""]
        names = [r["hardware"] for r in results]
        means = [100 * r["accuracy"]["mean"] for r in results]
        lo = [100 * (r["accuracy"]["mean"] - r["accuracy"]["ci95"][0]) for r in results]
        hi = [100 * (r["accuracy"]["ci95"][1] - r["accuracy"]["mean"]) for r in results]
        fig, ax = self.plt.subplots(figsize=(max(5, 0.9 * len(results) + 2), 4))
        ax.bar(range(len(results)), means, yerr=[lo, hi], capsize=4, color="tab:blue")
        ax.set_xticks(range(len(results)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("accuracy (%)")
        low = min(m - l for m, l in zip(means, lo))
        ax.set_ylim(max(0, low - 5), 100)
        self.save(fig, "hardware_accuracy", "Accuracy per hardware description (error bars: 95 % confidence interval over Monte Carlo trials)")
        self.lines += ["| hardware | accuracy | std | 95 % CI | trials | weakest layer (SNR dB) |", "|---|---|---|---|---|---|"]
        for r in results:
            a = r["accuracy"]
            snrs = [(l["snr_db"], l["name"]) for l in r["layers"] if l.get("snr_db") is not None]
            weakest = min(snrs) if snrs else None
            self.lines.append(f"| {r['hardware']} | {100 * a['mean']:.2f} % | {100 * a['std']:.2f} | "
                              f"[{100 * a['ci95'][0]:.2f}, {100 * a['ci95'][1]:.2f}] % | {len(a['trials'])} | "
                              + (f"{weakest[1]} ({weakest[0]:.1f})" if weakest else "all exact") + " |")
        timed = [r for r in results if "cycle_level_per_pass" in r]
        if timed:
            self.lines += ["", "| hardware | cycles per pass | energy per pass (uJ) | utilisation |", "|---|---|---|---|"]
            for r in timed:
                c = r["cycle_level_per_pass"]
                self.lines.append(f"| {r['hardware']} | {c.get('cycles', 0):.4g} | {c.get('energy_pj', 0) / 1e6:.4g} | {100 * c.get('utilisation', 0):.2f} % |")
        self.lines.append("")

    def seed_study(self, path, d):
        """A study repeated over training seeds (bench/seed_study_summary.py): per condition, every
        arm's networks as points (one per seed, each the mean over its Monte Carlo trials) with the
        mean and its 95 % t interval over seeds; then the paired differences between arms."""
        self.lines += [f"## {d['title']}: {os.path.basename(path)}", "",
                       "Each point is one trained network (one training seed), its accuracy the mean over its Monte Carlo "
                       "trials; bars: the mean and its 95 % Student-t interval over the seeds.", ""]
        conditions = []
        for a in d["arms"]:
            if a["condition"] not in conditions:
                conditions.append(a["condition"])
        fig, axes = self.plt.subplots(1, len(conditions), figsize=(max(6, 3.2 * len(conditions)), 4.2), squeeze=False)
        for ax, condition in zip(axes[0], conditions):
            arms = [a for a in d["arms"] if a["condition"] == condition]
            for x, a in enumerate(arms):
                n = len(a["values"])
                # Seeds spread sideways so that equal accuracies stay visible.
                xs = [x + (0.24 * (k - (n - 1) / 2) / max(1, n - 1) if n > 1 else 0) for k in range(n)]
                ax.scatter(xs, [100 * v for v in a["values"]], s=14, color="tab:blue", alpha=0.7, zorder=3)
                if a.get("ci95"):
                    ax.errorbar([x + 0.22], [100 * a["mean"]], yerr=[[100 * (a["mean"] - a["ci95"][0])], [100 * (a["ci95"][1] - a["mean"])]],
                                fmt="s", color="black", markersize=4, capsize=3, zorder=4)
            ax.set_xticks(range(len(arms)))
            ax.set_xticklabels([a["arm"] for a in arms], rotation=30, ha="right", fontsize=7)
            ax.set_title(condition, fontsize=9)
            ax.set_ylabel("accuracy (%)")
        self.save(fig, "seed_spread", "Accuracy per training seed (points) with the mean and 95 % CI over seeds (black), per evaluation condition")
        self.lines += ["| arm | condition | seeds | mean | std over seeds | 95 % CI over seeds |", "|---|---|---|---|---|---|"]
        for a in d["arms"]:
            std = "–" if a.get("std") is None else f"{100 * a['std']:.2f}"
            ci = "–" if not a.get("ci95") else f"[{100 * a['ci95'][0]:.2f}, {100 * a['ci95'][1]:.2f}] %"
            self.lines.append(f"| {a['arm']} | {a['condition']} | {len(a['values'])} | {100 * a['mean']:.2f} % | {std} | {ci} |")
        if d["comparisons"]:
            self.lines += ["", "| paired difference | condition | seeds | mean (points) | 95 % CI (points) | holds (CI excludes 0) |",
                           "|---|---|---|---|---|---|"]
            for c in d["comparisons"]:
                ci = "–" if not c.get("ci95") else f"[{100 * c['ci95'][0]:+.2f}, {100 * c['ci95'][1]:+.2f}]"
                self.lines.append(f"| {c['a']} − {c['b']} | {c['condition']} | {len(c.get('seeds', []))} | {100 * c['mean']:+.2f} | {ci} | "
                                  f"{'yes' if c['holds'] else 'no'} |")
        self.lines.append("")

    def tune(self, path, d):
        self.tunes.append((path, d))

    def ipu_plan(self, path, d):
        """`faultline ipu plan --out`: per unit, every tile's memory -- the weights, code and vertex
        state resident for the whole model, and the largest inputs + partials of one layer -- against
        the tile's capacity; and the layers' plans."""
        self.lines += [f"## IPU plan: {d.get('model', path)} on {d.get('hardware', '?')}", ""]
        for u in d["units"]:
            tiles = list(range(u["tiles"]))
            resident = [b / 1024 for b in u["resident"]]
            transient = [b / 1024 for b in u["transient"]]
            fig, ax = self.plt.subplots(figsize=(8, 3))
            ax.fill_between(tiles, 0, resident, step="mid", label="weights, code, vertex state (resident)", color="#4477aa")
            ax.fill_between(tiles, resident, [r + t for r, t in zip(resident, transient)], step="mid", label="inputs + partials (largest layer)", color="#ee7733")
            ax.axhline(u["capacity"] / 1024, color="black", linewidth=1, linestyle="--", label="tile memory")
            ax.set_xlabel("tile")
            ax.set_ylabel("KiB")
            ax.set_xlim(0, max(1, u["tiles"] - 1))
            ax.legend(fontsize=7, loc="upper right")
            ax.set_title(f"unit {u['unit']}: {'fits' if u['fits'] else 'does NOT fit'} (fullest tile {u['fullest_tile']}: "
                         f"{u['fullest_bytes'] / 1024:.1f} of {u['capacity'] / 1024:.0f} KiB)", fontsize=9)
            self.save(fig, f"ipu_memory_{u['unit']}", f"Tile memory of unit {u['unit']} with the whole model resident ({os.path.basename(path)})")
        self.lines += ["| layer | unit | groups x rows x in -> out | splits g/r/c/k | tiles | max KiB | exchange B | supersteps | cycles |",
                       "|---|---|---|---|---|---|---|---|---|"]
        for l in d["layers"]:
            g, r, c, k = l["splits"]
            self.lines.append(f"| {l['layer']} | {l['unit']} | {l['groups']} x {l['rows']} x {l['inputs']} -> {l['outputs']} | {g}/{r}/{c}/{k} | "
                              f"{l['tiles_used']} | {l['max_tile_bytes'] / 1024:.1f} | {l['exchange_bytes']} | {l['supersteps']} | {l['cycles']:.0f} |")
        self.lines += [""] + [f"- {v}" for v in d.get("verdicts", [])] + [""]

    def tunings(self):
        """VTA schedule tuning (`faultline tune` tune.json files): per layer, the best cycles found
        so far against the trials, one line per file (strategy and seed); and for every file that
        is exhaustive, which configurations over tile_h x tile_w are valid."""
        if not self.tunes:
            return
        self.lines += ["## VTA schedule tuning", ""]
        layers = []
        for _, d in self.tunes:
            layers += [l["layer"] for l in d["layers"] if l["layer"] not in layers]
        columns = min(3, len(layers))
        rows = (len(layers) + columns - 1) // columns
        fig, axes = self.plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
        for i, name in enumerate(layers):
            ax = axes[i // columns][i % columns]
            for path, d in self.tunes:
                layer = next((l for l in d["layers"] if l["layer"] == name), None)
                if layer is None:
                    continue
                best, curve = None, []
                for _, cycles in layer["trials"]:
                    if not isinstance(cycles, str):
                        best = cycles if best is None else min(best, cycles)
                    curve.append(best / layer["reference_cycles"] if best else float("nan"))
                ax.plot(range(1, len(curve) + 1), curve, label=f"{d['strategy']} (seed {d['seed']})", linewidth=1)
            ax.set_xscale("log")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("trials")
            ax.set_ylabel("best cycles / space best")
            ax.set_ylim(bottom=0.95)
            if i == 0:
                ax.legend(fontsize=7)
        for j in range(len(layers), rows * columns):
            axes[j // columns][j % columns].axis("off")
        self.save(fig, "tuning_best_so_far", "Best cycles found so far per trial and strategy (1 = the best of the space, when an exhaustive tune measured it)")
        self.lines += ["| file | strategy | seed | layer | space | valid | default cycles | best cycles | speedup | trials to best |", "|---|---|---|---|---|---|---|---|---|---|"]
        for path, d in self.tunes:
            for l in d["layers"]:
                self.lines.append(f"| {os.path.basename(os.path.dirname(path)) or path} | {d['strategy']} | {d['seed']} | {l['layer']} | {l['space']} | {l['valid']} | "
                                  f"{l['default']['cycles']} | {l['best']['cycles']} | {l['speedup_over_default']:.2f}x | {l['trials_to_best']} |")
        self.lines.append("")
        for path, d in self.tunes:
            full = [l for l in d["layers"] if len(l["trials"]) == l["space"]] if d["strategy"] == "exhaustive" else []
            if not full:
                continue
            columns = min(3, len(full))
            rows = (len(full) + columns - 1) // columns
            fig, axes = self.plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False, layout="constrained")
            for i, l in enumerate(full):
                knobs = [dict((k.rstrip("0123456789"), int(k[len(k.rstrip("0123456789")):])) for k in s.split()) for s, _ in l["trials"]]
                hs = sorted({k["h"] for k in knobs})
                ws = sorted({k["w"] for k in knobs})
                share = [[0.0] * len(ws) for _ in hs]
                count = [[0] * len(ws) for _ in hs]
                for k, (_, cycles) in zip(knobs, l["trials"]):
                    y, x = hs.index(k["h"]), ws.index(k["w"])
                    count[y][x] += 1
                    share[y][x] += 0 if isinstance(cycles, str) else 1
                grid = [[share[y][x] / count[y][x] for x in range(len(ws))] for y in range(len(hs))]
                ax = axes[i // columns][i % columns]
                image = ax.imshow(grid, origin="lower", cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
                ax.set_xticks(range(len(ws)))
                ax.set_xticklabels(ws, fontsize=7)
                ax.set_yticks(range(len(hs)))
                ax.set_yticklabels(hs, fontsize=7)
                ax.set_xlabel("tile_w")
                ax.set_ylabel("tile_h")
                ax.set_title(f"{l['layer']}: {100 * l['valid'] / l['space']:.0f} % valid", fontsize=9)
            fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="valid share over the other knobs")
            for j in range(len(full), rows * columns):
                axes[j // columns][j % columns].axis("off")
            self.save(fig, "tuning_validity_map", f"Valid configurations over tile_h x tile_w ({os.path.basename(os.path.dirname(path)) or path})", tight=False)

    def write(self):
        path = os.path.join(self.out, "report.md")
        try:
            with open(atomic_target(path), "w", encoding="utf-8") as f:
                f.write("\n".join(self.lines) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(atomic_target(path), path)
        except OSError as e:
            remove_quietly(atomic_target(path))
            fail(f"{path}: cannot write ({e.strerror or e})")
        return path


def main(argv):
    if len(argv) < 3 or argv[0] != "--out":
        fail("usage: report.py --out DIR RESULT.json [RESULT.json ...]")
    out, paths = argv[1], argv[2:]
    loaded = [(p, *load(p)) for p in paths]  # every file checked before anything is written
    if os.path.exists(out) and not os.path.isdir(out):
        fail(f"{out}: exists and is not a folder")
    if os.path.isdir(os.path.join(out, "report.md")):
        fail(f"{os.path.join(out, 'report.md')}: is a folder, not a file")
    try:
        os.mkdir(out)  # the folder itself, never missing parents
    except FileExistsError:
        pass
    except OSError as e:
        fail(f"{out}: cannot create the folder ({e.strerror})")
    report = Report(out)
    for path, kind, data in loaded:
        try:
            {"walking_noise": report.walking, "grid": report.grid, "eval": report.evaluations, "tune": report.tune, "ipu_plan": report.ipu_plan,
             "seed_study": report.seed_study}[kind](path, data)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            fail(f"{path}: missing or malformed field ({type(e).__name__}: {e})")
    try:
        report.tunings()
    except (KeyError, IndexError, TypeError, ValueError) as e:
        fail(f"tune results: missing or malformed field ({type(e).__name__}: {e})")
    written = report.write()
    print(f"wrote {written} with {report.figures} figure(s) (PNG and SVG) from {len(paths)} result file(s)")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except SystemExit:
        raise
    except BaseException as e:  # a bug in this script: still one line, exit status 1
        sys.stderr.write(f"faultline report: internal error: {type(e).__name__}: {e}\n".replace("\n", " ").rstrip() + "\n")
        sys.exit(1)
