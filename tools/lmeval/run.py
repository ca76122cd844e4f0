"""lm-evaluation-harness against `blockserve serve`, checked against the authors' own evaluation code.

    /work/venv-lmeval/bin/python tools/lmeval/run.py                       # compare with the committed figures
    /work/venv-lmeval/bin/python tools/lmeval/run.py --authors-python /work/venv-authors/bin/python \
        --authors-repo /tmp/authors [--write-figures]                      # recompute them with the authors' code

For each checkpoint in CHECKPOINTS (random weights: two block models made by the authors' classes, one
trained-with-padding and one without, and a vanilla GPT-NeoX), start `blockserve serve` on it with the byte
tokenizer, run lm_eval's `local-completions` model (echo + logprobs over /v1/completions) on a local
multiple-choice task (questions.jsonl, no download), and compare every request's loglikelihood and the
task's accuracy with the authors' code on the same requests (authors_loglikelihoods.py: their lm-eval
HFLM and block wrappers). Exit status 1 when a loglikelihood differs by more than 1e-4 or an accuracy differs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "test" / "fixtures"
TOKENIZER = FIXTURES / "byte-tokenizer" / "tokenizer.json"
FIGURES = FIXTURES / "lmeval"
CHECKPOINTS = {
    "narrow_token_decoder": FIXTURES / "authors" / "narrow_token_decoder",  # random_pad_first_block: true
    "l8_sequential_nopad": FIXTURES / "authors" / "l8_sequential_nopad",  # key absent: trained without
    "vanilla_tiny": FIXTURES / "vanilla_tiny",
}
TOLERANCE = 1e-4
TASK = "blockserve_local_mc"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def task_dir(tmp: Path) -> Path:
    """The task YAML (lm-eval's own format) pointing at questions.jsonl by absolute path."""
    d = tmp / "tasks"
    d.mkdir()
    (d / f"{TASK}.yaml").write_text(
        f"task: {TASK}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(HERE / 'questions.jsonl'))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        "doc_to_choice: \"{{choices}}\"\n"
        "doc_to_target: answer\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n")
    return d


def tokenizer_dir(tmp: Path) -> Path:
    """The byte tokenizer as an HF tokenizer directory (Pythia's special tokens), for lm_eval's AutoTokenizer."""
    d = tmp / "tokenizer"
    d.mkdir()
    shutil.copy(TOKENIZER, d / "tokenizer.json")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 2048}))
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model: Path, backend: str, log: Path, extra: list[str]):
        self.port = free_port()
        self.log = log
        # From the sources (tsx), like the test suite: a dist/ build could be stale in a working tree.
        cmd = ["node", "--import", "tsx", str(ROOT / "cli" / "main.ts"), "serve", "--model", str(model), "--tokenizer",
               str(TOKENIZER), "--backend", backend, "--port", str(self.port), "--kv-cache-mb", "16",
               "--max-num-seqs", "8", "--log-level", "warn",
               # f32 on purpose: the serving default (auto) computes in bf16 where the CPU has it, and this
               # run checks loglikelihoods against the authors' fp32 code at 1e-4.
               "--compute-dtype", "f32", *extra]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"blockserve exited ({self.proc.returncode}):\n{log.read_text()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        self.close()
        raise SystemExit(f"blockserve did not become ready in 120 s:\n{log.read_text()}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_lmeval(name: str, server: Server, tasks: Path, tok: Path) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    args = (f"base_url=http://127.0.0.1:{server.port}/v1/completions,model={name},tokenizer={tok},"
            "tokenizer_backend=huggingface,tokenized_requests=True,num_concurrent=1,max_retries=1,"
            "max_length=2048")
    out = lm_eval.simple_evaluate(model="local-completions", model_args=args, tasks=[TASK],
                                  task_manager=TaskManager(include_path=str(tasks)), log_samples=True,
                                  batch_size=4, random_seed=0, numpy_random_seed=0, torch_random_seed=0)
    samples = sorted(out["samples"][TASK], key=lambda s: s["doc_id"])
    pairs, lls = [], []
    for s in samples:
        for arg, resp in zip(s["arguments"], s["resps"]):
            pairs.append([arg[0], arg[1]] if isinstance(arg, (list, tuple)) else [arg["arg_0"], arg["arg_1"]])
            lls.append(float(resp[0][0]))
    return {"requests": pairs, "loglikelihoods": lls, "acc": out["results"][TASK]["acc,none"],
            "choices_per_doc": [len(s["arguments"]) for s in samples], "gold": [s["target"] for s in samples]}


