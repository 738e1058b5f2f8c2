#!/usr/bin/env python3
"""Times kiln on the shared benchmark workloads and compares with BuildKit's anchors.

Usage: bench.py [--kiln BIN] [--scratch DIR] [--repeat N] [--json FILE] [workload...]

Every measure is the wall-clock time of one `kiln build` process, repeated and
reduced to its median. See bench/README.md for what each measure means.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_WORKLOADS = Path(os.environ.get("KILN_WORKLOADS", "/work/shared/workloads"))

# Everything a workload writes to the state directory is kept under the scratch dir.


@dataclass
class Measure:
    workload: str
    name: str
    buildkit: str  # BuildKit v0.24.0's figure from ANCHORS.md, as written there
    target: float | None  # seconds; None when the target is relative only
    target_text: str
    samples: list = field(default_factory=list)
    cpu: list = field(default_factory=list)  # user+sys seconds of each sample's run
    notes: list = field(default_factory=list)
    check_failed: bool = False

    def median(self):
        return statistics.median(self.samples) if self.samples else None

    def add(self, seconds, cpu):
        self.samples.append(seconds)
        self.cpu.append(cpu)

    def status(self):
        m = self.median()
        if m is None:
            return "not run"
        if self.check_failed:
            return "NOT MET (check)"
        if self.target is None:
            return "-"
        return "met" if m <= self.target else "NOT MET"


class Bench:
    def __init__(self, kiln, scratch, repeat, workloads_dir, verbose):
        self.kiln = kiln
        self.scratch = scratch
        self.repeat = repeat
        self.workloads = workloads_dir
        self.verbose = verbose
        self.measures = []
        self.logs = scratch / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.run_no = 0
        self.root_no = 0
        # Leftovers of earlier runs go to the trash too, emptied at the end.
        self.trash = scratch / "trash"
        self.trash.mkdir(parents=True, exist_ok=True)
        state = scratch / "state"
        if state.exists():
            state.rename(self.trash / f"state-{time.time_ns()}")

    # --- helpers ---------------------------------------------------------------

    def context(self, workload):
        """The workload's context, made once and cached (keyed by its make-context)."""
        script = self.workloads / workload / "make-context"
        stamp_text = script.read_bytes()
        ctx = self.scratch / "contexts" / workload
        stamp = self.scratch / "contexts" / f"{workload}.stamp"
        if ctx.is_dir() and stamp.exists() and stamp.read_bytes() == stamp_text:
            return ctx
        if ctx.exists():
            shutil.rmtree(ctx)
        ctx.parent.mkdir(parents=True, exist_ok=True)
        print(f"  making the {workload} context in {ctx}", file=sys.stderr)
        subprocess.run(["bash", str(script), str(ctx)], check=True)
        stamp.write_bytes(stamp_text)
        return ctx

    def fresh_root(self, workload, remove_now=False):
        """An empty state directory. Earlier ones are not deleted here but moved to
        the trash, emptied after the last measure: on ext4 without a journal (as on
        this kind of machine) creating files shortly after deleting many makes every
        inode allocation skip the freed inodes, which would charge kiln for the
        harness's own cleanup. `remove_now` deletes at once (for states of few, big
        files, where that costs nothing and the disk space matters)."""
        self.root_no += 1
        for old in (self.scratch / "state").glob(f"{workload}.*"):
            if remove_now:
                shutil.rmtree(old)
            else:
                old.rename(self.trash / f"{old.name}.{self.root_no}")
        root = self.scratch / "state" / f"{workload}.{self.root_no}"
        root.parent.mkdir(parents=True, exist_ok=True)
        return root

    def empty_trash(self):
        shutil.rmtree(self.trash, ignore_errors=True)

    def build(self, workload, root, ctx, extra=(), prefix=(), expect_cached=None, label=""):
        """Runs one `kiln build`; returns (seconds, output text)."""
        self.run_no += 1
        dockerfile = self.workloads / workload / "Dockerfile"
        cmd = [*prefix, str(self.kiln), "--root", str(root), "build", "--progress", "plain",
               "-f", str(dockerfile), *extra, str(ctx)]
        log = self.logs / f"{self.run_no:03d}-{workload}-{label}.log"
        with open(log, "wb") as f:
            f.write((" ".join(cmd) + "\n").encode())
            f.flush()
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(p.pid, 0)
            dt = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
        out = log.read_text(errors="replace").split("\n", 1)[-1]
        # CPU time of kiln and everything it waited for (runc, the RUN processes).
        self.last_cpu = usage.ru_utime + usage.ru_stime
        if p.returncode != 0:
            raise RuntimeError(f"kiln failed ({label}, exit {p.returncode}); see {log}\n{out[-2000:]}")
        if self.verbose:
            print(f"    {workload} {label}: {dt:.3f}s (cpu {self.last_cpu:.2f}s)", file=sys.stderr)
        return dt, out

    def measure(self, workload, name, buildkit, target, target_text=None):
        m = Measure(workload, name, buildkit, target,
                    target_text if target_text is not None else f"≤ {target:g} s")
        self.measures.append(m)
        return m

    @staticmethod
    def steps(out):
        """{step number: 'CACHED' | 'DONE' | 'ERROR'} from plain progress output."""
        status = {}
        names = {}
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("#") or not parts[0][1:].isdigit():
                continue
            n = int(parts[0][1:])
            if parts[1].startswith("["):
                names.setdefault(n, parts[1] + " " + (parts[2] if len(parts) > 2 else ""))
            elif parts[1] in ("CACHED", "DONE", "ERROR"):
                status[n] = parts[1]
        return {names.get(n, str(n)): s for n, s in status.items()}

    def require(self, m, out, instruction, cached):
        """Notes a failed check when the step running `instruction` was (not) cached."""
        found = {k: v for k, v in self.steps(out).items() if instruction in k}
        want = "CACHED" if cached else "DONE"
        bad = [k for k, v in found.items() if v != want]
        if not found or bad:
            m.check_failed = True
            note = f"expected {instruction!r} {'CACHED' if cached else 'to run'}: {found}"
            if note not in m.notes:
                m.notes.append(note)

    # --- workloads ----------------------------------------------------------------

    def ctx_copy(self):
        w = "ctx-copy"
        ctx = self.context(w)
        cold = self.measure(w, "cold", "7.5 s", 3.0)
        unchanged = self.measure(w, "unchanged rebuild", "0.75 s", 0.15)
        touched = self.measure(w, "every file touched", "7.2 s", 1.0)
        one = self.measure(w, "one file changed", "3.4 s", 1.5)
        root = None
        for i in range(self.repeat):
            root = self.fresh_root(w)
            dt, out = self.build(w, root, ctx, label=f"cold{i}")
            cold.add(dt, self.last_cpu)
        for i in range(self.repeat):
            dt, out = self.build(w, root, ctx, label=f"unchanged{i}")
            unchanged.add(dt, self.last_cpu)
            self.require(unchanged, out, "COPY . /app", cached=True)
        files = sorted(p for p in ctx.rglob("*") if p.is_file())
        for i in range(self.repeat):
            now = time.time_ns()
            for f in files:
                os.utime(f, ns=(now, now))
            dt, out = self.build(w, root, ctx, label=f"touched{i}")
            touched.add(dt, self.last_cpu)
            self.require(touched, out, "COPY . /app", cached=True)
        victim = ctx / "pkg100" / "src" / "file050.dat"
        original = victim.read_bytes()
        try:
            for i in range(self.repeat):
                changed = f"changed {i} {time.time_ns()}\n".encode()
                victim.write_bytes(changed + original[len(changed):])
                dt, out = self.build(w, root, ctx, label=f"onefile{i}")
                one.add(dt, self.last_cpu)
                self.require(one, out, "COPY . /app", cached=False)
        finally:
            victim.write_bytes(original)

    def many_stages(self):
        w = "many-stages"
        ctx = self.context(w)
        cold = self.measure(w, "cold", "0.94 s", 0.4)
        unchanged = self.measure(w, "unchanged rebuild", "0.10 s", 0.05)
        root = None
        for i in range(self.repeat):
            root = self.fresh_root(w)
            dt, _ = self.build(w, root, ctx, label=f"cold{i}")
            cold.add(dt, self.last_cpu)
        for i in range(self.repeat):
            dt, out = self.build(w, root, ctx, label=f"unchanged{i}")
            unchanged.add(dt, self.last_cpu)
            self.require(unchanged, out, "COPY --from=s20", cached=True)

    def parallel_stages(self):
        w = "parallel-stages"
        ctx = self.context(w)
        cold = self.measure(w, "cold", "2.5 s", 2.3)
        for i in range(self.repeat):
            root = self.fresh_root(w)
            dt, _ = self.build(w, root, ctx, label=f"cold{i}")
            cold.add(dt, self.last_cpu)

    def layer_digests(self, oci_tar):
        """The layer descriptors' digests of the single manifest in an OCI tarball."""
        with tarfile.open(oci_tar) as t:
            index = json.load(t.extractfile("index.json"))
            mdesc = index["manifests"][0]["digest"].split(":", 1)[1]
            manifest = json.load(t.extractfile(f"blobs/sha256/{mdesc}"))
            return [l["digest"] for l in manifest["layers"]]

    def big_layer(self):
        w = "big-layer"
        ctx = self.context(w)
        build = self.measure(w, "build (1 GiB COPY), cold", "8.5 s", 4.0)
        gz = self.measure(w, "export gzip", "16.6 s", 8.0, "≤ 8 s, same bytes at 1 thread")
        zs = self.measure(w, "export zstd", "6.0 s", 1.5, "≤ 1.5 s, same bytes at 1 thread")
        out_dir = self.scratch / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        digests = {}
        for i in range(self.repeat):
            root = self.fresh_root(w, remove_now=True)
            dt, _ = self.build(w, root, ctx, label=f"cold{i}")
            build.add(dt, self.last_cpu)
            for m, comp in ((gz, "gzip"), (zs, "zstd")):
                dest = out_dir / f"big-{comp}.tar"
                dt, _ = self.build(w, root, ctx, label=f"export-{comp}{i}",
                                   extra=["-o", f"type=oci,dest={dest},compression={comp}"])
                m.add(dt, self.last_cpu)
                d = self.layer_digests(dest)
                if digests.setdefault(comp, d) != d:
                    m.check_failed = True
                    m.notes.append(f"{comp} layers differ between runs: {digests[comp]} vs {d}")
                dest.unlink()
        # The same export on one core must give the same bytes.
        if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1:
            root = self.fresh_root(w, remove_now=True)
            one_cpu = ["taskset", "-c", "0"]
            self.build(w, root, ctx, prefix=one_cpu, label="cold-1cpu")
            for m, comp in ((gz, "gzip"), (zs, "zstd")):
                dest = out_dir / f"big-{comp}-1cpu.tar"
                dt, _ = self.build(w, root, ctx, prefix=one_cpu, label=f"export-{comp}-1cpu",
                                   extra=["-o", f"type=oci,dest={dest},compression={comp}"])
                d = self.layer_digests(dest)
                m.notes.append(f"on 1 core: {dt:.2f} s, layers {'identical' if d == digests.get(comp) else 'DIFFERENT'}")
                if d != digests.get(comp):
                    m.check_failed = True
                dest.unlink()
        else:
            for m in (gz, zs):
                m.notes.append("thread independence not checked (taskset missing or one core)")

    def apt_install(self):
        w = "apt-install"
        ctx = self.context(w)
        cold = self.measure(w, "cold", "13.6 / 15.2 / 16.6 s", 15.2,
                            "≤ BuildKit (15.2 s median)")
        unchanged = self.measure(w, "unchanged rebuild", "0.09 s", 0.05)
        root = None
        for i in range(self.repeat):
            root = self.fresh_root(w)
            dt, _ = self.build(w, root, ctx, label=f"cold{i}")
            cold.add(dt, self.last_cpu)
        for i in range(self.repeat):
            dt, out = self.build(w, root, ctx, label=f"unchanged{i}")
            unchanged.add(dt, self.last_cpu)
            self.require(unchanged, out, "RUN apt-get update", cached=True)

    def cache_mount(self):
        w = "cache-mount"
        ctx = self.context(w)
        cold = self.measure(w, "cold", "13.0 / 15.7 / 18.5 s", 15.7,
                            "≤ BuildKit (15.7 s median)")
        added = self.measure(w, "one package added, cache mounts warm", "7.2 / 7.6 / 8.6 s",
                             0.8 * 7.6, "≤ 0.8 × BuildKit (6.08 s)")
        more = ["--build-arg", "PACKAGES=curl ca-certificates jq"]
        for i in range(self.repeat):
            root = self.fresh_root(w)
            dt, _ = self.build(w, root, ctx, label=f"cold{i}")
            cold.add(dt, self.last_cpu)
            dt, out = self.build(w, root, ctx, extra=more, label=f"added{i}")
            added.add(dt, self.last_cpu)
            self.require(added, out, "apt-get install", cached=False)

    # --- report -------------------------------------------------------------------

    def table(self):
        rows = [("workload", "measure", "kiln (median)", "runs", "cpu", "BuildKit", "target", "status")]
        for m in self.measures:
            med = m.median()
            rows.append((
                m.workload, m.name,
                "-" if med is None else f"{med:.3f} s",
                " ".join(f"{s:.2f}" for s in m.samples),
                "-" if not m.cpu else f"{statistics.median(m.cpu):.2f} s",
                m.buildkit, m.target_text, m.status(),
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for j, r in enumerate(rows):
            lines.append("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) + " |")
            if j == 0:
                lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for m in self.measures:
            for n in m.notes:
                lines.append(f"  {m.workload} / {m.name}: {n}")
        return "\n".join(lines)


WORKLOADS = {
    "ctx-copy": Bench.ctx_copy,
    "many-stages": Bench.many_stages,
    "parallel-stages": Bench.parallel_stages,
    "big-layer": Bench.big_layer,
    "apt-install": Bench.apt_install,
    "cache-mount": Bench.cache_mount,
}
LEFT_OUT = {
    "remote-cache": "needs cache export (--export-cache/--import-cache), not implemented in kiln yet",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True, type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workloads-dir", type=Path, default=DEFAULT_WORKLOADS)
    ap.add_argument("--json", type=Path, help="also write the samples here")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("workload", nargs="*")
    a = ap.parse_args()
    chosen = a.workload or list(WORKLOADS)
    for w in chosen:
        if w in LEFT_OUT:
            print(f"{w}: left out: {LEFT_OUT[w]}", file=sys.stderr)
        elif w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; known: {', '.join([*WORKLOADS, *LEFT_OUT])}")
    b = Bench(a.kiln.resolve(), a.scratch.resolve(), a.repeat, a.workloads_dir, a.verbose)
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)",
          file=sys.stderr)
    failed = []
    for w in chosen:
        if w not in WORKLOADS:
            continue
        print(f"{w} ...", file=sys.stderr)
        try:
            WORKLOADS[w](b)
        except Exception as e:  # one broken workload should not hide the others
            failed.append(w)
            print(f"{w}: FAILED: {e}", file=sys.stderr)
    print(b.table())
    b.empty_trash()
    load = os.getloadavg()
    print(f"  load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    if not a.workload:
        for w, why in LEFT_OUT.items():
            print(f"  {w}: left out: {why}")
    if a.json:
        a.json.write_text(json.dumps([{
            "workload": m.workload, "measure": m.name, "samples": m.samples, "cpu": m.cpu,
            "median": m.median(), "buildkit": m.buildkit, "target": m.target_text,
            "status": m.status(), "notes": m.notes,
        } for m in b.measures], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
