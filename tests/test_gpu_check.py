"""benchmarks/gpu_check.py: the prepared GPU check imports and runs without the optional packages.

The GPU machine it is meant for has torch and torchvision only. Here the optional packages are
hidden from every process of the check (a ``sitecustomize`` on PYTHONPATH marks them absent in
``sys.modules`` and a meta-path finder refuses their submodules), and the check is smoke-run on
the CPU with ``--quick``: the torchrun (gloo, DDP) training case and the generation case.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("av", "flow_vis", "ipywidgets", "papermill", "matplotlib", "tqdm", "sklearn", "IPython")

BLOCKER = f'''
import importlib.abc
import sys

BLOCKED = {OPTIONAL!r}
for name in BLOCKED:
    # None in sys.modules: "import name" raises ModuleNotFoundError and importlib.util.find_spec
    # returns None, exactly as for a package that is not installed.
    sys.modules[name] = None


class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
        return None


sys.meta_path.insert(0, _Refuse())
'''


@pytest.fixture
def blocked_env(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), OMP_NUM_THREADS="1",
               SEG2VID_PROGRESS="1")  # progress bars on: they must switch off without tqdm
    return env


def test_gpu_check_modules_import_without_the_optional_packages(blocked_env):
    """In one fresh process: the blocker hides every optional package, and gpu_check and the
    modules it uses import anyway (progress bars switch off without tqdm)."""
    modules = ["seg2vid", "seg2vid.cli", "seg2vid.configs", "seg2vid.training.stage2",
               "seg2vid.training.distributed", "seg2vid.generation.pipeline", "seg2vid.models.loading",
               "seg2vid.data.synthetic", "seg2vid.utils"]
    code = ("import importlib, sys\n"
            f"for n in {OPTIONAL!r}:\n"
            "    try:\n        importlib.import_module(n)\n        print('imported', n)\n"
            "    except ImportError:\n        pass\n"
            "sys.path.insert(0, 'benchmarks')\nimport gpu_check\n"
            "for m in sys.argv[1:]:\n    importlib.import_module(m)\n"
            "from seg2vid.utils import progress_enabled\nassert not progress_enabled()\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True,
                          env=blocked_env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok", "an optional package was importable: " + done.stdout


def test_gpu_check_smoke_runs_on_the_cpu_without_the_optional_packages(blocked_env, tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
         "--cases", "fp16,compile,torchrun,generate", "--json", str(out)],
        capture_output=True, text=True, env=blocked_env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert json.loads(done.stdout) == report
    assert set(OPTIONAL) - {"IPython"} <= set(report["environment"]["optional_packages_missing"])
    cases = report["cases"]
    assert cases["fp16"]["status"] == cases["compile"]["status"] == "skipped"  # CUDA-only paths
    ddp = cases["torchrun"]
    assert ddp["status"] == "ok" and ddp["steps"] == 2 and ddp["processes"] == 1
    assert ddp["steps_per_s"] > 0 and ddp["clips_per_s"] > 0 and ddp["peak_gpu_memory_mib"] is None
    assert 0 < ddp["loss_after_n_steps"] < float("inf")
    generate = cases["generate"]
    assert generate["status"] == "ok" and generate["clips_per_s_off_batch8"] > 0
    assert generate["shipped_pipeline"]["finite"] and generate["shipped_pipeline"]["videos"][0] == 8


def test_gpu_check_train_case_in_process(tmp_path, one_thread):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    args = gpu_check._parser().parse_args(["--device", "cpu", "--quick"])
    settings = gpu_check._settings(args)
    result = gpu_check._train_case("bf16", settings, tmp_path / "run")
    assert result["amp"] == "bf16" and result["steps"] == 2 and result["timed_steps"] == 1
    assert result["loss_after_n_steps"] > 0 and result["clips_per_s"] > 0
