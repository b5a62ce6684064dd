"""Command parsing of trained language modules on every held-out wording, side by side in one process.

    .venv/bin/python benchmarks/language_parsing.py runs/language_r4/seed{0,1,2} runs/language_r5/seed{0,1,2} \
        runs/language_r6/seed{0,1,2} --json benchmarks/results/language_parsing.json

Each module is scored on its seed's commands splits: ``test`` (held-out combinations of training wordings),
``novel`` (the catalogue paraphrase held out of training), ``novel_independent`` (wordings by an author who
saw no catalogue; language/paraphrases.py), with the share that went to the nearest-instruction fallback
and, for the two paraphrase splits, which wordings were read as which task. Modules of module revision 4
(trained on the catalogue's wordings alone) are read too, so that a recipe can be compared with the one
before it on the same test; the module's revision is in the JSON beside its figures.
``--dropout-samples 0 8`` reads every module both ways (``ModuleSettings.dropout_samples``: TRC2 scored over word-
dropout masks of each command too), TRC2's weight chosen again for each. ``--weight-rules accuracy likelihood``
chooses TRC2's command and question weights again by each rule of ``LanguageModule.choose_weight``. ``--experts both
probe trc2`` reads every module also with one expert alone (the probe: TRC2's weights 0; TRC2: the probe left out),
to show what each brings. Questions are scored too (``test``: held-out combinations of training templates;
``novel``: held-out templates and paraphrases).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SPLITS = ("test", "novel", "novel_independent")
QUESTION_SPLITS = ("test", "novel")
OLDEST_REVISION = 4  # the first revision that parses questions into queries, as the current module does
EXPERTS = ("both", "probe", "trc2")  # who reads the commands and questions (see --experts)


def score(
    directory: Path, dropout_samples: int | None = None, weight_rule: str | None = None, experts: str = "both"
) -> dict:
    """The module's parse accuracy on each split and its task errors per held-out wording.

    ``dropout_samples`` reads the module with that many word-dropout masks (``ModuleSettings.dropout_samples``),
    ``weight_rule`` chooses TRC2's weights by that rule; with either, TRC2's command weight is chosen again on
    the validation wordings (and with ``weight_rule`` the question weight too; None: as the module was saved).
    ``experts`` other than ``"both"`` reads with the probe alone (TRC2's weights 0) or TRC2 alone (no probe,
    weights 1).
    """
    import cortico.language.module as language_module
    from cortico.language.tasks import make_task, training_instructions

    revision = json.loads((directory / language_module.MODULE_FILE).read_text()).get("revision", 0)
    if not OLDEST_REVISION <= revision <= language_module.MODULE_REVISION:
        raise SystemExit(f"{directory}: module revision {revision}; this benchmark reads {OLDEST_REVISION}-"
                         f"{language_module.MODULE_REVISION}")  # fmt: skip
    current = language_module.MODULE_REVISION
    language_module.MODULE_REVISION = revision  # LanguageModule.load reads its own revision only
    try:
        module = language_module.LanguageModule.load(directory)
    finally:
        language_module.MODULE_REVISION = current
    extended = revision >= 5  # revision 5 and later train on the wider list of language/paraphrases.py
    if not extended:  # its fallback compares with the wordings it was trained on
        module._nearest = language_module.NearestInstruction(
            module.tasks, module.text_encoder(), lambda task: training_instructions(task, extended=False)
        )
    commands = make_task("commands", module.settings.seed, module.settings.suite, extended=extended)
    module.settings.word_dropout = module.settings.metrics.get("word_dropout", module.settings.word_dropout)
    questions = make_task("questions", module.settings.seed, module.settings.suite, extended=extended)
    # word-dropout masks checked by the probe in training (`cortico language train --checked-masks`; 0: none)
    checked = module.settings.metrics.get("checked_masks", 0)
    result = {"revision": revision, "seed": module.settings.seed, "checked_masks": checked}
    if dropout_samples is not None or weight_rule is not None:
        module.settings.dropout_samples = (
            module.settings.dropout_samples if dropout_samples is None else dropout_samples
        )
        module.settings.weight_rule = weight_rule or "accuracy"  # the rule of every module before it was a setting
        # the 45 validation wordings of the wider list (the test's task already has them from revision 5 on)
        seed, suite = module.settings.seed, module.settings.suite
        validation = commands if extended else make_task("commands", seed, suite, extended=True)
        result["validation_by_weight"] = module.choose_weight("command", validation.splits["novel_validation"])
        if weight_rule is not None:
            choice = module.choose_weight("question", questions.splits["novel_validation"])
            result["question_validation_by_weight"] = choice
    if experts == "probe":
        module.settings.command_trc2_weight = module.settings.question_trc2_weight = 0.0
    elif experts == "trc2":
        module.probe = None
        module.settings.command_trc2_weight = module.settings.question_trc2_weight = 1.0
    result["experts"] = experts
    result["dropout_samples"] = module.settings.dropout_samples
    result["weight_rule"] = module.settings.weight_rule if weight_rule or dropout_samples is not None else "as saved"
    result["command_trc2_weight"] = module.settings.command_trc2_weight
    result["question_trc2_weight"] = module.settings.question_trc2_weight
    for split in QUESTION_SPLITS:
        result[f"questions_{split}"] = module.question_accuracy(questions.splits[split])
    for split in SPLITS:
        examples = commands.splits[split]
        parsed = module.parse_commands([e.input for e in examples])
        result[split] = module.parse_accuracy(examples, parsed)
        if split != "test":
            errors = collections.Counter(
                f"{_core(e.input, e.output.split()[0], split)} -> {p.task}"
                for e, p in zip(examples, parsed)
                if p.task != e.output.split()[0]
            )
            result[f"{split}_task_errors"] = dict(errors.most_common())
    return result


def _all_wordings(result: dict) -> float:
    """Accuracy over all 60 held-out wordings, each weighing the same (10 catalogue, 50 independent ones)."""
    from cortico.language.paraphrases import INDEPENDENT_TEST_PARAPHRASES

    independent = sum(map(len, INDEPENDENT_TEST_PARAPHRASES.values()))
    catalogue = len(INDEPENDENT_TEST_PARAPHRASES)  # one held-out catalogue wording per MT10 task
    pooled = catalogue * result["novel"]["accuracy"] + independent * result["novel_independent"]["accuracy"]
    return pooled / (catalogue + independent)


def _core(text: str, task: str, split: str) -> str:
    """The held-out wording a command of ``split`` was built around."""
    from cortico.language.paraphrases import INDEPENDENT_TEST_PARAPHRASES
    from cortico.language.tasks import held_out_core

    options = INDEPENDENT_TEST_PARAPHRASES[task] if split == "novel_independent" else (held_out_core(task),)
    return next((o for o in options if o in text), text)


def main() -> int:
    from cortico.language.module import WEIGHT_RULES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="+", type=Path, help="module folders (cortico language train --out)")
    parser.add_argument("--json", type=Path, default=RESULTS / "language_parsing.json")
    parser.add_argument(
        "--dropout-samples", type=int, nargs="+", default=None,
        help="read every module with each of these numbers of word-dropout masks (TRC2's weight chosen again "
        "for each; default: each module as it was saved)",
    )  # fmt: skip
    parser.add_argument(
        "--weight-rules", nargs="+", default=None, choices=sorted(WEIGHT_RULES),
        help="choose TRC2's weights again by each of these rules (default: each module's saved weights)",
    )  # fmt: skip
    parser.add_argument(
        "--experts", nargs="+", default=["both"], choices=EXPERTS,
        help="read every module with both experts (the default), the probe alone or TRC2 alone",
    )  # fmt: skip
    args = parser.parse_args()

    from cortico.atomic import write_json_atomic

    modules = {}
    for directory in args.modules:
        for samples in args.dropout_samples or [None]:
            for rule, experts in itertools.product(args.weight_rules or [None], args.experts):
                readings = (
                    [f"{samples} dropout samples"] * (samples is not None)
                    + [f"{rule} rule"] * (rule is not None)
                    + [f"{experts} alone"] * (experts != "both")
                )
                key = " with ".join([str(directory), *readings])
                modules[key] = score(directory, samples, rule, experts)
                figures = ", ".join(f"{s} {modules[key][s]['accuracy']:.4f}" for s in SPLITS)
                print(f"{key} (revision {modules[key]['revision']}): {figures}", flush=True)
    summary: dict[str, dict] = {}
    reading = ("revision", "checked_masks", "dropout_samples", "weight_rule", "experts")
    for group in sorted({tuple(m[k] for k in reading) for m in modules.values()}):
        runs = [m for m in modules.values() if tuple(m[k] for k in reading) == group]
        splits = [*SPLITS, *(f"questions_{split}" for split in QUESTION_SPLITS)]
        name = f"revision {group[0]}, {group[1]} checked masks, {group[2]} dropout samples, weights {group[3]}"
        name += "" if group[4] == "both" else f", {group[4]} alone"
        summary[name] = {
            split: {
                "mean": statistics.mean(r[split]["accuracy"] for r in runs),
                "std": statistics.pstdev(r[split]["accuracy"] for r in runs),
                "runs": len(runs),
            }
            for split in splits
        }
        summary[name]["all_held_out_wordings"] = statistics.mean(map(_all_wordings, runs))
    write_json_atomic(args.json, {
        "command": "python benchmarks/language_parsing.py " + " ".join(sys.argv[1:]),
        "summary": summary,
        "modules": modules,
    })  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