def accuracy(lls: list[float], choices_per_doc: list[int], gold: list[int]) -> float:
    """lm-eval's multiple-choice acc: the doc is right when its gold choice has the highest loglikelihood."""
    right, i = 0, 0
    for n, g in zip(choices_per_doc, gold):
        doc = lls[i:i + n]
        right += int(max(range(n), key=lambda k: doc[k]) == g)
        i += n
    return right / len(gold)


def authors_figures(name: str, ckpt: Path, ours: dict, a: argparse.Namespace, tmp: Path) -> dict:
    if a.authors_python:
        req = tmp / f"{name}.requests.json"
        req.write_text(json.dumps(ours["requests"]))
        out = tmp / f"{name}.authors.json"
        subprocess.run([a.authors_python, str(HERE / "authors_loglikelihoods.py"), "--repo", str(a.authors_repo),
                        "--model", str(ckpt), "--tokenizer", str(TOKENIZER), "--requests", str(req), "--out",
                        str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        got = json.loads(out.read_text())
        fig = {"checkpoint": str(ckpt.relative_to(ROOT)), "wrapper": got["wrapper"], "requests": ours["requests"],
               "loglikelihoods": got["loglikelihoods"],
               "acc": accuracy(got["loglikelihoods"], ours["choices_per_doc"], ours["gold"])}
        if a.write_figures:
            FIGURES.mkdir(exist_ok=True)
            (FIGURES / f"{name}.json").write_text(json.dumps(fig, indent=1) + "\n")
        return fig
    path = FIGURES / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} missing: run with --authors-python and --authors-repo --write-figures")
    fig = json.loads(path.read_text())
    if fig["requests"] != ours["requests"]:
        raise SystemExit(f"{name}: lm_eval built other requests than those the committed figures were made from")
    return fig


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--authors-python", help="interpreter with the authors' dependencies (transformers 4.39.3)")
    ap.add_argument("--authors-repo", type=Path, help="checkout of itsnamgyu/block-transformer at 17842dd")
    ap.add_argument("--write-figures", action="store_true", help="save the authors' figures under test/fixtures/lmeval")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--only", help="comma-separated checkpoint names")
    ap.add_argument("--prompt-scoring", choices=["authors", "decoding"],
                    help="pass --prompt-scoring to blockserve (default: the server's, authors)")
    a = ap.parse_args()
    if bool(a.authors_python) != bool(a.authors_repo):
        ap.error("--authors-python and --authors-repo go together")
    names = a.only.split(",") if a.only else list(CHECKPOINTS)
    failed = False
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        tasks, tok = task_dir(tmp), tokenizer_dir(tmp)
        for name in names:
            ckpt = CHECKPOINTS[name]
            extra = ["--prompt-scoring", a.prompt_scoring] if a.prompt_scoring else []
            server = Server(ckpt, a.backend, tmp / f"{name}.server.log", extra)
            try:
                ours = run_lmeval(name, server, tasks, tok)
            finally:
                server.close()
            fig = authors_figures(name, ckpt, ours, a, tmp)
            diff = max(abs(x - y) for x, y in zip(ours["loglikelihoods"], fig["loglikelihoods"]))
            ok = diff <= TOLERANCE and ours["acc"] == fig["acc"] and len(ours["loglikelihoods"]) == len(fig["loglikelihoods"])
            failed |= not ok
            print(f"lmeval {name} ({fig['wrapper']} wrapper, {a.backend} backend): {len(ours['requests'])} loglikelihood "
                  f"requests, max |diff| vs authors' code {diff:.2e}, acc lm_eval {ours['acc']:.4f} vs authors "
                  f"{fig['acc']:.4f}: {'OK' if ok else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
