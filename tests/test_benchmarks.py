"""Every benchmark still runs and prints its figures (smallest options, a few seconds each).

Not a measurement: these check that the harness and each scenario work, so that a
benchmark cannot break quietly between the runs that docs/benchmarks.md reports.
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_benchmark(name, *options, timeout=90):
    """Run benchmarks/<name> as docs/benchmarks.md says; its output (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKE_A_NUMBER_")}
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", name), *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_load_benchmark_prints_each_scenario_beside_hello_world(tmp_path):
    out = run_benchmark(
        "run.py",
        "--smoke",
        *("--only", "hello", "--only", "take", "--only", "floor-store"),
        *("--json", str(tmp_path / "run.json")),
    )
    for scenario in ("hello-world WSGI app (baseline)", "take a number:", "floor: the write alone"):
        assert scenario in out
    assert "taking a number >= 50% of hello-world" in out
    assert (tmp_path / "run.json").exists()


def test_push_benchmark_prints_latency_idle_cpu_memory_and_ratios():
    out = run_benchmark(
        "push.py",
        *("--waiters", "20", "--calls", "2", "--idle", "1", "--pages", "2"),
        *("--baseline-calls", "1", "--timeout", "60"),
    )
    for figure in (
        "called customer: p50",
        "every woken client: p50",
        "ratios: called p50 / updates-at-once p50",
        "server memory: RSS",
        "Goals:",
    ):
        assert figure in out
    assert "woken per call: 20..20 of 20" in out


def test_thousands_waiting_benchmark_prints_each_goal_beside_the_baseline(tmp_path):
    out = run_benchmark(
        "many_waiting.py",
        *("--waiters", "40", "--queues", "4", "--minutes", "0.2", "--idle", "1"),
        *("--call-every", "1", "--json", str(tmp_path / "many.json")),
    )
    for figure in (
        "Baseline: updates answered at once",
        "called customer (POST end -> 'called'): p50",
        "every page after each change:",
        "take:",
        "load generator",
        "Per minute:",
        "Goals:",
    ):
        assert figure in out
    assert "told to poll: 0" in out
    assert (tmp_path / "many.json").exists()


def test_soak_benchmark_prints_latency_per_minute_and_memory():
    out = run_benchmark(
        "soak.py", *("--minutes", "0.05", "--tickets", "2", "--boards", "1", "--queue-pages", "1")
    )
    assert "latency to every page, whole run: n=" in out
    for kind in ("ticket", "console", "board", "queue page"):
        assert f"  {kind}" in out
    assert "RSS:" in out


def test_profile_prints_cpu_per_request_of_each_endpoint():
    out = run_benchmark("profile_app.py", "--requests", "20", "--top", "3")
    for endpoint in ("=== take a number", "=== floor-webob", "=== ticket page"):
        assert endpoint in out
    assert "ms CPU/request" in out


@pytest.mark.browser
def test_browser_benchmark_prints_your_turn_latency_beside_a_static_fetch():
    out = run_benchmark("browser_push.py", "--trials", "1")
    assert "'your turn' shown after Next:" in out
    assert "ratio p50 / baseline p50:" in out


def test_instruction_counts_print_a_per_request_figure_as_a_ratio_to_the_first_tree():
    out = run_benchmark("instructions.py", "--requests", "3", "--only", "ticket", timeout=240)
    lines = [line for line in out.splitlines() if line.startswith("ticket ")]
    assert len(lines) == 1, out
    assert " M instructions/request x1.000 of the first tree" in lines[0], out


def test_instances_benchmark_prints_each_layout_beside_hello_world_and_push_across_instances(
    tmp_path,
):
    out = run_benchmark("instances.py", "--smoke", "--json", str(tmp_path / "instances.json"))
    for layout in ("SQLite, 1 instance", "PostgreSQL, 1 instance", "PostgreSQL, 2 instances"):
        for scenario in ("take", "ticket"):
            assert f"{layout:<24} {scenario:<7}" in out
    assert "hello-world + nginx" in out
    assert "Two instances / one, take: x" in out
    assert "instance 2:" in out and "ms/request" in out
    assert "Next on instance B: called customer p50" in out
    assert "client problems" not in out
    assert (tmp_path / "instances.json").exists()
